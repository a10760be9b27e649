#!/usr/bin/env bash
# gRPC StartTask at the front end (DESIGN §5): the gateway against its peers, side by side in
# one run. Markdown tables on stdout (and in the run's folder); progress on stderr.
#
#   gateway/bench/grpc-start-task.sh                        # 3 runs × 10 s of every server
#   RUNS=1 DURATION=5 SERVERS="cpp-peer gateway-stub" gateway/bench/grpc-start-task.sh
#   GATEWAY_BIN=/path/to/gateway gateway/bench/grpc-start-task.sh   # skip the Swift build
#
# Every server is started fresh for every run, pinned with taskset to SERVER_CPU (0); h2load
# runs on CLIENT_CPU (1) with the peer-table load of DESIGN §5:
#
#   h2load -t1 -c8 -m32 -D10 -d frame.bin -H 'content-type: application/grpc' -H 'te: trailers' \
#          http://127.0.0.1:PORT/genesys.cs.v1.ContextServices/StartTask
#
# where frame.bin is one gRPC frame (5-byte prefix + a 40-byte StartTaskRequest: service_id 1,
# task_type name "VoiceInbound", event.interaction_id), written and decoded back by
# grpc_bench.py and decoded again with protoc. The servers:
#
#   cpp-peer        the C++ gRPC 1.51 peer (cpp-peer/), async completion queue, one thread
#   gateway-memory  gateway serve --memory --threads 1: the in-memory core in the same process
#                   and on the same CPU, reached over loopback HTTP/1.1 as in production
#   gateway-split   gateway core --memory on CLIENT_CPU (beside h2load) + gateway serve --upstream
#                   on SERVER_CPU
#   gateway-stub    gateway serve --upstream to stub-core.c (canned answers at once, batches
#                   included), both on SERVER_CPU: the front end alone, without the store's
#                   cost, on the product's own path (calls batched toward the core)
#   gateway-stub-vendor  the same with the stub started "nobatch" (a vendor core: no batch
#                   endpoint), so every call is its own HTTP/1.1 request upstream
#   gateway-stub-metrics  gateway-stub with --metrics-listen (metrics on; not in the default
#                   SERVERS): SERVERS="gateway-stub gateway-stub-metrics" measures their cost
#   nghttpd         nghttpd --no-tls answering a 48-byte static file: the raw HTTP/2 ceiling
#
# Checks, outside h2load (which looks at the HTTP status only, not grpc-status): before every
# timed run, StartService and StartTask through grpcio must answer grpc-status OK with service 1
# and a task id; then PRECHECK_CALLS StartTasks from h2load's own frame (h2load -n, so none is
# in flight when it closes) must move the next grpcio task id by exactly that many. After the
# timed run, another StartTask must still be OK, and its task id, the core's REST listing
# (GET …/services/1/tasks) or the stub's counter must show at least as many new tasks as h2load
# counted successes. A server that dies during or after a run is reported (exit status 1).
#
# Then: RSS per idle HTTP/2 connection (IDLE_CONNECTIONS h2c connections opened by
# grpc_bench.py idle: preface + SETTINGS, the server's SETTINGS acknowledged) for the gateway and
# the peers, and a perf profile (perf stat, perf record -g) of the gateway under PROFILE_SECONDS
# of the same load, for PROFILE_SERVERS.
#
# The machine may be shared: before every run the script waits (up to QUIET_WAIT s) until other
# processes use at most DISTURBED % of a CPU; a run during which they used more ("other CPU") is
# marked disturbed, repeated up to RETRIES times, and left out of the median.
#
# Environment: DURATION (10), RUNS (3), SERVERS (all six above), SERVER_CPU (0), CLIENT_CPU (1),
# PRECHECK_CALLS (2048), DISTURBED (25), QUIET_WAIT (300), RETRIES (2),
# IDLE_CONNECTIONS (1000; 0 skips), IDLE_SERVERS ("gateway-memory cpp-peer nghttpd"),
# PROFILE_SECONDS (5; 0 skips), PROFILE_SERVERS ("gateway-stub gateway-memory"), GATEWAY_BIN
# (unset: build .build-bench/release/gateway), PYTHON (unset: the repository's .venv/bin/python),
# OUT_DIR (raw outputs; unset: gateway/bench/.out/<time>/), BENCH_JSON (unset: $OUT_DIR/grpc-start-task.json).
# What it runs is installed by `gateway/scripts/setup.sh --bench` (called first; BENCH_SETUP=0 skips it).
#
# JSON ($BENCH_JSON): the settings (commit, date, time, cpu_model, cpus, server_cpu, client_cpu,
# load, duration, runs, disturbed_limit, others_cpu_before, idle_connections), "timed_runs" (one object
# per timed run: server, run, rps, succeeded, failed, p50/p99/p999/mean/max_ms, server_cpu,
# other_cpu, disturbed, notes), "servers" (the table's rows: the median run of each server, its
# runs, × C++ peer, notes), "idle" (server, alive, rss_before_kib, rss_after_kib,
# per_connection_kib), "profiles" (server, file) and "failures" (message).
#
# Exit status: 0 when every check passed, 1 otherwise (the tables are printed all the same).
# shellcheck disable=SC2015 # "A && B || fail …": fail when either is false, as meant
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
OUT_DIR=${OUT_DIR:-$here/.out/$(date -u +%Y%m%dT%H%M%SZ)}
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$here/lib.sh"
bench_init grpc-start-task

DURATION=${DURATION:-10}
RUNS=${RUNS:-3}
SERVERS=${SERVERS:-"cpp-peer gateway-memory gateway-split gateway-stub gateway-stub-vendor nghttpd"}
IDLE_CONNECTIONS=${IDLE_CONNECTIONS:-1000}
IDLE_SERVERS=${IDLE_SERVERS:-"gateway-memory cpp-peer nghttpd"}
PROFILE_SECONDS=${PROFILE_SECONDS:-5}
PROFILE_SERVERS=${PROFILE_SERVERS:-"gateway-stub gateway-memory"}
PRECHECK_CALLS=${PRECHECK_CALLS:-2048}
DISTURBED=${DISTURBED:-25}
QUIET_WAIT=${QUIET_WAIT:-300}
RETRIES=${RETRIES:-2}
LOAD=(-t1 -c8 -m32)

for s in $SERVERS $IDLE_SERVERS $PROFILE_SERVERS; do
  case $s in cpp-peer | gateway-memory | gateway-split | gateway-stub | gateway-stub-vendor | gateway-stub-metrics | nghttpd) ;; *) die "unknown server '$s'" ;; esac
done
[[ $DURATION =~ ^[1-9][0-9]*$ && $RUNS =~ ^[1-9][0-9]*$ ]] || die "DURATION and RUNS must be positive integers"

# --- what it needs ---------------------------------------------------------------------------

bench_setup
command -v perf >/dev/null || ((PROFILE_SECONDS == 0)) || die "no perf (gateway/scripts/setup.sh --bench installs linux-perf)"

# --- builds ------------------------------------------------------------------------------------

gateway_given=${GATEWAY_BIN:-}
bench_gateway
build=$here/.build-cpp
say "building the C++ peer and the stub core into $build"
make -s -C "$here/cpp-peer" BUILD="$build" >&2
cc -O2 -g -Wall -o "$build/stub-core" "$here/stub-core.c" >&2
peer=$build/peer
stub=$build/stub-core

out=$OUT_DIR
mkdir -p "$out"
make_frame "$out"
# An independent decoding of the same bytes: protoc, from the repository's proto.
tail -c +6 "$frame" | protoc -I"$root/proto" -I/usr/include --decode=genesys.cs.v1.StartTaskRequest \
  genesys/cs/v1/context_services.proto >"$out/frame.txt" || die "protoc cannot decode $frame"
grep -q 'service_id: 1' "$out/frame.txt" && grep -q 'name: "VoiceInbound"' "$out/frame.txt" ||
  die "the frame decodes to something else: $(cat "$out/frame.txt")"
docroot=$out/htdocs
mkdir -p "$docroot${METHOD_PATH%/*}"
printf '%048d' 0 >"$docroot$METHOD_PATH"  # 48 bytes: about a StartTask answer frame

# --- processes: every one this script starts is stopped, always (lib.sh: track, stop_all) ---------

trap 'echo "bench: error: status $? at line $LINENO: $BASH_COMMAND" >&2' ERR

# start_server NAME TAG: sets $port (for h2load), $server_pids (what the server's CPU is), $main_pid
# (the process measured for memory and profiles), $rest (the core's REST base, or ""), $stub_log.
start_server() {
  local name=$1 tag=$2 log=$out/$2
  server_pids=() rest="" stub_log=""
  case $name in
    cpp-peer)
      taskset -c "$SERVER_CPU" "$peer" --listen 127.0.0.1:0 >"$log.peer.log" 2>&1 &
      main_pid=$!; track "$main_pid"; server_pids=("$main_pid")
      wait_log "$log.peer.log" 'peer listening' "$main_pid"
      port=$(port_of "$log.peer.log" "peer listening") ;;
    gateway-memory)
      taskset -c "$SERVER_CPU" "$gateway" serve --listen 127.0.0.1:0 --core-listen 127.0.0.1:0 --memory --threads 1 \
        >"$log.gateway.log" 2>&1 &
      main_pid=$!; track "$main_pid"; server_pids=("$main_pid")
      wait_log "$log.gateway.log" 'gateway listening' "$main_pid"
      port=$(port_of "$log.gateway.log" "gateway listening")
      rest=$(sed -n 's/.*address=\(http:[^ ]*\).*task core listening.*/\1/p' "$log.gateway.log" | head -n1) ;;
    gateway-split)
      taskset -c "$CLIENT_CPU" "$gateway" core --listen 127.0.0.1:0 --memory --threads 1 >"$log.core.log" 2>&1 &
      local core_pid=$!; track "$core_pid"
      wait_log "$log.core.log" 'task core listening' "$core_pid"
      rest=$(sed -n 's/.*address=\(http:[^ ]*\).*/\1/p' "$log.core.log" | head -n1)
      taskset -c "$SERVER_CPU" "$gateway" serve --listen 127.0.0.1:0 --upstream "127.0.0.1:$(port_of "$log.core.log" "task core listening")" \
        --threads 1 >"$log.gateway.log" 2>&1 &
      main_pid=$!; track "$main_pid"; server_pids=("$main_pid" "$core_pid")
      wait_log "$log.gateway.log" 'gateway listening' "$main_pid"
      port=$(port_of "$log.gateway.log" "gateway listening") ;;
    gateway-stub | gateway-stub-vendor | gateway-stub-metrics)
      stub_log=$log.stub.log
      local stub_args=() serve_args=()
      [[ $name != gateway-stub-vendor ]] || stub_args=(nobatch)
      [[ $name != gateway-stub-metrics ]] || serve_args=(--metrics-listen 127.0.0.1:0)
      taskset -c "$SERVER_CPU" "$stub" 127.0.0.1 0 "${stub_args[@]}" >"$stub_log" 2>&1 &
      local stub_pid=$!; track "$stub_pid"
      wait_log "$stub_log" 'stub core listening' "$stub_pid"
      taskset -c "$SERVER_CPU" "$gateway" serve --listen 127.0.0.1:0 --upstream "127.0.0.1:$(port_of "$stub_log" "stub core listening")" \
        --threads 1 "${serve_args[@]}" >"$log.gateway.log" 2>&1 &
      main_pid=$!; track "$main_pid"; server_pids=("$main_pid" "$stub_pid")
      wait_log "$log.gateway.log" 'gateway listening' "$main_pid"
      port=$(port_of "$log.gateway.log" "gateway listening") ;;
    nghttpd)
      port=$(free_port)
      taskset -c "$SERVER_CPU" nghttpd --no-tls -d "$docroot" "$port" >"$log.nghttpd.log" 2>&1 &
      main_pid=$!; track "$main_pid"; server_pids=("$main_pid")
      for _ in $(seq 100); do
        curl -s -o /dev/null --http2-prior-knowledge "http://127.0.0.1:$port$METHOD_PATH" && break
        kill -0 "$main_pid" 2>/dev/null || { cat "$log.nghttpd.log" >&2; die "nghttpd exited"; }
        sleep 0.05
      done ;;
  esac
}

# --- the runs --------------------------------------------------------------------------------------

failures=0
# fail MESSAGE: a failed check of the current server's run; addresses and ports are dropped
# from the note so that the same failure in several runs reads as one.
fail() {
  say "FAIL: ${name:-}: $*"
  failures=$((failures + 1))
  json_add failures message="${name:-}: $*"
  notes+="$(sed -E 's/0x[0-9a-f]+ //g; s/127\.0\.0\.1:[0-9]+/127.0.0.1:PORT/g; s/[;|]/,/g' <<<"$*")|"
}

results=$out/runs.tsv
printf 'server\trun\trps\tsucceeded\tfailed\tp50_ms\tp99_ms\tp999_ms\tmean_ms\tmax_ms\tserver_cpu\tother_cpu\tdisturbed\tnotes\n' >"$results"

grpc_check() { # grpc_check PORT WHAT: StartTask through grpcio; sets $task_id
  local line
  line=$("$PYTHON" "$here/grpc_bench.py" start-task "127.0.0.1:$1" 1 2>&1) || { fail "$2: $line"; task_id=""; return; }
  echo "  $2: $line" >&2
  task_id=$(sed -n 's/.*task_id=\([0-9]*\).*/\1/p' <<<"$line")
}

run_one() {
  local name=$1 run=$2 tag="$1-run$2-try$3" line created count
  notes="" precheck_tasks=0
  start_server "$name" "$tag"
  say "$name, run $run/$RUNS: port $port, h2load for ${DURATION}s"
  if [[ $name != nghttpd ]]; then
    line=$("$PYTHON" "$here/grpc_bench.py" start-service "127.0.0.1:$port" 2>&1) || fail "StartService: $line"
    echo "  before: $line" >&2
    [[ $line == *"service_id=1 "* ]] || fail "StartService did not create service 1: $line"
    grpc_check "$port" "before"
    # A fixed number of calls through h2load's own frames, all answered before it closes: every
    # one must be a stored task (the timed run ends with calls in flight, which this avoids).
    local pre=$out/$tag.precheck.txt before_id=${task_id:-0}
    h2load_grpc "$port" "${LOAD[@]}" -n "$PRECHECK_CALLS" >"$pre" 2>&1 || fail "h2load -n exited with $?"
    grep -q "^status codes: $PRECHECK_CALLS 2xx" "$pre" || fail "h2load -n $PRECHECK_CALLS: $(grep '^status codes' "$pre")"
    grpc_check "$port" "after $PRECHECK_CALLS h2load calls"
    [[ -n $task_id ]] && ((task_id == before_id + PRECHECK_CALLS + 1)) ||
      fail "task id ${task_id:-?} after $PRECHECK_CALLS h2load calls that followed task $before_id"
    precheck_tasks=$((task_id))
  fi

  local h2out=$out/$tag.h2load.txt h2log=$out/$tag.h2load.log
  # CPU use is sampled half a second before h2load stops, while every process still lives
  # (the server may not survive the end of the run, see the notes).
  local busy0 srv0 t0 busy1 srv1 t1 h2pid h1
  busy0=$(machine_busy_ticks) srv0=$(pid_ticks "${server_pids[@]}") t0=$(date +%s%N)
  grpc_h2load_target "$port"
  # Not h2load_grpc: $! must be h2load itself, whose CPU time is read before it ends.
  taskset -c "$CLIENT_CPU" h2load "${LOAD[@]}" -D"$DURATION" --log-file="$h2log" "${grpc_h2[@]}" >"$h2out" 2>&1 &
  h2pid=$!; track "$h2pid"
  sleep "$(awk -v d="$DURATION" 'BEGIN { print d - 0.5 }')"
  busy1=$(machine_busy_ticks) srv1=$(pid_ticks "${server_pids[@]}") h1=$(pid_ticks "$h2pid") t1=$(date +%s%N)
  wait "$h2pid" || fail "h2load exited with $?"
  local ticks=$(((t1 - t0) * hz / 1000000000))
  local server_cpu=$((100 * (srv1 - srv0) / ticks))
  local other_cpu=$((100 * ((busy1 - busy0) - (srv1 - srv0) - h1) / ticks))
  ((other_cpu >= 0)) || other_cpu=0

  local rps ok failed errored timeouts non2xx
  rps=$(h2load_rps "$h2out")
  ok=$(h2load_field "$h2out" 'done, ')
  failed=$(h2load_field "$h2out" 'succeeded, ')
  errored=$(h2load_field "$h2out" 'failed, ')
  timeouts=$(h2load_field "$h2out" 'errored, ')
  non2xx=$(sed -n 's/^status codes: [0-9]* 2xx, \([0-9]*\) 3xx, \([0-9]*\) 4xx, \([0-9]*\) 5xx.*/\1 \2 \3/p' "$h2out" | awk '{print $1+$2+$3}')
  [[ -n $rps && -n $ok ]] || { cat "$h2out" >&2; die "cannot read h2load's output ($h2out)"; }
  ((failed + errored + timeouts + non2xx == 0)) || fail "h2load: $failed failed, $errored errored, $timeouts timeouts, $non2xx non-2xx"
  # Latency percentiles from the per-request log (h2load prints only min/max/mean/sd).
  local p50 p99 p999 mean max
  read -r p50 p99 p999 mean max < <(awk -F'\t' '{ print $3 }' "$h2log" | sort -n | awk '
    function q(p,  i) { i = int(NR * p) + 1; if (i > NR) i = NR; return v[i] / 1000 }
    { v[NR] = $1; s += $1 }
    END { if (NR == 0) { print "0 0 0 0 0"; exit }
          printf "%.2f %.2f %.2f %.2f %.2f\n", q(0.50), q(0.99), q(0.999), s / NR / 1000, v[NR] / 1000 }')
  rm -f "$h2log"

  # After the run: still alive, still answering OK, and at least as many tasks as successes.
  if [[ $name != nghttpd ]] && kill -0 "$main_pid" 2>/dev/null; then
    grpc_check "$port" "after"
    if [[ -n $task_id ]]; then
      ((task_id - 1 - precheck_tasks >= ok)) ||
        fail "task id $task_id after the run, $precheck_tasks before it, but h2load counted $ok successes"
    fi
  fi
  if [[ -n $rest ]]; then
    if created=$(curl -sS --fail --max-time 120 "$rest/services/1/tasks" 2>&1); then
      created=$({ grep -o '"task_id":' <<<"$created" || true; } | wc -l)
      echo "  core REST listing: $created tasks stored, $precheck_tasks before the run; h2load counted $ok successes" >&2
      ((created - precheck_tasks >= ok)) ||
        fail "the core stored $created tasks ($precheck_tasks before the run), h2load counted $ok successes"
    else
      fail "no REST listing from the core after the run (${created##*: })"
    fi
  fi
  local alive=yes
  kill -0 "$main_pid" 2>/dev/null || alive=no
  stop_all
  # A crash may come at any time after h2load closed its connections: read the logs last.
  local why
  why=$(grep -m1 -h 'Fatal error\|panic\|terminate called\|Segmentation' "$out/$tag".*.log 2>/dev/null || true)
  if [[ -n $why ]]; then
    fail "the server crashed after the timed run: $why"
  elif [[ $alive == no ]]; then
    fail "the server exited after the timed run (no message in its log)"
  fi
  if [[ -n $stub_log ]]; then
    count=$(sed -n 's/.*stub core tasks=\([0-9]*\).*/\1/p' "$stub_log")
    echo "  stub core: ${count:-?} StartTask requests answered, $precheck_tasks before the run; h2load counted $ok successes" >&2
    [[ -n $count ]] && ((count - precheck_tasks >= ok)) || fail "the stub core answered ${count:-?} StartTasks, h2load counted $ok"
  fi
  local disturbed=no
  ((other_cpu <= DISTURBED)) || disturbed=yes
  printf '%s\t%d\t%.0f\t%d\t%d\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t%s\t%s\n' "$name" "$run" "$rps" "$ok" \
    $((failed + errored + timeouts + non2xx)) "$p50" "$p99" "$p999" "$mean" "$max" "$server_cpu" "$other_cpu" "$disturbed" "$notes" >>"$results"
  json_add timed_runs server="$name" run:="$run" attempt:="$3" rps:="$rps" succeeded:="$ok" failed:=$((failed + errored + timeouts + non2xx)) \
    p50_ms:="$p50" p99_ms:="$p99" p999_ms:="$p999" mean_ms:="$mean" max_ms:="$max" server_cpu:="$server_cpu" other_cpu:="$other_cpu" \
    disturbed:="$([[ $disturbed == yes ]] && echo true || echo false)" notes="$notes"
  last_other_cpu=$other_cpu
  say "$name run $run: $rps req/s, p50 $p50 ms, p99 $p99 ms, server CPU $server_cpu%, other CPU $other_cpu%"
}

commit=$(bench_commit)
[[ -z $gateway_given ]] || commit="GATEWAY_BIN=$gateway_given (the work tree is at $commit)"
say "gateway $gateway (commit $commit); servers on CPU $SERVER_CPU, h2load on CPU $CLIENT_CPU; $RUNS × ${DURATION}s; raw output in $out"

# This machine is shared: before every run, wait (up to QUIET_WAIT s) until the others use less
# than DISTURBED % of a CPU; a run during which they used more is marked "disturbed", run again
# (up to RETRIES times) and left out of the median when an undisturbed run exists.
# (lib.sh: wait_quiet.)
wait_quiet
first_quiet=$quiet

# Runs interleaved (every server once, then again), so that drift on the machine hits all alike.
for run in $(seq "$RUNS"); do
  for name in $SERVERS; do
    for attempt in $(seq 0 "$RETRIES"); do
      ((attempt == 0)) || { say "$name run $run was disturbed ($last_other_cpu% of a CPU used by others): again"; wait_quiet; }
      run_one "$name" "$run" "$attempt"
      ((last_other_cpu > DISTURBED)) || break
    done
  done
done

run_date=$(date -u +%Y-%m-%d) run_time=$(date -u +%H:%M) cpu_model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1)
{
  echo "Commit $commit, $run_date ${run_time}Z, others used $first_quiet% of a CPU just before the runs, $(nproc) CPUs ($cpu_model); servers on CPU $SERVER_CPU, \`h2load ${LOAD[*]} -D$DURATION\` on CPU $CLIENT_CPU; median of $RUNS run(s) by req/s (latencies of that run)."
  echo
  echo "| server | req/s | runs (req/s) | p50 ms | p99 ms | p99.9 ms | mean ms | max ms | × C++ peer | server CPU | other CPU | notes |"
  echo "|---|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|---|"
  awk -F'\t' -v servers="$SERVERS" -v limit="$DISTURBED" -v picks="$out/servers.tsv" '
    NR > 1 { s = $1; k = ++n[s]; row[s, k] = $0; rps[s, k] = $3; dist[s, k] = ($13 == "yes")
             if (!dist[s, k]) clean[s]++
             m = split($14, parts, "|")
             for (i = 1; i <= m; i++) if (parts[i] != "") { if (!((s, parts[i]) in seen)) { seen[s, parts[i]] = 1; nn[s]++; note[s, nn[s]] = parts[i] }
                                                             where[s, parts[i]] = where[s, parts[i]] (where[s, parts[i]] == "" ? "" : ",") $2 }
           }
    END {
      split(servers, order, " ")
      for (i = 1; i in order; i++) { s = order[i]; if (!n[s]) continue
        # the median by req/s of the undisturbed runs (of all, when every run was disturbed)
        c = 0; for (a = 1; a <= n[s]; a++) if (!clean[s] || !dist[s, a]) idx[++c] = a
        for (a = 1; a <= c; a++) for (b = a + 1; b <= c; b++) if (rps[s, idx[b]] < rps[s, idx[a]]) { t = idx[a]; idx[a] = idx[b]; idx[b] = t }
        pick[s] = idx[int((c + 1) / 2)]; med[s] = rps[s, pick[s]]; used[s] = c
        all = ""; for (a = 1; a <= n[s]; a++) all = all (a > 1 ? ", " : "") rps[s, a] (dist[s, a] ? "*" : ""); runs[s] = all
      }
      for (i = 1; i in order; i++) { s = order[i]; if (!n[s]) continue
        split(row[s, pick[s]], f, "\t")
        notes = ""; for (a = 1; a <= nn[s]; a++) notes = notes (a > 1 ? "; " : "") "run " where[s, note[s, a]] ": " note[s, a]
        ratio = ("cpp-peer" in med && med["cpp-peer"] > 0) ? sprintf("%.2f", med[s] / med["cpp-peer"]) : "–"
        printf "| %s | %d | %s | %s | %s | %s | %s | %s | %s | %d%% | %d%% | %s |\n", s, med[s], runs[s], f[6], f[7], f[8], f[9], f[10], ratio, f[11], f[12], notes
        printf "%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t%s\n", s, med[s], runs[s], f[6], f[7], f[8], f[9], f[10], ratio, f[11], f[12], used[s], notes > picks
      }
    }' "$results"
  echo
  echo "req/s marked * were disturbed (others used more than $DISTURBED% of a CPU) and left out of the median. Latency, CPU columns: the median run. Raw rows: $results"
} | tee "$out/summary.md"
# The same rows for the JSON: runs_text is the table's "runs" cell (disturbed ones marked *).
while IFS=$'\t' read -r s_name s_rps s_runs s_p50 s_p99 s_p999 s_mean s_max s_ratio s_cpu s_other s_used s_notes; do
  json_add servers server="$s_name" rps:="$s_rps" runs_text="$s_runs" p50_ms:="$s_p50" p99_ms:="$s_p99" p999_ms:="$s_p999" \
    mean_ms:="$s_mean" max_ms:="$s_max" x_cpp_peer:="$([[ $s_ratio == – ]] || echo "$s_ratio")" server_cpu:="$s_cpu" other_cpu:="$s_other" \
    runs_in_median:="$s_used" notes="$s_notes"
done <"$out/servers.tsv"

# --- memory per idle HTTP/2 connection ---------------------------------------------------------------

if ((IDLE_CONNECTIONS > 0)); then
  {
  echo
  echo "| server | idle h2c connections | RSS before KiB | RSS after KiB | KiB per connection |"
  echo "|---|--:|--:|--:|--:|"
  for name in $IDLE_SERVERS; do
    start_server "$name" "$name-idle"
    line=$("$PYTHON" "$here/grpc_bench.py" idle "127.0.0.1:$port" "$IDLE_CONNECTIONS" "$main_pid" 2 2>&1) ||
      { failures=$((failures + 1)); say "FAIL: idle connections on $name: $line"; json_add failures message="idle connections on $name: $line"; stop_all; continue; }
    say "$name: $line"
    kill -0 "$main_pid" 2>/dev/null || { failures=$((failures + 1)); say "FAIL: $name died with idle connections"; json_add failures message="$name died with idle connections"; }
    stop_all
    awk -v s="$name" '{ for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] } }
      END { printf "| %s | %s | %s | %s | %.1f |\n", s, v["alive"], v["rss_before_kib"], v["rss_after_kib"], v["per_connection_kib"] }' <<<"$line"
    # shellcheck disable=SC2046 # the awk prints key=value words without spaces
    json_add idle $(awk -v s="$name" '{ for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] } }
      END { printf "server=%s alive:=%s rss_before_kib:=%s rss_after_kib:=%s per_connection_kib:=%s\n", s, v["alive"], v["rss_before_kib"], v["rss_after_kib"], v["per_connection_kib"] }' <<<"$line")
  done
  } >"$out/idle.md"
  tee -a "$out/summary.md" <"$out/idle.md"
fi

# --- profile -------------------------------------------------------------------------------------------

demangle() { if command -v swift-demangle >/dev/null; then swift-demangle --simplified; else cat; fi; }
if ((PROFILE_SECONDS > 0)); then
  for name in $PROFILE_SERVERS; do
    wait_quiet
    {
    start_server "$name" "$name-profile"
    "$PYTHON" "$here/grpc_bench.py" start-service "127.0.0.1:$port" >/dev/null
    perf stat -e task-clock,context-switches,cpu-migrations,page-faults,cycles,instructions -p "$main_pid" \
      -o "$out/$name.perf-stat.txt" -- sleep "$PROFILE_SECONDS" &
    stat_pid=$!; track "$stat_pid"
    perf record -g -F 999 -p "$main_pid" -o "$out/$name.perf.data" -- sleep "$PROFILE_SECONDS" 2>"$out/$name.perf-record.log" &
    record_pid=$!; track "$record_pid"
    h2load_grpc "$port" "${LOAD[@]}" -D"$((PROFILE_SECONDS + 1))" >"$out/$name.profile-h2load.txt" 2>&1 || true
    wait "$stat_pid" "$record_pid" 2>/dev/null || true
    stop_all
    done_requests=$(h2load_field "$out/$name.profile-h2load.txt" 'done, ')
    echo
    echo "Profile of $name: $PROFILE_SECONDS s of perf on the gateway process (h2load ${LOAD[*]}, $done_requests requests done in $((PROFILE_SECONDS + 1)) s)"
    echo
    echo '```'
    grep -E 'task-clock|context-switches|cycles|instructions|seconds time' "$out/$name.perf-stat.txt" | sed 's/^ *//' || true
    echo
    echo "shared objects:"
    perf report -i "$out/$name.perf.data" --no-children --sort dso --stdio 2>/dev/null | awk '/^ +[0-9]/ && n++ < 8'
    echo
    echo "functions (self):"
    perf report -i "$out/$name.perf.data" --no-children --sort symbol --stdio -g none 2>/dev/null | awk '/^ +[0-9]/ && n++ < 30' |
      demangle | cut -c1-160
    echo
    echo "with callees (children; frame-pointer stacks, partly broken: a lower bound):"
    perf report -i "$out/$name.perf.data" --children --sort symbol --stdio -g none 2>/dev/null | awk '/^ +[0-9]/ && n++ < 60' |
      demangle | cut -c1-160
    echo '```'
    } >"$out/$name.profile.md"
    tee -a "$out/summary.md" <"$out/$name.profile.md"
    json_add profiles server="$name" file="$out/$name.profile.md" requests:="$done_requests" seconds:="$PROFILE_SECONDS"
  done
fi

json_write commit="$commit" date="$run_date" time="$run_time" cpu_model="$cpu_model" cpus:="$(nproc)" \
  server_cpu:="$SERVER_CPU" client_cpu:="$CLIENT_CPU" load="${LOAD[*]}" duration:="$DURATION" runs:="$RUNS" \
  disturbed_limit:="$DISTURBED" others_cpu_before:="$first_quiet" idle_connections:="$IDLE_CONNECTIONS" out_dir="$out" \
  passed:="$( ((failures == 0)) && echo true || echo false)"
say "raw outputs and summary.md in $out"
if ((failures > 0)); then
  say "$failures check(s) failed (see FAIL above and the notes column)"
  exit 1
fi
