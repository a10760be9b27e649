#!/usr/bin/env bash
# Durable StartTask end to end (issue 4): load tool → gateway → core → SQLite with fsync
# (synchronous=full) → answer, with batching on and off, in one run; plus REST Start Task
# straight to the core (the core issue's baseline) in the same run. One Markdown row per run.
#
#   gateway/bench/durable-start-task.sh                 # DURATION=10 CONNECTIONS=8 STREAMS=32
#   GATEWAY_BIN=.build-bench/release/gateway DURATION=5 gateway/bench/durable-start-task.sh
#   ROWS="grpc-batching" GATEWAY_ARGS="--batch-max-items 64" gateway/bench/durable-start-task.sh
#
# ROWS picks rows (default all: grpc-batching grpc-no-batching rest-core rest-gateway
# rest-gateway-no-batching); GATEWAY_ARGS are added to every `gateway serve` (knob sweeps:
# batch-knobs.sh).
#
# The gateway and its embedded core run in one process pinned to SERVER_CPU (0) with
# --threads 1 (the core is reached over loopback HTTP/1.1 all the same); h2load / wrk run
# pinned to CLIENT_CPU (1). After each run the tasks the core lists are compared with what
# the load tool counted as answered: stored must never be behind.
#
# h2load and wrk come from `gateway/scripts/setup.sh --bench` (called first; BENCH_SETUP=0 skips
# it). JSON: BENCH_JSON (unset: $OUT_DIR/durable-start-task.json, OUT_DIR unset:
# gateway/bench/.out/durable-start-task-<time>/) holds the settings (date, duration,
# connections, streams, gateway_args) and "rows", one per row of the table: row (its ROWS name),
# path, config, load, rps, answered, stored, lost_writes, and mean_ms/max_ms (h2load) or
# p50_ms/p99_ms/non201 (wrk); "failures" (message: lost writes, non-201 answers).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$here/lib.sh"
bench_init durable-start-task
DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-8}
STREAMS=${STREAMS:-32}
ROWS=${ROWS:-grpc-batching grpc-no-batching rest-core rest-gateway rest-gateway-no-batching}
GATEWAY_ARGS=${GATEWAY_ARGS:-}
read -r -a gateway_args <<<"$GATEWAY_ARGS"  # words, as the unquoted expansion was
row() { [[ " $ROWS " == *" $1 "* ]]; }

bench_setup
bench_gateway
work=$bench_tmp
pid=""
make_frame "$work"

stored() { curl -s "http://127.0.0.1:$1/genesys/1/cs/services/1/tasks" | "$PYTHON" -c 'import sys,json; print(len(json.load(sys.stdin)))'; }

start() {  # start ARGS... → sets pid, gport, cport
  gport=$(free_port); cport=$(free_port)
  rm -rf "$work/data"
  taskset -c "$SERVER_CPU" "$gateway" serve --threads 1 --log-level warning --listen "127.0.0.1:$gport" \
    --core-listen "127.0.0.1:$cport" --data "$work/data/cs.sqlite" --synchronous full "${gateway_args[@]}" "$@" >"$work/server.log" 2>&1 &
  pid=$!; track "$pid"
  wait_http "http://127.0.0.1:$cport/genesys/1/cs/services/1" || true
  curl -sf -X POST "http://127.0.0.1:$cport/genesys/1/cs/services/start" -H 'content-type: application/json' -d '{}' >/dev/null
}

stop() { kill "$pid"; wait "$pid" 2>/dev/null || true; pid=""; started=(); }

echo "| date | path | config | load | requests/s | mean ms | max ms | answered | stored |"
echo "|---|---|---|---|--:|--:|--:|--:|--:|"
for config in batching no-batching; do
  row "grpc-$config" || continue
  if [[ $config == no-batching ]]; then start --no-batching; else start; fi
  h2load_grpc "$gport" -t1 -c"$CONNECTIONS" -m"$STREAMS" -D"$DURATION" >"$work/h2load.out"
  rps=$(h2load_rps "$work/h2load.out")
  read -r mean max < <(h2load_mean_max "$work/h2load.out")
  done_=$(h2load_succeeded "$work/h2load.out")
  s=$(stored "$cport"); stop
  lost=false
  [[ "$s" -ge "$done_" ]] || { lost=true; echo "LOST WRITES: stored $s < answered $done_" >&2; json_add failures message="LOST WRITES: grpc-$config stored $s < answered $done_"; }
  echo "| $(date -u +%F) | gRPC → gateway → core | $config | h2load -c$CONNECTIONS -m$STREAMS | $rps | ${mean%ms} | ${max%ms} | $done_ | $s |"
  json_add rows row="grpc-$config" path="gRPC → gateway → core" config="$config" load="h2load -c$CONNECTIONS -m$STREAMS" rps:="$rps" \
    mean_ms:="$(to_ms "$mean")" max_ms:="$(to_ms "$max")" answered:="$done_" stored:="$s" lost_writes:=$lost
done
# REST Start Task, the same wrk load three ways (issue 6): straight to the core (the embedded
# core of an idle gateway, single calls), and through the gateway's port with batching on
# and off. wrk's script counts every non-201 (start-task.lua); its BENCH line gives p99.
rest() {  # rest ROW LABEL CONFIG PORT
  local name=$1; shift
  out=$(taskset -c "$CLIENT_CPU" wrk -t1 -c$((CONNECTIONS * 8)) -d"${DURATION}s" --latency -s "$here/start-task.lua" \
    "http://127.0.0.1:$3/genesys/1/cs/services/1/tasks/start" 2>&1)
  rps=$(grep -oP 'Requests/sec:\s+\K[0-9.]+' <<<"$out")
  p50=$(grep -oP 'BENCH .*p50_us=\K[0-9.]+' <<<"$out" || true)
  ok=$(grep -oP 'BENCH .*ok201=\K[0-9]+' <<<"$out" || true)
  p99=$(grep -oP 'BENCH .*p99_us=\K[0-9.]+' <<<"$out" || true)
  bad=$(grep -oP 'BENCH .*non201=\K[0-9]+' <<<"$out" || echo "?")
  s=$(stored "$cport"); stop
  [[ "$bad" == "0" ]] || { echo "$1 ($2): $bad answers were not 201" >&2; json_add failures message="$1 ($2): $bad answers were not 201"; }
  lost=false
  [[ -z "$ok" || "$s" -ge "$ok" ]] || { lost=true; echo "LOST WRITES: stored $s < answered $ok" >&2; json_add failures message="LOST WRITES: $name stored $s < answered $ok"; }
  local p50_ms="" p99_ms=""
  [[ -z $p50 ]] || p50_ms=$(awk "BEGIN{printf \"%.2f\", $p50/1000}")
  [[ -z $p99 ]] || p99_ms=$(awk "BEGIN{printf \"%.2f\", $p99/1000}")
  echo "| $(date -u +%F) | $1 | $2 | wrk -c$((CONNECTIONS * 8)) | $rps | ${p50_ms:+p50 $p50_ms} | ${p99_ms:+p99 $p99_ms} | $ok | $s |"
  json_add rows row="$name" path="$1" config="$2" load="wrk -c$((CONNECTIONS * 8))" rps:="$rps" p50_ms:="$p50_ms" p99_ms:="$p99_ms" \
    answered:="$ok" stored:="$s" non201:="$([[ $bad =~ ^[0-9]+$ ]] && echo "$bad")" lost_writes:=$lost
}
if row rest-core; then start; rest rest-core "REST → core" "single calls" "$cport"; fi
if row rest-gateway; then start; rest rest-gateway "REST → gateway → core" "batching" "$gport"; fi
if row rest-gateway-no-batching; then start --no-batching; rest rest-gateway-no-batching "REST → gateway → core" "no-batching" "$gport"; fi
json_write date="$(date -u +%F)" duration:="$DURATION" connections:="$CONNECTIONS" streams:="$STREAMS" gateway_args="$GATEWAY_ARGS" \
  server_cpu:="$SERVER_CPU" client_cpu:="$CLIENT_CPU" rows_selected="$ROWS"
