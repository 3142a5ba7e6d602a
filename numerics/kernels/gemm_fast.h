// Internals of the golden GEMM shared by the scalar reference (gemm.cpp) and the fast
// kernels (gemm_fast.cpp). Not part of the public contract; numerics/gemm.h is.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "numerics/gemm.h"
#include "numerics/gse.h"
#include "numerics/minifloat.h"

namespace gsqhw {

// The validated pairing of two GEMM operands.
struct GemmOperands {
  enum class Kind { gse, minifloat, int8 };
  Kind kind = Kind::gse;
  GseParams gse_a, gse_b;                     // gse
  const MinifloatParams* mf_a = nullptr;      // minifloat
  const MinifloatParams* mf_b = nullptr;
  int block_a = 0, block_b = 0;               // MX block sizes (0: none)
  bool int8_a_per_channel = true, int8_b_per_channel = true;  // int8
};

// Throws UsageError when A and B cannot be multiplied (numerics/gemm.h).
GemmOperands classify_gemm_operands(const QuantizedTensor& a, const QuantizedTensor& b);

GemmResult make_gemm_result(int64_t m, int64_t n);

// Writes acc_raw, out (dequantize step of numerics/gemm.h) and flags of output (m, n).
void finish_gemm_output(const GemmOperands& ops, const QuantizedTensor& a,
                        const QuantizedTensor& b, const AccumulatorSpec& acc, int64_t m,
                        int64_t n, int64_t fixed_acc, float fp_acc, uint8_t flags,
                        GemmResult& result);

// The scalar reference for one output (m, n), written into `result` (also the fallback of the
// fast kernels for outputs they cannot handle exactly: NaN groups, saturation, ...).
void scalar_gemm_output(const GemmOperands& ops, const QuantizedTensor& a,
                        const QuantizedTensor& b, const AccumulatorSpec& acc, int64_t m,
                        int64_t n, GemmResult& result);

// Computes output rows [row_begin, row_end) with an optimised kernel, bit-identical to the
// scalar reference. Returns false (and writes nothing) when no fast kernel covers the case.
bool fast_gemm_rows(const GemmOperands& ops, const QuantizedTensor& a, const QuantizedTensor& b,
                    const AccumulatorSpec& acc, int64_t row_begin, int64_t row_end,
                    GemmResult& result);

// The fast paths of numerics/kernels/gemm_fast_int8.cpp, called by fast_gemm_rows() (same contract):
// int8 x int8 (fp32 and fixed accumulators) and minifloat x minifloat with a fixed accumulator.
bool fast_int8_rows(const GemmOperands& ops, const QuantizedTensor& a, const QuantizedTensor& b,
                    const AccumulatorSpec& acc, int64_t row_begin, int64_t row_end,
                    GemmResult& result);
bool fast_minifloat_fixed_rows(const GemmOperands& ops, const QuantizedTensor& a,
                               const QuantizedTensor& b, const AccumulatorSpec& acc,
                               int64_t row_begin, int64_t row_end, GemmResult& result);

// The decoded value of every code of a minifloat operand format (at most 16 bits), built once
// per process and format: 65536 decodes for BF16/FP16 cost more than a small GEMM, so no call
// should redo them. For finite nonzero values also the exponent (ilogb) and the exponent of
// the lowest set bit; `float_value` is exact where `finite_values_are_floats` (FP8, BF16, FP16).
struct MinifloatCodeTable {
  std::vector<double> value;
  std::vector<float> float_value;
  std::vector<int> exponent, lowest_bit;
  std::vector<uint8_t> finite_nonzero, non_finite;
  bool finite_values_are_floats = true;
};
// p must be one of the program-lifetime params minifloat_operand_params() returns (the table
// cache is keyed by its address), with p.total_bits() <= 16. Thread-safe.
const MinifloatCodeTable& minifloat_code_table(const MinifloatParams& p);

// The blocking of the 4x16 register-tile kernels that read A row-major (plus a zero row that
// pads the last row tile) and B in panels of 16 columns [panel][unit][16] of 4-byte lanes:
// K in blocks of 512 units (4 rows of A: a few KiB, in L1), panels in blocks of ~384 KiB of
// B (in L2); for every K block, panel block, row tile and panel of the block, in that order,
//   run_tile(a_rows, b_panel, units_in_block, state_tile)
// with a_rows[r] the tile's rows at the block's first unit, b_panel the panel's slice of the
// block, and state_tile = state + (tile * panels + panel) * kFloatFormTileRows * 16, the
// tile's accumulators, which persist across K blocks (so every output adds its units in
// order). A unit is one k (floats) or one k-pair (int16 pairs: a_per_unit = 2 A elements).
// Instantiate it inside functions compiled for AVX2, so that the tile kernels inline.
template <typename AElement, typename BLane, typename StateElement, typename RunTile>
inline void for_each_blocked_tile(const AElement* a, int64_t a_per_unit, const BLane* b,
                                  int64_t row_count, int64_t units, int64_t panels,
                                  StateElement* state, RunTile&& run_tile) {
  static_assert(sizeof(BLane) == 4, "the panel block size assumes 4-byte lanes of B");
  constexpr int kRows = 4, kCols = 16;
  constexpr int64_t kBlockUnits = 512;
  const int64_t row_tiles = (row_count + kRows - 1) / kRows;
  const int64_t panels_per_block = std::max<int64_t>(1, (384 << 10) / (kBlockUnits * kCols * 4));
  for (int64_t u0 = 0; u0 < units; u0 += kBlockUnits) {
    const int64_t count = std::min(kBlockUnits, units - u0);
    for (int64_t block = 0; block < panels; block += panels_per_block) {
      const int64_t block_end = std::min(panels, block + panels_per_block);
      for (int64_t tile = 0; tile < row_tiles; ++tile) {
        const AElement* a_rows[kRows];
        for (int r = 0; r < kRows; ++r) {
          const int64_t row = std::min(tile * kRows + r, row_count);  // row_count: the zero row
          a_rows[r] = a + (row * units + u0) * a_per_unit;
        }
        for (int64_t panel = block; panel < block_end; ++panel)
          run_tile(a_rows, b + (panel * units + u0) * kCols, count,
                   state + (tile * panels + panel) * kRows * kCols);
      }
    }
  }
}

// The minifloat "float form" of gemm_fast.cpp, shared with the INT8 fp32 path: for every
// output, acc = fma(a[m][k], b[n][k], acc) in k order, which is exactly the one RNE rounding
// of acc + a*b per element when every operand is an exact float (the product inside an FMA
// is exact). Needs AVX2+FMA and the default MXCSR (fast_gemm_rows checks both).
inline constexpr int kFloatFormTileRows = 4;  // A rows per tile of `state`
struct MinifloatFloatJob {
  const float* a;  // (row_count + 1) x k_len, the last row zero (pads the last row tile)
  const float* b;  // panels16 x k_len x 16, 32-byte aligned; missing columns zero
  int64_t row_count, k_len, panels16;
};
// state: row tiles x panels16 x kFloatFormTileRows x 16 floats, 32-byte aligned, zeroed
// (+0.0) by the caller; on return, output (row, n) of the job is
// state[((row / 4 * panels16 + n / 16) * 4 + row % 4) * 16 + n % 16].
void minifloat_fp32_float_rows(const MinifloatFloatJob& job, float* state);

}  // namespace gsqhw
