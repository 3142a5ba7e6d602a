#!/usr/bin/env bash
# Installs the Debian packages gsqhw needs and that this machine lacks, then configures and
# builds into build/ (the CLI lands at build/gsqhw). Safe to run again: it skips what is present.
#   scripts/setup.sh            set up and build (Release)
#   BUILD_DIR=... CMAKE_ARGS=... scripts/setup.sh   another build folder / extra CMake options
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  build-essential cmake pkg-config git
  libgtest-dev libgmock-dev libbenchmark-dev libboost-dev
  nlohmann-json3-dev libcli11-dev libtomlplusplus-dev libfmt-dev libsqlite3-dev zlib1g-dev libopenblas-dev
  libsystemc-dev verilator ccache iverilog yosys opensta qflow-tech-osu018 gnuplot-nox
  clang libclang-rt-14-dev
  slurm-wlm munge
  fortunes-min
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

build_dir="${BUILD_DIR:-build}"
cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=Release ${CMAKE_ARGS:-} >/dev/null
cmake --build "$build_dir" -j "$(nproc)"
