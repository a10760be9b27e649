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
# (unset: build .build-bench/release/gateway), PYTHON (unset: the repository's .venv/bin/python if it
# has grpcio, else a venv in gateway/bench/.venv). Raw outputs go to gateway/bench/.out/<time>/.
#
# Exit status: 0 when every check passed, 1 otherwise (the tables are printed all the same).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)

DURATION=${DURATION:-10}
RUNS=${RUNS:-3}
SERVERS=${SERVERS:-"cpp-peer gateway-memory gateway-split gateway-stub gateway-stub-vendor nghttpd"}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
IDLE_CONNECTIONS=${IDLE_CONNECTIONS:-1000}
IDLE_SERVERS=${IDLE_SERVERS:-"gateway-memory cpp-peer nghttpd"}
PROFILE_SECONDS=${PROFILE_SECONDS:-5}
PROFILE_SERVERS=${PROFILE_SERVERS:-"gateway-stub gateway-memory"}
PRECHECK_CALLS=${PRECHECK_CALLS:-2048}
DISTURBED=${DISTURBED:-25}
QUIET_WAIT=${QUIET_WAIT:-300}
RETRIES=${RETRIES:-2}
LOAD=(-t1 -c8 -m32)
METHOD_PATH=/genesys.cs.v1.ContextServices/StartTask

say() { echo "bench: $*" >&2; }
die() { echo "bench: error: $*" >&2; exit 1; }

for s in $SERVERS $IDLE_SERVERS $PROFILE_SERVERS; do
  case $s in cpp-peer | gateway-memory | gateway-split | gateway-stub | gateway-stub-vendor | gateway-stub-metrics | nghttpd) ;; *) die "unknown server '$s'" ;; esac
done
[[ $DURATION =~ ^[1-9][0-9]*$ && $RUNS =~ ^[1-9][0-9]*$ ]] || die "DURATION and RUNS must be positive integers"

# --- what it needs ---------------------------------------------------------------------------

need=()
command -v h2load >/dev/null || need+=(nghttp2-client)
command -v nghttpd >/dev/null || [[ -x /usr/sbin/nghttpd ]] || need+=(nghttp2-server)
pkg-config --exists grpc++ 2>/dev/null || need+=(libgrpc++-dev)
command -v grpc_cpp_plugin >/dev/null || need+=(protobuf-compiler-grpc)
command -v protoc >/dev/null || need+=(protobuf-compiler)
command -v g++ >/dev/null || need+=(g++)
command -v make >/dev/null || need+=(make)
command -v pkg-config >/dev/null || need+=(pkg-config)
command -v curl >/dev/null || need+=(curl)
command -v taskset >/dev/null || need+=(util-linux)
((PROFILE_SECONDS == 0)) || command -v perf >/dev/null || need+=(linux-perf)
if ((${#need[@]})); then
  say "installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-get install -y -qq --no-install-recommends "${need[@]}" >&2; then
    apt-get update -qq >&2
    apt-get install -y -qq --no-install-recommends "${need[@]}" >&2
  fi
fi
PATH=$PATH:/usr/sbin
cpus=$(nproc --all)
((SERVER_CPU < cpus && CLIENT_CPU < cpus)) || die "need CPUs $SERVER_CPU and $CLIENT_CPU; this machine has $cpus"

if [[ -z ${PYTHON:-} ]]; then
  if [[ -x $root/.venv/bin/python ]] && "$root/.venv/bin/python" -c 'import grpc, grpc_tools' 2>/dev/null; then
    PYTHON=$root/.venv/bin/python
  else
    if ! [[ -x $here/.venv/bin/python ]] || ! "$here/.venv/bin/python" -c 'import grpc, grpc_tools' 2>/dev/null; then
      say "creating $here/.venv with grpcio and grpcio-tools"
      python3 -m venv "$here/.venv" >&2
      "$here/.venv/bin/pip" install -q grpcio grpcio-tools >&2
    fi
    PYTHON=$here/.venv/bin/python
  fi
fi

# --- builds ------------------------------------------------------------------------------------

if [[ -n ${GATEWAY_BIN:-} ]]; then
  gateway=$GATEWAY_BIN
else
  say "building the gateway release binary (scratch path .build-bench)"
  (cd "$root" && swift build -c release --product gateway --scratch-path .build-bench >&2)
  gateway=$root/.build-bench/release/gateway
fi
[[ -x $gateway ]] || die "no gateway binary at $gateway"
build=$here/.build-cpp
say "building the C++ peer and the stub core into $build"
make -s -C "$here/cpp-peer" BUILD="$build" >&2
cc -O2 -g -Wall -o "$build/stub-core" "$here/stub-core.c" >&2
peer=$build/peer
stub=$build/stub-core

out=$here/.out/$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$out"
export BENCH_STUBS=$build/py
"$PYTHON" "$here/grpc_bench.py" stubs "$BENCH_STUBS"
frame=$out/frame.bin
"$PYTHON" "$here/grpc_bench.py" frame "$frame" >&2
# An independent decoding of the same bytes: protoc, from the repository's proto.
tail -c +6 "$frame" | protoc -I"$root/proto" -I/usr/include --decode=genesys.cs.v1.StartTaskRequest \
  genesys/cs/v1/context_services.proto >"$out/frame.txt" || die "protoc cannot decode $frame"
grep -q 'service_id: 1' "$out/frame.txt" && grep -q 'name: "VoiceInbound"' "$out/frame.txt" ||
  die "the frame decodes to something else: $(cat "$out/frame.txt")"
docroot=$out/htdocs
mkdir -p "$docroot${METHOD_PATH%/*}"
printf '%048d' 0 >"$docroot$METHOD_PATH"  # 48 bytes: about a StartTask answer frame

# --- processes: every one this script starts is stopped, always --------------------------------

started=()
stop_pid() {
  local pid=$1
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
      say "process $pid ignored SIGTERM for 5 s: SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  wait "$pid" 2>/dev/null || true
}
stop_all() {
  local pid
  for pid in "${started[@]}"; do stop_pid "$pid"; done
  started=()
}
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  stop_all
  exit "$rc"
}
trap cleanup EXIT
trap 'echo "bench: error: status $? at line $LINENO: $BASH_COMMAND" >&2' ERR
trap 'exit 130' INT
trap 'exit 143' TERM

# wait_log FILE PATTERN PID: until FILE has PATTERN (10 s), or PID died.
wait_log() {
  for _ in $(seq 200); do
    grep -qs "$2" "$1" && return 0
    kill -0 "$3" 2>/dev/null || { cat "$1" >&2; die "process $3 exited during startup (log $1)"; }
    sleep 0.05
  done
  cat "$1" >&2
  die "no '$2' in $1 within 10 s"
}
port_of() { # port_of FILE PATTERN: the port in the address= of the first line with PATTERN
  grep -h "$2" "$1" | sed -n 's/.*address=[a-z0-9]*:\/\/[^ ]*:\([0-9][0-9]*\).*/\1/p' | head -n1
}
free_port() { "$PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# start_server NAME TAG: sets $port (for h2load), $server_pids (what the server's CPU is), $main_pid
# (the process measured for memory and profiles), $rest (the core's REST base, or ""), $stub_log.
start_server() {
  local name=$1 tag=$2 log=$out/$2
  server_pids=() rest="" stub_log=""
  case $name in
    cpp-peer)
      taskset -c "$SERVER_CPU" "$peer" --listen 127.0.0.1:0 >"$log.peer.log" 2>&1 &
      main_pid=$!; started+=("$main_pid"); server_pids=("$main_pid")
      wait_log "$log.peer.log" 'peer listening' "$main_pid"
      port=$(port_of "$log.peer.log" "peer listening") ;;
    gateway-memory)
      taskset -c "$SERVER_CPU" "$gateway" serve --listen 127.0.0.1:0 --core-listen 127.0.0.1:0 --memory --threads 1 \
        >"$log.gateway.log" 2>&1 &
      main_pid=$!; started+=("$main_pid"); server_pids=("$main_pid")
      wait_log "$log.gateway.log" 'gateway listening' "$main_pid"
      port=$(port_of "$log.gateway.log" "gateway listening")
      rest=$(sed -n 's/.*address=\(http:[^ ]*\).*task core listening.*/\1/p' "$log.gateway.log" | head -n1) ;;
    gateway-split)
      taskset -c "$CLIENT_CPU" "$gateway" core --listen 127.0.0.1:0 --memory --threads 1 >"$log.core.log" 2>&1 &
      local core_pid=$!; started+=("$core_pid")
      wait_log "$log.core.log" 'task core listening' "$core_pid"
      rest=$(sed -n 's/.*address=\(http:[^ ]*\).*/\1/p' "$log.core.log" | head -n1)
      taskset -c "$SERVER_CPU" "$gateway" serve --listen 127.0.0.1:0 --upstream "127.0.0.1:$(port_of "$log.core.log" "task core listening")" \
        --threads 1 >"$log.gateway.log" 2>&1 &
      main_pid=$!; started+=("$main_pid"); server_pids=("$main_pid" "$core_pid")
      wait_log "$log.gateway.log" 'gateway listening' "$main_pid"
      port=$(port_of "$log.gateway.log" "gateway listening") ;;
    gateway-stub | gateway-stub-vendor | gateway-stub-metrics)
      stub_log=$log.stub.log
      taskset -c "$SERVER_CPU" "$stub" 127.0.0.1 0 $([[ $name == gateway-stub-vendor ]] && echo nobatch) >"$stub_log" 2>&1 &
      local stub_pid=$!; started+=("$stub_pid")
      wait_log "$stub_log" 'stub core listening' "$stub_pid"
      taskset -c "$SERVER_CPU" "$gateway" serve --listen 127.0.0.1:0 --upstream "127.0.0.1:$(port_of "$stub_log" "stub core listening")" \
        --threads 1 $([[ $name == gateway-stub-metrics ]] && echo --metrics-listen 127.0.0.1:0) >"$log.gateway.log" 2>&1 &
      main_pid=$!; started+=("$main_pid"); server_pids=("$main_pid" "$stub_pid")
      wait_log "$log.gateway.log" 'gateway listening' "$main_pid"
      port=$(port_of "$log.gateway.log" "gateway listening") ;;
    nghttpd)
      port=$(free_port)
      taskset -c "$SERVER_CPU" nghttpd --no-tls -d "$docroot" "$port" >"$log.nghttpd.log" 2>&1 &
      main_pid=$!; started+=("$main_pid"); server_pids=("$main_pid")
      for _ in $(seq 100); do
        curl -s -o /dev/null --http2-prior-knowledge "http://127.0.0.1:$port$METHOD_PATH" && break
        kill -0 "$main_pid" 2>/dev/null || { cat "$log.nghttpd.log" >&2; die "nghttpd exited"; }
        sleep 0.05
      done ;;
  esac
}

# --- CPU accounting (clock ticks), to tell a disturbed run ---------------------------------------

hz=$(getconf CLK_TCK)
machine_busy_ticks() { awk '$1 == "cpu" { print $2 + $3 + $4 + $7 + $8 + $9 }' /proc/stat; }
pids_ticks() { # utime + stime of processes (all their threads); a dead one counts 0
  local t=0 pid stat
  for pid in "$@"; do
    stat=$(cat "/proc/$pid/stat" 2>/dev/null) || continue
    read -r -a f <<<"${stat##*) }"
    t=$((t + f[11] + f[12]))
  done
  echo "$t"
}
children_ticks() { # sets $children: user + sys of the children this shell has reaped
  times >"$out/.times"
  children=$(awk -v hz="$hz" 'NR == 2 { t = 0
    for (i = 1; i <= 2; i++) { split($i, a, "m"); sub("s", "", a[2]); t += a[1] * 60 + a[2] }
    printf "%d\n", t * hz + 0.5 }' "$out/.times")
}

# h2load_field FILE REGEX: the first number after REGEX in h2load's output.
h2load_field() { sed -n "s/.*$2 *\([0-9][0-9.]*\).*/\1/p" "$1" | head -n1; }

# --- the runs --------------------------------------------------------------------------------------

failures=0
# fail MESSAGE: a failed check of the current server's run; addresses and ports are dropped
# from the note so that the same failure in several runs reads as one.
fail() {
  say "FAIL: ${name:-}: $*"
  failures=$((failures + 1))
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
    taskset -c "$CLIENT_CPU" h2load "${LOAD[@]}" -n "$PRECHECK_CALLS" -d "$frame" -H 'content-type: application/grpc' \
      -H 'te: trailers' "http://127.0.0.1:$port$METHOD_PATH" >"$pre" 2>&1 || fail "h2load -n exited with $?"
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
  busy0=$(machine_busy_ticks) srv0=$(pids_ticks "${server_pids[@]}") t0=$(date +%s%N)
  taskset -c "$CLIENT_CPU" h2load "${LOAD[@]}" -D"$DURATION" -d "$frame" -H 'content-type: application/grpc' \
    -H 'te: trailers' --log-file="$h2log" "http://127.0.0.1:$port$METHOD_PATH" >"$h2out" 2>&1 &
  h2pid=$!; started+=("$h2pid")
  sleep "$(awk -v d="$DURATION" 'BEGIN { print d - 0.5 }')"
  busy1=$(machine_busy_ticks) srv1=$(pids_ticks "${server_pids[@]}") h1=$(pids_ticks "$h2pid") t1=$(date +%s%N)
  wait "$h2pid" || fail "h2load exited with $?"
  local ticks=$(((t1 - t0) * hz / 1000000000))
  local server_cpu=$((100 * (srv1 - srv0) / ticks))
  local other_cpu=$((100 * ((busy1 - busy0) - (srv1 - srv0) - h1) / ticks))
  ((other_cpu >= 0)) || other_cpu=0

  local rps ok failed errored timeouts non2xx
  rps=$(sed -n 's/^finished in [0-9.]*s, \([0-9.]*\) req\/s.*/\1/p' "$h2out")
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
  last_other_cpu=$other_cpu
  say "$name run $run: $rps req/s, p50 $p50 ms, p99 $p99 ms, server CPU $server_cpu%, other CPU $other_cpu%"
}

commit=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)
git -C "$root" diff --no-ext-diff --quiet HEAD -- Sources Package.swift 2>/dev/null || commit="$commit + uncommitted changes in Sources/"
[[ -z ${GATEWAY_BIN:-} ]] || commit="GATEWAY_BIN=$GATEWAY_BIN (the work tree is at $commit)"
say "gateway $gateway (commit $commit); servers on CPU $SERVER_CPU, h2load on CPU $CLIENT_CPU; $RUNS × ${DURATION}s; raw output in $out"

# This machine is shared: before every run, wait (up to QUIET_WAIT s) until the others use less
# than DISTURBED % of a CPU; a run during which they used more is marked "disturbed", run again
# (up to RETRIES times) and left out of the median when an undisturbed run exists.
busy_now() { local q0 q1; q0=$(machine_busy_ticks); sleep 1; q1=$(machine_busy_ticks); echo $((100 * (q1 - q0) / hz)); }
wait_quiet() {
  local waited=0 b
  while b=$(busy_now); ((b > DISTURBED && waited < QUIET_WAIT)); do
    ((waited > 0)) || say "the machine is busy ($b% of a CPU): waiting up to ${QUIET_WAIT}s for it to calm down"
    sleep 4; waited=$((waited + 5))
  done
  quiet=$b
}
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

{
  echo "Commit $commit, $(date -u +%Y-%m-%d) $(date -u +%H:%M)Z, others used $first_quiet% of a CPU just before the runs, $(nproc) CPUs ($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1)); servers on CPU $SERVER_CPU, \`h2load ${LOAD[*]} -D$DURATION\` on CPU $CLIENT_CPU; median of $RUNS run(s) by req/s (latencies of that run)."
  echo
  echo "| server | req/s | runs (req/s) | p50 ms | p99 ms | p99.9 ms | mean ms | max ms | × C++ peer | server CPU | other CPU | notes |"
  echo "|---|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|---|"
  awk -F'\t' -v servers="$SERVERS" -v limit="$DISTURBED" '
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
      }
    }' "$results"
  echo
  echo "req/s marked * were disturbed (others used more than $DISTURBED% of a CPU) and left out of the median. Latency, CPU columns: the median run. Raw rows: $results"
} | tee "$out/summary.md"

# --- memory per idle HTTP/2 connection ---------------------------------------------------------------

if ((IDLE_CONNECTIONS > 0)); then
  {
  echo
  echo "| server | idle h2c connections | RSS before KiB | RSS after KiB | KiB per connection |"
  echo "|---|--:|--:|--:|--:|"
  for name in $IDLE_SERVERS; do
    start_server "$name" "$name-idle"
    line=$("$PYTHON" "$here/grpc_bench.py" idle "127.0.0.1:$port" "$IDLE_CONNECTIONS" "$main_pid" 2 2>&1) ||
      { failures=$((failures + 1)); say "FAIL: idle connections on $name: $line"; stop_all; continue; }
    say "$name: $line"
    kill -0 "$main_pid" 2>/dev/null || { failures=$((failures + 1)); say "FAIL: $name died with idle connections"; }
    stop_all
    awk -v s="$name" '{ for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] } }
      END { printf "| %s | %s | %s | %s | %.1f |\n", s, v["alive"], v["rss_before_kib"], v["rss_after_kib"], v["per_connection_kib"] }' <<<"$line"
  done
  } >"$out/idle.md"
  cat "$out/idle.md" | tee -a "$out/summary.md"
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
    stat_pid=$!; started+=("$stat_pid")
    perf record -g -F 999 -p "$main_pid" -o "$out/$name.perf.data" -- sleep "$PROFILE_SECONDS" 2>"$out/$name.perf-record.log" &
    record_pid=$!; started+=("$record_pid")
    taskset -c "$CLIENT_CPU" h2load "${LOAD[@]}" -D"$((PROFILE_SECONDS + 1))" -d "$frame" -H 'content-type: application/grpc' \
      -H 'te: trailers' "http://127.0.0.1:$port$METHOD_PATH" >"$out/$name.profile-h2load.txt" 2>&1 || true
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
    cat "$out/$name.profile.md" | tee -a "$out/summary.md"
  done
fi

say "raw outputs and summary.md in $out"
if ((failures > 0)); then
  say "$failures check(s) failed (see FAIL above and the notes column)"
  exit 1
fi
