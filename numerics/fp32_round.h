// Exact rounding to IEEE binary32, round to nearest, ties to even (RNE).
//
// The golden fp32 accumulator is defined as ONE correct rounding of the exact sum
// acc + addend (numerics/gemm.h). Computing acc + addend in float, or in double and then casting to
// float, is wrong in rare cases (double rounding). These helpers are the reference that the
// RTL fp32 accumulator must match bit for bit.
#pragma once

#include <cstdint>

namespace gsqhw {

// Error-free transformation (Knuth's TwoSum): s = fl64(a + b) and a + b == s + err exactly,
// for finite a, b whose sum does not overflow. Needs strict IEEE double arithmetic
// (the sim library is built with -ffp-contract=off; never -ffast-math).
inline void two_sum(double a, double b, double& s, double& err) {
  s = a + b;
  double bb = s - a;
  err = (a - (s - bb)) + (b - bb);
}

// RNE_fp32(hi + lo) for an exact value given as an unevaluated pair with hi = fl64(hi + lo)
// (that is |lo| <= half an ulp of hi, as produced by two_sum). Handles float subnormals,
// overflow to +-Inf (per IEEE: values at or above FLT_MAX + half an ulp round to Inf), NaN and
// infinities in hi (returned as float(hi)).
float round_pair_to_fp32(double hi, double lo);

// RNE_fp32(acc + addend): the golden fp32 accumulate step. `addend` must be exactly the value
// to add (it is, for GSE group sums, FP8/BF16/FP16 products and INT8 products). IEEE specials:
// Inf + finite = Inf, Inf - Inf = NaN, NaN propagates.
float add_exact_fp32(float acc, double addend);

// RNE_fp32(value * 2^exp2) for any 64-bit integer value (|exp2| up to ~900).
float scaled_int_to_fp32(int64_t value, int exp2);

// IEEE bit pattern helpers.
uint32_t fp32_bits(float f);
float fp32_from_bits(uint32_t bits);

}  // namespace gsqhw
