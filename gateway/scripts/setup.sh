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
  postgresql           # the PostgreSQL server (15) the store tests run against: gateway/scripts/pg-cluster.sh
  postgresql-client    # psql: the end-to-end tests make a database per test with it
)
# --bench: also what gateway/bench's scripts run (they call this instead of installing anything).
bench=no
[[ "${1:-}" == "--bench" ]] && bench=yes
if [[ $bench == yes ]]; then
  packages+=(
    wrk                    # the HTTP/1.1 load generator (core-start-task.sh, durable-start-task.sh; LuaJIT inside)
    nghttp2-client         # h2load, the HTTP/2 load generator
    nghttp2-server         # nghttpd, the raw HTTP/2 ceiling of grpc-start-task.sh
    libgrpc++-dev          # the C++ gRPC peer (gateway/bench/cpp-peer)
    protobuf-compiler-grpc # grpc_cpp_plugin, for the same
    g++ make pkg-config    # building the C++ peer and stub-core.c
    util-linux             # taskset (pinning) and prlimit (attacks.sh)
    linux-perf             # perf stat / perf record: grpc-start-task.sh's profiles
  )
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

# The Python end-to-end suite (Tests/python) drives the real binary with the real grpcio client.
# The venv lives in the repo root (.venv, git-ignored); pip runs only when something is missing.
root="$(cd "$(dirname "$0")/../.." && pwd)"
if [[ ! -x "$root/.venv/bin/python" ]]; then
  if ! python3 -c 'import ensurepip' 2>/dev/null; then  # Debian's own python3 needs python3-venv for it
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends python3-venv >/dev/null
  fi
  python3 -m venv "$root/.venv"
fi
if ! "$root/.venv/bin/python" -c 'import grpc, grpc_tools.protoc, grpc_health.v1.health_pb2, grpc_reflection.v1alpha.reflection_pb2, google.protobuf, pytest, cryptography, h2, schemathesis' 2>/dev/null; then
  echo "setup: installing the Python test dependencies into .venv"
  "$root/.venv/bin/pip" install -q --disable-pip-version-check \
    'grpcio>=1.66,<2' 'grpcio-tools>=1.66,<2' 'grpcio-health-checking>=1.66,<2' \
    'protobuf>=5.28,<8' 'pytest>=8,<10' 'cryptography>=42,<60' 'h2>=4.1,<5' \
    'grpcio-reflection>=1.66,<2' 'schemathesis>=4.1,<5'  # the reflection client; the OpenAPI checks (test_openapi.py)
fi

if [[ $bench == yes ]] && ! "$root/.venv/bin/python" -c 'import matplotlib' 2>/dev/null; then
  echo "setup: installing matplotlib into .venv (suite_report.py's plot)"
  "$root/.venv/bin/pip" install -q --disable-pip-version-check 'matplotlib>=3.7,<4'
fi

command -v swift >/dev/null || { echo "setup: swift is not on PATH (expected /opt/swift)" >&2; exit 1; }
