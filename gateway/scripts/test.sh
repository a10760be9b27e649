#!/usr/bin/env bash
# Sets everything up and runs the whole test suite (what CI runs through .ci/run).
set -euo pipefail
cd "$(dirname "$0")/../.."
bash gateway/scripts/setup.sh
# A throw-away PostgreSQL cluster on a free loopback port, as the unprivileged postgres user;
# stopped and removed when this script exits, also on failure. The store contract tests, the
# REST API tests and the scale-out end-to-end tests run against it (CS_TEST_POSTGRES).
eval "$(bash gateway/scripts/pg-cluster.sh start)"
trap 'bash gateway/scripts/pg-cluster.sh stop "$PG_CLUSTER_DIR"' EXIT
bash gateway/scripts/check-generated.sh  # the committed protobuf-c code of Sources/ContextProto matches proto/
# The durability tests start the real executable and kill -9 it: build it first.
swift build --product gateway
swift build --build-tests
swift test --skip-build
# End-to-end: the real gateway binary (.build/debug/gateway, built above) and the real grpcio client.
.venv/bin/python -m pytest Tests/python -q
# Allocation counts of the hot path's pieces against the checked-in thresholds (deterministic,
# unlike time): one more malloc per call than recorded fails the suite (gateway/bench/micro).
bash gateway/bench/micro.sh --check
# Fuzzing (gateway/fuzz): every committed corpus and regression input replayed, then each
# libFuzzer target run a few seconds; a crash or a broken invariant fails the suite.
bash gateway/fuzz/run.sh --ci
