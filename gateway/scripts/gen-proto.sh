#!/usr/bin/env bash
# Regenerates the protobuf-c code of Sources/ContextProto from proto/ (DESIGN.md §2: generated
# once, committed, checked by gateway/scripts/check-generated.sh).
#
#   gateway/scripts/gen-proto.sh            # writes Sources/ContextProto
#   gateway/scripts/gen-proto.sh OUT_DIR    # writes OUT_DIR instead (same layout)
#
# Layout: the .pb-c.c files sit flat in the target; the headers keep their proto paths under
# include/ (include/genesys/cs/v1/context_services.pb-c.h, ...), because the generated code
# includes them by those paths and SwiftPM puts include/ on the header search path. With no
# umbrella header, SwiftPM makes the Clang module of every header under include/.
#
# proto3 `optional`: Debian 12's protoc-c (protobuf-c 1.4.1) refuses proto3 files with
# `optional` fields ("code generator --c_out hasn't been updated to support optional fields in
# proto3"). protoc itself implements `optional T f = N;` as a one-field "synthetic" oneof named
# `_f`, with the same wire format, so the compiler is fed a copy of the .proto where each such
# line is spelled `oneof _f { T f = N; }`. The published .proto stays as it is for clients; the
# C code sees presence through `_f_case`, exactly as protoc would lower it.
#
# Deterministic: same protoc-c version, same input -> same bytes (no dates, no absolute paths).
set -euo pipefail
cd "$(dirname "$0")/../.."

out="${1:-Sources/ContextProto}"
protos=(genesys/cs/v1/context_services.proto grpc/health/v1/health.proto)
well_known=(google/protobuf/struct.proto)

command -v protoc-c >/dev/null || { echo "gen-proto: protoc-c missing (apt-get install protobuf-c-compiler)" >&2; exit 1; }
wkt_dir=""
for d in /usr/include /usr/local/include; do
  [[ -f "$d/google/protobuf/struct.proto" ]] && { wkt_dir="$d"; break; }
done
[[ -n "$wkt_dir" ]] || { echo "gen-proto: google/protobuf/struct.proto missing (apt-get install libprotobuf-dev)" >&2; exit 1; }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/in" "$work/out"
for p in "${protos[@]}"; do
  mkdir -p "$work/in/$(dirname "$p")"
  sed -E 's/^([[:space:]]*)optional[[:space:]]+([A-Za-z0-9_.]+)[[:space:]]+([A-Za-z0-9_]+)[[:space:]]*=[[:space:]]*([0-9]+)[[:space:]]*;/\1oneof _\3 { \2 \3 = \4; }/' \
    "proto/$p" > "$work/in/$p"
  if grep -Eq '^[[:space:]]*optional[[:space:]]' "$work/in/$p"; then
    echo "gen-proto: $p has an \`optional\` line this script cannot rewrite:" >&2
    grep -En '^[[:space:]]*optional[[:space:]]' "$work/in/$p" >&2
    exit 1
  fi
done
# Only the rewritten copies and the well-known types are on the import path.
(cd "$work/in" && protoc-c --c_out="$work/out" -I. -I"$wkt_dir" "${protos[@]}" "${well_known[@]}")

mkdir -p "$out/include"
rm -f "$out"/*.pb-c.c
rm -rf "$out/include/genesys" "$out/include/grpc" "$out/include/google"
for p in "${protos[@]}" "${well_known[@]}"; do
  base="${p%.proto}"
  cp "$work/out/$base.pb-c.c" "$out/$(basename "$base").pb-c.c"
  mkdir -p "$out/include/$(dirname "$p")"
  cp "$work/out/$base.pb-c.h" "$out/include/$base.pb-c.h"
done

