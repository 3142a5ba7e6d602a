// The golden GEMM against independent computations, the fast kernels against the scalar
// reference, accumulator saturation and flags, and operand validation.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "base/errors.h"
#include "numerics/format.h"
#include "numerics/gemm.h"
#include "numerics/gemm_impl.h"
#include "numerics/gse.h"
#include "numerics/minifloat.h"
#include "tests/numerics/numerics_test_util.h"

namespace gsqhw {
namespace {

struct Operands {
  QuantizedTensor a, b;
  std::vector<float> da, db;  // dequantized
};

Operands make_operands(const std::string& spec_a, const std::string& spec_b, int64_t m,
                       int64_t n, int64_t k, uint32_t seed, int spread = 4) {
  Operands o;
  auto fa = parse_format(spec_a), fb = parse_format(spec_b);
  std::vector<float> xa = test::random_matrix(m, k, seed, spread);
  std::vector<float> xb = test::random_matrix(n, k, seed + 1, spread);
  o.a = fa->quantize(xa.data(), m, k, seed);
  o.b = fb->quantize(xb.data(), n, k, seed + 2);
  o.da.resize(xa.size());
  o.db.resize(xb.size());
  fa->dequantize(o.a, o.da.data());
  fb->dequantize(o.b, o.db.data());
  return o;
}

void expect_identical(const GemmResult& x, const GemmResult& y, const std::string& what) {
  ASSERT_EQ(x.m, y.m);
  ASSERT_EQ(x.n, y.n);
  for (size_t i = 0; i < x.out.size(); ++i) {
    ASSERT_EQ(x.acc_raw[i], y.acc_raw[i]) << what << " output " << i;
    ASSERT_EQ(x.flags[i], y.flags[i]) << what << " output " << i;
    ASSERT_EQ(test::bits_of(x.out[i]), test::bits_of(y.out[i])) << what << " output " << i;
  }
}

// GSE with a wide fixed accumulator: acc = sum over groups of floor(groupsum * 2^F), where
// the group sums are computed here from the dequantized FP32 values in double.
TEST(GoldenGemm, GseFixedWideAccumulatorIsExact) {
  for (const char* spec : {"gse:b=8,g=32,e=5", "gse:b=4,g=16,e=5,range=full", "gse:b=6,g=8,e=4"}) {
    const int64_t m = 7, n = 5, k = 200;  // partial last group
    Operands o = make_operands(spec, spec, m, n, k, 31);
    const int frac = 40;
    GemmResult r = golden_gemm(o.a, o.b, AccumulatorSpec::parse(fmt::format("fixed64.{}", frac)));
    int g = o.a.group_size;
    for (int64_t i = 0; i < m; ++i) {
      for (int64_t j = 0; j < n; ++j) {
        __int128 expected = 0;
        for (int64_t start = 0; start < k; start += g) {
          double group_sum = 0;  // exact: products share the group scale, < 2^53 units
          for (int64_t t = start; t < std::min(k, start + g); ++t)
            group_sum += static_cast<double>(o.da[i * k + t]) * o.db[j * k + t];
          expected += static_cast<__int128>(std::floor(std::ldexp(group_sum, frac)));
        }
        ASSERT_EQ(r.acc_raw[i * n + j], static_cast<int64_t>(expected)) << spec;
        ASSERT_EQ(r.flags[i * n + j], 0);
        ASSERT_EQ(test::bits_of(r.out[i * n + j]),
                  test::bits_of(test::reference_round_scaled(expected, frac)));
      }
    }
  }
}

// fp32 accumulation, one exact rounding per group, against an integer-only reference.
TEST(GoldenGemm, GseFp32MatchesExactPerStepReference) {
  const int kUnits = 60;
  for (const char* spec : {"gse:b=8,g=32,e=5", "gse:b=3,g=4,e=4", "gse:b=8,g=256,e=5,range=full"}) {
    const int64_t m = 6, n = 9, k = 300;
    Operands o = make_operands(spec, spec, m, n, k, 57, 6);
    GemmResult r = golden_gemm(o.a, o.b, AccumulatorSpec::parse("fp32"));
    int g = o.a.group_size;
    for (int64_t i = 0; i < m; ++i) {
      for (int64_t j = 0; j < n; ++j) {
        float acc = 0.0f;
        for (int64_t start = 0; start < k; start += g) {
          __int128 group = 0;
          for (int64_t t = start; t < std::min(k, start + g); ++t)
            group += test::to_units(static_cast<double>(o.da[i * k + t]) * o.db[j * k + t], kUnits);
          acc = test::reference_round_scaled(test::to_units(acc, kUnits) + group, kUnits);
        }
        ASSERT_EQ(test::bits_of(r.out[i * n + j]), test::bits_of(acc)) << spec << " " << i << "," << j;
        ASSERT_EQ(r.acc_raw[i * n + j], static_cast<int64_t>(test::bits_of(acc)));
      }
    }
  }
}

// FP8 per-element fp32 accumulation against the integer reference (products are multiples
// of 2^-32 for any mix of E4M3/E5M2).
TEST(GoldenGemm, Fp8Fp32MatchesExactPerStepReference) {
  const int kUnits = 64;
  for (auto [sa, sb] : {std::pair{"fp8:e4m3", "fp8:e4m3"}, std::pair{"fp8:e5m2", "fp8:e5m2"},
                        std::pair{"fp8:e4m3", "fp8:e5m2"}}) {
    const int64_t m = 5, n = 6, k = 500;
    Operands o = make_operands(sa, sb, m, n, k, 71, 3);
    GemmResult r = golden_gemm(o.a, o.b, AccumulatorSpec::parse("fp32"));
    for (int64_t i = 0; i < m; ++i) {
      for (int64_t j = 0; j < n; ++j) {
        float acc = 0.0f;
        for (int64_t t = 0; t < k; ++t) {
          double p = static_cast<double>(o.da[i * k + t]) * o.db[j * k + t];
          acc = test::reference_round_scaled(test::to_units(acc, kUnits) + test::to_units(p, kUnits),
                                             kUnits);
        }
        ASSERT_EQ(test::bits_of(r.out[i * n + j]), test::bits_of(acc)) << sa << " x " << sb;
      }
    }
  }
}

TEST(GoldenGemm, MinifloatFixedFloorsEachProduct) {
  for (const char* spec : {"fp8:e4m3", "fp8:e5m2,block=32", "bf16", "fp16"}) {
    const int64_t m = 4, n = 3, k = 100;
    Operands o = make_operands(spec, spec, m, n, k, 5, 2);
    const int frac = 12;  // coarse on purpose: the floor of each product matters
    GemmResult r = golden_gemm(o.a, o.b, AccumulatorSpec::parse(fmt::format("fixed48.{}", frac)));
    for (int64_t i = 0; i < m; ++i) {
      for (int64_t j = 0; j < n; ++j) {
        int64_t expected = 0;
        for (int64_t t = 0; t < k; ++t)
          expected += static_cast<int64_t>(
              std::floor(std::ldexp(static_cast<double>(o.da[i * k + t]) * o.db[j * k + t], frac)));
        ASSERT_EQ(r.acc_raw[i * n + j], expected) << spec;
      }
    }
  }
}

TEST(GoldenGemm, Int8FixedAndFp32WithScales) {
  for (auto [sa, sb] : {std::pair{"int8:per=channel", "int8:per=channel"},
                        std::pair{"int8:per=tensor", "int8:per=channel"}}) {
    const int64_t m = 4, n = 5, k = 64;
    Operands o = make_operands(sa, sb, m, n, k, 9, 3);
    GemmResult fixed = golden_gemm(o.a, o.b, AccumulatorSpec::parse("fixed32.0"));
    GemmResult fp = golden_gemm(o.a, o.b, AccumulatorSpec::parse("fp32"));
    for (int64_t i = 0; i < m; ++i) {
      for (int64_t j = 0; j < n; ++j) {
        int64_t sum = 0;
        for (int64_t t = 0; t < k; ++t)
          sum += static_cast<int64_t>(o.a.codes[i * k + t]) * o.b.codes[j * k + t];
        float sa_ = o.a.scales.size() == 1 ? o.a.scales[0] : o.a.scales[i];
        float sb_ = o.b.scales[j];
        float expected = static_cast<float>(sum) * sa_ * sb_;  // |sum| < 2^24: exact
        EXPECT_EQ(fixed.acc_raw[i * n + j], sum);
        EXPECT_EQ(fixed.out[i * n + j], expected);
        EXPECT_EQ(fp.out[i * n + j], expected);
        EXPECT_EQ(fp.acc_raw[i * n + j], static_cast<int64_t>(test::bits_of(static_cast<float>(sum))));
      }
    }
  }
}

// Hand-built GSE operands: group sums chosen to drive a small accumulator into saturation.
QuantizedTensor gse_tensor(const std::string& spec, int64_t rows, int64_t cols,
                           std::vector<int32_t> codes, std::vector<int32_t> exps) {
  QuantizedTensor t;
  t.format_spec = parse_format(spec)->spec();
  t.rows = rows;
  t.cols = cols;
  t.group_size = GseParams::parse(spec).g;
  t.codes = std::move(codes);
  t.group_exponents = std::move(exps);
  return t;
}

TEST(GoldenGemm, FixedAccumulatorSaturatesWithStickyFlag) {
  // b=8, e=5 (bias 15), g=4; exponent code 15 for both: x_j = -12. With F = 12 each group
  // adds its integer sum S_j. W = 16: range -32768..32767.
  const std::string spec = "gse:b=8,g=4,e=5";
  // Group sums: 4*127*127 = 64516 (the addend itself saturates to 32767), then
  // -4*127*50 = -25400 -> 7367, then +100 -> 7467.
  QuantizedTensor a = gse_tensor(spec, 1, 12,
                                 {127, 127, 127, 127, 127, 127, 127, 127, 1, 0, 0, 0},
                                 {15, 15, 15});
  QuantizedTensor b = gse_tensor(spec, 1, 12,
                                 {127, 127, 127, 127, -50, -50, -50, -50, 100, 0, 0, 0},
                                 {15, 15, 15});
  GemmResult r = golden_gemm(a, b, AccumulatorSpec::parse("fixed16.12"));
  EXPECT_EQ(r.acc_raw[0], 7467);
  EXPECT_EQ(r.flags[0], kFlagOverflow);  // sticky although the final value is in range
  EXPECT_EQ(r.out[0], 7467.0f / 4096);
  // -4*127*127 = -64516 saturates to -32768 (the most negative W-bit value).
  QuantizedTensor neg = b;
  neg.codes = {-127, -127, -127, -127, 0, 0, 0, 0, 0, 0, 0, 0};
  GemmResult rn = golden_gemm(a, neg, AccumulatorSpec::parse("fixed16.12"));
  EXPECT_EQ(rn.acc_raw[0], -32768);
  EXPECT_EQ(rn.flags[0], kFlagOverflow);

  // Saturation of the running sum (not the addend): two groups of 4*127*50 = 25400.
  QuantizedTensor c = gse_tensor(spec, 1, 8, {127, 127, 127, 127, 127, 127, 127, 127}, {15, 15});
  QuantizedTensor d = gse_tensor(spec, 1, 8, {50, 50, 50, 50, 50, 50, 50, 50}, {15, 15});
  GemmResult s = golden_gemm(c, d, AccumulatorSpec::parse("fixed16.12"));
  EXPECT_EQ(s.acc_raw[0], 32767);
  EXPECT_EQ(s.flags[0], kFlagOverflow);
  GemmResult wide = golden_gemm(c, d, AccumulatorSpec::parse("fixed17.12"));
  EXPECT_EQ(wide.acc_raw[0], 50800);
  EXPECT_EQ(wide.flags[0], 0);
  // Negative F: the addend is floor(S_j / 2^3).
  GemmResult coarse = golden_gemm(c, d, AccumulatorSpec::parse("fixed32.9"));
  EXPECT_EQ(coarse.acc_raw[0], 2 * (25400 >> 3));
  // Huge shifts saturate instead of wrapping.
  QuantizedTensor e = gse_tensor(spec, 1, 4, {1, 0, 0, 0}, {30});
  GemmResult big = golden_gemm(e, e, AccumulatorSpec::parse("fixed64.256"));
  EXPECT_EQ(big.acc_raw[0], std::numeric_limits<int64_t>::max());
  EXPECT_EQ(big.flags[0], kFlagOverflow);
}

TEST(GoldenGemm, NanGroupsFlagAndPoisonTheOutput) {
  const std::string spec = "gse:b=8,g=4,e=5";
  QuantizedTensor a = gse_tensor(spec, 2, 8, {1, 2, 3, 4, 5, 6, 7, 8, 1, 1, 1, 1, 1, 1, 1, 1},
                                 {15, 31, 15, 15});
  QuantizedTensor b = gse_tensor(spec, 1, 8, {1, 1, 1, 1, 1, 1, 1, 1}, {15, 15});
  for (const char* acc : {"fixed32.12", "fp32"}) {
    GemmResult r = golden_gemm(a, b, AccumulatorSpec::parse(acc));
    EXPECT_EQ(r.flags[0], kFlagNaN) << acc;
    EXPECT_EQ(test::bits_of(r.out[0]), 0x7fc00000u);
    // The NaN group adds nothing: acc holds the first group's 1+2+3+4 = 10 (x 2^-12).
    if (std::string(acc) == "fp32") EXPECT_EQ(r.acc_raw[0], static_cast<int64_t>(test::bits_of(10.0f / 4096)));
    else EXPECT_EQ(r.acc_raw[0], 10);
    EXPECT_EQ(r.flags[1], 0);
    EXPECT_EQ(r.out[1], 8.0f / 4096);
  }
  // Minifloats: fixed flags NaN/Inf operands; fp32 propagates Inf and canonicalises NaN.
  QuantizedTensor f;
  f.format_spec = "fp8:e5m2,sat=nonsat,block=0";
  f.rows = 1;
  f.cols = 2;
  f.codes = {0x7c, 0x3c};  // +Inf, 1.0
  QuantizedTensor one = f;
  one.codes = {0x3c, 0x3c};
  GemmResult inf_fp32 = golden_gemm(f, one, AccumulatorSpec::parse("fp32"));
  EXPECT_TRUE(std::isinf(inf_fp32.out[0]));
  EXPECT_EQ(inf_fp32.flags[0], 0);
  GemmResult inf_fixed = golden_gemm(f, one, AccumulatorSpec::parse("fixed32.8"));
  EXPECT_EQ(inf_fixed.flags[0], kFlagNaN);
  EXPECT_EQ(inf_fixed.acc_raw[0], 256);
  one.codes = {0xfc, 0x3c};  // -Inf: Inf + -Inf = NaN
  GemmResult nan_fp32 = golden_gemm(f, one, AccumulatorSpec::parse("fp32"));
  EXPECT_EQ(nan_fp32.flags[0], 0);  // +Inf * -Inf = -Inf; acc = -Inf + 1 = -Inf
  EXPECT_TRUE(std::isinf(nan_fp32.out[0]));
  QuantizedTensor g = f;
  g.codes = {0x7c, 0xfc};  // +Inf*1 then -Inf*1
  one.codes = {0x3c, 0x3c};
  GemmResult cancel = golden_gemm(g, one, AccumulatorSpec::parse("fp32"));
  EXPECT_EQ(cancel.flags[0], kFlagNaN);
  EXPECT_EQ(static_cast<uint32_t>(cancel.acc_raw[0]), 0x7fc00000u);
}

TEST(GoldenGemm, FastMatchesScalarOnRandomShapes) {
  std::mt19937 rng(1234);
  const std::vector<std::pair<std::string, std::string>> pairs = {
      {"gse:b=8,g=32,e=5", "gse:b=8,g=32,e=5"},
      {"gse:b=6,g=32,e=5", "gse:b=6,g=32,e=5"},
      {"gse:b=4,g=16,e=4,range=full", "gse:b=8,g=16,e=8"},
      {"gse:b=2,g=4,e=5", "gse:b=3,g=4,e=5,round=stochastic,seed=2"},
      {"gse:b=8,g=256,e=8,range=full", "gse:b=7,g=256,e=6"},
      {"fp8:e4m3", "fp8:e4m3"},
      {"fp8:e4m3,block=32", "fp8:e5m2"},
      {"bf16", "fp16"},
      {"int8:per=channel", "int8:per=tensor"}};
  const std::vector<std::string> accs = {"fixed32.16", "fixed64.30", "fixed20.10", "fixed16.0",
                                         "fixed64.-4", "fp32"};
  for (int trial = 0; trial < 60; ++trial) {
    const auto& [sa, sb] = pairs[trial % pairs.size()];
    int64_t m = 1 + rng() % 20, n = 1 + rng() % 20, k = 1 + rng() % 600;
    int spread = static_cast<int>(rng() % 12);
    Operands o = make_operands(sa, sb, m, n, k, 500 + trial, spread);
    if (trial % 7 == 3 && sa.rfind("gse", 0) == 0) o.a.group_exponents[0] = (1 << GseParams::parse(sa).e) - 1;
    for (const auto& acc_text : accs) {
      AccumulatorSpec acc = AccumulatorSpec::parse(acc_text);
      GemmResult reference = golden_gemm_scalar(o.a, o.b, acc);
      std::string what = fmt::format("{} x {} {}x{}x{} {}", sa, sb, m, n, k, acc_text);
      for (int threads : {1, 2, 3}) expect_identical(golden_gemm(o.a, o.b, acc, threads), reference, what);
    }
  }
}

// The GSE fast path picks its integer kernel from the codes present (offset-binary int8
// vpmaddubsw with int16 partial sums while they provably fit, or int16 vpmaddwd) and its
// epilogue from the exponents present (float or double). Every choice must equal the scalar
// reference.
void expect_fast_matches_scalar(const QuantizedTensor& a, const QuantizedTensor& b,
                                const std::vector<std::string>& accs, const std::string& what) {
  for (const auto& acc_text : accs) {
    AccumulatorSpec acc = AccumulatorSpec::parse(acc_text);
    GemmResult reference = golden_gemm_scalar(a, b, acc);
    for (int threads : {1, 2})
      expect_identical(golden_gemm(a, b, acc, threads), reference, what + " " + acc_text);
  }
}

TEST(GoldenGemm, FastGseMatchesScalarForEveryWidthGroupSizeAndRange) {
  const std::vector<std::string> accs = {"fixed32.16", "fixed24.8", "fixed64.30", "fp32"};
  int seed = 900;
  for (int bits = 2; bits <= 8; ++bits) {
    for (int g : {4, 8, 32, 128, 256}) {
      for (const char* range : {"symmetric", "full"}) {
        std::string spec = fmt::format("gse:b={},g={},e=5,range={}", bits, g, range);
        const int64_t k = 2 * g + 4 + (seed % 29);  // partial last group, K % 32 != 0
        Operands o = make_operands(spec, spec, 9, 19, k, ++seed, 3);  // partial 4x16 tiles
        expect_fast_matches_scalar(o.a, o.b, accs, spec);
      }
    }
  }
}

// Codes drawn uniformly from [lo, hi] (any int32: also outside the declared format, which the
// fast path must notice), group exponent codes from [exp_lo, exp_hi].
QuantizedTensor random_gse_tensor(const std::string& spec, int64_t rows, int64_t cols,
                                  uint32_t seed, int lo, int hi, int exp_lo, int exp_hi) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> code(lo, hi), exponent(exp_lo, exp_hi);
  int g = GseParams::parse(spec).g;
  std::vector<int32_t> codes(static_cast<size_t>(rows * cols)), exps;
  for (auto& c : codes) c = code(rng);
  for (int64_t i = 0; i < rows * ((cols + g - 1) / g); ++i) exps.push_back(exponent(rng));
  return gse_tensor(spec, rows, cols, std::move(codes), std::move(exps));
}

// When both formats declare b = 8 the int16 kernel is taken without scanning the codes first;
// the codes are checked while packing, and codes outside the declared format (e.g. +-5000,
// whose group sums are no longer exact floats) send the call back to the scan. With b = 7
// declared on one side, the scan picks the kernel from the codes present.
TEST(GoldenGemm, FastGseKernelChoiceFollowsTheCodesPresent) {
  const std::string full = "gse:b=8,g=256,e=5,range=full";
  const std::string full7 = "gse:b=7,g=256,e=5,range=full";
  const std::vector<std::string> accs = {"fixed32.16", "fixed64.40", "fp32"};
  // Extremes of every kernel: constant A codes (offset-binary int8 kernel with u8 = 0: the
  // whole sum comes from min_a * sum(b); |S| = 2^22 per group for -128 x -128), wide A with
  // narrow B and the reverse (pair sums near the int16 limit, one or a few int16 steps),
  // full x full (int16 kernel), all zeros.
  struct Case { int a_lo, a_hi, b_lo, b_hi; const char* what; };
  for (Case c : {Case{-128, -128, -128, -128, "-128 x -128"}, Case{-128, 127, -127, 127, "-128 in A"},
                 Case{-127, 127, -128, 127, "-128 in B"}, Case{127, 127, -128, -128, "127 x -128"},
                 Case{-128, 127, -128, 127, "full x full"}, Case{-128, 127, -32, 31, "wide x b=6"},
                 Case{-128, 127, -64, 63, "wide x b=7"}, Case{-8, 7, -128, 127, "b=4 x wide"},
                 Case{0, 0, 0, 0, "zeros"}}) {
    for (const std::string& spec_a : {full7, full}) {
      QuantizedTensor a = random_gse_tensor(spec_a, 6, 600, 11, c.a_lo, c.a_hi, 10, 20);
      QuantizedTensor b = random_gse_tensor(full, 18, 600, 12, c.b_lo, c.b_hi, 10, 20);
      expect_fast_matches_scalar(a, b, accs, fmt::format("{} ({} x b=8)", c.what, spec_a));
    }
  }
  // Codes that no b <= 8 format produces: int16 kernel (|code| < 2^15), scalar beyond. G = 16
  // with whole groups takes the one-pass packing, which narrows with saturation and must see
  // the out-of-range codes in its range.
  for (const std::string small : {"gse:b=8,g=8,e=5", "gse:b=8,g=16,e=5"}) {
    for (auto [lo, hi] : {std::pair{-300, 300}, {-5000, 5000}, {-20000, 20000}, {-32767, 32767},
                          {-32768, 32768}, {-70000, 70000}, {0, 40000}, {-40000, 0}}) {
      QuantizedTensor a = random_gse_tensor(small, 5, 48, 13, lo, hi, 0, 6);
      QuantizedTensor b = random_gse_tensor(small, 17, 48, 14, lo, hi, 0, 6);
      expect_fast_matches_scalar(a, b, {"fixed64.0", "fp32"}, fmt::format("{} codes {}..{}", small, lo, hi));
    }
  }
}

TEST(GoldenGemm, FastGseEpilogueChoiceFollowsTheExponentsPresent) {
  // e=8 (bias 127): the scale 2^x_j = 2^(e_a + e_b - 266) spans far beyond float. Windows
  // of exponent codes put the whole GEMM on the float epilogues (fp32 results subnormal or
  // overflowing to Inf included) or on the double ones (a scale outside float).
  const std::string spec = "gse:b=8,g=32,e=8";
  const std::vector<std::string> accs = {"fp32", "fixed32.16", "fixed32.200", "fixed64.250",
                                         "fixed16.-40"};
  for (auto [lo, hi] : {std::pair{55, 62},    // tiny: fp32 sums near and below 2^-126
                        std::pair{60, 70},    // around the float/double switch
                        std::pair{190, 200},  // huge: fp32 overflows to Inf
                        std::pair{0, 254},    // everything: double epilogues
                        std::pair{120, 135}}) {
    QuantizedTensor a = random_gse_tensor(spec, 7, 200, 21 + lo, -127, 127, lo, hi);
    QuantizedTensor b = random_gse_tensor(spec, 20, 200, 22 + hi, -127, 127, lo, hi);
    expect_fast_matches_scalar(a, b, accs, fmt::format("exponents {}..{}", lo, hi));
  }
}

// Fixed accumulators: a 4x16 tile whose outputs provably stay within int32 and W bits
// (Cauchy-Schwarz bound of the group sums, numerics/kernels/gemm_fast.cpp TileProof) accumulates
// floor(S * 2^x) by integer shifts: left when every x >= 0, right when every x <= 0 (counts
// >= 32 included), both otherwise. Tiles that fail the proof (here: the rows of one row tile
// get the largest exponents, so they saturate) take the per-output bound epilogues and the
// scalar path, in the same GEMM. Partial tiles, partial groups, W < 32, W = 32 and W > 32.
TEST(GoldenGemm, FastGseFixedTileProofAndShiftDirections) {
  const std::string spec = "gse:b=8,g=32,e=5";  // u = code - 21; x = ca + cb - 42 + F
  const std::vector<std::string> accs = {"fixed32.16", "fixed24.8", "fixed64.30", "fixed16.0",
                                         "fixed40.26"};
  struct Window { int lo, hi; const char* what; };
  for (Window w : {Window{13, 20, "x >= 0 at F=16"}, Window{0, 12, "x <= 0 at F=16"},
                   Window{5, 20, "mixed signs"}, Window{0, 31, "every exponent code"}}) {
    // (K = 192 is whole groups: the one-pass packing computes the proof's square sums)
    for (int codes : {3, 127})
      for (int64_t k : {32 * 5 + 7, 32 * 6}) {
        QuantizedTensor a = random_gse_tensor(spec, 13, k, 41 + w.lo, -codes, codes, w.lo, w.hi);
        QuantizedTensor b = random_gse_tensor(spec, 37, k, 42 + w.hi, -codes, codes, w.lo, w.hi);
        for (int64_t r = 4; r < 8; ++r)  // row tile 1: the largest exponent (not NaN): unproven
          for (int64_t j = 0; j < a.groups_per_row(); ++j) a.group_exponents[r * a.groups_per_row() + j] = 30;
        expect_fast_matches_scalar(a, b, accs, fmt::format("{}, codes +-{}, K={}", w.what, codes, k));
      }
  }
}

// The fast GSE driver blocks K (a row tile's A slice <= 8 KiB: 1024 k for int16 codes, 2048
// for int8) and the B panels (12 panels of 16 columns per block here), keeping the tiles'
// accumulators between K blocks. Shapes with several K blocks (the last one partial, ending
// in a partial group) and several panel blocks (the last partial), with proven, bounded
// (saturating) and NaN tiles, every accumulator kind: order of additions included (fp32).
TEST(GoldenGemm, FastGseAcrossKBlocksAndPanelBlocks) {
  struct Case { const char* spec; int codes; };
  for (Case c : {Case{"gse:b=8,g=32,e=5", 127}, Case{"gse:b=6,g=32,e=5", 31},
                 Case{"gse:b=8,g=256,e=5,range=full", 128}})
  for (int64_t k : {4500, 4096}) {  // (4096: whole groups, the one-pass packing)
    QuantizedTensor a = random_gse_tensor(c.spec, 7, k, 51, -c.codes, c.codes - 1, 5, 20);
    QuantizedTensor b = random_gse_tensor(c.spec, 16 * 13 + 5, k, 52, -c.codes + 1, c.codes, 5, 20);
    const int64_t groups = a.groups_per_row();
    for (int64_t j = 0; j < groups; ++j) a.group_exponents[5 * groups + j] = 30;  // row tile 1
    b.group_exponents[100 * groups + groups / 2] = 31;  // one NaN group (panel 6)
    expect_fast_matches_scalar(a, b, {"fixed32.16", "fixed16.0", "fixed64.30", "fp32"}, c.spec);
  }
}

// Minifloats with fp32 accumulation: a float FMA per element when every decoded value
// (MX scale included) is exactly a float, else the double form. Random codes and scales
// around the edges: subnormal and overflowing sums, scales beyond the float range.
QuantizedTensor random_minifloat_tensor(const std::string& spec, int64_t rows, int64_t cols,
                                        uint32_t seed, int code_bits, int scale_lo, int scale_hi) {
  std::mt19937 rng(seed);
  QuantizedTensor t;
  t.format_spec = parse_format(spec)->spec();
  t.rows = rows;
  t.cols = cols;
  std::uniform_int_distribution<int> code(0, (1 << code_bits) - 1), scale(scale_lo, scale_hi);
  for (int64_t i = 0; i < rows * cols; ++i) t.codes.push_back(code(rng));
  if (scale_hi > 0) {
    t.group_size = 32;
    for (int64_t i = 0; i < rows * ((cols + 31) / 32); ++i) t.group_exponents.push_back(scale(rng));
  }
  return t;
}

TEST(GoldenGemm, FastMinifloatFp32MatchesScalarAtTheRangeEdges) {
  struct Case { const char* spec; int bits, scale_lo, scale_hi; };
  for (Case c : {Case{"fp8:e4m3", 8, 0, 0}, Case{"fp8:e5m2", 8, 0, 0}, Case{"bf16", 16, 0, 0},
                 Case{"fp16", 16, 0, 0}, Case{"fp8:e4m3,block=32", 8, 60, 70},
                 Case{"fp8:e5m2,block=32", 8, 180, 190}, Case{"fp8:e4m3,block=32", 8, 0, 254}}) {
    QuantizedTensor a = random_minifloat_tensor(c.spec, 5, 77, 31, c.bits, c.scale_lo, c.scale_hi);
    QuantizedTensor b = random_minifloat_tensor(c.spec, 37, 77, 32, c.bits, c.scale_lo, c.scale_hi);
    // Random codes include NaN and Inf codes; keep one clean copy of each operand as well.
    for (bool clean : {false, true}) {
      if (clean) {
        const MinifloatParams& p = c.bits == 16 ? (std::string(c.spec) == "bf16" ? bf16_params() : fp16_params())
                                                : (std::string(c.spec).find("e4m3") != std::string::npos ? e4m3_params() : e5m2_params());
        for (auto* t : {&a, &b})
          for (auto& code : t->codes)
            if (minifloat_is_nan(p, static_cast<uint32_t>(code)) ||
                std::isinf(decode_minifloat(p, static_cast<uint32_t>(code))))
              code = 0;
      }
      expect_fast_matches_scalar(a, b, {"fp32"}, std::string(c.spec) + (clean ? " finite" : ""));
    }
  }
}

// The float form reads FP8/BF16/FP16 codes through a table of the format's codes; a code
// outside it (a hand-built tensor) must take the general route and still match the reference.
TEST(GoldenGemm, FastMinifloatFp32WithCodesOutsideTheFormat) {
  for (const char* spec : {"fp8:e4m3", "bf16"}) {
    const bool is_bf16 = std::string(spec) == "bf16";
    const int bits = is_bf16 ? 16 : 8;
    const MinifloatParams& p = is_bf16 ? bf16_params() : e4m3_params();
    QuantizedTensor a = random_minifloat_tensor(spec, 6, 40, 41, bits, 0, 0);
    QuantizedTensor b = random_minifloat_tensor(spec, 17, 40, 42, bits, 0, 0);
    for (auto* t : {&a, &b})  // finite operands, so that the fast path computes every output
      for (auto& code : t->codes)
        if (!std::isfinite(decode_minifloat(p, static_cast<uint32_t>(code)))) code = 0;
    a.codes[3] = (1 << bits) + 5;
    expect_fast_matches_scalar(a, b, {"fp32"}, std::string(spec) + " code beyond the table in A");
    a.codes[3] = 0;
    b.codes[40 * 16 + 7] = -1;
    expect_fast_matches_scalar(a, b, {"fp32"}, std::string(spec) + " negative code in B");
  }
}

TEST(GoldenGemm, RejectsOperandsThatDoNotFit) {
  Operands g8 = make_operands("gse:b=8,g=32", "gse:b=8,g=32", 2, 2, 64, 1);
  Operands g16 = make_operands("gse:b=8,g=16", "gse:b=8,g=16", 2, 2, 64, 1);
  Operands f8 = make_operands("fp8:e4m3", "fp8:e4m3", 2, 2, 64, 1);
  Operands i8 = make_operands("int8", "int8", 2, 2, 64, 1);
  Operands nf = make_operands("nf4", "nf4", 2, 2, 64, 1);
  Operands short_k = make_operands("gse:b=8,g=32", "gse:b=8,g=32", 2, 2, 32, 1);
  AccumulatorSpec acc;
  EXPECT_THROW(golden_gemm(g8.a, short_k.b, acc), UsageError);  // K differs
  EXPECT_THROW(golden_gemm(g8.a, g16.b, acc), UsageError);      // group sizes differ
  EXPECT_THROW(golden_gemm(g8.a, f8.b, acc), UsageError);       // families differ
  EXPECT_THROW(golden_gemm(i8.a, f8.b, acc), UsageError);
  EXPECT_THROW(golden_gemm(nf.a, nf.b, acc), UsageError);       // nf4 is storage only
  QuantizedTensor broken = g8.a;
  broken.codes.pop_back();
  EXPECT_THROW(golden_gemm(broken, g8.b, acc), UsageError);
  broken = g8.a;
  broken.group_exponents.pop_back();
  EXPECT_THROW(golden_gemm(broken, g8.b, acc), UsageError);
  EXPECT_THROW(golden_gemm(g8.a, g8.b, acc, -1), UsageError);
  // Empty shapes are fine.
  Operands empty = make_operands("gse", "gse", 0, 3, 64, 1);
  EXPECT_EQ(golden_gemm(empty.a, empty.b, acc).out.size(), 0u);
}


// ---------------------------------------------------------------------------------------------
// INT8 and minifloat-with-fixed-accumulator fast paths (numerics/kernels/gemm_fast_int8.cpp)

// Random int8 codes in [lo, hi] (a hand-built tensor: -128 included), random scales.
QuantizedTensor random_int8_tensor(bool per_channel, int64_t rows, int64_t cols, uint32_t seed,
                                   int lo = -128, int hi = 127) {
  std::mt19937 rng(seed);
  QuantizedTensor t;
  t.format_spec = per_channel ? "int8:per=channel" : "int8:per=tensor";
  t.rows = rows;
  t.cols = cols;
  std::uniform_int_distribution<int> code(lo, hi);
  for (int64_t i = 0; i < rows * cols; ++i) t.codes.push_back(code(rng));
  std::uniform_real_distribution<float> scale(1e-3f, 1.0f);
  for (int64_t i = 0; i < (per_channel ? rows : 1); ++i) t.scales.push_back(scale(rng));
  return t;
}

// Random shapes (K odd and even, across the kernels' K blocks of 512 / 1024; M, N not
// multiples of the 4x16 tile), quantized and hand-built codes, accumulators that never, sometimes
// and always saturate, F >= 0 and F < 0 (shifts beyond the products' 15 bits too).
TEST(GoldenGemm, FastInt8MatchesScalarOnRandomShapes) {
  std::mt19937 rng(77);
  const std::vector<std::string> accs = {"fp32",       "fixed32.0",  "fixed32.16", "fixed16.0",
                                         "fixed64.30", "fixed64.62", "fixed24.-3", "fixed20.-7",
                                         "fixed64.-20", "fixed8.-2", "fixed2.0"};
  for (int trial = 0; trial < 16; ++trial) {
    const int64_t m = 1 + rng() % 13, n = 1 + rng() % 40;
    const int64_t k = trial % 4 == 0 ? 1030 + rng() % 200 : 1 + rng() % 300;
    QuantizedTensor a, b;
    if (trial % 2 == 0) {
      a = random_int8_tensor(trial % 4 == 0, m, k, 100 + trial);
      b = random_int8_tensor(true, n, k, 200 + trial, -20, 20);
    } else {
      Operands o = make_operands(trial % 3 ? "int8:per=channel" : "int8:per=tensor",
                                 "int8:per=channel", m, n, k, 300 + trial, static_cast<int>(rng() % 8));
      a = o.a;
      b = o.b;
    }
    for (const auto& acc_text : accs) {
      AccumulatorSpec acc = AccumulatorSpec::parse(acc_text);
      GemmResult reference = golden_gemm_scalar(a, b, acc);
      std::string what = fmt::format("int8 {}x{}x{} {}", m, n, k, acc_text);
      for (int threads : {1, 2, 3}) expect_identical(golden_gemm(a, b, acc, threads), reference, what);
    }
  }
}

// One GEMM with outputs that saturate (sticky flag), outputs proven per tile and outputs
// proven only one by one (their tile fails the Cauchy-Schwarz bound), across panel blocks
// (N > 192) and K blocks (K > 1024).
TEST(GoldenGemm, FastInt8FixedSaturatesExactlyWhereTheScalarDoes) {
  const int64_t m = 9, n = 203, k = 1100;
  QuantizedTensor a = random_int8_tensor(true, m, k, 11, -3, 3);
  QuantizedTensor b = random_int8_tensor(false, n, k, 12, -3, 3);
  for (int64_t i = 0; i < k; ++i) {
    a.codes[5 * k + i] = 127;         // row 5: saturates with every column of the same sign
    b.codes[17 * k + i] = i % 2 ? -128 : 127;
    b.codes[100 * k + i] = 127;
  }
  for (const char* acc_text : {"fixed16.0", "fixed20.-2", "fixed24.0", "fixed32.10", "fixed12.-6"}) {
    AccumulatorSpec acc = AccumulatorSpec::parse(acc_text);
    GemmResult reference = golden_gemm_scalar(a, b, acc);
    int saturated = 0;
    for (uint8_t f : reference.flags) saturated += (f & kFlagOverflow) != 0;
    EXPECT_GT(saturated, 0) << acc_text << ": the case must saturate somewhere";
    EXPECT_LT(saturated, m * n) << acc_text << ": and not everywhere";
    for (int threads : {1, 2}) expect_identical(golden_gemm(a, b, acc, threads), reference, acc_text);
  }
}

// Codes outside -128..127 (hand-built) make the int8 path decline; the result is still exact.
TEST(GoldenGemm, FastInt8DeclinesCodesOutsideInt8) {
  QuantizedTensor a = random_int8_tensor(true, 6, 70, 21);
  QuantizedTensor b = random_int8_tensor(true, 19, 70, 22);
  a.codes[5] = 200;
  expect_fast_matches_scalar(a, b, {"fp32", "fixed32.0", "fixed24.-3"}, "A code 200");
  a.codes[5] = 0;
  b.codes[70 * 18 + 69] = -129;
  expect_fast_matches_scalar(a, b, {"fp32", "fixed32.0", "fixed24.-3"}, "B code -129");
}

// Minifloats with a fixed accumulator: random codes (NaN and Inf included, then a finite copy),
// MX block scales, accumulators whose F makes every product an integer (the FMA form) or not
// (the floor form), F < 0, and small W that saturates; 1, 2, 3 threads.
TEST(GoldenGemm, FastMinifloatFixedMatchesScalar) {
  struct Case { const char* spec_a; const char* spec_b; int bits, scale_lo, scale_hi; };
  const std::vector<std::string> accs = {"fixed32.16", "fixed48.12", "fixed16.4", "fixed64.-4",
                                         "fixed64.20", "fixed64.40", "fixed24.0", "fixed40.-30",
                                         "fixed32.20", "fixed32.40"};
  int seed = 60;
  for (Case c : {Case{"fp8:e4m3", "fp8:e4m3", 8, 0, 0}, Case{"fp8:e5m2", "fp8:e4m3", 8, 0, 0},
                 Case{"bf16", "bf16", 16, 0, 0}, Case{"fp16", "fp16", 16, 0, 0},
                 Case{"fp8:e4m3,block=32", "fp8:e4m3,block=32", 8, 120, 130},
                 Case{"fp8:e5m2,block=32", "fp8:e5m2,block=32", 8, 0, 254}}) {
    const int64_t m = 7, n = 21, k = seed % 2 ? 77 : 300;
    QuantizedTensor a = random_minifloat_tensor(c.spec_a, m, k, seed++, c.bits, c.scale_lo, c.scale_hi);
    QuantizedTensor b = random_minifloat_tensor(c.spec_b, n, k, seed++, c.bits, c.scale_lo, c.scale_hi);
    for (bool clean : {false, true}) {
      if (clean) {
        int block = 0;
        const MinifloatParams* pa = minifloat_operand_params(a.format_spec, &block);
        const MinifloatParams* pb = minifloat_operand_params(b.format_spec, &block);
        for (auto [t, p] : {std::pair{&a, pa}, std::pair{&b, pb}})
          for (auto& code : t->codes)
            if (!std::isfinite(decode_minifloat(*p, static_cast<uint32_t>(code)))) code = 0;
      }
      const std::string what = fmt::format("{} x {}{}", c.spec_a, c.spec_b, clean ? " finite" : "");
      for (const auto& acc_text : accs) {
        AccumulatorSpec acc = AccumulatorSpec::parse(acc_text);
        GemmResult reference = golden_gemm_scalar(a, b, acc);
        for (int threads : {1, 2, 3})
          expect_identical(golden_gemm(a, b, acc, threads), reference, what + " " + acc_text);
      }
    }
  }
}

// Quantized (realistic) minifloat operands over K blocks (K > 256) and panel blocks
// (N > 384), with one row and one column driven into saturation and an Inf in another row.
TEST(GoldenGemm, FastMinifloatFixedSaturationAndNonFiniteOutputs) {
  const int64_t m = 6, n = 389, k = 530;
  Operands o = make_operands("fp8:e4m3", "fp8:e5m2", m, n, k, 71, 2);
  for (int64_t i = 0; i < k; ++i) {
    o.a.codes[2 * k + i] = 0x7e;  // 448: row 2 saturates a 16-bit accumulator
    o.b.codes[300 * k + i] = 0x7b;  // 57344
  }
  o.a.codes[4 * k + 9] = 0x7f;  // the E4M3 NaN: row 4's outputs are NaN
  for (const char* acc_text : {"fixed16.0", "fixed32.8", "fixed48.20"}) {
    AccumulatorSpec acc = AccumulatorSpec::parse(acc_text);
    GemmResult reference = golden_gemm_scalar(o.a, o.b, acc);
    int saturated = 0, nan = 0;
    for (uint8_t f : reference.flags) {
      saturated += (f & kFlagOverflow) != 0;
      nan += (f & kFlagNaN) != 0;
    }
    EXPECT_GT(saturated, 0) << acc_text;
    EXPECT_EQ(nan, n) << acc_text << ": row 4 holds a NaN";
    for (int threads : {1, 2}) expect_identical(golden_gemm(o.a, o.b, acc, threads), reference, acc_text);
  }
}

// A hand-built code outside the format makes the minifloat fixed path decline; still exact.
TEST(GoldenGemm, FastMinifloatFixedWithCodesOutsideTheFormat) {
  QuantizedTensor a = random_minifloat_tensor("fp8:e4m3", 5, 40, 81, 8, 0, 0);
  QuantizedTensor b = random_minifloat_tensor("fp8:e4m3", 18, 40, 82, 8, 0, 0);
  a.codes[7] = 300;
  expect_fast_matches_scalar(a, b, {"fixed32.16", "fixed64.20"}, "code 300 in A");
  a.codes[7] = 0;
  b.codes[40 * 17 + 39] = -1;
  expect_fast_matches_scalar(a, b, {"fixed32.16", "fixed64.20"}, "code -1 in B");
}

// Quantized (typical) data, where most outputs pass the bound: each form's outputs are computed
// by its kernel, not handed to the scalar path. E4M3 x E4M3 products are multiples of 2^-18, so
// F >= 18 gives integer products (no floor needed); W <= 32 takes the float form, W > 32 the
// double form; MXFP8 and BF16 x FP16 as well.
TEST(GoldenGemm, FastMinifloatFixedOnQuantizedData) {
  for (auto [sa, sb] : {std::pair{"fp8:e4m3", "fp8:e4m3"}, std::pair{"fp8:e4m3,block=32", "fp8:e5m2,block=32"},
                        std::pair{"bf16", "fp16"}}) {
    Operands o = make_operands(sa, sb, 11, 37, 301, 91, 2);
    for (const char* acc : {"fixed32.18", "fixed32.12", "fixed24.-2", "fixed48.18", "fixed48.12", "fixed64.30"})
      expect_fast_matches_scalar(o.a, o.b, {acc}, fmt::format("{} x {}", sa, sb));
  }
}

// K = 0 and single rows/columns: every output is the empty sum.
TEST(GoldenGemm, FastInt8AndMinifloatFixedWithTinyShapes) {
  for (int64_t k : {0, 1, 2, 3}) {
    QuantizedTensor a = random_int8_tensor(true, 1, k, 31), b = random_int8_tensor(false, 1, k, 32);
    expect_fast_matches_scalar(a, b, {"fp32", "fixed32.0", "fixed16.-3"}, fmt::format("int8 K={}", k));
    QuantizedTensor fa = random_minifloat_tensor("fp8:e4m3", 5, k, 33, 8, 0, 0);
    QuantizedTensor fb = random_minifloat_tensor("fp8:e5m2", 17, k, 34, 8, 0, 0);
    expect_fast_matches_scalar(fa, fb, {"fixed32.16", "fixed64.40"}, fmt::format("fp8 K={}", k));
  }
}

}  // namespace
}  // namespace gsqhw
