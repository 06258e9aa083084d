#!/usr/bin/env bash
# Runs the bounded soak test (scripts/soak): by default 200 backups of 5
# changing environments with prune every 20, faults injected at random, on
# loopback only. Flags go through, e.g. `scripts/soak.sh --backups 40` for a
# quick run or `--out results.md` for the figures as markdown.
set -euo pipefail
cd "$(dirname "$0")/.."
exec go run ./scripts/soak "$@"
