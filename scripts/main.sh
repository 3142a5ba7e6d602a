#!/usr/bin/env bash
# The main job on a fresh Debian machine: set up, build, and run `gsqhw sweep` on the built-in
# defaults (results in out/sweep/, report in out/sweep/report.md).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
build/gsqhw sweep --out out/sweep "$@"
