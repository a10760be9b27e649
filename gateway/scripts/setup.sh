#!/usr/bin/env bash
# Installs what building and testing need on a fresh Debian machine (run as root).
# Idempotent: packages already present are not fetched again.
set -euo pipefail

packages=(
  libsqlite3-dev   # GRDB links the system SQLite
  curl             # tests and scripts talk to the servers with it
  sqlite3          # inspecting data files by hand
  libnghttp2-dev       # CNghttp2: the HTTP/2 session of the gRPC front end (pkg-config libnghttp2)
  libprotobuf-c-dev    # CProtobufC: the runtime the generated ContextProto C code links (pkg-config libprotobuf-c)
  protobuf-c-compiler  # protoc-c, for gateway/scripts/gen-proto.sh and check-generated.sh
  protobuf-compiler    # protoc: Tests/GatewayTests/vectors/make_vectors.py makes its Python classes with it
  libprotobuf-dev      # google/protobuf/struct.proto (the well-known types protoc-c compiles)
)
if [[ "${1:-}" == "--bench" ]]; then
  packages+=(wrk)  # the HTTP/1.1 load generator of gateway/bench
fi

missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

command -v swift >/dev/null || { echo "setup: swift is not on PATH (expected /opt/swift)" >&2; exit 1; }
