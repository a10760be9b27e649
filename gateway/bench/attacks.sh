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
# client, the RSS sampler, `gateway load`) to CLIENT_CPU (1).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
if [[ -z "${GATEWAY_BIN:-}" ]]; then  # as overload.sh: the current source, built for release
  (cd "$root" && swift build -c release --product gateway --scratch-path .build-bench >&2)
  GATEWAY_BIN=$root/.build-bench/release/gateway
fi
PYTHON=${PYTHON:-$root/.venv/bin/python}
[[ -x "$PYTHON" ]] || { echo "needs $root/.venv (bash gateway/scripts/setup.sh)" >&2; exit 1; }
command -v prlimit >/dev/null && command -v taskset >/dev/null || { echo "needs taskset and prlimit (util-linux)" >&2; exit 1; }
export BENCH_COMMAND="gateway/bench/attacks.sh${*:+ $*}"
exec taskset -c "$CLIENT_CPU" "$PYTHON" "$here/attacks.py" --binary "$GATEWAY_BIN" --server-cpu "$SERVER_CPU" "$@"
