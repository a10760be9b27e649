# shellcheck shell=bash
# The helpers every benchmark script of gateway/bench shares, sourced (never run):
#
#   here=$(cd "$(dirname "$0")" && pwd)
#   source "$here/lib.sh"
#   bench_init NAME          # root, tmp dir, traps, the JSON file; NAME is the script's name
#   bench_setup              # bash gateway/scripts/setup.sh --bench (what the benchmarks install)
#   bench_gateway            # $gateway: GATEWAY_BIN, or the release build under .build-bench
#
# What it defines, by topic:
#   logging        say, die (prefix $bench_prefix, "bench" unless set)
#   processes      track PID (stopped by stop_all and at exit), stop_pid PID [GRACE_S], stop_all
#                  (SIGKILL after STOP_GRACE s, 5),
#                  on_exit COMMAND (run at exit, after stop_all, in the order given)
#   ports          free_port, port_of LOG PATTERN (the port of address=… on the first line with
#                  PATTERN), wait_log LOG PATTERN PID [SECONDS], wait_http URL [SECONDS]
#   CPU            hz, machine_busy_ticks, pid_ticks PID..., children_ticks (sets $children),
#                  busy_now, wait_quiet (DISTURBED, QUIET_WAIT; sets $quiet)
#   gRPC StartTask make_frame DIR (sets $frame and exports BENCH_STUBS), grpc_h2load_target PORT
#                  (sets the array grpc_h2: the frame, the headers, the URL), h2load_grpc PORT ARGS...
#   h2load output  h2load_rps FILE, h2load_field FILE REGEX, h2load_succeeded FILE,
#                  h2load_mean_max FILE ("mean max" as h2load prints them), to_ms TIME (12.3ms,
#                  950us, 1.2s → ms)
#   JSON results   json_add LIST key=value... (one object appended to the array LIST; key:=value
#                  takes value as JSON: a number, true/false, an array…, empty is null, anything
#                  else a string),
#                  json_write key=value... (the file: {"script": NAME, key: value…, LIST: […]…})
#   the commit     bench_commit (the short commit, "+ uncommitted changes in Sources/" when so)
#
# Results as JSON: every script writes one file, $BENCH_JSON if set, else $OUT_DIR/NAME.json;
# OUT_DIR defaults to gateway/bench/.out/NAME-<UTC time>/ (git-ignored). The script's header says
# what its JSON holds; suite.sh and suite_report.py read these files, never the scripts' logs.

bench_here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
bench_root=$(cd "$bench_here/../.." && pwd)
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
METHOD_PATH=/genesys.cs.v1.ContextServices/StartTask

# --- logging ------------------------------------------------------------------------------------

say() { echo "${bench_prefix:-bench}: $*" >&2; }
die() { echo "${bench_prefix:-bench}: error: $*" >&2; exit 1; }

# --- setup -----------------------------------------------------------------------------------------

# bench_init NAME: $root, $bench_tmp (removed at exit), the exit traps, $OUT_DIR and $json_out.
bench_init() {
  bench_name=$1
  # shellcheck disable=SC2034 # for the scripts
  root=$bench_root
  bench_tmp=$(mktemp -d "${TMPDIR:-/tmp}/cs-$bench_name.XXXXXX")
  OUT_DIR=${OUT_DIR:-$bench_here/.out/$bench_name-$(date -u +%Y%m%dT%H%M%SZ)}
  json_out=${BENCH_JSON:-$OUT_DIR/$bench_name.json}
  mkdir -p "$bench_tmp/json"
  trap bench_cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
}

# bench_setup: the packages and Python modules of the benchmarks, through the project's setup
# script (quick when everything is there). BENCH_SETUP=0 skips it (suite.sh runs it once for all).
bench_setup() {
  if [[ ${BENCH_SETUP:-1} != 0 ]]; then
    bash "$bench_root/gateway/scripts/setup.sh" --bench >&2 || die "gateway/scripts/setup.sh --bench failed"
  fi
  PATH=$PATH:/usr/sbin  # nghttpd
  PYTHON=${PYTHON:-$bench_root/.venv/bin/python}
  [[ -x $PYTHON ]] || die "no Python at $PYTHON (bash gateway/scripts/setup.sh --bench makes .venv)"
  local cpus
  cpus=$(nproc --all)
  ((SERVER_CPU < cpus && CLIENT_CPU < cpus)) || die "need CPUs $SERVER_CPU and $CLIENT_CPU; this machine has $cpus (set SERVER_CPU/CLIENT_CPU)"
}

# bench_gateway: sets $gateway (and exports GATEWAY_BIN) to the release binary: GATEWAY_BIN, or
# built now with `swift build -c release --product gateway --scratch-path .build-bench`.
bench_gateway() {
  if [[ -n ${GATEWAY_BIN:-} ]]; then
    gateway=$GATEWAY_BIN
  else
    say "building the gateway release binary (swift build -c release --product gateway --scratch-path .build-bench)"
    (cd "$bench_root" && swift build -c release --product gateway --scratch-path .build-bench >&2) || die "the release build failed"
    gateway=$bench_root/.build-bench/release/gateway
  fi
  [[ -x $gateway ]] || die "no gateway binary at $gateway"
  export GATEWAY_BIN=$gateway
}

bench_commit() {
  local c
  c=$(git -C "$bench_root" rev-parse --short HEAD 2>/dev/null || echo unknown)
  git -C "$bench_root" diff --no-ext-diff --quiet HEAD -- Sources Package.swift 2>/dev/null || c="$c + uncommitted changes in Sources/"
  echo "$c"
}

# --- processes: every one a script tracks is stopped, always ----------------------------------------

started=()
exit_hooks=()
track() { started+=("$@"); }
on_exit() { exit_hooks+=("$1"); }

# stop_pid PID [GRACE_S]: SIGTERM, then SIGKILL after GRACE_S (5) seconds; reaps it.
stop_pid() {
  local pid=$1 grace=${2:-5}
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq $((grace * 10))); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
      say "process $pid ignored SIGTERM for $grace s: SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  wait "$pid" 2>/dev/null || true
}
stop_all() {
  local pid
  for pid in "${started[@]}"; do stop_pid "$pid" "${STOP_GRACE:-5}"; done
  started=()
}
bench_cleanup() {
  local rc=$? hook
  trap - EXIT INT TERM
  stop_all
  for hook in "${exit_hooks[@]}"; do eval "$hook" || true; done
  [[ -z ${bench_tmp:-} ]] || rm -rf "$bench_tmp"
  exit "$rc"
}

# --- ports and readiness ---------------------------------------------------------------------------

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port_of() { grep -h "$2" "$1" | sed -n 's/.*address=[a-z0-9]*:\/\/[^ ]*:\([0-9][0-9]*\).*/\1/p' | head -n1; }

# wait_log FILE PATTERN PID [SECONDS]: until FILE has PATTERN (10 s), or die when PID exited.
wait_log() {
  local tries=$((${4:-10} * 20))
  for _ in $(seq "$tries"); do
    grep -qs "$2" "$1" && return 0
    kill -0 "$3" 2>/dev/null || { cat "$1" >&2; die "process $3 exited during startup (log $1)"; }
    sleep 0.05
  done
  cat "$1" >&2
  die "no '$2' in $1 within ${4:-10} s"
}

# wait_http URL [SECONDS]: until something answers HTTP at URL (5 s); status 1 if nothing did.
wait_http() {
  local tries=$((${2:-5} * 20))
  for _ in $(seq "$tries"); do
    curl -s -o /dev/null "$1" && return 0
    sleep 0.05
  done
  return 1
}

# --- CPU accounting, to tell a disturbed run ---------------------------------------------------------

hz=$(getconf CLK_TCK)
machine_busy_ticks() { awk '$1 == "cpu" { print $2 + $3 + $4 + $7 + $8 + $9 }' /proc/stat; }  # user nice system irq softirq steal
pid_ticks() { # utime + stime of processes (all their threads); a dead one counts 0
  local t=0 pid stat f
  for pid in "$@"; do
    stat=$(cat "/proc/$pid/stat" 2>/dev/null) || continue
    read -r -a f <<<"${stat##*) }"  # the fields after "(comm) ": f[0] is the state, f[11] utime
    t=$((t + f[11] + f[12]))
  done
  echo "$t"
}
# children_ticks: sets $children to the user + sys ticks of the children this shell has reaped so
# far. Called as a function, never in $(…): a subshell's `times` knows only its own children.
children_ticks() {
  times >"$bench_tmp/times"
  # shellcheck disable=SC2034 # for the caller
  children=$(awk -v hz="$hz" 'NR == 2 { t = 0
    for (i = 1; i <= 2; i++) { split($i, a, "m"); sub("s", "", a[2]); t += a[1] * 60 + a[2] }
    printf "%d\n", t * hz + 0.5 }' "$bench_tmp/times")
}
busy_now() { local q0 q1; q0=$(machine_busy_ticks); sleep 1; q1=$(machine_busy_ticks); echo $((100 * (q1 - q0) / hz)); }
# wait_quiet: up to QUIET_WAIT s until the machine uses at most DISTURBED % of a CPU; $quiet is the last figure.
wait_quiet() {
  local waited=0 b
  while b=$(busy_now); ((b > DISTURBED && waited < QUIET_WAIT)); do
    ((waited > 0)) || say "the machine is busy ($b% of a CPU): waiting up to ${QUIET_WAIT}s for it to calm down"
    sleep 4; waited=$((waited + 5))
  done
  # shellcheck disable=SC2034 # for the caller
  quiet=$b
}

# --- gRPC StartTask with h2load ------------------------------------------------------------------------

# make_frame DIR: the grpcio stubs in DIR/py and one gRPC StartTask frame, DIR/frame.bin (grpc_bench.py).
make_frame() {
  export BENCH_STUBS=$1/py
  "$PYTHON" "$bench_here/grpc_bench.py" stubs "$BENCH_STUBS" >/dev/null
  frame=$1/frame.bin
  "$PYTHON" "$bench_here/grpc_bench.py" frame "$frame" >&2
}
# grpc_h2load_target PORT: sets grpc_h2, h2load's arguments for StartTask on 127.0.0.1:PORT.
grpc_h2load_target() {
  grpc_h2=(-d "$frame" -H 'content-type: application/grpc' -H 'te: trailers' "http://127.0.0.1:$1$METHOD_PATH")
}
# h2load_grpc PORT ARGS...: h2load ARGS (the load: -t -c -m -D or -n) of StartTask on CLIENT_CPU.
h2load_grpc() {
  local port=$1; shift
  grpc_h2load_target "$port"
  taskset -c "$CLIENT_CPU" h2load "$@" "${grpc_h2[@]}"
}

h2load_field() { sed -n "s/.*$2 *\([0-9][0-9.]*\).*/\1/p" "$1" | head -n1; }  # the first number after REGEX
h2load_rps() { sed -n 's/^finished in [0-9.]*m\{0,1\}s, \([0-9.]*\) req\/s.*/\1/p' "$1" | head -n1; }
h2load_succeeded() { sed -n 's/^requests: .* \([0-9][0-9]*\) succeeded.*/\1/p' "$1" | head -n1; }
h2load_mean_max() { awk '/time for request:/ { print $6, $5 }' "$1"; }
# to_ms TIME: h2load's 12.3ms, 950us or 1.2s in ms (empty when it is none of them)
to_ms() {
  case $1 in
    *ms) echo "${1%ms}" ;;  # as printed: the table shows these digits
    *us) awk -v t="${1%us}" 'BEGIN { printf "%.3f\n", t / 1000 }' ;;
    *s) awk -v t="${1%s}" 'BEGIN { printf "%.3f\n", t * 1000 }' ;;
  esac
}

# --- results as JSON ---------------------------------------------------------------------------------------

json_str() {
  local s=$1
  s=${s//\\/\\\\}; s=${s//\"/\\\"}; s=${s//$'\n'/\\n}; s=${s//$'\t'/\\t}; s=${s//$'\r'/\\r}
  [[ $s != *[[:cntrl:]]* ]] || s=$(tr -d '\000-\037' <<<"$s")
  printf '"%s"' "$s"
}
# json_obj key=value key:=json...: one JSON object on stdout
json_obj() {
  local kv k v sep="" line="{"
  for kv in "$@"; do
    k=${kv%%=*} v=${kv#*=}
    if [[ $k == *: ]]; then
      k=${k%:}
      [[ -n $v ]] || v=null
      # not a number, true, false, null, a string, an object or an array (a "?" where a figure was missing): a string
      [[ $v =~ ^(-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?|true|false|null|\".*\"|\{.*\}|\[.*\])$ ]] || v=$(json_str "$v")
    else
      v=$(json_str "$v")
    fi
    line+="$sep$(json_str "$k"): $v"; sep=", "
  done
  echo "$line}"
}
json_add() { local list=$1; shift; json_obj "$@" >>"$bench_tmp/json/$list.jsonl"; }
# json_write key=value...: writes $json_out (mkdir -p): the script's name, the fields given and one
# array per json_add list (rows, failures…). Python checks every line parses before anything is written.
json_write() {
  mkdir -p "$(dirname "$json_out")"
  json_obj "script=$bench_name" "$@" >"$bench_tmp/json/top.json"
  python3 - "$bench_tmp/json" "$json_out" <<'EOF' || die "could not write $json_out"
import glob, json, os, sys
d, path = sys.argv[1], sys.argv[2]
with open(os.path.join(d, "top.json")) as f:
    doc = json.load(f)
for p in sorted(glob.glob(os.path.join(d, "*.jsonl"))):
    name = os.path.basename(p)[:-6]
    if name in doc:
        sys.exit(f"json_write: the list {name!r} has the name of a field")
    with open(p) as f:
        doc[name] = [json.loads(line) for line in f if line.strip()]
doc.setdefault("failures", [])
tmp = path + ".tmp"
with open(tmp, "w") as f:
    json.dump(doc, f, indent=1, ensure_ascii=False)
    f.write("\n")
os.replace(tmp, path)
EOF
  say "results as JSON: $json_out"
}
# json_failures FILE: the "failures" of another script's JSON file, one message a line (none when
# the file is missing or has none: its exit status tells the rest).
json_failures() {
  python3 - "$1" <<'PY'
import json, sys
try:
    doc = json.load(open(sys.argv[1]))
except (OSError, ValueError):
    sys.exit(0)
for f in doc.get("failures", []):
    print(f.get("message", f) if isinstance(f, dict) else f)
PY
}
