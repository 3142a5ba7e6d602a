#!/usr/bin/env bash
# Regenerates the checked-in reference cores listed in rtl/designs.txt with the built CLI
# (default build/gsqhw; GSQHW=path/to/gsqhw to use another build).
set -euo pipefail
cd "$(dirname "$0")"
gsqhw="${GSQHW:-../build/gsqhw}"
grep -v '^#' designs.txt | while read -r folder spec options; do
  [ -n "$folder" ] || continue
  rm -rf "$folder"
  # shellcheck disable=SC2086  # options are flags, split on purpose
  "$gsqhw" gen --design "$spec" --out "$folder" $options
done
