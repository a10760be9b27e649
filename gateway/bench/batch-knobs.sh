#!/usr/bin/env bash
# The batcher's knobs (issue 4): durable gRPC StartTask end to end (durable-start-task.sh's
# grpc-batching row: h2load -c8 -m32 → gateway + embedded core, synchronous=full) over a grid
# of --batch-max-items, --batch-max-delay-micros and --batch-max-in-flight, one Markdown row
# per point, best first at the end; and for each point the latency of an open-loop run at RATE
# calls/s (`gateway load --rate`, 8 connections × 32 streams, latency from each call's
# intended start). The defaults in ContextGateway.Configuration come from this sweep
# (results in RESULTS.md).
#
#   gateway/bench/batch-knobs.sh                       # the grid below, 5 s a point
#   ITEMS="64 256" DELAYS="500" INFLIGHT="1 4" DURATION=3 gateway/bench/batch-knobs.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
ITEMS=${ITEMS:-32 128 256 1024}
DELAYS=${DELAYS:-0 500 2000}
INFLIGHT=${INFLIGHT:-1 2 4 8}
export DURATION=${DURATION:-5}
RATE=${RATE:-10000}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
if [[ -z "${GATEWAY_BIN:-}" ]]; then
  (cd "$root" && swift build -c release --product gateway --scratch-path .build-bench >&2)
  export GATEWAY_BIN=$root/.build-bench/release/gateway
fi
results=$(mktemp)
trap 'rm -f "$results"' EXIT
# Open loop at RATE against a fresh durable gateway: "p50 p99" in ms.
open_loop() {
  local work port cport pid
  work=$(mktemp -d /tmp/cs-knobs.XXXXXX)
  port=$("$root/.venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  cport=$("$root/.venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  taskset -c "$SERVER_CPU" "$GATEWAY_BIN" serve --threads 1 --log-level warning --listen "127.0.0.1:$port" \
    --core-listen "127.0.0.1:$cport" --data "$work/cs.sqlite" --synchronous full "$@" >"$work/log" 2>&1 &
  pid=$!
  for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$cport/genesys/1/cs/services/1" && break; sleep 0.05; done
  taskset -c "$CLIENT_CPU" "$GATEWAY_BIN" load --target "127.0.0.1:$port" --connections 8 --streams 32 --rate "$RATE" \
    --duration "${DURATION}s" --warmup 1s --json --quiet 2>/dev/null |
    "$root/.venv/bin/python" -c 'import sys,json; d=json.load(sys.stdin); l=d["latency_us"]; print("%.2f %.2f" % (l["p50"]/1000, l["p99"]/1000))' || echo "? ?"
  kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true
  rm -rf "$work"
}

echo "| max items | max delay µs | in flight | requests/s | mean ms | max ms | p50 ms at $RATE/s | p99 ms at $RATE/s |"
echo "|--:|--:|--:|--:|--:|--:|--:|--:|"
for items in $ITEMS; do
  for delay in $DELAYS; do
    for inflight in $INFLIGHT; do
      line=$(ROWS=grpc-batching GATEWAY_ARGS="--batch-max-items $items --batch-max-delay-micros $delay --batch-max-in-flight $inflight" \
        bash "$here/durable-start-task.sh" 2>/dev/null | grep '| gRPC')
      IFS='|' read -r _ _ _ _ _ rps mean max _ <<<"$line"
      read -r p50 p99 < <(open_loop --batch-max-items "$items" --batch-max-delay-micros "$delay" --batch-max-in-flight "$inflight")
      row="| $items | $delay | $inflight | ${rps// /} | ${mean// /} | ${max// /} | $p50 | $p99 |"
      echo "$row"
      echo "$row" >>"$results"
    done
  done
done
echo
echo "Best five:"
sort -t'|' -k5 -g -r "$results" | head -5
