#!/usr/bin/env bash
# Writes gateway/gateway.example.json and gateway/configuration.md from the settings table
# (Sources/GatewaySettings/SettingsTable.swift). Run it after changing the table and commit
# both; SettingsTableTests fails while they are stale.
set -euo pipefail
cd "$(dirname "$0")/../.."
bin="${GATEWAY_BIN:-.build/debug/gateway}"
swift build --product gateway >/dev/null
"$bin" config example > gateway/gateway.example.json
"$bin" config keys > gateway/configuration.md
echo "wrote gateway/gateway.example.json and gateway/configuration.md"
