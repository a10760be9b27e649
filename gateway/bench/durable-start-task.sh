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
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-8}
STREAMS=${STREAMS:-32}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
ROWS=${ROWS:-grpc-batching grpc-no-batching rest-core rest-gateway rest-gateway-no-batching}
GATEWAY_ARGS=${GATEWAY_ARGS:-}
row() { [[ " $ROWS " == *" $1 "* ]]; }

need=()
command -v h2load >/dev/null || need+=(nghttp2-client)
command -v wrk >/dev/null || need+=(wrk)
if ((${#need[@]})); then apt-get install -y -qq "${need[@]}" >/dev/null || { apt-get update -qq; apt-get install -y -qq "${need[@]}" >/dev/null; }; fi
if [[ -z "${GATEWAY_BIN:-}" ]]; then
  (cd "$root" && swift build -c release --product gateway --scratch-path .build-bench >&2)
  GATEWAY_BIN=$root/.build-bench/release/gateway
fi
PYTHON=${PYTHON:-$root/.venv/bin/python}
[[ -x "$PYTHON" ]] || { echo "needs $root/.venv (bash gateway/scripts/setup.sh)" >&2; exit 1; }

work=$(mktemp -d /tmp/cs-durable.XXXXXX)
pid=""
cleanup() { [[ -n "$pid" ]] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

BENCH_STUBS=$work/stubs "$PYTHON" "$here/grpc_bench.py" stubs "$work/stubs" >/dev/null
BENCH_STUBS=$work/stubs "$PYTHON" "$here/grpc_bench.py" frame "$work/frame.bin" >&2

free_port() { "$PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

stored() { curl -s "http://127.0.0.1:$1/genesys/1/cs/services/1/tasks" | "$PYTHON" -c 'import sys,json; print(len(json.load(sys.stdin)))'; }

start() {  # start ARGS... → sets pid, gport, cport
  gport=$(free_port); cport=$(free_port)
  rm -rf "$work/data"
  taskset -c "$SERVER_CPU" "$GATEWAY_BIN" serve --threads 1 --log-level warning --listen "127.0.0.1:$gport" \
    --core-listen "127.0.0.1:$cport" --data "$work/data/cs.sqlite" --synchronous full $GATEWAY_ARGS "$@" >"$work/server.log" 2>&1 &
  pid=$!
  for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$cport/genesys/1/cs/services/1" && break; sleep 0.05; done
  curl -sf -X POST "http://127.0.0.1:$cport/genesys/1/cs/services/start" -H 'content-type: application/json' -d '{}' >/dev/null
}

stop() { kill "$pid"; wait "$pid" 2>/dev/null || true; pid=""; }

echo "| date | path | config | load | requests/s | mean ms | max ms | answered | stored |"
echo "|---|---|---|---|--:|--:|--:|--:|--:|"
for config in batching no-batching; do
  row "grpc-$config" || continue
  start $([[ $config == no-batching ]] && echo --no-batching)
  out=$(taskset -c "$CLIENT_CPU" h2load -t1 -c"$CONNECTIONS" -m"$STREAMS" -D"$DURATION" -d "$work/frame.bin" \
    -H 'content-type: application/grpc' -H 'te: trailers' "http://127.0.0.1:$gport/genesys.cs.v1.ContextServices/StartTask")
  rps=$(grep -oP 'finished in [0-9.]+s, \K[0-9.]+' <<<"$out")
  read -r mean max < <(awk '/time for request:/ {print $6, $5}' <<<"$out")
  done_=$(grep -oP 'requests: .* \K[0-9]+(?= succeeded)' <<<"$out")
  s=$(stored "$cport"); stop
  [[ "$s" -ge "$done_" ]] || echo "LOST WRITES: stored $s < answered $done_" >&2
  echo "| $(date -u +%F) | gRPC → gateway → core | $config | h2load -c$CONNECTIONS -m$STREAMS | $rps | ${mean%ms} | ${max%ms} | $done_ | $s |"
done
# REST Start Task, the same wrk load three ways (issue 6): straight to the core (the embedded
# core of an idle gateway, single calls), and through the gateway's port with batching on
# and off. wrk's script counts every non-201 (start-task.lua); its BENCH line gives p99.
rest() {  # rest LABEL CONFIG PORT
  out=$(taskset -c "$CLIENT_CPU" wrk -t1 -c$((CONNECTIONS * 8)) -d"${DURATION}s" --latency -s "$here/start-task.lua" \
    "http://127.0.0.1:$3/genesys/1/cs/services/1/tasks/start" 2>&1)
  rps=$(grep -oP 'Requests/sec:\s+\K[0-9.]+' <<<"$out")
  p50=$(grep -oP 'BENCH .*p50_us=\K[0-9.]+' <<<"$out" || true)
  ok=$(grep -oP 'BENCH .*ok201=\K[0-9]+' <<<"$out" || true)
  p99=$(grep -oP 'BENCH .*p99_us=\K[0-9.]+' <<<"$out" || true)
  bad=$(grep -oP 'BENCH .*non201=\K[0-9]+' <<<"$out" || echo "?")
  s=$(stored "$cport"); stop
  [[ "$bad" == "0" ]] || echo "$1 ($2): $bad answers were not 201" >&2
  [[ -z "$ok" || "$s" -ge "$ok" ]] || echo "LOST WRITES: stored $s < answered $ok" >&2
  echo "| $(date -u +%F) | $1 | $2 | wrk -c$((CONNECTIONS * 8)) | $rps | ${p50:+p50 $(awk "BEGIN{printf \"%.2f\", $p50/1000}")} | ${p99:+p99 $(awk "BEGIN{printf \"%.2f\", $p99/1000}")} | $ok | $s |"
}
if row rest-core; then start; rest "REST → core" "single calls" "$cport"; fi
if row rest-gateway; then start; rest "REST → gateway → core" "batching" "$gport"; fi
if row rest-gateway-no-batching; then start --no-batching; rest "REST → gateway → core" "no-batching" "$gport"; fi
