#!/usr/bin/env bash
# Durable StartTask end to end on PostgreSQL (issue 10), next to SQLite, in one run:
#
#   sqlite     gateway serve, embedded core on a SQLite file (synchronous=full)
#   pg-1       gateway serve --upstream A, core A on PostgreSQL
#   pg-2       gateway serve --upstream A,B, cores A and B on the same database
#
# each with batching on and off, and, batching on, without idempotency keys
# (`--no-gateway-keys`: by default the gateway gives every write a key, README "Exactly once"), h2load gRPC StartTask on one service, with the CPU time each
# process used (gateway, cores, PostgreSQL's backends, h2load) as the profile of where the time
# goes (h2load, the client, has the other CPU to itself). PostgreSQL is a throw-away cluster with its durable defaults (fsync=on,
# synchronous_commit=on), read back and printed with the table. After each run the tasks stored
# are compared with what h2load counted as answered: stored must never be behind.
#
#   gateway/bench/postgres-start-task.sh                       # DURATION=10 CONNECTIONS=8 STREAMS=32
#   GATEWAY_BIN=.build-bench/release/gateway DURATION=5 ROWS="pg-1 pg-2" gateway/bench/postgres-start-task.sh
#
# Pinning as in durable-start-task.sh: every server process (gateway, cores, PostgreSQL) on
# SERVER_CPU (0), h2load on CLIENT_CPU (1); --threads 1 everywhere.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-8}
STREAMS=${STREAMS:-32}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
ROWS=${ROWS:-sqlite pg-1 pg-2}
row() { [[ " $ROWS " == *" $1 "* ]]; }

command -v h2load >/dev/null || { apt-get install -y -qq nghttp2-client >/dev/null || { apt-get update -qq; apt-get install -y -qq nghttp2-client >/dev/null; }; }
if [[ -z "${GATEWAY_BIN:-}" ]]; then
  (cd "$root" && swift build -c release --product gateway --scratch-path .build-bench >&2)
  GATEWAY_BIN=$root/.build-bench/release/gateway
fi
PYTHON=${PYTHON:-$root/.venv/bin/python}
[[ -x "$PYTHON" ]] || { echo "needs $root/.venv (bash gateway/scripts/setup.sh)" >&2; exit 1; }

work=$(mktemp -d /tmp/cs-pgbench.XXXXXX)
pids=()
PG_CLUSTER_DIR=""
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [[ -n "$PG_CLUSTER_DIR" ]] && bash "$root/gateway/scripts/pg-cluster.sh" stop "$PG_CLUSTER_DIR"
  rm -rf "$work"
}
trap cleanup EXIT

BENCH_STUBS=$work/stubs "$PYTHON" "$here/grpc_bench.py" stubs "$work/stubs" >/dev/null
BENCH_STUBS=$work/stubs "$PYTHON" "$here/grpc_bench.py" frame "$work/frame.bin" >&2

eval "$(bash "$root/gateway/scripts/pg-cluster.sh" start --durable)"
# Every backend of the cluster runs on the server CPU, like the gateway and the cores.
taskset -a -cp "$SERVER_CPU" "$(head -n1 "$PG_CLUSTER_DIR/data/postmaster.pid")" >/dev/null
settings=$(psql "$CS_TEST_POSTGRES" -tAc "SELECT string_agg(name || '=' || setting, ', ' ORDER BY name) FROM pg_settings
  WHERE name IN ('fsync','synchronous_commit','wal_sync_method','commit_delay','full_page_writes','shared_buffers','server_version')")

free_port() { "$PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
ticks() { local s; s=$(cat "/proc/$1/stat" 2>/dev/null) || { echo 0; return; }; read -r -a f <<<"${s##*) }"; echo $((f[11] + f[12])); }
pg_ticks() {  # every process of the cluster (postmaster, backends, WAL writer, checkpointer)
  local total=0 p
  for p in $(pgrep -u postgres -f "$PG_CLUSTER_DIR" ; pgrep -u postgres -P "$(head -n1 "$PG_CLUSTER_DIR/data/postmaster.pid")"); do
    total=$((total + $(ticks "$p")))
  done
  echo "$total"
}
wait_port() { for _ in $(seq 200); do curl -s -o /dev/null "http://127.0.0.1:$1/genesys/1/cs/store" && return; sleep 0.05; done; echo "nothing on $1" >&2; exit 1; }

start_core() {  # start_core URL → sets cport; appends to pids and cores
  cport=$(free_port)
  taskset -c "$SERVER_CPU" "$GATEWAY_BIN" core --threads 1 --log-level warning --listen "127.0.0.1:$cport" \
    --store "$1" >"$work/core-$cport.log" 2>&1 &
  pids+=($!); cores+=($!)
  wait_port "$cport"
}

start_gateway() {  # start_gateway OPTIONS... → sets gport, gpid, sport (a port with /store)
  gport=$(free_port)
  taskset -c "$SERVER_CPU" "$GATEWAY_BIN" serve --threads 1 --log-level warning --listen "127.0.0.1:$gport" "$@" \
    >"$work/gateway.log" 2>&1 &
  gpid=$!; pids+=($gpid)
  for _ in $(seq 200); do curl -s -o /dev/null "http://127.0.0.1:$gport/healthz" && break; sleep 0.05; done
}

stop_all() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; pids=(); cores=(); }

stored() { curl -s "http://127.0.0.1:$1/genesys/1/cs/services/1/tasks" | "$PYTHON" -c 'import sys,json; print(len(json.load(sys.stdin)))'; }

echo "PostgreSQL: $settings"
echo
echo "| date | store | cores | config | requests/s | mean ms | max ms | answered | stored | CPU s: gateway / cores / PostgreSQL |"
echo "|---|---|--:|---|--:|--:|--:|--:|--:|---|"
n=0
for setup in sqlite pg-1 pg-2; do
  row "$setup" || continue
  for config in batching no-keys no-batching; do
    n=$((n + 1)); cores=()
    extra=()
    [[ $config == no-batching ]] && extra=(--no-batching)
    [[ $config == no-keys ]] && extra=(--no-gateway-keys)
    if [[ $setup == sqlite ]]; then
      cport=$(free_port)
      start_gateway --core-listen "127.0.0.1:$cport" --data "$work/sqlite-$n/cs.sqlite" --synchronous full "${extra[@]}"
      query_port=$cport; ncores=1
    else
      db="bench_$n"
      psql "$CS_TEST_POSTGRES" -qc "CREATE DATABASE $db"
      url=${CS_TEST_POSTGRES/\/postgres\?/\/$db?}
      start_core "$url"; upstream="127.0.0.1:$cport"; query_port=$cport; ncores=1
      if [[ $setup == pg-2 ]]; then start_core "$url"; upstream+=",127.0.0.1:$cport"; ncores=2; fi
      start_gateway --upstream "$upstream" "${extra[@]}"
    fi
    curl -sf -X POST "http://127.0.0.1:$query_port/genesys/1/cs/services/start" -H 'content-type: application/json' -d '{}' >/dev/null
    g0=$(ticks "$gpid"); c0=0; for c in "${cores[@]}"; do c0=$((c0 + $(ticks "$c"))); done; p0=$(pg_ticks)
    taskset -c "$CLIENT_CPU" h2load -t1 -c"$CONNECTIONS" -m"$STREAMS" -D"$DURATION" -d "$work/frame.bin" \
      -H 'content-type: application/grpc' -H 'te: trailers' \
      "http://127.0.0.1:$gport/genesys.cs.v1.ContextServices/StartTask" >"$work/h2load.out" &
    wait $!
    out=$(cat "$work/h2load.out")
    g1=$(ticks "$gpid"); c1=0; for c in "${cores[@]}"; do c1=$((c1 + $(ticks "$c"))); done; p1=$(pg_ticks)
    hz=$(getconf CLK_TCK)
    rps=$(grep -oP 'finished in [0-9.]+s, \K[0-9.]+' <<<"$out")
    read -r mean max < <(awk '/time for request:/ {print $6, $5}' <<<"$out")
    done_=$(grep -oP 'requests: .* \K[0-9]+(?= succeeded)' <<<"$out")
    s=$(stored "$query_port")
    stop_all
    [[ "$s" -ge "$done_" ]] || echo "LOST WRITES: $setup $config stored $s < answered $done_" >&2
    cpu=$(awk -v g=$((g1 - g0)) -v c=$((c1 - c0)) -v p=$((p1 - p0)) -v hz="$hz" \
      'BEGIN { printf "%.1f / %.1f / %.1f", g/hz, c/hz, p/hz }')
    [[ $setup == sqlite ]] && cpu="${cpu%% /*} (core inside) / – / –"
    echo "$setup $config: $(grep -E 'requests:|status codes:' <<<"$out" | tr -s ' ' | tr '\n' ' ')" >&2
    echo "| $(date -u +%F) | ${setup%%-*} | $ncores | $config | $rps | ${mean%ms} | ${max%ms} | $done_ | $s | $cpu |"
  done
done
