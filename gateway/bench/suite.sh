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
# RESULTS_DIR (gateway/docs/benchmarks), OUT_DIR (raw outputs; gateway/bench/.out/suite-<time>/,
# git-ignored), PYTHON (the repository's .venv/bin/python). What it runs is installed by
# `gateway/scripts/setup.sh --bench`, called once here (the scripts it calls get BENCH_SETUP=0).
#
# The scripts it calls write JSON into OUT_DIR (front.json, durable-rN.json, postgres-rN.json;
# their Markdown tables and logs beside them, for people); suite_report.py reads those files,
# with meta.env, runs.tsv and the load tool's JSON reports, into RESULTS.md. suite.json holds
# this script's own settings, its load-tool runs ("load_runs", as runs.tsv) and its "failures".
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
OUT_DIR=${OUT_DIR:-$here/.out/suite-$(date -u +%Y%m%dT%H%M%SZ)}
bench_prefix=suite
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$here/lib.sh"
bench_init suite
STOP_GRACE=10

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
DISTURBED=${DISTURBED:-25}
QUIET_WAIT=${QUIET_WAIT:-120}
RETRIES=${RETRIES:-1}
RESULTS_DIR=${RESULTS_DIR:-$root/gateway/docs/benchmarks}

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

bench_setup
export BENCH_SETUP=0 PYTHON
cpus=$(nproc --all)

# --- the binary: built once, then copied so that another session's rebuild cannot swap it -------

tmp=$bench_tmp
gateway_given=${GATEWAY_BIN:-}
bench_gateway
built=$gateway
build_s=$(($(date +%s) - suite_t0))
gateway=$tmp/gateway
cp "$built" "$gateway"

commit=$(bench_commit)
[[ -z $gateway_given ]] || commit="GATEWAY_BIN=$gateway_given (work tree at $commit)"

out=$OUT_DIR
mkdir -p "$out"
say "raw outputs in $out; gateway $commit; servers on CPU $SERVER_CPU, load on CPU $CLIENT_CPU; $mode: $RUNS run(s) × ${DURATION}s"

load_ok=yes
"$gateway" load --help >/dev/null 2>&1 || { load_ok=no; say "this binary has no working 'gateway load': skipping closed, sweep and journey"; }

{
  echo "date=$(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "commit=$commit"
  echo "commit_short=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)$([[ $commit == *uncommitted* || -n $gateway_given ]] && echo '+')"
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
fail() { say "FAIL: $*"; failures=$((failures + 1)); echo "$*" >>"$out/failures.txt"; json_add failures message="$*"; }
# command_note TEXT: one exact command, with its ports and temporary paths made generic.
command_note() {
  sed -E "s#$tmp#\$TMP#g; s#$out#\$OUT#g; s#$root/##g; s/127\.0\.0\.1:[0-9]+/127.0.0.1:PORT/g" <<<"$*" >>"$out/commands.txt"
}
part_time() { echo "time_$1=$2" >>"$out/meta.env"; }

# --- processes (lib.sh: track, stop_all at exit; SIGKILL after STOP_GRACE s) ---------------------

wait_log_20() { wait_log "$1" "$2" "$3" 20; }

# start_gateway TAG [OPTIONS...]: gateway serve with its embedded durable core, on SERVER_CPU.
# Sets server_pid, gport (gRPC and REST), cport (the embedded core's REST port).
start_gateway() {
  local tag=$1; shift
  local log=$out/$tag.server.log data=$tmp/data-$tag
  rm -rf "$data"
  local cmd=(taskset -c "$SERVER_CPU" "$gateway" serve --threads 1 --listen 127.0.0.1:0 --core-listen 127.0.0.1:0
    --data "$data/cs.sqlite" --synchronous full "$@")
  "${cmd[@]}" >"$log" 2>&1 &
  server_pid=$!; track "$server_pid"
  wait_log_20 "$log" 'gateway listening' "$server_pid"
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
  server_pid=$!; track "$server_pid"
  wait_log_20 "$log" 'task core listening' "$server_pid"
  cport=$(port_of "$log" 'task core listening')
  gport=""
  server_cmd="${cmd[*]}"
}

# --- CPU accounting (lib.sh: hz, machine_busy_ticks, pid_ticks, children_ticks, wait_quiet) ------

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
  json_add load_runs part="$part" config="$config" run="$run" percent="$percent" file="$(basename "$json")" rc:="$rc" \
    server_cpu:="$server_cpu" other_cpu:="$other_cpu" disturbed:="$([[ $disturbed == yes ]] && echo true || echo false)" \
    stored="$stored" check="$check"
  last_other=$other_cpu
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
  rm -f "$out/front.json"
  env GATEWAY_BIN="$gateway" RUNS="$RUNS" DURATION="$DURATION" SERVERS="cpp-peer gateway-stub gateway-stub-vendor nghttpd" PROFILE_SECONDS=0 \
    SERVER_CPU="$SERVER_CPU" CLIENT_CPU="$CLIENT_CPU" DISTURBED="$DISTURBED" QUIET_WAIT="$QUIET_WAIT" \
    RETRIES=$((RETRIES > 0 ? 2 : 0)) OUT_DIR="$out/front" BENCH_JSON="$out/front.json" \
    "$here/grpc-start-task.sh" >"$out/front.md" 2>"$out/front.log" || frc=$?
  command_note "front: GATEWAY_BIN=\$TMP/gateway RUNS=$RUNS DURATION=$DURATION SERVERS=\"cpp-peer gateway-stub gateway-stub-vendor nghttpd\" PROFILE_SECONDS=0 gateway/bench/grpc-start-task.sh"
  command_note "front:   (in it) taskset -c $CLIENT_CPU h2load -t1 -c8 -m32 -D$DURATION -d frame.bin -H 'content-type: application/grpc' -H 'te: trailers' http://127.0.0.1:PORT/genesys.cs.v1.ContextServices/StartTask"
  echo "front_rc=$frc" >>"$out/meta.env"
  echo "front_out=$out/front" >>"$out/meta.env"
  [[ -s $out/front.json ]] || fail "grpc-start-task.sh wrote no $out/front.json (exit status $frc; its log: $out/front.log)"
  ((frc == 0)) || fail "grpc-start-task.sh exited with $frc: $(json_failures "$out/front.json" | head -n 5 | tr '\n' ' ')"
  part_time front $(($(date +%s) - t))
fi

# --- 2. durable StartTask end to end with h2load (and wrk REST rows), RUNS times --------------------

if has_part durable; then
  t=$(date +%s)
  for run in $(seq "$RUNS"); do
    wait_quiet
    say "durable: durable-start-task.sh, run $run/$RUNS"
    drc=0
    env GATEWAY_BIN="$gateway" DURATION="$DURATION" SERVER_CPU="$SERVER_CPU" CLIENT_CPU="$CLIENT_CPU" BENCH_JSON="$out/durable-r$run.json" \
      "$here/durable-start-task.sh" >"$out/durable-r$run.md" 2>"$out/durable-r$run.log" || drc=$?
    ((drc == 0)) || fail "durable-start-task.sh run $run exited with $drc"
    [[ -s $out/durable-r$run.json ]] || fail "durable-start-task.sh run $run wrote no $out/durable-r$run.json"
    problems=$(json_failures "$out/durable-r$run.json" | tr '\n' ' ')
    [[ -z $problems ]] || fail "durable-start-task.sh run $run: $problems"
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
    env GATEWAY_BIN="$gateway" DURATION="$DURATION" SERVER_CPU="$SERVER_CPU" CLIENT_CPU="$CLIENT_CPU" BENCH_JSON="$out/postgres-r$run.json" \
      "$here/postgres-start-task.sh" >"$out/postgres-r$run.md" 2>"$out/postgres-r$run.log" || prc=$?
    ((prc == 0)) || fail "postgres-start-task.sh run $run exited with $prc"
    [[ -s $out/postgres-r$run.json ]] || fail "postgres-start-task.sh run $run wrote no $out/postgres-r$run.json"
    problems=$(json_failures "$out/postgres-r$run.json" | tr '\n' ' ')
    [[ -z $problems ]] || fail "postgres-start-task.sh run $run: $problems"
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
json_write commit="$commit" mode="$mode" runs:="$RUNS" duration:="$DURATION" sweep_duration:="$SWEEP_DURATION" sweep="$SWEEP" \
  parts="$PARTS" server_cpu:="$SERVER_CPU" client_cpu:="$CLIENT_CPU" disturbed_limit:="$DISTURBED" out_dir="$out" results_dir="$RESULTS_DIR"

# --- the report ---------------------------------------------------------------------------------------

mkdir -p "$RESULTS_DIR"
"$PYTHON" "$here/suite_report.py" "$out" "$RESULTS_DIR"
cp "$RESULTS_DIR/RESULTS.md" "$RESULTS_DIR/throughput-latency.png" "$out/" 2>/dev/null || true
say "done in $(($(date +%s) - suite_t0)) s (build ${build_s} s): $RESULTS_DIR/RESULTS.md, $RESULTS_DIR/throughput-latency.png; raw in $out"
if ((failures > 0)); then
  say "$failures check(s) failed: $out/failures.txt"
  exit 1
fi
