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
#
# h2load and PostgreSQL come from `gateway/scripts/setup.sh --bench` (called first; BENCH_SETUP=0
# skips it). JSON: BENCH_JSON (unset: $OUT_DIR/postgres-start-task.json, OUT_DIR unset:
# gateway/bench/.out/postgres-start-task-<time>/) holds the settings (date, duration,
# connections, streams, postgres: the cluster's settings as printed) and "rows", one per row of
# the table: store (sqlite, pg), cores, config, rps, mean_ms, max_ms, answered, stored,
# lost_writes, cpu_s (gateway, cores, postgres: seconds; null where the core is inside) and
# cpu_text (the table's cell); "failures" (message: lost writes).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$here/lib.sh"
bench_init postgres-start-task
DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-8}
STREAMS=${STREAMS:-32}
ROWS=${ROWS:-sqlite pg-1 pg-2}
row() { [[ " $ROWS " == *" $1 "* ]]; }

bench_setup
bench_gateway
work=$bench_tmp
pids=()
PG_CLUSTER_DIR=""
stop_cluster() { [[ -z "$PG_CLUSTER_DIR" ]] || bash "$root/gateway/scripts/pg-cluster.sh" stop "$PG_CLUSTER_DIR"; }
on_exit 'stop_all_pids'
on_exit stop_cluster

make_frame "$work"

eval "$(bash "$root/gateway/scripts/pg-cluster.sh" start --durable)"
# Every backend of the cluster runs on the server CPU, like the gateway and the cores.
taskset -a -cp "$SERVER_CPU" "$(head -n1 "$PG_CLUSTER_DIR/data/postmaster.pid")" >/dev/null
settings=$(psql "$CS_TEST_POSTGRES" -tAc "SELECT string_agg(name || '=' || setting, ', ' ORDER BY name) FROM pg_settings
  WHERE name IN ('fsync','synchronous_commit','wal_sync_method','commit_delay','full_page_writes','shared_buffers','server_version')")

ticks() { pid_ticks "$1"; }
pg_ticks() {  # every process of the cluster (postmaster, backends, WAL writer, checkpointer)
  local total=0 p
  for p in $(pgrep -u postgres -f "$PG_CLUSTER_DIR" ; pgrep -u postgres -P "$(head -n1 "$PG_CLUSTER_DIR/data/postmaster.pid")"); do
    total=$((total + $(ticks "$p")))
  done
  echo "$total"
}
wait_port() { wait_http "http://127.0.0.1:$1/genesys/1/cs/store" 10 || die "nothing on $1"; }

start_core() {  # start_core URL → sets cport; appends to pids and cores
  cport=$(free_port)
  taskset -c "$SERVER_CPU" "$gateway" core --threads 1 --log-level warning --listen "127.0.0.1:$cport" \
    --store "$1" >"$work/core-$cport.log" 2>&1 &
  pids+=($!); cores+=($!)
  wait_port "$cport"
}

start_gateway() {  # start_gateway OPTIONS... → sets gport, gpid, sport (a port with /store)
  gport=$(free_port)
  taskset -c "$SERVER_CPU" "$gateway" serve --threads 1 --log-level warning --listen "127.0.0.1:$gport" "$@" \
    >"$work/gateway.log" 2>&1 &
  gpid=$!; pids+=("$gpid")
  wait_http "http://127.0.0.1:$gport/healthz" 10 || true
}

stop_all_pids() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; pids=(); cores=(); }

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
    h2load_grpc "$gport" -t1 -c"$CONNECTIONS" -m"$STREAMS" -D"$DURATION" >"$work/h2load.out"
    out=$(cat "$work/h2load.out")
    g1=$(ticks "$gpid"); c1=0; for c in "${cores[@]}"; do c1=$((c1 + $(ticks "$c"))); done; p1=$(pg_ticks)
    hz=$(getconf CLK_TCK)
    rps=$(h2load_rps "$work/h2load.out")
    read -r mean max < <(h2load_mean_max "$work/h2load.out")
    done_=$(h2load_succeeded "$work/h2load.out")
    s=$(stored "$query_port")
    stop_all_pids
    lost=false
    [[ "$s" -ge "$done_" ]] || { lost=true; echo "LOST WRITES: $setup $config stored $s < answered $done_" >&2; json_add failures message="LOST WRITES: $setup $config stored $s < answered $done_"; }
    cpu=$(awk -v g=$((g1 - g0)) -v c=$((c1 - c0)) -v p=$((p1 - p0)) -v hz="$hz" \
      'BEGIN { printf "%.1f / %.1f / %.1f", g/hz, c/hz, p/hz }')
    [[ $setup == sqlite ]] && cpu="${cpu%% /*} (core inside) / – / –"
    echo "$setup $config: $(grep -E 'requests:|status codes:' <<<"$out" | tr -s ' ' | tr '\n' ' ')" >&2
    echo "| $(date -u +%F) | ${setup%%-*} | $ncores | $config | $rps | ${mean%ms} | ${max%ms} | $done_ | $s | $cpu |"
    cpu_json=$(awk -v g=$((g1 - g0)) -v c=$((c1 - c0)) -v p=$((p1 - p0)) -v hz="$hz" -v sq="$([[ $setup == sqlite ]] && echo 1)" \
      'BEGIN { if (sq) printf "{\"gateway\": %.1f, \"cores\": null, \"postgres\": null}", g/hz
               else printf "{\"gateway\": %.1f, \"cores\": %.1f, \"postgres\": %.1f}", g/hz, c/hz, p/hz }')
    json_add rows setup="$setup" store="${setup%%-*}" cores:="$ncores" config="$config" rps:="$rps" mean_ms:="$(to_ms "$mean")" \
      max_ms:="$(to_ms "$max")" answered:="$done_" stored:="$s" lost_writes:=$lost cpu_s:="$cpu_json" cpu_text="$cpu"
  done
done
json_write date="$(date -u +%F)" duration:="$DURATION" connections:="$CONNECTIONS" streams:="$STREAMS" postgres="$settings" \
  server_cpu:="$SERVER_CPU" client_cpu:="$CLIENT_CPU" rows_selected="$ROWS"
