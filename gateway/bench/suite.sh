#!/usr/bin/env bash
# The benchmark suite (issue 5): every row of DESIGN §5 against its peer, in one run, on this
# machine; writes gateway/docs/benchmarks/RESULTS.md (the table, medians of RUNS runs, ratios to
# the peers and the targets, the machine and the exact commands) and throughput-latency.png
# (p50/p99 against achieved requests/s, open loop, durable StartTask, batching on and off).
#
#   gateway/bench/suite.sh               # 3 runs of everything, ~11 minutes on a quiet machine (plus a build)
#   QUICK=1 gateway/bench/suite.sh       # 1 run, 3-s loads, no retries: to try it out (~2.5 minutes)
#   GATEWAY_BIN=.build-bench/release/gateway gateway/bench/suite.sh   # no build
#
# Every server is pinned to SERVER_CPU (0), every load generator to CLIENT_CPU (1). The parts:
#
#   front    grpc-start-task.sh with SERVERS="cpp-peer gateway-stub gateway-stub-vendor nghttpd": h2load against the
#            front end alone (stub core) and its peers (rows 1, 2), and RSS per idle HTTP/2
#            connection of the gateway, the C++ peer and nghttpd (row 6)
#   durable  durable-start-task.sh, RUNS times: h2load through gateway → core → SQLite
#            (synchronous=full), batching on and off (rows 3, 4), and wrk REST rows (the peer)
#   closed   gateway load, closed loop (CONNECTIONS × STREAMS), durable StartTask through the
#            gateway, batching on and off (rows 3, 4 with the project's own load tool)
#   sweep    gateway load --rate R, open loop, at SWEEP % of the closed-loop median of each
#            configuration: the plot; at 50 %, RUNS runs: row 5 (p99 at half of peak)
#   postgres postgres-start-task.sh, RUNS times: durable StartTask through one gateway with
#            SQLite, PostgreSQL behind one core and behind two (one database), batching on and
#            off, PostgreSQL with fsync=on and synchronous_commit=on (DESIGN §5, issue 10)
#   journey  gateway load --scenario journey (33 calls): gRPC and REST through the gateway, and
#            REST straight to a core (gateway core): the vendor's sizing scenario (~30 journeys/s,
#            i.e. ~1,000 REST requests/s, on 16 cores)
#
# Every run starts fresh servers on a fresh SQLite file. Before each run the script waits (up to
# QUIET_WAIT s) until the rest of the machine uses ≤ DISTURBED % of a CPU; a run of its own during
# which others used more is marked * and, once, run again (RETRIES). Checks: every call answered
# OK (load tool exit status 0, no failed calls or journeys, no lost connection), after every
# closed-loop StartTask run the core lists at least as many tasks as were answered, and the
# checks of the two scripts it calls (their exit status). Exit status 1 when a check failed;
# the results are written all the same.
#
# Environment: QUICK (unset), RUNS (3; QUICK 1), DURATION (10; QUICK 3) s per measured run,
# SWEEP_DURATION (8; QUICK 3), SWEEP ("10 25 50 75 90 100" % of peak), WARMUP (1s), CONNECTIONS (8),
# STREAMS (32), PARTS ("front durable closed sweep journey"), SERVER_CPU (0), CLIENT_CPU (1),
# DISTURBED (25), QUIET_WAIT (120; QUICK 30), RETRIES (1; QUICK 0), GATEWAY_BIN (unset: build),
# RESULTS_DIR (gateway/docs/benchmarks). Raw outputs: gateway/bench/.out/suite-<time>/ (git-ignored).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)

QUICK=${QUICK:-}
if [[ -n $QUICK && $QUICK != 0 ]]; then
  RUNS=${RUNS:-1} DURATION=${DURATION:-3} SWEEP_DURATION=${SWEEP_DURATION:-3} QUIET_WAIT=${QUIET_WAIT:-30} RETRIES=${RETRIES:-0}
  mode=quick
else
  mode=full
fi
RUNS=${RUNS:-3}
DURATION=${DURATION:-10}
SWEEP_DURATION=${SWEEP_DURATION:-8}
SWEEP=${SWEEP:-"10 25 50 75 90 100"}
WARMUP=${WARMUP:-1s}
CONNECTIONS=${CONNECTIONS:-8}
STREAMS=${STREAMS:-32}
PARTS=${PARTS:-"front durable postgres closed sweep journey"}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
DISTURBED=${DISTURBED:-25}
QUIET_WAIT=${QUIET_WAIT:-120}
RETRIES=${RETRIES:-1}
RESULTS_DIR=${RESULTS_DIR:-$root/gateway/docs/benchmarks}

say() { echo "suite: $*" >&2; }
die() { echo "suite: error: $*" >&2; exit 1; }

for v in RUNS DURATION SWEEP_DURATION CONNECTIONS STREAMS; do
  [[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive integer"
done
for p in $PARTS; do
  case $p in front | durable | postgres | closed | sweep | journey) ;; *) die "unknown part '$p'" ;; esac
done
has_part() { [[ " $PARTS " == *" $1 "* ]]; }
if has_part sweep && ! has_part closed; then die "the sweep needs the closed part (its rates are % of that peak)"; fi
suite_t0=$(date +%s)

# --- what it needs --------------------------------------------------------------------------------

need=()
command -v h2load >/dev/null || need+=(nghttp2-client)
command -v wrk >/dev/null || need+=(wrk)
command -v curl >/dev/null || need+=(curl)
command -v taskset >/dev/null || need+=(util-linux)
if ((${#need[@]})); then
  say "installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq --no-install-recommends "${need[@]}" >&2 ||
    { apt-get update -qq >&2; apt-get install -y -qq --no-install-recommends "${need[@]}" >&2; }
fi
cpus=$(nproc --all)
((SERVER_CPU < cpus && CLIENT_CPU < cpus)) || die "need CPUs $SERVER_CPU and $CLIENT_CPU; this machine has $cpus"
PYTHON=$root/.venv/bin/python
if ! [[ -x $PYTHON ]] || ! "$PYTHON" -c 'import grpc, grpc_tools' 2>/dev/null; then
  say "no usable $root/.venv: running gateway/scripts/setup.sh"
  bash "$root/gateway/scripts/setup.sh" >&2
fi
if ! "$PYTHON" -c 'import matplotlib' 2>/dev/null; then
  say "installing matplotlib into $root/.venv (for the plot)"
  "$root/.venv/bin/pip" install -q --disable-pip-version-check 'matplotlib>=3.7,<4' >&2
fi

# --- the binary: built once, then copied so that another session's rebuild cannot swap it -------

tmp=$(mktemp -d /tmp/cs-suite.XXXXXX)
if [[ -n ${GATEWAY_BIN:-} ]]; then
  built=$GATEWAY_BIN
else
  say "building the gateway release binary (swift build -c release --product gateway --scratch-path .build-bench)"
  (cd "$root" && swift build -c release --product gateway --scratch-path .build-bench >&2)
  built=$root/.build-bench/release/gateway
fi
[[ -x $built ]] || die "no gateway binary at $built"
build_s=$(($(date +%s) - suite_t0))
gateway=$tmp/gateway
cp "$built" "$gateway"

commit=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)
git -C "$root" diff --no-ext-diff --quiet HEAD -- Sources Package.swift 2>/dev/null || commit="$commit + uncommitted changes in Sources/"
[[ -z ${GATEWAY_BIN:-} ]] || commit="GATEWAY_BIN=$GATEWAY_BIN (work tree at $commit)"

out=$here/.out/suite-$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$out"
say "raw outputs in $out; gateway $commit; servers on CPU $SERVER_CPU, load on CPU $CLIENT_CPU; $mode: $RUNS run(s) × ${DURATION}s"

load_ok=yes
"$gateway" load --help >/dev/null 2>&1 || { load_ok=no; say "this binary has no working 'gateway load': skipping closed, sweep and journey"; }

{
  echo "date=$(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "commit=$commit"
  echo "commit_short=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)$([[ $commit == *uncommitted* || -n ${GATEWAY_BIN:-} ]] && echo '+')"
  echo "mode=$mode"
  echo "cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1)"
  echo "cpus=$cpus"
  echo "kernel=$(uname -sr)"
  echo "swift=$(swift --version 2>&1 | head -n1)"
  echo "disk=$(df -T "$tmp" | awk 'NR == 2 { print $2 " on " $1 }')"
  echo "runs=$RUNS"
  echo "duration=$DURATION"
  echo "sweep_duration=$SWEEP_DURATION"
  echo "sweep=$SWEEP"
  echo "warmup=$WARMUP"
  echo "connections=$CONNECTIONS"
  echo "streams=$STREAMS"
  echo "parts=$PARTS"
  echo "server_cpu=$SERVER_CPU"
  echo "client_cpu=$CLIENT_CPU"
  echo "disturbed=$DISTURBED"
  echo "load_tool=$load_ok"
  echo "build_s=$build_s"
} >"$out/meta.env"
: >"$out/commands.txt"
printf 'part\tconfig\trun\tpercent\tintended\tfile\trc\tserver_cpu\tother_cpu\tdisturbed\tstored\tcheck\tclient_cpu\n' >"$out/runs.tsv"
failures=0
fail() { say "FAIL: $*"; failures=$((failures + 1)); echo "$*" >>"$out/failures.txt"; }
# command_note TEXT: one exact command, with its ports and temporary paths made generic.
command_note() {
  sed -E "s#$tmp#\$TMP#g; s#$out#\$OUT#g; s#$root/##g; s/127\.0\.0\.1:[0-9]+/127.0.0.1:PORT/g" <<<"$*" >>"$out/commands.txt"
}
part_time() { echo "time_$1=$2" >>"$out/meta.env"; }

# --- processes: every one this script starts is stopped, always ----------------------------------

started=()
stop_pid() {
  local pid=$1
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && { say "process $pid ignored SIGTERM for 10 s: SIGKILL"; kill -KILL "$pid" 2>/dev/null || true; }
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
  rm -rf "$tmp"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

wait_log() { # wait_log FILE PATTERN PID: until FILE has PATTERN (20 s), or PID died
  for _ in $(seq 400); do
    grep -qs "$2" "$1" && return 0
    kill -0 "$3" 2>/dev/null || { cat "$1" >&2; die "process $3 exited during startup (log $1)"; }
    sleep 0.05
  done
  cat "$1" >&2
  die "no '$2' in $1 within 20 s"
}
port_of() { grep -h "$2" "$1" | sed -n 's/.*address=[a-z0-9]*:\/\/[^ ]*:\([0-9][0-9]*\).*/\1/p' | head -n1; }

# start_gateway TAG [OPTIONS...]: gateway serve with its embedded durable core, on SERVER_CPU.
# Sets server_pid, gport (gRPC and REST), cport (the embedded core's REST port).
start_gateway() {
  local tag=$1; shift
  local log=$out/$tag.server.log data=$tmp/data-$tag
  rm -rf "$data"
  local cmd=(taskset -c "$SERVER_CPU" "$gateway" serve --threads 1 --listen 127.0.0.1:0 --core-listen 127.0.0.1:0
    --data "$data/cs.sqlite" --synchronous full "$@")
  "${cmd[@]}" >"$log" 2>&1 &
  server_pid=$!; started+=("$server_pid")
  wait_log "$log" 'gateway listening' "$server_pid"
  gport=$(port_of "$log" 'gateway listening')
  cport=$(port_of "$log" 'task core listening')
  server_cmd="${cmd[*]}"
}
# start_core TAG: gateway core alone (durable), on SERVER_CPU. Sets server_pid, cport.
start_core() {
  local tag=$1 log=$out/$1.server.log data=$tmp/data-$1
  rm -rf "$data"
  local cmd=(taskset -c "$SERVER_CPU" "$gateway" core --threads 1 --listen 127.0.0.1:0 --data "$data/cs.sqlite" --synchronous full)
  "${cmd[@]}" >"$log" 2>&1 &
  server_pid=$!; started+=("$server_pid")
  wait_log "$log" 'task core listening' "$server_pid"
  cport=$(port_of "$log" 'task core listening')
  gport=""
  server_cmd="${cmd[*]}"
}

# --- CPU accounting, to tell a disturbed run ------------------------------------------------------

hz=$(getconf CLK_TCK)
machine_busy_ticks() { awk '$1 == "cpu" { print $2 + $3 + $4 + $7 + $8 + $9 }' /proc/stat; }
pid_ticks() { local s; s=$(cat "/proc/$1/stat" 2>/dev/null) || { echo 0; return; }; read -r -a f <<<"${s##*) }"; echo $((f[11] + f[12])); }
# children_ticks: sets $children to the user + sys ticks of the children this shell has reaped so
# far. Called as a function, never in $(…): a subshell's `times` knows only its own children.
children_ticks() {
  times >"$tmp/times"
  children=$(awk -v hz="$hz" 'NR == 2 { t = 0; for (i = 1; i <= 2; i++) { split($i, a, "m"); sub("s", "", a[2]); t += a[1] * 60 + a[2] }
    printf "%d\n", t * hz + 0.5 }' "$tmp/times")
}
busy_now() { local q0 q1; q0=$(machine_busy_ticks); sleep 1; q1=$(machine_busy_ticks); echo $((100 * (q1 - q0) / hz)); }
wait_quiet() {
  local waited=0 b
  while b=$(busy_now); ((b > DISTURBED && waited < QUIET_WAIT)); do
    ((waited > 0)) || say "the machine is busy ($b% of a CPU): waiting up to ${QUIET_WAIT}s"
    sleep 4; waited=$((waited + 5))
  done
}

# --- one run of the load tool ---------------------------------------------------------------------

# load_run PART CONFIG RUN PERCENT TARGET-PORT LOAD-OPTIONS...: runs gateway load on CLIENT_CPU against
# the server started last; the JSON report goes to $out/PART-CONFIG-pPERCENT-rRUN.json; one row of
# runs.tsv. Sets last_other (others' CPU %), last_json.
load_run() {
  local part=$1 config=$2 run=$3 percent=$4 port=$5; shift 5
  local tag="$part-$config${percent:+-p$percent}-r$run"
  local json=$out/$tag.json rc=0
  local cmd=(taskset -c "$CLIENT_CPU" "$gateway" load --target "127.0.0.1:$port" --connections "$CONNECTIONS" --streams "$STREAMS"
    --threads 1 --warmup "$WARMUP" --json --quiet "$@")
  command_note "$part: $server_cmd"
  command_note "$part: ${cmd[*]}"
  local busy0 srv0 ch0 t0 busy1 srv1 ch1 t1 children
  children_ticks; ch0=$children
  busy0=$(machine_busy_ticks) srv0=$(pid_ticks "$server_pid") t0=$(date +%s%N)
  "${cmd[@]}" >"$json" 2>"$out/$tag.err" || rc=$?
  busy1=$(machine_busy_ticks) srv1=$(pid_ticks "$server_pid") t1=$(date +%s%N)
  children_ticks; ch1=$children
  local ticks=$(((t1 - t0) * hz / 1000000000))
  ((ticks > 0)) || ticks=1
  local server_cpu=$((100 * (srv1 - srv0) / ticks))
  local other_cpu=$((100 * ((busy1 - busy0) - (srv1 - srv0) - (ch1 - ch0)) / ticks))
  ((other_cpu >= 0)) || other_cpu=0
  local disturbed=no check=ok stored=""
  ((other_cpu <= DISTURBED)) || disturbed=yes
  if ((rc != 0)) || ! [[ -s $json ]]; then
    check="load tool exit status $rc: $(tail -n 3 "$out/$tag.err" | tr '\n\t' '  ')"
  else
    check=$("$PYTHON" - "$json" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
bad = []
if r["failed"]: bad.append(f"{r['failed']} failed calls {r['errors']}")
if r.get("journeys_failed"): bad.append(f"{r['journeys_failed']} failed journeys")
if r["connections_lost"]: bad.append(f"{r['connections_lost']} connections lost")
if r["ok"] == 0: bad.append("no call answered")
print("; ".join(bad) or "ok")
EOF
)
  fi
  # Closed-loop StartTask: every answered task must be in the core's listing.
  if [[ $check == ok && $part == closed ]]; then
    local sid ok
    read -r sid ok < <("$PYTHON" -c 'import json,sys; r=json.load(open(sys.argv[1])); print(r.get("service_id", 0), r["ok"])' "$json")
    stored=$(curl -sS --max-time 120 "http://127.0.0.1:$cport/genesys/1/cs/services/$sid/tasks" |
      "$PYTHON" -c 'import sys,json; print(len(json.load(sys.stdin)))' 2>/dev/null || echo "?")
    [[ $stored =~ ^[0-9]+$ ]] && ((stored >= ok)) || check="the core lists $stored tasks of service $sid, the load tool counted $ok answered"
  fi
  kill -0 "$server_pid" 2>/dev/null || check="the server died during the run ($check)"
  [[ $check == ok ]] || fail "$tag: $check"
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$part" "$config" "$run" "$percent" "$(sed -n 's/.*"intended_rate":\([0-9.]*\).*/\1/p' "$json")" \
    "$(basename "$json")" "$rc" "$server_cpu" "$other_cpu" "$disturbed" "$stored" "$check" "$((100 * (ch1 - ch0) / ticks))" >>"$out/runs.tsv"
  last_other=$other_cpu last_json=$json
  say "$tag: $(sed -n 's/.*"rate":\([0-9.]*\).*"latency_us":{"p50":\([0-9]*\),"p90":[0-9]*,"p99":\([0-9]*\).*/\1 calls\/s, p50 \2 µs, p99 \3 µs/p' "$json"), server CPU $server_cpu%, load tool $((100 * (ch1 - ch0) / ticks))%, others $other_cpu%${stored:+, stored $stored}"
}

# measure PART CONFIG RUN PERCENT START-FUNCTION START-ARGS -- LOAD-OPTIONS...: fresh server, one load
# run against it (the gateway's port, or the core's for start_core), again once if disturbed.
measure() {
  local part=$1 config=$2 run=$3 percent=$4 starter=$5; shift 5
  local sargs=() attempt
  while [[ $1 != -- ]]; do sargs+=("$1"); shift; done
  shift
  for attempt in $(seq 0 "$RETRIES"); do
    wait_quiet
    local r=$run
    ((attempt == 0)) || r=$run-retry$attempt
    "$starter" "$part-$config${percent:+-p$percent}-r$r" "${sargs[@]}"
    load_run "$part" "$config" "$r" "$percent" "${gport:-$cport}" "$@"
    stop_all
    ((last_other > DISTURBED)) || break
    ((attempt == RETRIES)) || say "others used $last_other% of a CPU during that run: again"
  done
}

# median_rate CONFIG: the median calls/s of the undisturbed closed-loop runs of CONFIG (of all if none)
median_rate() {
  awk -F'\t' -v c="$1" 'NR > 1 && $1 == "closed" && $2 == c { print $6 "\t" $10 }' "$out/runs.tsv" | while IFS=$'\t' read -r f d; do
    echo "$(sed -n 's/.*"rate":\([0-9.]*\).*/\1/p' "$out/$f") $d"
  done | awk '{ r[NR] = $1; d[NR] = ($2 == "yes"); if (!d[NR]) c++ }
    END { n = 0; for (i = 1; i <= NR; i++) if (!c || !d[i]) v[++n] = r[i]
          for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (v[j] < v[i]) { t = v[i]; v[i] = v[j]; v[j] = t }
          if (n) print v[int((n + 1) / 2)]; else print 0 }'
}

# --- 1. front end alone vs the C++ gRPC peer and nghttpd; idle connections --------------------------

if has_part front; then
  t=$(date +%s)
  say "front: grpc-start-task.sh (cpp-peer, gateway-stub, gateway-stub-vendor, nghttpd; idle connections)"
  frc=0
  env GATEWAY_BIN="$gateway" RUNS="$RUNS" DURATION="$DURATION" SERVERS="cpp-peer gateway-stub gateway-stub-vendor nghttpd" PROFILE_SECONDS=0 \
    SERVER_CPU="$SERVER_CPU" CLIENT_CPU="$CLIENT_CPU" DISTURBED="$DISTURBED" QUIET_WAIT="$QUIET_WAIT" \
    RETRIES=$((RETRIES > 0 ? 2 : 0)) "$here/grpc-start-task.sh" >"$out/front.md" 2>"$out/front.log" || frc=$?
  command_note "front: GATEWAY_BIN=\$TMP/gateway RUNS=$RUNS DURATION=$DURATION SERVERS=\"cpp-peer gateway-stub gateway-stub-vendor nghttpd\" PROFILE_SECONDS=0 gateway/bench/grpc-start-task.sh"
  command_note "front:   (in it) taskset -c $CLIENT_CPU h2load -t1 -c8 -m32 -D$DURATION -d frame.bin -H 'content-type: application/grpc' -H 'te: trailers' http://127.0.0.1:PORT/genesys.cs.v1.ContextServices/StartTask"
  echo "front_rc=$frc" >>"$out/meta.env"
  echo "front_out=$(sed -n 's/.*raw outputs and summary.md in //p' "$out/front.log" | tail -n1)" >>"$out/meta.env"
  ((frc == 0)) || fail "grpc-start-task.sh exited with $frc: $(grep 'FAIL\|error' "$out/front.log" | head -n 5 | tr '\n' ' ')"
  part_time front $(($(date +%s) - t))
fi

# --- 2. durable StartTask end to end with h2load (and wrk REST rows), RUNS times --------------------

if has_part durable; then
  t=$(date +%s)
  for run in $(seq "$RUNS"); do
    wait_quiet
    say "durable: durable-start-task.sh, run $run/$RUNS"
    drc=0
    env GATEWAY_BIN="$gateway" DURATION="$DURATION" SERVER_CPU="$SERVER_CPU" CLIENT_CPU="$CLIENT_CPU" \
      "$here/durable-start-task.sh" >"$out/durable-r$run.md" 2>"$out/durable-r$run.log" || drc=$?
    ((drc == 0)) || fail "durable-start-task.sh run $run exited with $drc"
    ! grep -q 'LOST WRITES\|were not 201' "$out/durable-r$run.log" || fail "durable-start-task.sh run $run: $(grep 'LOST WRITES\|were not 201' "$out/durable-r$run.log" | tr '\n' ' ')"
  done
  command_note "durable: GATEWAY_BIN=\$TMP/gateway DURATION=$DURATION gateway/bench/durable-start-task.sh   # run $RUNS time(s)"
  command_note "durable:   (in it) taskset -c $CLIENT_CPU h2load -t1 -c8 -m32 -D$DURATION -d frame.bin -H 'content-type: application/grpc' -H 'te: trailers' http://127.0.0.1:PORT/genesys.cs.v1.ContextServices/StartTask"
  command_note "durable:   (in it) taskset -c $CLIENT_CPU wrk -t1 -c64 -d${DURATION}s --latency -s gateway/bench/start-task.lua http://127.0.0.1:PORT/genesys/1/cs/services/1/tasks/start"
  part_time durable $(($(date +%s) - t))
fi

# --- 2b. durable StartTask on PostgreSQL, one core and two, next to SQLite, RUNS times ------------

if has_part postgres; then
  t=$(date +%s)
  for run in $(seq "$RUNS"); do
    wait_quiet
    say "postgres: postgres-start-task.sh, run $run/$RUNS"
    prc=0
    env GATEWAY_BIN="$gateway" DURATION="$DURATION" SERVER_CPU="$SERVER_CPU" CLIENT_CPU="$CLIENT_CPU" \
      "$here/postgres-start-task.sh" >"$out/postgres-r$run.md" 2>"$out/postgres-r$run.log" || prc=$?
    ((prc == 0)) || fail "postgres-start-task.sh run $run exited with $prc"
    ! grep -q 'LOST WRITES' "$out/postgres-r$run.log" || fail "postgres-start-task.sh run $run: $(grep 'LOST WRITES' "$out/postgres-r$run.log" | tr '\n' ' ')"
  done
  command_note "postgres: GATEWAY_BIN=\$TMP/gateway DURATION=$DURATION gateway/bench/postgres-start-task.sh   # run $RUNS time(s)"
  part_time postgres $(($(date +%s) - t))
fi

# --- 3. gateway load, closed loop: durable StartTask, batching on and off ---------------------------

if [[ $load_ok == yes ]] && has_part closed; then
  t=$(date +%s)
  for run in $(seq "$RUNS"); do
    measure closed batching "$run" "" start_gateway -- --duration "${DURATION}s"
    measure closed no-batching "$run" "" start_gateway --no-batching -- --duration "${DURATION}s"
  done
  part_time closed $(($(date +%s) - t))
fi

# --- 4. open-loop sweep at % of each closed-loop peak; RUNS runs at 50 % ------------------------------

if [[ $load_ok == yes ]] && has_part sweep; then
  t=$(date +%s)
  for config in batching no-batching; do
    peak=$(median_rate "$config")
    echo "peak_$config=$peak" >>"$out/meta.env"
    awk -v p="$peak" 'BEGIN { exit !(p > 0) }' || { fail "sweep $config: no closed-loop peak"; continue; }
    opts=(); [[ $config == no-batching ]] && opts=(--no-batching)
    for pct in $SWEEP; do
      rate=$(awk -v p="$peak" -v q="$pct" 'BEGIN { printf "%.1f", p * q / 100 }')
      reps=1; [[ $pct == 50 ]] && reps=$RUNS
      for run in $(seq "$reps"); do
        measure sweep "$config" "$run" "$pct" start_gateway "${opts[@]}" -- --rate "$rate" --duration "${SWEEP_DURATION}s"
      done
    done
  done
  part_time sweep $(($(date +%s) - t))
fi

# --- 5. the vendor's sizing journey -------------------------------------------------------------------

if [[ $load_ok == yes ]] && has_part journey; then
  t=$(date +%s)
  for run in $(seq "$RUNS"); do
    measure journey grpc-gateway "$run" "" start_gateway -- --scenario journey --duration "${DURATION}s"
    measure journey rest-gateway "$run" "" start_gateway -- --scenario journey --rest --duration "${DURATION}s"
    measure journey rest-core "$run" "" start_core -- --scenario journey --rest --duration "${DURATION}s"
  done
  part_time journey $(($(date +%s) - t))
fi

echo "total_s=$(($(date +%s) - suite_t0))" >>"$out/meta.env"
echo "failures=$failures" >>"$out/meta.env"

# --- the report ---------------------------------------------------------------------------------------

mkdir -p "$RESULTS_DIR"
"$PYTHON" "$here/suite_report.py" "$out" "$RESULTS_DIR"
cp "$RESULTS_DIR/RESULTS.md" "$RESULTS_DIR/throughput-latency.png" "$out/" 2>/dev/null || true
say "done in $(($(date +%s) - suite_t0)) s (build ${build_s} s): $RESULTS_DIR/RESULTS.md, $RESULTS_DIR/throughput-latency.png; raw in $out"
if ((failures > 0)); then
  say "$failures check(s) failed: $out/failures.txt"
  exit 1
fi
