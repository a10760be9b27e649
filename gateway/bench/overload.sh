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
#
# Settings: DURATION (10), GATEWAY_ARGS, SERVER_CPU (0), CLIENT_CPU (1), GATEWAY_BIN (unset: build),
# BENCH_JSON (unset: $OUT_DIR/overload.json, OUT_DIR unset: gateway/bench/.out/overload-<time>/).
# h2load comes from `gateway/scripts/setup.sh --bench` (called first; BENCH_SETUP=0 skips it).
# JSON: date, duration, gateway_args and "rows" (one: capacity_per_s, overload_per_s, goodput,
# polite_ok, polite_calls, polite_p99_ms, rss_idle_mib, rss_peak_mib, rss_after_mib).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$here/lib.sh"
bench_init overload
DURATION=${DURATION:-10}
GATEWAY_ARGS=${GATEWAY_ARGS:-}
read -r -a gateway_args <<<"$GATEWAY_ARGS"  # words, as the unquoted expansion was
bench_setup
bench_gateway

work=$bench_tmp
pid=""; sampler=""
make_frame "$work"

stored() { curl -s "http://127.0.0.1:$cport/genesys/1/cs/services/1/tasks" | "$PYTHON" -c 'import sys,json; print(len(json.load(sys.stdin)))'; }
rss_mib() { awk '/VmRSS/ {printf "%d", $2/1024}' "/proc/$pid/status"; }

gport=$(free_port); cport=$(free_port)
taskset -c "$SERVER_CPU" "$gateway" serve --threads 1 --log-level warning --listen "127.0.0.1:$gport" \
  --core-listen "127.0.0.1:$cport" --data "$work/data/cs.sqlite" --synchronous full "${gateway_args[@]}" >"$work/server.log" 2>&1 &
pid=$!
wait_http "http://127.0.0.1:$cport/genesys/1/cs/services/1" || true
curl -sf -X POST "http://127.0.0.1:$cport/genesys/1/cs/services/start" -H 'content-type: application/json' -d '{}' >/dev/null
idle=$(rss_mib)
( peak=0; while sleep 0.1; do r=$(rss_mib) || break; ((r > peak)) && peak=$r && echo "$peak" >"$work/peak"; done ) &
sampler=$!
track "$sampler" "$pid"  # stopped at exit: the sampler first

h2() {  # h2 CONNECTIONS STREAMS → "answered ok" on stdout
  h2load_grpc "$gport" -t1 -c"$1" -m"$2" -D"$DURATION" >"$work/h2load.out" 2>&1
  h2load_succeeded "$work/h2load.out"
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
peak=$(cat "$work/peak" 2>/dev/null || echo ?)
echo "| $(date -u +%F) | $capacity | $overload | **$ratio** | $ok / $calls | $p99 | $idle / $peak / $after |"
json_add rows capacity_per_s:="$capacity" overload_per_s:="$overload" goodput:="$ratio" polite_ok:="$ok" polite_calls:="$calls" \
  polite_p99_ms:="$p99" rss_idle_mib:="$idle" rss_peak_mib:="$([[ $peak == '?' ]] || echo "$peak")" rss_after_mib:="$after"
json_write date="$(date -u +%F)" duration:="$DURATION" gateway_args="$GATEWAY_ARGS" server_cpu:="$SERVER_CPU" client_cpu:="$CLIENT_CPU"
grep -v '^$' "$work/server.log" | tail -5 >&2 || true
