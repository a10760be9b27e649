#!/usr/bin/env bash
# Goodput under overload (issue 11, item 5): durable StartTask through the gateway and its
# embedded core (one process, --threads 1, pinned to SERVER_CPU), in one run:
#   1. at capacity: h2load -c8 -m32 (the durable benchmark's load), stored tasks/s;
#   2. at 10×: h2load -c64 -m256 (64× the streams), stored tasks/s, while a well-behaved
#      client (grpcio, one StartTask at a time, 2 s deadline, its own connection) reports its
#      success rate and latency; the gateway's RSS is sampled throughout.
# Goodput = stored/s at 10× ÷ stored/s at capacity (target ≥ 0.8). One Markdown row.
#
#   gateway/bench/overload.sh                      # DURATION=10
#   GATEWAY_ARGS="--admission-target-millis 100" gateway/bench/overload.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
DURATION=${DURATION:-10}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
GATEWAY_ARGS=${GATEWAY_ARGS:-}
command -v h2load >/dev/null || apt-get install -y -qq nghttp2-client >/dev/null
if [[ -z "${GATEWAY_BIN:-}" ]]; then
  (cd "$root" && swift build -c release --product gateway --scratch-path .build-bench >&2)
  GATEWAY_BIN=$root/.build-bench/release/gateway
fi
PYTHON=${PYTHON:-$root/.venv/bin/python}
[[ -x "$PYTHON" ]] || { echo "needs $root/.venv (bash gateway/scripts/setup.sh)" >&2; exit 1; }

work=$(mktemp -d /tmp/cs-overload.XXXXXX)
pid=""; sampler=""
cleanup() { [[ -n "$sampler" ]] && kill "$sampler" 2>/dev/null; [[ -n "$pid" ]] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
export BENCH_STUBS=$work/stubs
"$PYTHON" "$here/grpc_bench.py" stubs "$work/stubs" >/dev/null
"$PYTHON" "$here/grpc_bench.py" frame "$work/frame.bin" >/dev/null

free_port() { "$PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
stored() { curl -s "http://127.0.0.1:$cport/genesys/1/cs/services/1/tasks" | "$PYTHON" -c 'import sys,json; print(len(json.load(sys.stdin)))'; }
rss_mib() { awk '/VmRSS/ {printf "%d", $2/1024}' "/proc/$pid/status"; }

gport=$(free_port); cport=$(free_port)
taskset -c "$SERVER_CPU" "$GATEWAY_BIN" serve --threads 1 --log-level warning --listen "127.0.0.1:$gport" \
  --core-listen "127.0.0.1:$cport" --data "$work/data/cs.sqlite" --synchronous full $GATEWAY_ARGS >"$work/server.log" 2>&1 &
pid=$!
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$cport/genesys/1/cs/services/1" && break; sleep 0.05; done
curl -sf -X POST "http://127.0.0.1:$cport/genesys/1/cs/services/start" -H 'content-type: application/json' -d '{}' >/dev/null
idle=$(rss_mib)
( peak=0; while sleep 0.1; do r=$(rss_mib) || break; ((r > peak)) && peak=$r && echo "$peak" >"$work/peak"; done ) &
sampler=$!

h2() {  # h2 CONNECTIONS STREAMS → "answered ok" on stdout
  out=$(taskset -c "$CLIENT_CPU" h2load -t1 -c"$1" -m"$2" -D"$DURATION" -d "$work/frame.bin" \
    -H 'content-type: application/grpc' -H 'te: trailers' "http://127.0.0.1:$gport/genesys.cs.v1.ContextServices/StartTask" 2>&1)
  grep -oP 'requests: .* \K[0-9]+(?= succeeded)' <<<"$out"
}

s0=$(stored); h2 8 32 >/dev/null; s1=$(stored)
capacity=$(( (s1 - s0) / DURATION ))
taskset -c "$CLIENT_CPU" "$PYTHON" "$here/grpc_bench.py" polite "127.0.0.1:$gport" "$DURATION" 2 >"$work/polite.json" &
polite=$!
s1=$(stored); h2 64 256 >/dev/null; s2=$(stored)
wait "$polite"
overload=$(( (s2 - s1) / DURATION ))
sleep 2
after=$(rss_mib)
read -r calls ok p99 < <("$PYTHON" -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["calls"], d["ok"], d["p99_ms"])' "$work/polite.json")
ratio=$(awk "BEGIN{printf \"%.2f\", $overload/$capacity}")
echo "| date | stored/s at capacity (-c8 -m32) | stored/s at 10× (-c64 -m256) | goodput | polite client ok | polite p99 ms | RSS idle / peak / after MiB |"
echo "|---|--:|--:|--:|--:|--:|--:|"
echo "| $(date -u +%F) | $capacity | $overload | **$ratio** | $ok / $calls | $p99 | $idle / $(cat "$work/peak" 2>/dev/null || echo ?) / $after |"
grep -v '^$' "$work/server.log" | tail -5 >&2 || true
