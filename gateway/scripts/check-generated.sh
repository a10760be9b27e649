#!/usr/bin/env bash
# Fails (exit 1, printing the diff) when the committed protobuf-c code in Sources/ContextProto is
# not what gateway/scripts/gen-proto.sh makes from proto/ today. Fix: run gen-proto.sh, commit.
set -euo pipefail
cd "$(dirname "$0")/../.."

fresh="$(mktemp -d)"
trap 'rm -rf "$fresh"' EXIT
bash gateway/scripts/gen-proto.sh "$fresh"
if ! diff -ru Sources/ContextProto "$fresh"; then
  echo "check-generated: Sources/ContextProto is stale; run gateway/scripts/gen-proto.sh and commit the result" >&2
  exit 1
fi
echo "check-generated: Sources/ContextProto is current"
