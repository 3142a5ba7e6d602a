// The fast cycle-accurate model of a generated output-stationary array, and the driver that
// schedules a GEMM onto the array's ports (docs/array-protocol.md). Both read every timing
// figure from the design manifest; nothing here is hard-coded per design.
//
// Schedule (the manifest's "schedule"): output tiles in row-major order (tile row, then tile
// column); tile t = tr * tiles_n + tc covers outputs [tr*R, tr*R+R) x [tc*C, tc*C+C). Each tile
// streams S = max(K, min_steps_per_tile) steps back to back from cycle t*S; steps k >= K are
// zero padding (codes 0, exponents 0; in_group_last on the last padded step). A tile's R result
// beats (rows 0..R-1) appear on cycles t*S + S-1 + latency + r, so the GEMM takes
// T*S + latency + drain_beats - 1 cycles.
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
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "sim/format.h"
#include "sim/gemm.h"
#include "sim/verilator_build.h"

namespace gsqhw {

// What co-simulation needs from manifest.json.
struct ArrayManifest {
  std::string design;  // canonical DesignPoint string
  std::string level;   // "pe", "array", "core"
  std::string top;     // top module
  std::vector<std::string> files;
  std::string format, acc;
  int rows = 1, cols = 1;
  int code_width = 0, exp_width = 0, acc_width = 0, flags_width = 2;
  std::vector<PortSpec> ports;  // every port except clk and rst, manifest order
  int latency = 0, drain_beats = 0, min_steps_per_tile = 1;
  int64_t macs_per_cycle = 0;

  bool has_port(const std::string& name) const;
  int port_width(const std::string& name) const;  // throws UsageError if absent
  // Throws UsageError naming the missing or inconsistent field.
  static ArrayManifest from_json(const nlohmann::json& manifest);
};

struct GemmTiming {
  int64_t m = 0, n = 0, k = 0;
  int64_t tiles_m = 0, tiles_n = 0, tiles = 0;
  int64_t steps_per_tile = 0;  // S
  int64_t padded_steps = 0;    // zero steps added per tile (S - K)
  int64_t cycles = 0;          // T*S + latency + drain_beats - 1
  int64_t macs = 0;            // useful MACs, m*n*k
  double pe_utilisation = 0;   // macs / (cycles * R * C)
  int64_t a_buffer_writes = 0, b_buffer_writes = 0;  // element codes written
  int64_t a_buffer_reads = 0, b_buffer_reads = 0;    // element codes read
  int64_t exponent_reads = 0;                        // group exponents read (GSE/MX)

  nlohmann::json to_json() const;
};

// Timing and buffer traffic of an M x N x K GEMM; `group_size` 0 when the format has none.
GemmTiming gemm_timing(const ArrayManifest& array, int64_t m, int64_t n, int64_t k,
                       int group_size);

// The cycle on which beat `beat` (0..drain_beats-1) of tile `tile` appears.
int64_t beat_cycle(const ArrayManifest& array, int64_t steps_per_tile, int64_t tile, int beat);

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
