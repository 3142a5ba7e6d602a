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

// The canonical NaN of the fp32 accumulator (a NaN accumulator is always this pattern).
inline constexpr uint32_t kCanonicalNaNBits = 0x7fc00000u;

// The plain scalar golden GEMM: one output at a time, straight from the semantics in
// numerics/gemm.h. golden_gemm() must give identical results (the tests compare them); this one
// is the readable reference, and slow.
GemmResult golden_gemm_scalar(const QuantizedTensor& a, const QuantizedTensor& b,
                              const AccumulatorSpec& acc);

}  // namespace gsqhw
