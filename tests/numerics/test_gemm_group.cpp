// Minifloat group sums (AccumulatorSpec::group, the FP8 shared-column arrays): every product of
// a group summed exactly, one fp32 rounding or one fixed-point addend per group. Checked
// exhaustively on every E4M3 code pair in groups of 1 and 2, by properties on random data
// (partial groups, an integer-only reference, exactness where no rounding is needed), and for
// saturation, NaN groups and the operands and designs that are refused.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "base/errors.h"
#include "numerics/design.h"
#include "numerics/format.h"
#include "numerics/gemm.h"
#include "numerics/gemm_impl.h"
#include "numerics/minifloat.h"
#include "tests/numerics/numerics_test_util.h"

namespace gsqhw {
namespace {

constexpr const char* kE4m3 = "fp8:e4m3,sat=satfinite,block=0";
constexpr int kE4m3Lsb = -18;  // the product of two smallest E4M3 subnormals is 2^-18

QuantizedTensor codes_tensor(const std::string& spec, int64_t rows, int64_t cols,
                             std::vector<int32_t> codes) {
  QuantizedTensor t;
  t.format_spec = spec;
  t.rows = rows;
  t.cols = cols;
  t.codes = std::move(codes);
  return t;
}

AccumulatorSpec grouped(const std::string& acc, int group) {
  AccumulatorSpec spec = AccumulatorSpec::parse(acc);
  spec.group = group;
  return spec;
}

double e4m3(int32_t code) { return decode_minifloat(e4m3_params(), static_cast<uint32_t>(code)); }

// Exact value of an E4M3 product in units of 2^-18.
__int128 product_units(int32_t a, int32_t b) { return test::to_units(e4m3(a) * e4m3(b), -kE4m3Lsb); }

// Independent reference of the fp32 group accumulation: every group sum and every accumulator
// value is a multiple of 2^-18 (group sums are; RNE of one keeps it one, as the float quantum
// of such values is never finer), so the running sum is an integer of 2^-18 units, rounded with
// integer arithmetic only.
struct Reference {
  float acc = 0.0f;
  bool nan = false;
};
Reference reference_fp32(const QuantizedTensor& a, const QuantizedTensor& b, int64_t m, int64_t n,
                         int group) {
  Reference r;
  const int64_t k = a.cols;
  for (int64_t begin = 0; begin < k; begin += group) {
    __int128 sum = 0;
    bool nan = false;
    for (int64_t i = begin; i < std::min(k, begin + group); ++i) {
      const int32_t ca = a.codes[m * k + i], cb = b.codes[n * k + i];
      if (std::isnan(e4m3(ca)) || std::isnan(e4m3(cb))) nan = true;
      else sum += product_units(ca, cb);
    }
    if (nan) {
      r.nan = true;
      continue;
    }
    r.acc = test::reference_round_scaled(test::to_units(r.acc, -kE4m3Lsb) + sum, -kE4m3Lsb);
  }
  return r;
}

void expect_matches_reference(const GemmResult& got, const QuantizedTensor& a,
                              const QuantizedTensor& b, int group, const std::string& what) {
  for (int64_t m = 0; m < a.rows; ++m)
    for (int64_t n = 0; n < b.rows; ++n) {
      const Reference r = reference_fp32(a, b, m, n, group);
      const int64_t i = m * b.rows + n;
      ASSERT_EQ(got.acc_raw[i], test::bits_of(r.acc)) << what << " output (" << m << ", " << n << ")";
      ASSERT_EQ(got.flags[i], r.nan ? kFlagNaN : 0) << what << " output (" << m << ", " << n << ")";
      if (r.nan) ASSERT_TRUE(std::isnan(got.out[i])) << what;
      else ASSERT_EQ(test::bits_of(got.out[i]), test::bits_of(r.acc)) << what;
    }
}

std::vector<int32_t> all_codes() {
  std::vector<int32_t> codes(256);
  for (int c = 0; c < 256; ++c) codes[c] = c;
  return codes;
}

// Rows of B that reach every corner: 1.0, -1.0, max (448), -max, the smallest subnormal,
// a mid subnormal, a value with every mantissa bit, NaN.
std::vector<int32_t> corner_codes() { return {0x38, 0xb8, 0x7e, 0xfe, 0x01, 0x05, 0x3f, 0x7f}; }

// A group of 1: every pair of E4M3 codes. The group sum is the exact product, so fp32 gives
// RNE of the product and fixed64.18 the product itself; apart from NaN (a NaN group adds
// nothing) group=1 equals the per-product accumulation.
TEST(MinifloatGroupSums, EveryE4m3PairInAGroupOfOne) {
  const QuantizedTensor a = codes_tensor(kE4m3, 256, 1, all_codes());
  const QuantizedTensor b = codes_tensor(kE4m3, 256, 1, all_codes());
  const GemmResult fp = golden_gemm(a, b, grouped("fp32", 1));
  const GemmResult fixed = golden_gemm(a, b, grouped("fixed64.18", 1));
  const GemmResult per_product = golden_gemm(a, b, AccumulatorSpec::parse("fp32"));
  expect_matches_reference(fp, a, b, 1, "fp32 group=1");
  int nan_outputs = 0;
  for (int ca = 0; ca < 256; ++ca)
    for (int cb = 0; cb < 256; ++cb) {
      const int64_t i = ca * 256 + cb;
      if (std::isnan(e4m3(ca)) || std::isnan(e4m3(cb))) {
        ++nan_outputs;
        EXPECT_EQ(fixed.flags[i], kFlagNaN);
        EXPECT_EQ(fixed.acc_raw[i], 0);
        EXPECT_EQ(fp.acc_raw[i], 0) << "a NaN group leaves the accumulator at +0.0";
        continue;
      }
      ASSERT_EQ(fixed.acc_raw[i], static_cast<int64_t>(product_units(ca, cb))) << ca << " x " << cb;
      ASSERT_EQ(fixed.flags[i], 0);
      ASSERT_EQ(fp.acc_raw[i], per_product.acc_raw[i]) << ca << " x " << cb;
    }
  EXPECT_EQ(nan_outputs, 2 * 2 * 256 - 4);  // codes 0x7f and 0xff are NaN
}

// A group of 2: every pair (a0, a1) of E4M3 codes against B rows (corner, 1.0) and (1.0,
// corner), so every code meets every corner in both positions. One rounding of a0*b0 + a1*b1.
TEST(MinifloatGroupSums, EveryE4m3PairInAGroupOfTwo) {
  std::vector<int32_t> a_codes;
  for (int a0 = 0; a0 < 256; ++a0)
    for (int a1 = 0; a1 < 256; ++a1) a_codes.insert(a_codes.end(), {a0, a1});
  std::vector<int32_t> b_codes;
  for (int32_t corner : corner_codes()) b_codes.insert(b_codes.end(), {corner, 0x38, 0x38, corner});
  const QuantizedTensor a = codes_tensor(kE4m3, 65536, 2, a_codes);
  const QuantizedTensor b = codes_tensor(kE4m3, 16, 2, b_codes);
  const GemmResult grouped_fp = golden_gemm(a, b, grouped("fp32", 2), 0);
  expect_matches_reference(grouped_fp, a, b, 2, "fp32 group=2");

  // The fixed accumulator holds the exact sum. With two products the per-product path rounds
  // once too (a single E4M3 product has at most 8 significant bits, exact in fp32), so both
  // agree here; they part from three products on (RandomCodes... below).
  const GemmResult per_product = golden_gemm(a, b, AccumulatorSpec::parse("fp32"), 0);
  const GemmResult fixed = golden_gemm(a, b, grouped("fixed64.18", 2), 0);
  for (int64_t m = 0; m < a.rows; ++m)
    for (int64_t n = 0; n < b.rows; ++n) {
      const int64_t i = m * b.rows + n;
      if (grouped_fp.flags[i]) continue;
      ASSERT_EQ(grouped_fp.acc_raw[i], per_product.acc_raw[i]);
      ASSERT_EQ(fixed.acc_raw[i], static_cast<int64_t>(product_units(a.codes[2 * m], b.codes[2 * n]) +
                                                       product_units(a.codes[2 * m + 1], b.codes[2 * n + 1])));
    }
}

QuantizedTensor random_e4m3(int64_t rows, int64_t cols, uint32_t seed, bool with_nan) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> code(0, 255);
  std::vector<int32_t> codes(static_cast<size_t>(rows * cols));
  for (auto& c : codes) {
    c = code(rng);
    if ((c & 0x7f) == 0x7f) c &= 0xfe;
  }
  // NaN codes in every third row only, so that most outputs stay finite.
  if (with_nan)
    for (int64_t r = 0; r < rows; r += 3) codes[r * cols + (r * 37) % cols] = r % 2 ? 0xff : 0x7f;
  return codes_tensor(kE4m3, rows, cols, codes);
}

// Random codes over the whole range, K not a multiple of G (a partial last group), against the
// integer-only reference; with NaN codes too.
TEST(MinifloatGroupSums, RandomCodesWithPartialGroupsMatchTheIntegerReference) {
  for (int group : {1, 3, 16, 32, 64}) {
    const QuantizedTensor a = random_e4m3(9, 203, 11 + group, true);
    const QuantizedTensor b = random_e4m3(7, 203, 12 + group, group != 32);
    expect_matches_reference(golden_gemm(a, b, grouped("fp32", group)), a, b, group,
                             fmt::format("G={}", group));
    // golden_gemm and the scalar reference agree (group sums take the scalar path).
    const GemmResult threaded = golden_gemm(a, b, grouped("fp32", group), 4);
    const GemmResult scalar = golden_gemm_scalar(a, b, grouped("fp32", group));
    EXPECT_EQ(threaded.acc_raw, scalar.acc_raw);
    EXPECT_EQ(threaded.flags, scalar.flags);
    // One rounding per group is not one per product (the point of the design), except G = 1.
    const GemmResult per_product = golden_gemm(a, b, AccumulatorSpec::parse("fp32"));
    int differ = 0;
    for (size_t i = 0; i < scalar.acc_raw.size(); ++i)
      differ += !scalar.flags[i] && scalar.acc_raw[i] != per_product.acc_raw[i];
    if (group == 1) EXPECT_EQ(differ, 0);
    else EXPECT_GT(differ, 0) << "G=" << group;
  }
}

// Where no rounding is needed the fp32 group accumulation equals the exact (long double) sum:
// quantized small values whose running sums stay within 24 significant bits.
TEST(MinifloatGroupSums, ExactWhereNoRoundingIsNeeded) {
  std::mt19937 rng(5);
  std::uniform_int_distribution<int> small(-8, 8);
  const int64_t m = 6, n = 5, k = 150;
  std::vector<float> xa(m * k), xb(n * k);
  for (auto& x : xa) x = static_cast<float>(small(rng)) / 4.0f;  // exact E4M3 values
  for (auto& x : xb) x = static_cast<float>(small(rng)) / 2.0f;
  const auto f = parse_format(kE4m3);
  const QuantizedTensor a = f->quantize(xa.data(), m, k, 1), b = f->quantize(xb.data(), n, k, 2);
  const GemmResult r = golden_gemm(a, b, grouped("fp32", 32));
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      long double exact = 0;
      for (int64_t t = 0; t < k; ++t) exact += static_cast<long double>(xa[i * k + t]) * xb[j * k + t];
      ASSERT_EQ(r.out[i * n + j], static_cast<float>(exact));
      ASSERT_EQ(r.flags[i * n + j], 0);
    }
}

// fixed(W,F): the group sum is floored once per group (not each product), then saturated with
// the sticky overflow flag.
TEST(MinifloatGroupSums, FixedFloorsOncePerGroupAndSaturates) {
  // 0.5 * 0.5 four times: per product floor(0.25) = 0 each, per group floor(1.0) = 1.
  const QuantizedTensor a = codes_tensor(kE4m3, 1, 4, {0x30, 0x30, 0x30, 0x30});  // 0.5
  const GemmResult per_group = golden_gemm(a, a, grouped("fixed8.0", 4));
  const GemmResult per_product = golden_gemm(a, a, AccumulatorSpec::parse("fixed8.0"));
  EXPECT_EQ(per_group.acc_raw[0], 1);
  EXPECT_EQ(per_product.acc_raw[0], 0);
  // -0.25 * 1 in a group of two: floor(-0.5) = -1.
  const QuantizedTensor neg = codes_tensor(kE4m3, 1, 2, {0xa8, 0x00});  // -0.25, 0
  const QuantizedTensor one = codes_tensor(kE4m3, 1, 2, {0x38, 0x38});
  EXPECT_EQ(golden_gemm(neg, one, grouped("fixed8.0", 2)).acc_raw[0], -1);
  // 448 * 448 overflows fixed16.0 (max 32767): saturates, sticky, and stays saturated.
  const QuantizedTensor big = codes_tensor(kE4m3, 1, 3, {0x7e, 0x7e, 0x38});
  const GemmResult sat = golden_gemm(big, big, grouped("fixed16.0", 1));
  EXPECT_EQ(sat.acc_raw[0], 32767);
  EXPECT_EQ(sat.flags[0], kFlagOverflow);
  const QuantizedTensor neg_big = codes_tensor(kE4m3, 1, 3, {0xfe, 0xfe, 0x38});
  const GemmResult sat_low = golden_gemm(neg_big, big, grouped("fixed16.0", 3));
  EXPECT_EQ(sat_low.acc_raw[0], -32768);
  EXPECT_EQ(sat_low.flags[0], kFlagOverflow);
  // A NaN group adds nothing; the group before and after it do.
  const QuantizedTensor with_nan = codes_tensor(kE4m3, 1, 3, {0x38, 0x7f, 0x38});
  const QuantizedTensor ones = codes_tensor(kE4m3, 1, 3, {0x38, 0x38, 0x38});
  const GemmResult nan = golden_gemm(with_nan, ones, grouped("fixed32.0", 1));
  EXPECT_EQ(nan.acc_raw[0], 2);
  EXPECT_EQ(nan.flags[0], kFlagNaN);
  EXPECT_TRUE(std::isnan(nan.out[0]));
}

TEST(MinifloatGroupSums, WidthsOfTheGroupSum) {
  EXPECT_EQ(minifloat_product_lsb_exp(e4m3_params(), e4m3_params()), -18);
  EXPECT_EQ(minifloat_product_bits(e4m3_params(), e4m3_params()), 36);
  EXPECT_EQ(minifloat_group_sum_bits(e4m3_params(), e4m3_params(), 32), 42);
  EXPECT_EQ(minifloat_group_sum_bits(e4m3_params(), e4m3_params(), 33), 43);
  // The largest E4M3 product, 448^2 = 2^17.6, is below 2^36 units of 2^-18.
  EXPECT_LT(std::ldexp(448.0 * 448.0, 18), std::ldexp(1.0, 36));
  EXPECT_GT(minifloat_group_sum_bits(e5m2_params(), e5m2_params(), 2), kMaxMinifloatGroupSumBits);
}

TEST(MinifloatGroupSums, RefusesOperandsWithoutExactGroupSums) {
  const QuantizedTensor e5 = codes_tensor("fp8:e5m2,sat=satfinite,block=0", 1, 4, {1, 2, 3, 4});
  EXPECT_THROW(golden_gemm(e5, e5, grouped("fp32", 32)), UsageError);
  const auto gse = parse_format("gse:b=6");
  std::vector<float> x(64, 1.0f);
  const QuantizedTensor g = gse->quantize(x.data(), 1, 64, 1);
  EXPECT_THROW(golden_gemm(g, g, grouped("fixed32.16", 32)), UsageError);
  const QuantizedTensor e4 = codes_tensor(kE4m3, 1, 4, {1, 2, 3, 4});
  EXPECT_THROW(golden_gemm(e4, e4, grouped("fp32", -1)), UsageError);
}

// FP6 fits as well (E3M2: q = -8).
TEST(MinifloatGroupSums, Fp6GroupSumIsExactInFixed) {
  const auto f = parse_format("fp6:e3m2");
  std::vector<float> xa = test::random_matrix(4, 70, 3, 2), xb = test::random_matrix(3, 70, 4, 2);
  const QuantizedTensor a = f->quantize(xa.data(), 4, 70, 1), b = f->quantize(xb.data(), 3, 70, 2);
  std::vector<float> da(xa.size()), db(xb.size());
  f->dequantize(a, da.data());
  f->dequantize(b, db.data());
  const GemmResult r = golden_gemm(a, b, grouped("fixed40.8", 16));
  for (int64_t i = 0; i < 4; ++i)
    for (int64_t j = 0; j < 3; ++j) {
      double exact = 0;  // multiples of 2^-8 below 2^20: exact in double
      for (int64_t t = 0; t < 70; ++t) exact += static_cast<double>(da[i * 70 + t]) * db[j * 70 + t];
      ASSERT_EQ(r.acc_raw[i * 3 + j], static_cast<int64_t>(std::ldexp(exact, 8)));
    }
}

TEST(MinifloatGroupSums, DesignStringsCarryTheGroupSize) {
  DesignPoint d = DesignPoint::parse("fp8:e4m3@array4x4,acc=fp32,align=shared");
  EXPECT_EQ(d.acc.group, kDefaultDesignGroup);
  EXPECT_EQ(d.str(), "fp8:e4m3,sat=satfinite,block=0@array4x4,acc=fp32,flow=os,pipe=1,align=shared,group=32");
  EXPECT_EQ(DesignPoint::parse(d.str()), d);
  DesignPoint g16 = DesignPoint::parse("fp8:e4m3@array2x2,acc=fixed48.18,align=shared,group=16");
  EXPECT_EQ(g16.acc.group, 16);
  EXPECT_EQ(g16.acc.str(), "fixed48.18");
  EXPECT_NE(g16.slug(), DesignPoint::parse("fp8:e4m3@array2x2,acc=fixed48.18,align=shared").slug());
  // GSE designs keep their strings; their group is the format's g.
  EXPECT_EQ(DesignPoint::parse("gse:b=6@array4x4,align=shared").acc.group, 0);
  for (const char* bad : {"fp8:e4m3@array4x4,group=32",             // no align=shared
                          "gse:b=6@array4x4,align=shared,group=32",  // GSE: g= of the format
                          "fp8:e5m2@array4x4,align=shared",          // 70-bit group sums
                          "bf16@array4x4,align=shared",
                          "fp8:e4m3,block=32@array4x4,align=shared",
                          "fp8:e4m3@pe,align=shared",
                          "fp8:e4m3@array4x4,align=shared,group=0",
                          "fp8:e4m3@array4x4,align=shared,group=x",
                          "int8@array4x4,align=shared"})
    EXPECT_THROW(DesignPoint::parse(bad), UsageError) << bad;
}

}  // namespace
}  // namespace gsqhw
