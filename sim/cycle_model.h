// The fast cycle-accurate model of a generated array, the stimulus file of the Verilator
// harness and the decoding of its results. The schedule and the port driver they follow are
// gen/schedule.h (shared with the generated testbenches).
//
// The fast model produces the same result beats as the RTL (outputs per tile row computed by
// golden_gemm on the tile's operand stripe; padded lanes are 0), on the same cycles, plus
// per-GEMM statistics. Operand buffer model (for the reads/writes figures): the A buffer holds
// one R x K stripe and is written once per tile row; the B buffer holds all of B (N x K) and is
// written once per GEMM; every step reads R codes from A and C codes from B (padded lanes and
// padding steps included, they are real buffer reads of zeros); GSE/MX exponents are read once
// per group per lane.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "gen/schedule.h"
#include "numerics/format.h"
#include "numerics/gemm.h"
#include "sim/verilator_build.h"

namespace gsqhw {

// Result beats as the array emits them, in order. Lane j of beat i is acc[i*cols + j].
struct Beats {
  int cols = 0;
  std::vector<int64_t> cycle;
  std::vector<int> row;          // out_row
  std::vector<int64_t> acc;      // fixed: sign-extended; fp32: the IEEE bits (uint32)
  std::vector<uint8_t> flags;
  int64_t simulated_cycles = 0;  // cycles the engine ran (RTL: includes the slack after the end)

  size_t size() const { return cycle.size(); }
};

// Rows [r0, r1) of a quantized tensor (codes, exponents and row/block scales follow): the
// operand stripe of a tile row (A) or tile column (B).
QuantizedTensor quantized_rows(const QuantizedTensor& q, int64_t r0, int64_t r1);

// The fast cycle-accurate model: same beats as the RTL, computed tile row by tile row.
// `threads` 0 = all cores (results do not depend on it).
Beats fast_model_run(const ArrayManifest& array, const QuantizedTensor& a,
                     const QuantizedTensor& b, const AccumulatorSpec& acc, int threads = 0);

// The driver: writes the per-cycle stimulus (sim/harness/tb_main.cpp format) that presents the
// GEMM per the schedule above, followed by `slack_cycles` idle cycles (so late or extra beats
// are seen). Returns the number of cycles written. Throws UsageError when the manifest has an
// input port the driver does not know or the operands do not fit the ports.
int64_t write_stimulus(const ArrayManifest& array, const QuantizedTensor& a,
                       const QuantizedTensor& b, int64_t slack_cycles,
                       const std::filesystem::path& file);

// Reads the testbench's results file into beats (lanes decoded from out_acc/out_flags per the
// manifest widths; fixed accumulators sign-extended when `sign_extend`). Throws UsageError on
// a malformed or unfinished (no trailer) file.
Beats read_results(const ArrayManifest& array, bool sign_extend,
                   const std::filesystem::path& file);

}  // namespace gsqhw
