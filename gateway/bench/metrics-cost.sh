#!/usr/bin/env bash
# The cost of metrics on the gateway's hot path (README, "Metrics"): gRPC StartTask through
# `gateway serve --upstream` to the stub core (the front end alone, its most sensitive path),
# metrics off and on (--metrics-listen), ROUNDS rounds alternating off/on so both see the
# same machine. Per run: h2load -n CALLS (-c8 -m32, the peer-table load of DESIGN §5) on
# CLIENT_CPU; gateway and stub on SERVER_CPU; throughput from h2load and the gateway's own CPU
# time per call (utime + stime from /proc, before and after the load). On a shared machine
# throughput moves with what others run; CPU time per call moves much less. The medians of
# each round's on/off ratios (its two runs back to back, in alternating order), and their
# median, as Markdown; the metrics run's scrape must count every call.
#
#   gateway/bench/metrics-cost.sh                          # ROUNDS=5 CALLS=500000
#   GATEWAY_BIN=.build-bench/release/gateway ROUNDS=3 gateway/bench/metrics-cost.sh
#
# (callgrind would count instructions exactly, but valgrind 3.19 crashes on this gateway.)
#
# Settings: ROUNDS (5), CALLS (500000), SERVER_CPU (0), CLIENT_CPU (1), GATEWAY_BIN (unset: build),
# BENCH_JSON (unset: $OUT_DIR/metrics-cost.json, OUT_DIR unset: gateway/bench/.out/metrics-cost-<time>/).
# h2load and cc come from `gateway/scripts/setup.sh --bench` (called first; BENCH_SETUP=0 skips it).
# JSON: date, rounds, calls, "rows" (one per round: round, off_rps, on_rps, rps_ratio,
# off_cpu_us_per_call, on_cpu_us_per_call, cpu_ratio) and the medians (median_rps_ratio,
# median_cpu_ratio).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$here/lib.sh"
bench_init metrics-cost
ROUNDS=${ROUNDS:-5}
CALLS=${CALLS:-500000}
bench_setup
bench_gateway
work=$bench_tmp
stub="" gw=""
stop() { for p in $gw $stub; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done; gw="" stub=""; return 0; }
on_exit stop
cc -O2 -o "$work/stub-core" "$here/stub-core.c"
make_frame "$work"

ticks() { pid_ticks "$1"; }

run() {  # run MODE → "req/s cpu-µs-per-call"
  local mode=$1 log=$work/$1.$BASHPID  # a fresh name: a reused one could be read before it is truncated
  trap stop EXIT  # this runs in a subshell: its own cleanup
  taskset -c "$SERVER_CPU" "$work/stub-core" 127.0.0.1 0 >"$log.stub" 2>&1 &
  stub=$!
  wait_log "$log.stub" "stub core listening" "$stub" 15
  local metrics=()
  [[ $mode != on ]] || metrics=(--metrics-listen 127.0.0.1:0)
  taskset -c "$SERVER_CPU" "$gateway" serve --listen 127.0.0.1:0 --threads 1 \
    --upstream "127.0.0.1:$(port_of "$log.stub" "stub core listening")" \
    "${metrics[@]}" >"$log.gw" 2>&1 &
  gw=$!
  wait_log "$log.gw" "gateway listening" "$gw" 15
  local port; port=$(port_of "$log.gw" "gateway listening")
  h2load_grpc "$port" -t1 -c8 -m32 -n 20000 >/dev/null  # warm-up
  local before; before=$(ticks "$gw")
  h2load_grpc "$port" -t1 -c8 -m32 -n "$CALLS" >"$log.h2load"
  local after; after=$(ticks "$gw")
  grep -q "$CALLS succeeded" "$log.h2load" || { cat "$log.h2load" >&2; exit 1; }
  if [[ $mode == on ]]; then
    # h2load counts HTTP 200s: a call that ended with another gRPC status counts there too.
    local scraped
    scraped=$(curl -sf "http://127.0.0.1:$(port_of "$log.gw" "metrics listening")/metrics" \
      | awk '/^grpc_server_handled_total\{.*grpc_method="StartTask"/ { n += $NF } END { print n + 0 }')
    [[ $scraped == $((CALLS + 20000)) ]] \
      || { echo "the scrape counts $scraped StartTask calls, h2load made $((CALLS + 20000))" >&2; exit 1; }
  fi
  stop
  local rps; rps=$(h2load_rps "$log.h2load")
  awk -v r="$rps" -v t=$((after - before)) -v hz="$hz" -v n="$CALLS" 'BEGIN { printf "%.0f %.2f\n", r, t / hz * 1e6 / n }'
}

median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }

ratios=() cpu_ratios=()
echo "| round | metrics off req/s | on req/s | on/off | off CPU µs/call | on CPU µs/call | on/off |"
echo "|--:|--:|--:|--:|--:|--:|--:|"
for round in $(seq "$ROUNDS"); do
  # Alternate which goes first, so neither always follows the other.
  if ((round % 2)); then read -r r_off c_off < <(run off); read -r r_on c_on < <(run on)
  else read -r r_on c_on < <(run on); read -r r_off c_off < <(run off); fi
  ratio=$(awk -v a="$r_off" -v b="$r_on" 'BEGIN { printf "%.3f", b / a }')
  cpu_ratio=$(awk -v a="$c_off" -v b="$c_on" 'BEGIN { printf "%.3f", b / a }')
  ratios+=("$ratio"); cpu_ratios+=("$cpu_ratio")
  echo "| $round | $r_off | $r_on | $ratio | $c_off | $c_on | $cpu_ratio |"
  json_add rows round:="$round" off_rps:="$r_off" on_rps:="$r_on" rps_ratio:="$ratio" off_cpu_us_per_call:="$c_off" \
    on_cpu_us_per_call:="$c_on" cpu_ratio:="$cpu_ratio"
done
median_rps=$(printf '%s\n' "${ratios[@]}" | median) median_cpu=$(printf '%s\n' "${cpu_ratios[@]}" | median)
echo
echo "median of the rounds' on/off ratios (each round's two runs back to back): throughput ${median_rps}×, CPU per call ${median_cpu}×"
json_write date="$(date -u +%F)" rounds:="$ROUNDS" calls:="$CALLS" median_rps_ratio:="$median_rps" median_cpu_ratio:="$median_cpu" \
  server_cpu:="$SERVER_CPU" client_cpu:="$CLIENT_CPU"
