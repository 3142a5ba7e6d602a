// Helpers shared by the sim/ tests: seeded data and an independent exact rounding reference.
#pragma once

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

namespace gsqhw::test {

// Seeded N(0,1) data with a per-row power-of-two spread 2^U(-spread, spread).
inline std::vector<float> random_matrix(int64_t rows, int64_t cols, uint32_t seed,
                                        int spread = 0) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal;
  std::uniform_int_distribution<int> exponent(-spread, spread);
  std::vector<float> x(static_cast<size_t>(rows * cols));
  for (int64_t r = 0; r < rows; ++r) {
    int e = exponent(rng);
    for (int64_t c = 0; c < cols; ++c) x[r * cols + c] = std::ldexp(normal(rng), e);
  }
  return x;
}

// Independent reference: RNE_fp32(n * 2^-frac_bits) for an exact 128-bit integer n, by
// integer arithmetic only (no floating-point rounding involved).
inline float reference_round_scaled(__int128 n, int frac_bits) {
  if (n == 0) return 0.0f;
  bool negative = n < 0;
  unsigned __int128 a = negative ? -static_cast<unsigned __int128>(n) : n;
  int msb = 0;
  for (unsigned __int128 t = a; t > 1; t >>= 1) ++msb;
  int lead_exp = msb - frac_bits;                     // value in [2^lead_exp, 2^(lead_exp+1))
  int ulp_exp = std::max(lead_exp - 23, -149);        // float quantum at that magnitude
  int drop = ulp_exp + frac_bits;                     // low bits of `a` below the quantum
  unsigned __int128 q;
  if (drop <= 0) {
    q = a << -drop;
  } else {
    q = a >> drop;
    unsigned __int128 rest = a & ((static_cast<unsigned __int128>(1) << drop) - 1);
    unsigned __int128 half = static_cast<unsigned __int128>(1) << (drop - 1);
    if (rest > half || (rest == half && (q & 1))) ++q;
  }
  double v = std::ldexp(static_cast<double>(q), ulp_exp);  // q <= 2^24: exact
  float f = v >= 0x1.0p128 ? std::numeric_limits<float>::infinity() : static_cast<float>(v);
  return negative ? -f : f;
}

// An exactly representable value as an integer count of 2^-frac_bits (must be exact).
inline __int128 to_units(double v, int frac_bits) {
  return static_cast<__int128>(std::ldexp(v, frac_bits));
}

inline uint32_t bits_of(float f) { return std::bit_cast<uint32_t>(f); }

}  // namespace gsqhw::test
