#!/usr/bin/env bash
# Formal equivalence of two generated designs, file by file: for every Verilog file of OLD_DIR
# whose text differs from NEW_DIR's file of the same name, Yosys proves that the module of that
# name (flattened with the submodules of its own folder) computes the same outputs from the same
# inputs and register states (equiv_make; equiv_simple -seq; equiv_induct; equiv_status -assert).
# Used to show that an emitter change which does not keep the Verilog byte-identical is
# formatting only (issue #17's rules).
#
#   scripts/verilog_equiv.sh OLD_DIR NEW_DIR
#   scripts/verilog_equiv.sh rtl-before/gse6_core4x4 rtl/gse6_core4x4
#
# Prints one line per file (same / equivalent / DIFFERENT) and exits 1 if any module is not
# proven equivalent, 2 on bad usage.
set -euo pipefail
if [ $# -ne 2 ] || [ ! -d "$1" ] || [ ! -d "$2" ]; then
  echo "usage: $0 OLD_DIR NEW_DIR (two folders of generated Verilog)" >&2
  exit 2
fi
command -v yosys >/dev/null || { echo "yosys not found: apt-get install yosys" >&2; exit 2; }
old=$(cd "$1" && pwd)
new=$(cd "$2" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# The design's files: files.f when the folder has one (testbenches are not part of it), else
# every .v file but tb_*.v.
design_files() {
  if [ -f "$1/files.f" ]; then sed "s|^|$1/|" "$1/files.f" | tr '\n' ' '
  else ls "$1"/*.v | grep -v '/tb_[^/]*$' | tr '\n' ' '; fi
}
status=0
for file in $(design_files "$old"); do
  name=$(basename "$file")
  module=${name%.v}
  if [ ! -f "$new/$name" ]; then
    echo "MISSING  $name (not in $new)"
    status=1
    continue
  fi
  if cmp -s "$file" "$new/$name"; then
    echo "same       $name"
    continue
  fi
  # Each side is read in its own design and stashed, so both may use the same module names.
  cat > "$work/equiv.ys" <<EOF
read_verilog -sv $(design_files "$old")
hierarchy -top $module
proc; memory; flatten; opt_clean
rename $module gold
design -stash gold
read_verilog -sv $(design_files "$new")
hierarchy -top $module
proc; memory; flatten; opt_clean
rename $module gate
design -stash gate
design -copy-from gold -as gold gold
design -copy-from gate -as gate gate
equiv_make gold gate equiv
hierarchy -top equiv
async2sync
equiv_simple -seq 2
equiv_induct -seq 2
equiv_status -assert
EOF
  if yosys -q -l "$work/$module.log" -s "$work/equiv.ys" >/dev/null 2>&1; then
    echo "equivalent $name"
  else
    echo "DIFFERENT  $name (yosys log: $(grep -m1 -E 'ERROR|unproven' "$work/$module.log" || true))"
    status=1
  fi
done
exit $status
