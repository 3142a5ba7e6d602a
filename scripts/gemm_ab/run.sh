#!/bin/bash
# A/B speed comparison of variants of numerics/kernels/gemm_fast.cpp, paired in one process. Developer
# tool for kernel work on a noisy machine (docs/numerics.md, "How speed is compared").
#
#   scripts/gemm_ab/run.sh SPEC ACC ROUNDS VARIANT.cpp [VARIANT.cpp ...]
#   e.g. git show HEAD:numerics/kernels/gemm_fast.cpp > /tmp/old.cpp; cp numerics/kernels/gemm_fast.cpp /tmp/new.cpp
#        scripts/gemm_ab/run.sh "gse:b=8,g=32,e=5" fixed32.16 40 /tmp/old.cpp /tmp/new.cpp
#
# Each variant is compiled with its exported symbols renamed, linked with the rest of the
# library from build/ (build it first: cmake --build build --target gsqhw_sim), and checked
# bit for bit against golden_gemm before it is timed (AB_NOCHECK=1 skips the check, for
# what-if experiments that compute wrong results on purpose). Every round runs one sgemm and
# then every variant in a shuffled order; the report gives the best time of each, its ratio
# to sgemm, and the median over rounds of t(first variant) / t(variant) from the same round.
set -euo pipefail
if [ $# -lt 4 ]; then sed -n '2,14p' "$0"; exit 2; fi
spec=$1; acc=$2; rounds=$3; shift 3
repo=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
decls=""; objs=""; i=0
for file in "$@"; do
  [ -f "$file" ] || { echo "no such variant file: $file" >&2; exit 2; }
  name=v$i; i=$((i + 1))
  echo "$name = $file"
  g++ -O3 -DNDEBUG -std=c++20 -I"$repo" -Dfast_gemm_rows=fast_gemm_rows_$name \
      -Dminifloat_fp32_float_rows=minifloat_fp32_float_rows_$name -c "$file" -o "$work/$name.o"
  decls="$decls V($name)"; objs="$objs $work/$name.o"
done
g++ -O2 -std=c++20 -I"$repo" "-DVARIANT_DECLS=$decls" "$repo/scripts/gemm_ab/ab.cpp" $objs \
    "$repo/build/sim/libgsqhw_sim.a" "$repo/build/gen/libgsqhw_gen.a" \
    "$repo/build/workloads/libgsqhw_workloads.a" -lfmt -lopenblas -lpthread -o "$work/ab"
"$work/ab" "$spec" "$acc" "$rounds"
