// Co-simulation of generated RTL (Verilated) or of the fast cycle model against the golden
// model, on LoRA traces. Also the source of switching activity for power analysis.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "sim/design.h"

namespace gsqhw {

struct CosimOptions {
  enum class Engine { rtl, fast, lockstep };
  Engine engine = Engine::rtl;
  std::filesystem::path cache_dir;                  // Verilator build cache (default: ~/.cache/gsqhw or $GSQHW_CACHE)
  std::optional<std::filesystem::path> waves;       // FST/VCD of a window around the first mismatch
  std::optional<std::filesystem::path> activity;    // write switching activity (JSON) here
  // Gate-level: simulate these Verilog files (a mapped netlist plus cell models) instead of
  // the generated RTL; the top module and ports are those of the design's manifest.
  std::vector<std::filesystem::path> netlist_files;
  int max_mismatches_reported = 10;
};

struct Mismatch {
  std::string design, trace;
  int64_t gemm_row = 0, gemm_col = 0;  // output index
  int tile_row = 0, tile_col = 0;      // output tile
  int pe_row = 0, pe_col = 0;          // PE coordinates in the array
  int64_t cycle = 0;
  int64_t expected_acc = 0, actual_acc = 0;
  uint8_t expected_flags = 0, actual_flags = 0;
  float expected_value = 0, actual_value = 0;
};

struct CosimResult {
  bool pass = false;
  int64_t gemms = 0, macs = 0, cycles = 0;
  double wall_seconds = 0;
  std::vector<Mismatch> mismatches;  // the first few
  std::optional<std::filesystem::path> waves_written;
  std::optional<std::filesystem::path> activity_written;
};

// `traces` are trace files (workloads/trace.h) or folders of them.
CosimResult run_cosim(const DesignPoint& design, const std::vector<std::filesystem::path>& traces,
                      const CosimOptions& options);

}  // namespace gsqhw
