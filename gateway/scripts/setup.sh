#!/usr/bin/env bash
# Installs what building and testing need on a fresh Debian machine (run as root).
# Idempotent: packages already present are not fetched again.
set -euo pipefail

packages=(
  libsqlite3-dev   # GRDB links the system SQLite
  curl             # tests and scripts talk to the servers with it
  sqlite3          # inspecting data files by hand
)
if [[ "${1:-}" == "--bench" ]]; then
  packages+=(wrk)  # the HTTP/1.1 load generator of gateway/bench
fi

missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

command -v swift >/dev/null || { echo "setup: swift is not on PATH (expected /opt/swift)" >&2; exit 1; }
