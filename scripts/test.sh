#!/usr/bin/env bash
# The whole test suite on a fresh Debian machine: set up, build, run every test with ctest.
#   scripts/test.sh                 Release build in build/
#   SANITIZE=1 scripts/test.sh      ASan+UBSan build in build-asan/
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${SANITIZE:-0}" = 1 ]; then
  export BUILD_DIR=build-asan CMAKE_ARGS="-DGSQHW_SANITIZE=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo -DGSQHW_BENCH=OFF"
fi
scripts/setup.sh
ctest --test-dir "${BUILD_DIR:-build}" --output-on-failure -j "$(nproc)" --timeout 900
