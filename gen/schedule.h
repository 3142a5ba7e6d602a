// The schedule of a GEMM on a generated array (docs/array-protocol.md) and the driver that
// presents its operands on the array's ports, cycle by cycle. Every timing figure comes from
// the design manifest; nothing here is hard-coded per design. The generated testbenches
// (gen/testbench.cpp) and the simulators (sim/cycle_model.h: fast model, Verilator harness,
// sampled co-simulation) share this one schedule.
//
// Schedule (the manifest's "schedule"): output tiles in row-major order (tile row, then tile
// column); tile t = tr * tiles_n + tc covers outputs [tr*R, tr*R+R) x [tc*C, tc*C+C). Each tile
// streams the S steps of tile_steps() back to back from cycle t*S: elements k = 0..K-1 in
// order, with zero padding (tile_steps says where). A tile's R result beats (rows 0..R-1)
// appear on cycles t*S + S-1 + latency + r, so the GEMM takes T*S + latency + drain_beats - 1
// cycles.
#pragma once

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "numerics/format.h"
#include "numerics/gemm.h"

namespace gsqhw {

// One port of a generated module (clk and rst excluded).
struct PortSpec {
  std::string name;
  bool input = true;
  int width = 1;
};

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
  int min_steps_per_group = 1;  // > 1: shared-column GSE arrays (absent in old manifests: 1)
  // The array's own group size (timing.group_size; 0 when absent): minifloat shared-column
  // arrays sum G steps per group although their operands have no groups. The schedule uses
  // it wherever the operands' group size is 0 (schedule_group_size).
  int group_size = 0;
  // Weight-stationary arrays ("dataflow": "ws"): a step is one row of A against R x C held
  // weights; chunk_steps = R reduction elements per chunk (groups / the reduction are padded
  // to whole chunks), weight_preload = cycles before the first step that load the first
  // chunk's weights. Output-stationary: 1 and 0.
  bool weight_stationary = false;
  int chunk_steps = 1, weight_preload = 0;
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

// The group size the schedule follows: the operands' (GSE, MX blocks) when they have one,
// else the array's own (minifloat shared-column arrays), else 0.
inline int schedule_group_size(const ArrayManifest& array, int operand_group_size) {
  return operand_group_size > 0 ? operand_group_size : array.group_size;
}

// One step of a tile as the driver presents it (docs/array-protocol.md, padding rules).
struct TileStep {
  int64_t element = -1;  // k of the element presented, -1 for a zero padding step (codes 0)
  int64_t group = -1;    // group whose exponent codes the step carries, -1: exponent codes 0
  bool group_last = false;
};

// The steps of every tile of a GEMM with reduction length K (`group_size` 0 when the format
// has no groups):
//  - min_steps_per_group == 1: elements 0..K-1, then, when K < min_steps_per_tile, zero steps
//    forming one extra group with exponent codes 0 (it adds exactly nothing);
//  - min_steps_per_group > 1: each group (the last may be partial) is padded with zero
//    elements that carry the group's own exponent codes up to min_steps_per_group steps, and
//    a tile still shorter than min_steps_per_tile extends its last group the same way.
// A zero element adds exactly 0 to its group's integer sum, so no result changes.
std::vector<TileStep> tile_steps(const ArrayManifest& array, int64_t k, int group_size);

// S = tile_steps(...).size() (output-stationary) or chunks x R (weight-stationary), computed
// without building the list.
int64_t steps_per_tile(const ArrayManifest& array, int64_t k, int group_size);

// Weight-stationary: one chunk of a tile, R steps (the tile's rows 0..R-1) against the chunk's
// held weights. Lane i of every step is element elements[i] (-1: a zero element). Groups are
// padded to whole chunks with zero elements, so a chunk lies in one group.
struct WsChunk {
  std::vector<int64_t> elements;  // chunk_steps entries
  int64_t group = -1;             // -1: the format has no groups
  bool first = false, last = false;              // first/last chunk (GSE: group) of the tile
  bool group_first = false, group_last = false;  // GSE: first/last chunk of its group
};
std::vector<WsChunk> ws_chunks(const ArrayManifest& array, int64_t k, int group_size);

// Timing and buffer traffic of an M x N x K GEMM; `group_size` 0 when the format has none.
GemmTiming gemm_timing(const ArrayManifest& array, int64_t m, int64_t n, int64_t k,
                       int group_size);

// The cycle on which beat `beat` (0..drain_beats-1) of tile `tile` appears:
// weight_preload + tile*S + S-1 + latency + beat.
int64_t beat_cycle(const ArrayManifest& array, int64_t steps_per_tile, int64_t tile, int beat);

// The driver's input values, cycle by cycle: `emit(cycle, record)` gets every input port of
// the manifest except clk/rst, in manifest order, packed into 64-bit words (port p starts at
// word stimulus_layout(array)[p], bit 0 = the port's bit 0). Cycles >= the schedule's end are
// idle (all zero). Throws UsageError as write_stimulus does.
std::vector<int> stimulus_layout(const ArrayManifest& array, int* words);
void drive_gemm(const ArrayManifest& array, const QuantizedTensor& a, const QuantizedTensor& b,
                int64_t cycles,
                const std::function<void(int64_t cycle, const std::vector<uint64_t>& record)>& emit);

// The same driver for a chosen sequence of the GEMM's tiles (indices in the row-major tile
// order above), presented back to back exactly as in a whole-GEMM run: run position i takes
// the place of tile i, so its beats come on beat_cycle(array, S, i, r). `tiles` nullptr: every
// tile in order (drive_gemm). Sampled co-simulation runs a sample of tiles this way, so the
// schedule logic is the one the whole-GEMM runs and the fast model use.
void drive_tiles(const ArrayManifest& array, const QuantizedTensor& a, const QuantizedTensor& b,
                 const std::vector<int64_t>* tiles, int64_t cycles,
                 const std::function<void(int64_t cycle, const std::vector<uint64_t>& record)>& emit);

// Cycles until the last beat of a run of `tiles` tiles (+1): a GEMM's GemmTiming::cycles when
// the run is every tile.
int64_t run_cycles(const ArrayManifest& array, int64_t steps_per_tile, int64_t tiles);

// Packing of port values into 64-bit record words (bit 0 of a port = bit `bit` of the record).
constexpr int words64(int width) { return (width + 63) / 64; }

inline void put_bits(uint64_t* words, int64_t bit, int width, uint64_t value) {
  if (width < 64) value &= (uint64_t{1} << width) - 1;
  const int64_t word = bit / 64, shift = bit % 64;
  words[word] |= value << shift;
  if (shift + width > 64) words[word + 1] |= value >> (64 - shift);
}

inline uint64_t get_bits(const uint64_t* words, int64_t bit, int width) {
  const int64_t word = bit / 64, shift = bit % 64;
  uint64_t value = words[word] >> shift;
  if (shift + width > 64) value |= words[word + 1] << (64 - shift);
  if (width < 64) value &= (uint64_t{1} << width) - 1;
  return value;
}

}  // namespace gsqhw
