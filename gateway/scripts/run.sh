#!/usr/bin/env bash
# Sets everything up, builds in release mode and runs the main job.
# Extra arguments go to the executable, e.g. `gateway/scripts/run.sh core --listen 0.0.0.0:8090`.
set -euo pipefail
cd "$(dirname "$0")/../.."
bash gateway/scripts/setup.sh
swift build -c release --product gateway
exec .build/release/gateway "$@"
