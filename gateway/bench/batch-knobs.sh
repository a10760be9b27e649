#!/usr/bin/env bash
# The batcher's knobs (issue 4): durable gRPC StartTask end to end (durable-start-task.sh's
# grpc-batching row: h2load -c8 -m32 → gateway + embedded core, synchronous=full) over a grid
# of --batch-max-items, --batch-max-delay-micros and --batch-max-in-flight, one Markdown row
# per point, best first at the end. The defaults in ContextGateway.Configuration come from
# this sweep (results in RESULTS.md).
#
#   gateway/bench/batch-knobs.sh                       # the grid below, 5 s a point
#   ITEMS="64 256" DELAYS="500" INFLIGHT="1 4" DURATION=3 gateway/bench/batch-knobs.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
ITEMS=${ITEMS:-32 128 256 1024}
DELAYS=${DELAYS:-0 500 2000}
INFLIGHT=${INFLIGHT:-1 2 4 8}
export DURATION=${DURATION:-5}
if [[ -z "${GATEWAY_BIN:-}" ]]; then
  (cd "$root" && swift build -c release --product gateway --scratch-path .build-bench >&2)
  export GATEWAY_BIN=$root/.build-bench/release/gateway
fi
results=$(mktemp)
trap 'rm -f "$results"' EXIT
echo "| max items | max delay µs | in flight | requests/s | mean ms | max ms |"
echo "|--:|--:|--:|--:|--:|--:|"
for items in $ITEMS; do
  for delay in $DELAYS; do
    for inflight in $INFLIGHT; do
      line=$(ROWS=grpc-batching GATEWAY_ARGS="--batch-max-items $items --batch-max-delay-micros $delay --batch-max-in-flight $inflight" \
        bash "$here/durable-start-task.sh" 2>/dev/null | grep '| gRPC')
      IFS='|' read -r _ _ _ _ _ rps mean max _ <<<"$line"
      row="| $items | $delay | $inflight | ${rps// /} | ${mean// /} | ${max// /} |"
      echo "$row"
      echo "$row" >>"$results"
    done
  done
done
echo
echo "Best five:"
sort -t'|' -k5 -g -r "$results" | head -5
