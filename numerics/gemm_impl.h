// Building blocks of the golden GEMM (numerics/gemm.h), exposed for the tests, the cycle model and
// the RTL reference checks. Every function here is part of the bit-exact contract.
#pragma once

#include <cstdint>

#include "numerics/gemm.h"

namespace gsqhw {

// Largest / smallest value of a W-bit two's-complement accumulator (W in 2..64).
inline int64_t fixed_max(int width) {
  return static_cast<int64_t>((static_cast<unsigned __int128>(1) << (width - 1)) - 1);
}
inline int64_t fixed_min(int width) { return -fixed_max(width) - 1; }

// value * 2^shift as an integer (shift < 0: arithmetic shift right = floor), saturated to
// W bits; sets kFlagOverflow in `flags` when it saturates.
int64_t fixed_addend(int64_t value, int shift, int width, uint8_t& flags);

// floor(value * 2^frac_bits) for an exact double `value`, saturated to W bits (flag as above).
int64_t fixed_addend_from_double(double value, int frac_bits, int width, uint8_t& flags);

// saturate_W(acc + addend); sets kFlagOverflow when it saturates.
int64_t fixed_saturating_add(int64_t acc, int64_t addend, int width, uint8_t& flags);

// Minifloat group sums (acc.group > 0, numerics/gemm.h): q, the exponent of the least
// significant bit of every product of an A x B element pair, and the signed width of the exact
// group sum S_j = sum / 2^q of `group` products: 1 + the product magnitude bits (significand
// product, shifted by at most the largest exponent codes' sum less 2) + ceil(log2 group).
// E4M3 x E4M3, G = 32: q = -18, 1 + 36 + 5 = 42 bits. The RTL's group-sum register has the
// same width (gen/pe_spec.h).
int minifloat_product_lsb_exp(const MinifloatParams& a, const MinifloatParams& b);
int minifloat_product_bits(const MinifloatParams& a, const MinifloatParams& b);
int minifloat_group_sum_bits(const MinifloatParams& a, const MinifloatParams& b, int group);
// The widest exact group sum the golden model adds exactly (int64 and double).
inline constexpr int kMaxMinifloatGroupSumBits = 53;

// The canonical NaN of the fp32 accumulator (a NaN accumulator is always this pattern).
inline constexpr uint32_t kCanonicalNaNBits = 0x7fc00000u;

// The plain scalar golden GEMM: one output at a time, straight from the semantics in
// numerics/gemm.h. golden_gemm() must give identical results (the tests compare them); this one
// is the readable reference, and slow.
GemmResult golden_gemm_scalar(const QuantizedTensor& a, const QuantizedTensor& b,
                              const AccumulatorSpec& acc);

}  // namespace gsqhw
