#!/usr/bin/env bash
# Start Task throughput and latency of the task core (`gateway core`), one Markdown table row
# per run on stdout; progress and diagnostics on stderr.
#
#   gateway/bench/core-start-task.sh                      # defaults: 10 s, 1 8 64 connections
#   DURATION=30 CONNECTIONS="1 16" CONFIGS=full gateway/bench/core-start-task.sh
#   GATEWAY_BIN=/path/to/gateway gateway/bench/core-start-task.sh   # skip the build
#
# Each run gets a fresh server on a fresh temporary SQLite file (or --memory), pinned with
# taskset to SERVER_CPU (0) with --threads 1, and one service created with curl; wrk -t1
# pinned to CLIENT_CPU (1) then POSTs Start Task to that service for DURATION seconds with
# gateway/bench/start-task.lua, which counts every non-201 answer. After the run the stored
# tasks are counted with GET …/services/{id}/tasks and compared with wrk's 201s.
#
# Columns besides the obvious: p50/p99/p99.9 are wrk's percentiles, which wrk 4.x corrects for
# coordinated omission (see start-task.lua); "max" is the slowest response really seen. "201s"
# is what wrk saw acknowledged, "stored" what the core lists afterwards (it may be ahead by the
# requests in flight when wrk stopped, at most one per connection; never behind). "server CPU"
# is the core's CPU time and "other CPU" every other busy tick of the machine that was not
# wrk's (other processes, kernel threads, steal), both in % of one CPU: a high "other" means
# the run was disturbed.
#
# Environment: DURATION (10), CONNECTIONS ("1 8 64"), CONFIGS ("full normal memory"; a config
# is a --synchronous mode or "memory"), SERVER_CPU (0), CLIENT_CPU (1), GATEWAY_BIN (unset:
# build .build-bench/release/gateway), WRK_TIMEOUT (5s), BENCH_JSON (unset: $OUT_DIR/core-start-task.json,
# OUT_DIR unset: gateway/bench/.out/core-start-task-<time>/). wrk and curl come from
# `gateway/scripts/setup.sh --bench` (called first; BENCH_SETUP=0 skips it).
#
# JSON ($BENCH_JSON): the settings (commit, date, duration, server_cpu, client_cpu) and "rows",
# one per run: config, connections, rps, p50_us, p99_us, p999_us, max_us, non201,
# socket_errors, ok201, stored, server_cpu, other_cpu, notes; "failures" (message).
#
# Exit status: 0 when every run answered only 201s, with no socket errors, and stored what it
# acknowledged; 1 otherwise (the table is printed all the same).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$here/lib.sh"
bench_init core-start-task
lua="$here/start-task.lua"

DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-"1 8 64"}
CONFIGS=${CONFIGS:-"full normal memory"}
WRK_TIMEOUT=${WRK_TIMEOUT:-5s}

# --- what it needs ---------------------------------------------------------------------------

bench_setup
[[ $SERVER_CPU != "$CLIENT_CPU" ]] || say "warning: server and wrk share CPU $SERVER_CPU"

for config in $CONFIGS; do
  case $config in full | normal | off | memory) ;; *) die "unknown config '$config' (full, normal, off, memory)" ;; esac
done
for c in $CONNECTIONS; do
  [[ $c =~ ^[1-9][0-9]*$ ]] || die "CONNECTIONS must be positive integers, got '$c'"
done
[[ $DURATION =~ ^[1-9][0-9]*$ ]] || die "DURATION must be whole seconds, got '$DURATION'"

bench_gateway
bin=$gateway

# --- cleanup: always (lib.sh: the server is tracked, $bench_tmp removed at exit) -------------------

tmp=$bench_tmp
server_pid=""
stop_server() {
  [[ -n $server_pid ]] || return 0
  stop_all
  server_pid=""
}

# --- one run ---------------------------------------------------------------------------------

# Starts the core for $1 (a config), sets $server_pid, $server_log and $base
# (http://127.0.0.1:PORT/genesys/1/cs). Every run logs to its own file: a reused file could
# still show the previous server's address before the new one truncates it.
run_number=0
start_server() {
  local config=$1
  run_number=$((run_number + 1))
  server_log="$tmp/server-$run_number.log"
  local log=$server_log
  local args=(core --listen 127.0.0.1:0 --threads 1 --log-level info)
  if [[ $config == memory ]]; then
    args+=(--memory)
  else
    rm -f "$tmp"/cs.sqlite*
    args+=(--data "$tmp/cs.sqlite" --synchronous "$config")
  fi
  # Port 0: the kernel picks a free port and the startup line says which.
  taskset -c "$SERVER_CPU" "$bin" "${args[@]}" >"$log" 2>&1 &
  server_pid=$!
  track "$server_pid"
  base=""
  for _ in $(seq 200); do
    kill -0 "$server_pid" 2>/dev/null || { cat "$log" >&2; die "the core exited during startup"; }
    if grep -qs 'task core listening' "$log"; then
      base=$(sed -n 's/.*address=\(http:[^ ]*\).*/\1/p' "$log" | head -n1)
      break
    fi
    sleep 0.05
  done
  [[ -n $base ]] || { cat "$log" >&2; die "the core did not log its address within 10 s"; }
  # It answers: an unknown service is a 404 from the core itself.
  local code
  code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$base/services/999999999") || true
  [[ $code == 404 ]] || { cat "$log" >&2; die "the core at $base answered '$code' to a probe instead of 404"; }
}

# CPU accounting, in clock ticks, so that a run disturbed by something else on the machine
# shows: "server CPU" is the core's own time, "other CPU" is every busy tick of the machine
# that was neither the core's nor wrk's (other processes, steal, interrupts). Both are in %
# of one CPU over the run.
# (lib.sh: hz, machine_busy_ticks, pid_ticks, children_ticks.)
now_ns() { date +%s%N; }

field() { # field NAME LINE: the value of NAME=… in a BENCH line
  local v
  v=$(tr ' ' '\n' <<<"$2" | sed -n "s/^$1=//p" | head -n1)
  [[ -n $v ]] || die "wrk's output has no $1 (see above)"
  echo "$v"
}

failures=0
today=$(date -u +%Y-%m-%d)

commit=$(bench_commit)
say "binary $bin, commit $commit; server on CPU $SERVER_CPU, wrk on CPU $CLIENT_CPU; ${DURATION}s per run"

echo "| date | config | connections | requests/s | p50 µs | p99 µs | p99.9 µs | max µs | non-201 | 201s | stored | server CPU | other CPU |"
echo "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|"

for config in $CONFIGS; do
  for conns in $CONNECTIONS; do
    start_server "$config"
    created=$(curl -sS --fail-with-body --max-time 10 -X POST -H 'content-type: application/json' \
      --data '{"service_type":"CustomerCare","customer_id":"bench-customer-0001","timestamp":"2025-11-25T10:17:00.000Z"}' \
      "$base/services/start") || die "creating the service failed: $created"
    sid=$(sed -n 's/.*"service_id":\([0-9]*\).*/\1/p' <<<"$created")
    [[ -n $sid ]] || die "no service_id in '$created'"

    say "$config, $conns connection(s), ${DURATION}s …"
    out="$tmp/wrk.out"
    children_ticks
    busy0=$(machine_busy_ticks) server0=$(pid_ticks "$server_pid") wrk0=$children t0=$(now_ns)
    taskset -c "$CLIENT_CPU" wrk -t1 -c"$conns" -d"${DURATION}s" --timeout "$WRK_TIMEOUT" --latency \
      -s "$lua" "$base/services/$sid/tasks/start" >"$out" 2>&1 || { cat "$out" >&2; die "wrk failed"; }
    kill -0 "$server_pid" 2>/dev/null || { cat "$out" "$server_log" >&2; die "the core died during the run"; }
    children_ticks
    busy1=$(machine_busy_ticks) server1=$(pid_ticks "$server_pid") wrk1=$children t1=$(now_ns)
    ticks=$(((t1 - t0) * hz / 1000000000))
    server_cpu=$((100 * (server1 - server0) / ticks))
    other_cpu=$((100 * ((busy1 - busy0) - (server1 - server0) - (wrk1 - wrk0)) / ticks))
    ((other_cpu >= 0)) || other_cpu=0
    ((other_cpu <= 25)) ||
      say "warning: $config c=$conns: ${other_cpu}% of a CPU went to something else during the run: its figures are disturbed"
    line=$(grep '^BENCH requests=' "$out") || { cat "$out" >&2; die "wrk printed no BENCH line"; }

    rps=$(field rps "$line")
    p50=$(field p50_us "$line")
    p99=$(field p99_us "$line")
    p999=$(field p999_us "$line")
    max=$(field max_us "$line")
    ok=$(field ok201 "$line")
    bad=$(field non201 "$line")
    socket_errors=$(($(field connect_errors "$line") + $(field read_errors "$line") + $(field write_errors "$line") + $(field timeouts "$line")))

    # What the core really stored. wrk stops with up to one request in flight per connection:
    # the core may have committed those without wrk counting their 201.
    listing="$tmp/tasks.json"
    curl -sS --fail --max-time 120 -o "$listing" "$base/services/$sid/tasks" || die "GET …/services/$sid/tasks failed"
    stored=$({ grep -o '"task_id":' "$listing" || true; } | wc -l)
    stop_server

    notes=""
    if ((bad > 0)); then
      notes+=" non-201 answers: $(field statuses "$line"); $(grep '^BENCH first non-201' "$out" || true);"
      failures=$((failures + 1))
    fi
    if ((socket_errors > 0)); then
      notes+=" $socket_errors socket errors/timeouts;"
      failures=$((failures + 1))
    fi
    extra=$((stored - ok))
    if ((extra < 0)); then
      notes+=" LOST WRITES: the core lists $stored tasks but acknowledged $ok with a 201;"
      failures=$((failures + 1))
    elif ((extra > conns)); then
      notes+=" the core lists $stored tasks, $extra more than wrk's $ok 201s (at most $conns can be in flight);"
      failures=$((failures + 1))
    fi
    if [[ -n $notes ]]; then
      say "$config c=$conns:$notes"
      say "server log:"
      sed 's/^/  /' "$server_log" >&2
    fi

    shown_bad=$bad
    ((socket_errors == 0)) || shown_bad="$bad (+$socket_errors socket errors)"
    printf '| %s | %s | %d | %.0f | %d | %d | %d | %d | %s | %d | %d | %d%% | %d%% |\n' \
      "$today" "$config" "$conns" "$rps" "$p50" "$p99" "$p999" "$max" "$shown_bad" "$ok" "$stored" "$server_cpu" "$other_cpu"
    json_add rows config="$config" connections:="$conns" rps:="$rps" p50_us:="$p50" p99_us:="$p99" p999_us:="$p999" max_us:="$max" \
      non201:="$bad" socket_errors:="$socket_errors" ok201:="$ok" stored:="$stored" server_cpu:="$server_cpu" other_cpu:="$other_cpu" \
      notes="${notes# }"
    [[ -z $notes ]] || json_add failures message="$config c=$conns:$notes"
  done
done

json_write commit="$commit" date="$today" duration:="$DURATION" server_cpu:="$SERVER_CPU" client_cpu:="$CLIENT_CPU" \
  wrk_timeout="$WRK_TIMEOUT" passed:="$( ((failures == 0)) && echo true || echo false)"
if ((failures > 0)); then
  say "$failures problem(s) above: these figures do not measure what they claim"
  exit 1
fi
