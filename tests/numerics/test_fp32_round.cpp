// Exact RNE rounding to FP32 (numerics/fp32_round.h) against an integer-only reference.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>

#include "numerics/fp32_round.h"
#include "tests/numerics/numerics_test_util.h"

namespace gsqhw {
namespace {

TEST(Fp32Round, MidpointsAreDecidedByTheLowPart) {
  const double one_plus_half_ulp = 1.0 + std::ldexp(1.0, -24);  // between 1 and 1 + 2^-23
  EXPECT_EQ(round_pair_to_fp32(one_plus_half_ulp, 0.0), 1.0f);  // tie: even
  EXPECT_EQ(round_pair_to_fp32(one_plus_half_ulp, 1e-30), 1.0f + std::ldexp(1.0f, -23));
  EXPECT_EQ(round_pair_to_fp32(one_plus_half_ulp, -1e-30), 1.0f);
  // The double-rounding trap: float(1 + 2^-24 + 2^-80) computed via double gives 1.0.
  EXPECT_EQ(add_exact_fp32(1.0f, std::ldexp(1.0, -24) + std::ldexp(1.0, -60)),
            1.0f + std::ldexp(1.0f, -23));
  EXPECT_EQ(add_exact_fp32(1.0f + std::ldexp(1.0f, -23), std::ldexp(1.0, -24)),
            1.0f + std::ldexp(1.0f, -22));  // tie to even upward
  // Subnormals: half of the smallest subnormal ties to zero.
  EXPECT_EQ(add_exact_fp32(0.0f, std::ldexp(1.0, -150)), 0.0f);
  EXPECT_EQ(add_exact_fp32(0.0f, std::ldexp(1.0, -150) + std::ldexp(1.0, -200)),
            std::numeric_limits<float>::denorm_min());
  EXPECT_EQ(add_exact_fp32(0.0f, std::ldexp(3.0, -150)), 2 * std::numeric_limits<float>::denorm_min());
}

TEST(Fp32Round, OverflowToInfinity) {
  const float max = std::numeric_limits<float>::max();
  const double half_ulp = std::ldexp(1.0, 103);
  EXPECT_EQ(add_exact_fp32(max, half_ulp - 1e20), max);
  EXPECT_TRUE(std::isinf(add_exact_fp32(max, half_ulp)));  // tie rounds to "even" 2^128 = Inf
  EXPECT_EQ(round_pair_to_fp32(static_cast<double>(max) + half_ulp, -1.0), max);
  EXPECT_TRUE(std::isinf(add_exact_fp32(-max, -half_ulp)));
  EXPECT_TRUE(std::isinf(add_exact_fp32(0.0f, 1e300)));
  EXPECT_TRUE(std::isnan(add_exact_fp32(INFINITY, -1e300 * 1e10)));  // Inf - Inf
  EXPECT_EQ(add_exact_fp32(INFINITY, -1e30), INFINITY);
  EXPECT_TRUE(std::isnan(add_exact_fp32(NAN, 1.0)));
}

TEST(Fp32Round, RandomAccumulationMatchesIntegerReference) {
  // Addends are multiples of 2^-60 below 2^40 (like GSE group sums with small exponents):
  // the exact running sum fits an __int128 in units of 2^-60.
  const int kUnits = 60;
  std::mt19937_64 rng(99);
  std::uniform_int_distribution<int> bits(1, 26), shift(-60, 14);
  for (int trial = 0; trial < 2000; ++trial) {
    float acc = 0.0f;
    for (int step = 0; step < 50; ++step) {
      int64_t mantissa = static_cast<int64_t>(rng() % (1ull << bits(rng)));
      if (rng() & 1) mantissa = -mantissa;
      int s = shift(rng);
      double addend = std::ldexp(static_cast<double>(mantissa), s);
      __int128 exact = test::to_units(acc, kUnits) + test::to_units(addend, kUnits);
      float expected = test::reference_round_scaled(exact, kUnits);
      acc = add_exact_fp32(acc, addend);
      ASSERT_EQ(test::bits_of(acc), test::bits_of(expected))
          << "trial " << trial << " step " << step;
    }
  }
}

TEST(Fp32Round, ScaledIntegersMatchIntegerReference) {
  std::mt19937_64 rng(5);
  for (int i = 0; i < 100000; ++i) {
    int64_t v = static_cast<int64_t>(rng()) >> (rng() % 64);
    int exp2 = static_cast<int>(rng() % 100) - 60;
    float got = scaled_int_to_fp32(v, exp2);
    float expected = test::reference_round_scaled(static_cast<__int128>(v) << 64, 64 - exp2);
    ASSERT_EQ(test::bits_of(got), test::bits_of(expected)) << v << " * 2^" << exp2;
  }
  EXPECT_EQ(scaled_int_to_fp32(std::numeric_limits<int64_t>::min(), 0), -0x1.0p63f);
  EXPECT_EQ(scaled_int_to_fp32(std::numeric_limits<int64_t>::max(), 0), 0x1.0p63f);
  EXPECT_EQ(scaled_int_to_fp32((1ll << 24) + 1, 0), 0x1.0p24f);  // tie to even
  EXPECT_EQ(scaled_int_to_fp32((1ll << 24) + 3, 0), 0x1.0p24f + 4);
}

}  // namespace
}  // namespace gsqhw
