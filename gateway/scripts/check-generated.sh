#!/usr/bin/env bash
# Fails (exit 1, printing the diff) when committed generated code is not what its generator makes
# today: the protobuf-c code of Sources/ContextProto from proto/ and the RPC table generated
# with it (Sources/Gateway/Codec/RPCDescriptors+Generated.swift, gen-proto.sh), and the
# embedded OpenAPI document from gateway/openapi.json (gen-openapi.sh). Fix: run them, commit.
set -euo pipefail
cd "$(dirname "$0")/../.."

fresh="$(mktemp -d)"
trap 'rm -rf "$fresh"' EXIT
bash gateway/scripts/gen-proto.sh "$fresh/ContextProto" "$fresh/RPCDescriptors+Generated.swift"
if ! diff -ru Sources/ContextProto "$fresh/ContextProto"; then
  echo "check-generated: Sources/ContextProto is stale; run gateway/scripts/gen-proto.sh and commit the result" >&2
  exit 1
fi
echo "check-generated: Sources/ContextProto is current"
if ! diff -u Sources/Gateway/Codec/RPCDescriptors+Generated.swift "$fresh/RPCDescriptors+Generated.swift"; then
  echo "check-generated: Sources/Gateway/Codec/RPCDescriptors+Generated.swift is stale; run gateway/scripts/gen-proto.sh and commit the result" >&2
  exit 1
fi
echo "check-generated: the RPC table is current"
bash gateway/scripts/gen-openapi.sh "$fresh/openapi.swift"
if ! diff -u Sources/HTTPServing/OpenAPIDocument+Generated.swift "$fresh/openapi.swift"; then
  echo "check-generated: Sources/HTTPServing/OpenAPIDocument+Generated.swift is stale; run gateway/scripts/gen-openapi.sh and commit the result" >&2
  exit 1
fi
echo "check-generated: the embedded OpenAPI document is current"
