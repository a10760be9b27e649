#!/usr/bin/env bash
# Micro-benchmarks of the gateway's per-call CPU work (gateway/bench/micro, ordo-one's
# package-benchmark 1.38.1): canonical JSON, strict JSON, protobuf ⇄ JSON (Codec), the batch
# codec. Prints wall clock, throughput and mallocs per operation, then checks the malloc counts
# against the checked-in thresholds (gateway/bench/micro/Thresholds): exit 1 when any
# benchmark allocates more than its threshold.
#
#   gateway/bench/micro.sh                 build, run, check (~2-5 min cold, ~1 min warm)
#   gateway/bench/micro.sh --check         check only (no table run first)
#   gateway/bench/micro.sh --update        write new thresholds (after a deliberate change)
#   gateway/bench/micro.sh --stacks        where the allocations come from, per benchmark
#   FILTER='Codec.*' gateway/bench/micro.sh   only the benchmarks matching a regex
#
# What the Gateway module links (libprotobuf-c-dev, libnghttp2-dev) comes from
# `gateway/scripts/setup.sh --bench` (called first; BENCH_SETUP=0 skips it); package-benchmark
# needs no jemalloc here: on Swift 6.3+ its MallocInterposer trait counts allocations itself.
# Everything builds under gateway/bench/micro/.build (git-ignored). JSON: BENCH_JSON (unset:
# $OUT_DIR/micro.json, OUT_DIR unset: gateway/bench/.out/micro-<time>/): mode, filter, target,
# verdict (the threshold check's: "WORSE", "BETTER", "EQUAL", or null when it did not run or
# reach one), passed, and "failures" (message) when the check failed.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
pkg="$here/micro"
mode="${1:-run}"
case "$mode" in
  run | --run) mode=run ;;
  --check) mode=check ;;
  --update) mode=update ;;
  --stacks) mode=stacks ;;
  -h | --help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  *) echo "micro.sh: unknown option $1 (see --help)" >&2; exit 64 ;;
esac
bench_prefix=micro.sh
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$here/lib.sh"
bench_init micro

export PATH="/opt/swift/usr/bin:$PATH"
command -v swift >/dev/null || { echo "micro.sh: swift not found (expected /opt/swift)" >&2; exit 1; }

bench_setup

cd "$pkg"
# CodecBenchmarks does `@testable import Gateway` (Codec is internal to the module): every
# module is compiled with -enable-testing. The same flag on every call, so nothing rebuilds.
swiftpm=(swift package -Xswiftc -enable-testing)
selection=(--no-progress)
[[ -n "${FILTER:-}" ]] && selection+=(--filter "$FILTER")
[[ -n "${TARGET:-}" ]] && selection+=(--target "$TARGET")

check() {
  # `swift package` turns every non-zero exit of the plugin (2 worse, 4 better) into 1: read
  # the verdict from the tool's own last line instead.
  local log rc=0 verdict
  log="$(mktemp)"
  "${swiftpm[@]}" benchmark thresholds check "${selection[@]}" 2>&1 | tee "$log" || rc=$?
  verdict="$(grep -o "is [A-Z]* t[a-z]* the defined thresholds" "$log" | tail -1 || true)"
  rm -f "$log"
  verdict_word=$(awk '{ print $2 }' <<<"$verdict")
  if [[ "$verdict" == "is WORSE than the defined thresholds" ]]; then
    echo "micro.sh: REGRESSION: more mallocs than the thresholds ('Deviations worse than threshold' above)" >&2
    return 1
  elif [[ "$verdict" == "is BETTER than the defined thresholds" ]]; then
    echo "micro.sh: fewer mallocs than the thresholds (good): record them with 'gateway/bench/micro.sh --update' and commit Thresholds/"
  elif ((rc == 0)) && [[ "$verdict" == "is EQUAL to the defined thresholds" ]]; then
    echo "micro.sh: malloc counts equal to the thresholds"
  else
    echo "micro.sh: the threshold check did not run to its verdict (exit $rc)" >&2
    return 1
  fi
}

verdict_word="" rc=0
case "$mode" in
  run)
    "${swiftpm[@]}" benchmark run "${selection[@]}"
    check || rc=$?
    ;;
  check)
    check || rc=$?
    ;;
  update)
    "${swiftpm[@]}" --allow-writing-to-package-directory benchmark thresholds update "${selection[@]}"
    # Keep the malloc count only: time on a shared machine is no regression check.
    python3 - Thresholds <<'EOF'
import glob, json, os, sys
for path in glob.glob(os.path.join(sys.argv[1], "*.p90.json")):
    with open(path) as f:
        p90 = json.load(f)
    with open(path, "w") as f:
        f.write(json.dumps({"mallocCountTotal": p90["mallocCountTotal"]}, indent=2) + "\n")
EOF
    git -C "$pkg" diff --stat -- Thresholds || true
    ;;
  stacks)
    out="$(mktemp -d)"
    "${swiftpm[@]}" --allow-writing-to-directory "$out" benchmark run "${selection[@]}" \
      --export-allocation-stacks --allocation-stacks-export-path "$out" --allocation-stack-limit 3 | tee "$out/run.log"
    echo
    echo "Allocation sites (mallocs per operation, by the innermost frame of Sources/):"
    python3 "$pkg/alloc_sites.py" "$out/run.log" "$out" 8
    echo "(folded stacks, for speedscope or flamegraph.pl: $out)"
    ;;
esac
((rc == 0)) || json_add failures message="the malloc threshold check failed (verdict: ${verdict_word:-none})"
json_write mode="$mode" filter="${FILTER:-}" target="${TARGET:-}" verdict:="$([[ -z $verdict_word ]] || json_str "$verdict_word")" \
  passed:="$( ((rc == 0)) && echo true || echo false)"
exit "$rc"
