#!/usr/bin/env bash
# The hardening attacks of issue 11 (attacks.py), one fresh release gateway each: its RSS idle,
# at peak and 5 s after, a polite grpcio client's ok/calls and p99 throughout, what the attacker
# got. One Markdown table on stdout; progress and gateway log tails on stderr. ~3 minutes.
#
#   gateway/bench/attacks.sh                         # every attack
#   gateway/bench/attacks.sh --only partial,no-fds   # some (keys: attacks.py --help)
#   GATEWAY_BIN=.build-bench/release/gateway gateway/bench/attacks.sh
#
# The gateway runs pinned to SERVER_CPU (0), this script's clients (attackers, the polite
# client, the RSS sampler, `gateway load`) to CLIENT_CPU (1). What it needs comes from
# `gateway/scripts/setup.sh --bench` (called first; BENCH_SETUP=0 skips it). JSON: BENCH_JSON
# (unset: $OUT_DIR/attacks.json, OUT_DIR unset: gateway/bench/.out/attacks-<time>/), one row per
# attack (attacks.py --json says what a row holds).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$here/lib.sh"
bench_init attacks
bench_setup
bench_gateway  # as overload.sh: GATEWAY_BIN, or the current source built for release
{ command -v prlimit && command -v taskset; } >/dev/null || die "needs taskset and prlimit (util-linux)"
export BENCH_COMMAND="gateway/bench/attacks.sh${*:+ $*}"
taskset -c "$CLIENT_CPU" "$PYTHON" "$here/attacks.py" --binary "$gateway" --server-cpu "$SERVER_CPU" --json "$json_out" "$@"
