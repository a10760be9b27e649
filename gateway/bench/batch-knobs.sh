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
#
# Settings: ITEMS, DELAYS, INFLIGHT (the grid), DURATION (5), RATE (10000), SERVER_CPU (0),
# CLIENT_CPU (1), GATEWAY_BIN (unset: build), BENCH_JSON (unset: $OUT_DIR/batch-knobs.json,
# OUT_DIR unset: gateway/bench/.out/batch-knobs-<time>/). Installs through
# `gateway/scripts/setup.sh --bench` (called once; durable-start-task.sh gets BENCH_SETUP=0).
# Each point's closed-loop figures come from durable-start-task.sh's JSON (its grpc-batching
# row). JSON: date, duration, rate and "rows", one per point: max_items, max_delay_micros,
# in_flight, rps, mean_ms, max_ms, open_loop_p50_ms, open_loop_p99_ms.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$here/lib.sh"
bench_init batch-knobs
ITEMS=${ITEMS:-32 128 256 1024}
DELAYS=${DELAYS:-0 500 2000}
INFLIGHT=${INFLIGHT:-1 2 4 8}
export DURATION=${DURATION:-5}
RATE=${RATE:-10000}
bench_setup
bench_gateway
export BENCH_SETUP=0 PYTHON
results=$bench_tmp/results
: >"$results"
# Open loop at RATE against a fresh durable gateway: "p50 p99" in ms.
open_loop() {
  local work port cport pid
  work=$(mktemp -d "$bench_tmp/knobs.XXXXXX")
  port=$(free_port)
  cport=$(free_port)
  taskset -c "$SERVER_CPU" "$gateway" serve --threads 1 --log-level warning --listen "127.0.0.1:$port" \
    --core-listen "127.0.0.1:$cport" --data "$work/cs.sqlite" --synchronous full "$@" >"$work/log" 2>&1 &
  pid=$!
  wait_http "http://127.0.0.1:$cport/genesys/1/cs/services/1" || true
  taskset -c "$CLIENT_CPU" "$gateway" load --target "127.0.0.1:$port" --connections 8 --streams 32 --rate "$RATE" \
    --duration "${DURATION}s" --warmup 1s --json --quiet 2>/dev/null |
    "$PYTHON" -c 'import sys,json; d=json.load(sys.stdin); l=d["latency_us"]; print("%.2f %.2f" % (l["p50"]/1000, l["p99"]/1000))' || echo "? ?"
  kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true
  rm -rf "$work"
}

echo "| max items | max delay µs | in flight | requests/s | mean ms | max ms | p50 ms at $RATE/s | p99 ms at $RATE/s |"
echo "|--:|--:|--:|--:|--:|--:|--:|--:|"
for items in $ITEMS; do
  for delay in $DELAYS; do
    for inflight in $INFLIGHT; do
      point=$bench_tmp/durable-$items-$delay-$inflight.json
      ROWS=grpc-batching GATEWAY_ARGS="--batch-max-items $items --batch-max-delay-micros $delay --batch-max-in-flight $inflight" \
        BENCH_JSON=$point bash "$here/durable-start-task.sh" >/dev/null 2>&1 || true
      read -r rps mean max < <(python3 - "$point" <<'PY'
import json, sys
try:
    r = json.load(open(sys.argv[1]))["rows"][0]
    print(*("?" if r.get(k) is None else str(r[k]) for k in ("rps", "mean_ms", "max_ms")))
except (OSError, ValueError, IndexError, KeyError):
    print()
PY
)
      read -r p50 p99 < <(open_loop --batch-max-items "$items" --batch-max-delay-micros "$delay" --batch-max-in-flight "$inflight")
      row="| $items | $delay | $inflight | ${rps:-} | ${mean:-} | ${max:-} | $p50 | $p99 |"
      echo "$row"
      echo "$row" >>"$results"
      json_add rows max_items:="$items" max_delay_micros:="$delay" in_flight:="$inflight" rps:="${rps:-}" mean_ms:="${mean:-}" \
        max_ms:="${max:-}" open_loop_p50_ms:="$p50" open_loop_p99_ms:="$p99"
    done
  done
done
echo
echo "Best five:"
sort -t'|' -k5 -g -r "$results" | head -5
json_write date="$(date -u +%F)" duration:="$DURATION" rate:="$RATE" server_cpu:="$SERVER_CPU" client_cpu:="$CLIENT_CPU"
