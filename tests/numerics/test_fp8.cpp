// OCP FP8 (E4M3, E5M2): exhaustive decode, round trip, rounding and products.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "numerics/format.h"
#include "numerics/gemm.h"
#include "numerics/minifloat.h"
#include "tests/numerics/numerics_test_util.h"

namespace gsqhw {
namespace {

// The OCP OFP8 v1.0 decoding tables, written out independently of numerics/minifloat.cpp.
double ocp_e4m3(int code) {
  int s = code >> 7, e = (code >> 3) & 15, m = code & 7;
  if (e == 15 && m == 7) return std::numeric_limits<double>::quiet_NaN();
  double mag = e == 0 ? m / 8.0 * std::pow(2.0, -6) : (1 + m / 8.0) * std::pow(2.0, e - 7);
  return s ? -mag : mag;
}

double ocp_e5m2(int code) {
  int s = code >> 7, e = (code >> 2) & 31, m = code & 3;
  double mag;
  if (e == 31) mag = m == 0 ? std::numeric_limits<double>::infinity()
                            : std::numeric_limits<double>::quiet_NaN();
  else mag = e == 0 ? m / 4.0 * std::pow(2.0, -14) : (1 + m / 4.0) * std::pow(2.0, e - 15);
  return s ? -mag : mag;
}

void expect_same_value(double expected, double actual, int code) {
  if (std::isnan(expected)) {
    EXPECT_TRUE(std::isnan(actual)) << "code " << code;
  } else {
    EXPECT_EQ(expected, actual) << "code " << code;
    EXPECT_EQ(std::signbit(expected), std::signbit(actual)) << "code " << code;
  }
}

TEST(Fp8, DecodeAll256CodesPerOcp) {
  for (int code = 0; code < 256; ++code) {
    expect_same_value(ocp_e4m3(code), decode_minifloat(e4m3_params(), code), code);
    expect_same_value(ocp_e5m2(code), decode_minifloat(e5m2_params(), code), code);
  }
  // Landmarks of the OCP spec.
  EXPECT_EQ(decode_fp8_e4m3(0x7e), 448.0f);
  EXPECT_EQ(decode_fp8_e4m3(0x01), std::ldexp(1.0f, -9));
  EXPECT_EQ(decode_fp8_e4m3(0x08), std::ldexp(1.0f, -6));
  EXPECT_EQ(decode_fp8_e5m2(0x7b), 57344.0f);
  EXPECT_TRUE(std::isinf(decode_fp8_e5m2(0x7c)));
  EXPECT_EQ(decode_fp8_e5m2(0x01), std::ldexp(1.0f, -16));
  EXPECT_EQ(e4m3_params().max_normal(), 448.0);
  EXPECT_EQ(e5m2_params().max_normal(), 57344.0);
  EXPECT_EQ(e4m3_params().max_exp(), 8);
  EXPECT_EQ(e5m2_params().max_exp(), 15);
}

TEST(Fp8, EveryCodeRoundTripsThroughQuantize) {
  for (const char* spec : {"fp8:e4m3,sat=satfinite,block=0", "fp8:e4m3,sat=nonsat,block=0",
                           "fp8:e5m2,sat=satfinite,block=0", "fp8:e5m2,sat=nonsat,block=0"}) {
    auto format = parse_format(spec);
    const MinifloatParams& p = std::string(spec).find("e4m3") != std::string::npos
                                   ? e4m3_params()
                                   : e5m2_params();
    bool saturate = std::string(spec).find("satfinite") != std::string::npos;
    std::vector<float> values(256);
    for (int code = 0; code < 256; ++code) values[code] = decode_minifloat(p, code);
    QuantizedTensor q = format->quantize(values.data(), 1, 256);
    std::vector<float> back(256);
    format->dequantize(q, back.data());
    for (int code = 0; code < 256; ++code) {
      SCOPED_TRACE(testing::Message() << spec << " code " << code);
      if (minifloat_is_nan(p, code)) {
        EXPECT_TRUE(minifloat_is_nan(p, q.codes[code]));
      } else if (minifloat_is_inf(p, code) && saturate) {
        EXPECT_EQ(q.codes[code], (code & 0x80) | 0x7b);  // Inf saturates to max normal
      } else {
        EXPECT_EQ(q.codes[code], code);
        expect_same_value(values[code], back[code], code);
      }
    }
  }
}

// Brute force: the nearest of all finite codes, ties to the even mantissa.
int brute_force_nearest(const MinifloatParams& p, double x) {
  int best = -1;
  double best_err = 0;
  for (int code = 0; code < 256; ++code) {
    if (minifloat_is_nan(p, code) || minifloat_is_inf(p, code)) continue;
    if ((code & 0x80) != (std::signbit(x) ? 0x80 : 0)) continue;
    double err = std::fabs(decode_minifloat(p, code) - x);
    if (best < 0 || err < best_err || (err == best_err && (code & 1) == 0)) {
      best = code;
      best_err = err;
    }
  }
  return best;
}

TEST(Fp8, RoundsToNearestEvenLikeBruteForce) {
  std::mt19937 rng(7);
  std::uniform_real_distribution<double> mantissa(-2, 2);
  std::uniform_int_distribution<int> exponent(-20, 16);
  for (const MinifloatParams* p : {&e4m3_params(), &e5m2_params()}) {
    for (int i = 0; i < 20000; ++i) {
      float x = static_cast<float>(std::ldexp(mantissa(rng), exponent(rng)));
      if (std::fabs(x) > p->max_normal()) continue;
      int expected = brute_force_nearest(*p, x);
      EXPECT_EQ(static_cast<int>(encode_minifloat(*p, x, true)), expected) << p->name << " " << x;
    }
    // Every exact midpoint between two adjacent positive finite codes.
    for (int code = 0; code + 1 < 256; ++code) {
      if (minifloat_is_nan(*p, code + 1) || minifloat_is_inf(*p, code + 1) || code >= 0x7f) break;
      double mid = (decode_minifloat(*p, code) + decode_minifloat(*p, code + 1)) / 2;
      int even = (code & 1) == 0 ? code : code + 1;
      EXPECT_EQ(static_cast<int>(encode_minifloat(*p, mid, true)), even) << p->name << " " << mid;
      EXPECT_EQ(static_cast<int>(encode_minifloat(*p, -mid, true)), even | 0x80);
    }
  }
}

TEST(Fp8, OverflowSaturatesOrGivesNanInf) {
  const auto& e4 = e4m3_params();
  const auto& e5 = e5m2_params();
  EXPECT_EQ(encode_minifloat(e4, 464.0, false), 0x7eu);  // tie between 448 and 480 -> 448
  EXPECT_EQ(encode_minifloat(e4, 464.01, true), 0x7eu);
  EXPECT_EQ(encode_minifloat(e4, 464.01, false), 0x7fu);  // nonsat: NaN (no Inf in E4M3)
  EXPECT_EQ(encode_minifloat(e4, -1e9, true), 0xfeu);
  EXPECT_EQ(encode_minifloat(e4, INFINITY, true), 0x7eu);
  EXPECT_EQ(encode_minifloat(e4, INFINITY, false), 0x7fu);
  EXPECT_EQ(encode_minifloat(e5, 61440.0, true), 0x7bu);   // tie rounds to even = 2^16: overflow
  EXPECT_EQ(encode_minifloat(e5, 61440.0, false), 0x7cu);  // +Inf
  EXPECT_EQ(encode_minifloat(e5, 61439.0, false), 0x7bu);
  EXPECT_EQ(encode_minifloat(e5, -INFINITY, false), 0xfcu);
  EXPECT_TRUE(minifloat_is_nan(e5, encode_minifloat(e5, NAN, true)));
  // Underflow: half of the smallest subnormal ties to zero, anything above rounds up.
  EXPECT_EQ(encode_minifloat(e4, std::ldexp(1.0, -10), true), 0x00u);
  EXPECT_EQ(encode_minifloat(e4, std::ldexp(1.0, -10) * 1.01, true), 0x01u);
  EXPECT_EQ(encode_minifloat(e4, -std::ldexp(1.0, -11), true), 0x80u);  // -0
}

// Every pair of codes through the golden GEMM with K = 1: the product must be exact.
void check_all_products(const MinifloatParams& pa, const char* spec_a, const MinifloatParams& pb,
                        const char* spec_b) {
  QuantizedTensor a, b;
  a.format_spec = spec_a;
  b.format_spec = spec_b;
  a.rows = b.rows = 256;
  a.cols = b.cols = 1;
  for (int c = 0; c < 256; ++c) {
    a.codes.push_back(c);
    b.codes.push_back(c);
  }
  GemmResult fp = golden_gemm(a, b, AccumulatorSpec::parse("fp32"));
  for (int i = 0; i < 256; ++i) {
    for (int j = 0; j < 256; ++j) {
      double expected = (pa.name == std::string("e4m3") ? ocp_e4m3(i) : ocp_e5m2(i)) *
                        (pb.name == std::string("e4m3") ? ocp_e4m3(j) : ocp_e5m2(j));
      float got = fp.out[i * 256 + j];
      if (std::isnan(expected)) {
        ASSERT_TRUE(std::isnan(got)) << i << " x " << j;
        continue;
      }
      ASSERT_EQ(static_cast<double>(got), expected) << spec_a << " " << i << " x " << j;
      // The accumulator starts at +0.0, and +0 + -0 = +0: a zero product gives +0.
      ASSERT_EQ(std::signbit(got), expected == 0 ? false : std::signbit(expected)) << i << " x " << j;
    }
  }
}

TEST(Fp8, EveryPairOfCodesMultipliesExactly) {
  check_all_products(e4m3_params(), "fp8:e4m3,sat=satfinite,block=0", e4m3_params(),
                     "fp8:e4m3,sat=satfinite,block=0");
  check_all_products(e5m2_params(), "fp8:e5m2,sat=satfinite,block=0", e5m2_params(),
                     "fp8:e5m2,sat=satfinite,block=0");
  check_all_products(e4m3_params(), "fp8:e4m3,sat=satfinite,block=0", e5m2_params(),
                     "fp8:e5m2,sat=satfinite,block=0");
}

TEST(Fp8, EveryE4m3ProductExactInFixedAccumulator) {
  // E4M3 products are multiples of 2^-18 below 2^18: fixed64.18 holds each one exactly.
  QuantizedTensor a;
  a.format_spec = "fp8:e4m3,sat=satfinite,block=0";
  a.rows = 256;
  a.cols = 1;
  for (int c = 0; c < 256; ++c) a.codes.push_back(c);
  GemmResult r = golden_gemm(a, a, AccumulatorSpec::parse("fixed64.18"));
  for (int i = 0; i < 256; ++i) {
    for (int j = 0; j < 256; ++j) {
      double expected = ocp_e4m3(i) * ocp_e4m3(j);
      int64_t idx = i * 256 + j;
      if (std::isnan(expected)) {
        ASSERT_EQ(r.flags[idx], kFlagNaN);
        ASSERT_EQ(r.acc_raw[idx], 0);
      } else {
        ASSERT_EQ(r.acc_raw[idx], static_cast<int64_t>(std::ldexp(expected, 18))) << i << "," << j;
        ASSERT_EQ(r.flags[idx], 0);
      }
    }
  }
}

TEST(Fp8, MxBlockScaleFollowsOcpMx) {
  auto format = parse_format("fp8:e4m3,block=32");
  EXPECT_EQ(format->spec(), "fp8:e4m3,sat=satfinite,block=32");
  std::vector<float> x = test::random_matrix(3, 70, 5, 20);
  x[1 * 70 + 40] = NAN;  // row 1, block 1 is a NaN block
  QuantizedTensor q = format->quantize(x.data(), 3, 70);
  ASSERT_EQ(q.groups_per_row(), 3);
  std::vector<float> back(x.size());
  format->dequantize(q, back.data());
  for (int r = 0; r < 3; ++r) {
    for (int g = 0; g < 3; ++g) {
      int begin = g * 32, end = std::min(70, begin + 32);
      int code = q.group_exponents[r * 3 + g];
      if (r == 1 && g == 1) {
        EXPECT_EQ(code, 255);
        for (int c = begin; c < end; ++c) EXPECT_TRUE(std::isnan(back[r * 70 + c]));
        continue;
      }
      float amax = 0;
      for (int c = begin; c < end; ++c) amax = std::max(amax, std::fabs(x[r * 70 + c]));
      int shared = static_cast<int>(std::floor(std::log2(amax))) - 8;  // emax(E4M3) = 8
      EXPECT_EQ(code, shared + 127);
      for (int c = begin; c < end; ++c) {
        double scaled = std::ldexp(static_cast<double>(x[r * 70 + c]), -shared);
        int element = brute_force_nearest(e4m3_params(), scaled);
        EXPECT_EQ(q.codes[r * 70 + c], element);
        EXPECT_EQ(back[r * 70 + c], std::ldexp(ocp_e4m3(element), shared));
      }
    }
  }
}

}  // namespace
}  // namespace gsqhw
