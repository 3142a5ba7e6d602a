// Sampled-tile co-simulation support: which special cases each output tile of a GEMM contains
// (from the fast model's outputs and the operands) and the seeded choice of the tiles the RTL
// runs (docs/cosim.md, "Sampled-tile co-simulation").
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "sim/cycle_model.h"
#include "numerics/gemm.h"

namespace gsqhw {

// Case bits of a tile (kCoverageCases in sim/cosim.h names them in this order).
enum TileCase : uint32_t {
  kCaseSaturation = 1u << 0,      // an output's fixed accumulator ends at its min/max code
  kCaseStickyOverflow = 1u << 1,  // an output's sticky overflow flag is set
  kCaseNanGroup = 1u << 2,        // an output's NaN flag is set (NaN group / non-finite input)
  kCaseZeroGroup = 1u << 3,       // an operand group of the tile is all zero codes
  kCasePartialGroup = 1u << 4,    // K is not a multiple of the group size
  kCaseMaxExponent = 1u << 5,     // an operand group exponent at the format's largest code
  kCaseMinExponent = 1u << 6,     // a non-zero operand group at exponent code 0 (the smallest)
  kCaseFp8Subnormal = 1u << 7,    // an FP8 operand element is subnormal
};
constexpr int kTileCaseCount = 8;

// Per tile: its case bits and, per case, how many outputs (output cases) or operand groups /
// elements (operand cases) of the tile show it; whether it is an edge tile (partial rows or
// columns: padded lanes).
struct TileFacts {
  std::vector<uint32_t> cases;                 // per tile
  std::vector<std::vector<int32_t>> counts;    // [case][tile]
  std::vector<uint8_t> edge;                   // per tile
};

// What the hardware format looks like, for the operand cases.
struct OperandShape {
  int exp_width = 0;      // group exponent bits (0: no group exponents)
  bool fp8 = false;       // element codes are FP8 (subnormal check)
  int fp8_mantissa = 0;   // mantissa bits of the FP8 codes
  int fp8_exponent = 0;   // exponent bits of the FP8 codes
};
OperandShape operand_shape(const std::string& format_spec, int exp_width);

TileFacts classify_tiles(const ArrayManifest& array, const GemmTiming& t, const QuantizedTensor& a,
                         const QuantizedTensor& b, const Beats& fast, const AccumulatorSpec& acc,
                         const OperandShape& shape);

struct TileChoice {
  std::vector<int64_t> tiles;  // ascending tile indices the RTL runs
  int64_t random = 0;          // tiles drawn by the random sample
  int64_t edge = 0;            // edge tiles (all of them run)
  std::vector<int64_t> capped; // per case: tiles left out by max_special
};

// The random sample (`fraction` of the tiles, rounded up, or `count` tiles; at least one tile
// per GEMM), every edge tile, and per special case up to `max_special` tiles showing it (drawn at
// random when more). Deterministic in (seed, gemm_name).
TileChoice choose_tiles(const TileFacts& facts, bool fraction, double value, uint64_t seed,
                        const std::string& gemm_name, int64_t max_special);

}  // namespace gsqhw
