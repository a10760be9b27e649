#!/usr/bin/env bash
# libFuzzer targets for the code that reads untrusted bytes (gateway/fuzz/README.md).
#
#   gateway/fuzz/run.sh                     build, then fuzz every target for 60 s (the long run)
#   gateway/fuzz/run.sh 600 strict-json     10 minutes of one target
#   gateway/fuzz/run.sh --ci                build, replay every file of corpus/ and regressions/,
#                                           then fuzz every target for 6 s (what test.sh runs)
#   gateway/fuzz/run.sh --replay [target…]  replay only
#
# Targets: strict-json batch-codec rest-route proto-request grpc-web http2-server.
# New inputs go to .build-fuzz/work/<target> (git-ignored), never into the committed corpus/;
# every crash, timeout or out-of-memory input is copied to regressions/<target>/ to be
# committed with its fix. Exit 1 when any target crashed or any replayed file fails.
# FUZZ_SECONDS overrides the --ci time per target; FUZZ_JOBS runs that many processes per
# target in the long run (libFuzzer -fork).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
scratch="$here/.build-fuzz"
all=(strict-json batch-codec rest-route proto-request grpc-web http2-server)

product() {
  case "$1" in
    strict-json) echo FuzzStrictJSON ;;
    batch-codec) echo FuzzBatchCodec ;;
    rest-route) echo FuzzRESTRoute ;;
    proto-request) echo FuzzProtoRequest ;;
    grpc-web) echo FuzzGRPCWeb ;;
    http2-server) echo FuzzHTTP2Server ;;
    *) echo "run.sh: unknown target $1 (one of: ${all[*]})" >&2; exit 64 ;;
  esac
}

mode=fuzz
seconds=60
case "${1:-}" in
  --ci) mode=ci; seconds="${FUZZ_SECONDS:-6}"; shift ;;
  --replay) mode=replay; shift ;;
  -h | --help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  '' | *[!0-9]*) ;;
  *) seconds="$1"; shift ;;
esac
targets=("$@")
((${#targets[@]})) || targets=("${all[@]}")
for t in "${targets[@]}"; do product "$t" >/dev/null; done

export PATH="/opt/swift/usr/bin:$PATH"
command -v swift >/dev/null || { echo "run.sh: swift not found (expected /opt/swift)" >&2; exit 1; }
missing=()
for p in libprotobuf-c-dev libnghttp2-dev; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "run.sh: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Targets/GatewayCodec compiles the Gateway module's codec from symlinks (Package.swift says
# why): follow files added to or removed from Sources/Gateway/Codec.
codec="$here/Targets/GatewayCodec"
find "$codec" -maxdepth 1 -type l ! -exec test -e {} \; -delete
for f in "$here"/../../Sources/Gateway/Codec/*.swift; do
  [[ -e "$codec/$(basename "$f")" ]] || ln -s "../../../../Sources/Gateway/${f#"$here"/../../Sources/Gateway/}" "$codec/"
done

# -sanitize=fuzzer: coverage instrumentation of every Swift module, and libFuzzer linked in
# (each target's @main calls LLVMFuzzerRunDriver). -enable-testing: the targets reach internal
# API with @testable import. The same flags on every call, so nothing rebuilds needlessly.
echo "run.sh: building the fuzz targets (release, -sanitize=fuzzer)"
build_log="$scratch/build.log"
mkdir -p "$scratch"
if ! (cd "$here" && swift build -c release --scratch-path "$scratch" \
        -Xswiftc -sanitize=fuzzer -Xswiftc -enable-testing >"$build_log" 2>&1); then
  tail -40 "$build_log" >&2
  echo "run.sh: build failed (log: $build_log)" >&2
  exit 1
fi
bin="$(cd "$here" && swift build -c release --scratch-path "$scratch" --show-bin-path)"

# Swift's backtracer would catch the trap of a failed check before libFuzzer does, and then
# no crash input would be saved.
export SWIFT_BACKTRACE=enable=no

failed=()

# Every committed input, run once (libFuzzer runs files given as arguments once each).
replay() {
  local t="$1" exe="$bin/$(product "$1")" files=()
  for dir in "$here/regressions/$t" "$here/corpus/$t"; do
    [[ -d "$dir" ]] || continue
    while IFS= read -r -d '' f; do files+=("$f"); done < <(find "$dir" -type f ! -name '.*' -print0 | sort -z)
  done
  ((${#files[@]})) || return 0
  local log="$scratch/work/$t.replay.log"
  mkdir -p "$scratch/work"
  if "$exe" -timeout=10 -rss_limit_mb=2048 "${files[@]}" >"$log" 2>&1; then
    echo "run.sh: $t: replayed ${#files[@]} inputs"
  else
    tail -30 "$log" >&2
    echo "run.sh: $t: a committed input fails (log: $log)" >&2
    failed+=("$t (replay)")
  fi
}

fuzz() {
  local t="$1" exe="$bin/$(product "$1")"
  local work="$scratch/work/$t" artifacts="$scratch/work/$t.artifacts/" log="$scratch/work/$t.log"
  rm -rf "$artifacts"  # only this run's findings are copied below
  mkdir -p "$work" "$artifacts" "$here/regressions/$t"
  local extra=()
  [[ -n "${FUZZ_JOBS:-}" && "$mode" == fuzz ]] && extra+=("-fork=$FUZZ_JOBS" -ignore_crashes=1)
  local rc=0
  # The first directory receives new inputs; the committed ones are read only.
  "$exe" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=4096 -print_final_stats=1 \
    -artifact_prefix="$artifacts" "${extra[@]}" "$work" "$here/corpus/$t" "$here/regressions/$t" >"$log" 2>&1 || rc=$?
  local execs
  execs="$(grep -o 'average_exec_per_sec: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1 || true)"
  local found=0
  for f in "$artifacts"crash-* "$artifacts"timeout-* "$artifacts"oom-* "$artifacts"leak-*; do
    [[ -e "$f" ]] || continue
    cp "$f" "$here/regressions/$t/"
    found=1
  done
  if ((rc != 0 || found)); then
    grep -E 'invariant|Fatal error|ERROR: libFuzzer|SUMMARY|Test unit written' "$log" | head -10 >&2 || true
    echo "run.sh: $t: FAILED after ${seconds}s (log: $log); inputs copied to gateway/fuzz/regressions/$t/" >&2
    failed+=("$t")
  else
    echo "run.sh: $t: ${seconds}s, ${execs:-?} execs/s, no failure"
  fi
}

for t in "${targets[@]}"; do
  case "$mode" in
    ci) replay "$t"; fuzz "$t" ;;
    replay) replay "$t" ;;
    fuzz) fuzz "$t" ;;
  esac
done

if ((${#failed[@]})); then
  echo "run.sh: FAILED: ${failed[*]}" >&2
  exit 1
fi
echo "run.sh: all ${#targets[@]} targets passed"
