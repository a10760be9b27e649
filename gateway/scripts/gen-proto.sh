#!/usr/bin/env bash
# Regenerates the protobuf-c code of Sources/ContextProto from proto/ (DESIGN.md §2: generated
# once, committed, checked by gateway/scripts/check-generated.sh).
#
#   gateway/scripts/gen-proto.sh                      # writes Sources/ContextProto and the RPC table
#   gateway/scripts/gen-proto.sh OUT_DIR [SWIFT_FILE] # writes OUT_DIR instead (same layout), and the
#                                                     # Swift RPC table to SWIFT_FILE (default:
#                                                     # OUT_DIR/../RPCDescriptors+Generated.swift)
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
# Reflection: every .proto of proto/ (the reflection protocol's own included) is also compiled
# by protoc into one FileDescriptorSet (--include_imports: struct.proto comes along), from the
# published files as they are (proto3 `optional` included: clients see what the files say).
# Its bytes go into descriptor_set.c, an array the gateway's reflection service serves
# (Sources/Gateway/Reflection), behind include/cs_descriptor_set.h. Only the messages the
# gateway decodes are compiled by protoc-c; reflection's are written by hand (ProtobufWriter).
#
# The RPC table: gen-rpc-table.py reads proto/ and writes one descriptor per RPC (method path,
# request/response message names and field maps, `enum RPCMethod`, the service path prefixes)
# to Sources/Gateway/Codec/RPCDescriptors+Generated.swift, and rpc_table.c /
# include/cs_rpc_table.h here: the protobuf-c descriptors of each RPC's messages, whose
# addresses only C may take (STACK-NOTES.md). The codec, the load tool's encoder and RPC-path
# detection run off that table; adding an RPC means editing the .proto and, when it maps to a
# REST call, the contract table (Sources/Gateway/Codec/RPCContract.swift).
#
# Deterministic: same protoc-c version, same input -> same bytes (no dates, no absolute paths).
set -euo pipefail
cd "$(dirname "$0")/../.."

out="${1:-Sources/ContextProto}"
if [[ $# -ge 1 ]]; then
  swift_table="${2:-$(dirname "$out")/RPCDescriptors+Generated.swift}"
else
  swift_table="Sources/Gateway/Codec/RPCDescriptors+Generated.swift"
fi
command -v python3 >/dev/null || { echo "gen-proto: python3 missing" >&2; exit 1; }
protos=(genesys/cs/v1/context_services.proto grpc/health/v1/health.proto)
well_known=(google/protobuf/struct.proto)

command -v protoc >/dev/null || { echo "gen-proto: protoc missing (apt-get install protobuf-compiler)" >&2; exit 1; }
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
rm -f "$out"/*.pb-c.c "$out/rpc_table.c"
rm -rf "$out/include/genesys" "$out/include/grpc" "$out/include/google"
for p in "${protos[@]}" "${well_known[@]}"; do
  base="${p%.proto}"
  cp "$work/out/$base.pb-c.c" "$out/$(basename "$base").pb-c.c"
  mkdir -p "$out/include/$(dirname "$p")"
  cp "$work/out/$base.pb-c.h" "$out/include/$base.pb-c.h"
done


# The FileDescriptorSet of proto/, for server reflection.
described=()
while IFS= read -r f; do described+=("${f#proto/}"); done < <(find proto -name '*.proto' | LC_ALL=C sort)
protoc -Iproto -I"$wkt_dir" --include_imports --descriptor_set_out="$work/set.pb" "${described[@]}"
cat > "$out/include/cs_descriptor_set.h" <<'HEADER'
/* Generated by gateway/scripts/gen-proto.sh. Do not edit. */
#ifndef CS_DESCRIPTOR_SET_H
#define CS_DESCRIPTOR_SET_H
#include <stddef.h>

/* The google.protobuf.FileDescriptorSet of every .proto of proto/ and its imports (protoc
 * --include_imports), serialized: what the gateway's server reflection serves. Static storage;
 * the size is written to *size. */
const unsigned char *cs_descriptor_set(size_t *size);

#endif
HEADER
{
  echo "/* Generated by gateway/scripts/gen-proto.sh from: ${described[*]}. Do not edit. */"
  echo '#include "cs_descriptor_set.h"'
  echo ''
  echo 'static const unsigned char bytes[] = {'
  od -An -v -tx1 "$work/set.pb" | sed -E 's/ ([0-9a-f]{2})/0x\1,/g; s/^/   /'
  echo '};'
  echo ''
  echo 'const unsigned char *cs_descriptor_set(size_t *size) {'
  echo '    *size = sizeof bytes;'
  echo '    return bytes;'
  echo '}'
} > "$out/descriptor_set.c"

# One descriptor per RPC (see above).
python3 gateway/scripts/gen-rpc-table.py proto "$out" "$swift_table"
