// OCP MX FP6 (E3M2, E2M3): exhaustive decode and round trip over all 64 codes, rounding,
// saturation, the golden GEMM, and what the format unit tells the generator and the reports.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "base/errors.h"
#include "numerics/design.h"
#include "numerics/format.h"
#include "numerics/fp32_round.h"
#include "numerics/gemm.h"
#include "numerics/minifloat.h"
#include "tests/numerics/numerics_test_util.h"

namespace gsqhw {
namespace {

// The OCP Microscaling v1.0 FP6 element encodings (section 5.3.2), written out independently
// of numerics/minifloat.cpp: no Inf, no NaN; subnormals at exponent field 0.
double ocp_e3m2(int code) {
  int s = code >> 5, e = (code >> 2) & 7, m = code & 3;
  double mag = e == 0 ? m / 4.0 * std::pow(2.0, -2) : (1 + m / 4.0) * std::pow(2.0, e - 3);
  return s ? -mag : mag;
}

double ocp_e2m3(int code) {
  int s = code >> 5, e = (code >> 3) & 3, m = code & 7;
  double mag = e == 0 ? m / 8.0 * std::pow(2.0, 0) : (1 + m / 8.0) * std::pow(2.0, e - 1);
  return s ? -mag : mag;
}

TEST(Fp6, DecodeAll64CodesPerOcpMx) {
  for (int code = 0; code < 64; ++code) {
    for (const auto& [params, reference] :
         {std::pair{&e3m2_params(), ocp_e3m2(code)}, std::pair{&e2m3_params(), ocp_e2m3(code)}}) {
      const double value = decode_minifloat(*params, code);
      EXPECT_EQ(value, reference) << params->name << " code " << code;
      EXPECT_EQ(std::signbit(value), std::signbit(reference)) << params->name << " code " << code;
      EXPECT_FALSE(minifloat_is_nan(*params, code));
      EXPECT_FALSE(minifloat_is_inf(*params, code));
    }
  }
  // Landmarks of the OCP MX spec: max normal 28 / 7.5, min subnormal 0.0625 / 0.125.
  EXPECT_EQ(e3m2_params().max_normal(), 28.0);
  EXPECT_EQ(e2m3_params().max_normal(), 7.5);
  EXPECT_EQ(decode_minifloat(e3m2_params(), 0x1f), 28.0);
  EXPECT_EQ(decode_minifloat(e2m3_params(), 0x1f), 7.5);
  EXPECT_EQ(decode_minifloat(e3m2_params(), 0x01), 0.0625);
  EXPECT_EQ(decode_minifloat(e2m3_params(), 0x01), 0.125);
  EXPECT_EQ(e3m2_params().max_exp(), 4);
  EXPECT_EQ(e2m3_params().max_exp(), 2);
}

TEST(Fp6, EveryCodeRoundTripsThroughQuantize) {
  for (const char* spec : {"fp6:e3m2,block=0", "fp6:e2m3,block=0"}) {
    SCOPED_TRACE(spec);
    auto format = parse_format(spec);
    EXPECT_EQ(format->spec(), spec);
    EXPECT_EQ(format->element_bits(), 6);
    const MinifloatParams& p = *format->minifloat_operand().element;
    std::vector<float> values;
    for (int code = 0; code < 64; ++code) values.push_back(static_cast<float>(decode_minifloat(p, code)));
    QuantizedTensor q = format->quantize(values.data(), 1, 64);
    std::vector<float> back(64);
    format->dequantize(q, back.data());
    for (int code = 0; code < 64; ++code) {
      EXPECT_EQ(q.codes[code], code);
      EXPECT_EQ(std::bit_cast<uint32_t>(back[code]), std::bit_cast<uint32_t>(values[code])) << code;
    }
  }
}

// RNE against brute force: the nearest code value, ties to the even mantissa.
TEST(Fp6, RoundsToNearestEvenLikeBruteForce) {
  for (const MinifloatParams* p : {&e3m2_params(), &e2m3_params()}) {
    std::vector<double> grid;
    for (int code = 0; code < 32; ++code) grid.push_back(decode_minifloat(*p, code));
    for (int i = 0; i < 4000; ++i) {
      const double x = (i + 0.5) * p->max_normal() / 4000;  // includes every midpoint region
      int best = 0;
      for (int code = 1; code < 32; ++code) {
        const double d = std::fabs(grid[code] - x), bd = std::fabs(grid[best] - x);
        if (d < bd || (d == bd && (code & 1) == 0)) best = code;
      }
      EXPECT_EQ(encode_minifloat(*p, x, true), static_cast<uint32_t>(best)) << p->name << " x=" << x;
      EXPECT_EQ(encode_minifloat(*p, -x, true), static_cast<uint32_t>(best | 32)) << p->name;
    }
    // An exact tie between 1.0 and the next value rounds to the even mantissa (1.0).
    const double ulp_one = std::ldexp(1.0, -p->man_bits);
    EXPECT_EQ(decode_minifloat(*p, encode_minifloat(*p, 1.0 + ulp_one / 2, true)), 1.0);
  }
}

// No Inf, no NaN: overflow and Inf saturate to +-max (satfinite, the only choice); NaN has no
// code, so plain FP6 refuses it and MXFP6 marks the block NaN.
TEST(Fp6, OverflowSaturatesAndNanIsRefused) {
  auto e3m2 = parse_format("fp6:e3m2");
  const float big[] = {1e6f, -1e6f, std::numeric_limits<float>::infinity(), -30.0f, 29.9f};
  QuantizedTensor q = e3m2->quantize(big, 1, 5);
  EXPECT_EQ(q.codes, (std::vector<int32_t>{0x1f, 0x3f, 0x1f, 0x3f, 0x1f}));
  const float nan[] = {1.0f, std::numeric_limits<float>::quiet_NaN()};
  try {
    e3m2->quantize(nan, 1, 2);
    FAIL() << "NaN accepted";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("col 1"), std::string::npos) << e.what();
  }
  auto mx = parse_format("fp6:e2m3,block=32");
  EXPECT_EQ(mx->spec(), "fp6:e2m3,block=32");
  std::vector<float> x(64, 1.0f);
  x[40] = std::numeric_limits<float>::quiet_NaN();
  QuantizedTensor qm = mx->quantize(x.data(), 1, 64);
  EXPECT_EQ(qm.group_exponents[1], 255);
  EXPECT_NE(qm.group_exponents[0], 255);
  // sat= chooses between Inf/NaN and saturation; FP6 has neither, so it is not an option.
  EXPECT_THROW(parse_format("fp6:e3m2,sat=nonsat"), UsageError);
  EXPECT_THROW(parse_format("fp6:e4m3"), UsageError);
}

// MXFP6: the OCP MX block scale with emax 4 (E3M2) / 2 (E2M3), elements rounded after it.
TEST(Fp6, MxBlockScaleFollowsOcpMx) {
  std::vector<float> x = test::random_matrix(3, 64, 7, 6);
  for (const char* spec : {"fp6:e3m2,block=32", "fp6:e2m3,block=32"}) {
    auto format = parse_format(spec);
    const MinifloatParams& el = *format->minifloat_operand().element;
    QuantizedTensor q = format->quantize(x.data(), 3, 64);
    std::vector<float> back(x.size());
    format->dequantize(q, back.data());
    for (int64_t r = 0; r < 3; ++r)
      for (int64_t g = 0; g < 2; ++g) {
        const int code = q.group_exponents[r * 2 + g];
        EXPECT_EQ(code, mx_scale_code(el, x.data() + r * 64 + g * 32, 32));
        for (int64_t c = g * 32; c < g * 32 + 32; ++c) {
          const double scaled = std::ldexp(static_cast<double>(x[r * 64 + c]), 127 - code);
          EXPECT_EQ(q.codes[r * 64 + c], static_cast<int32_t>(encode_minifloat(el, scaled, true)));
          EXPECT_EQ(back[r * 64 + c],
                    static_cast<float>(std::ldexp(decode_minifloat(el, q.codes[r * 64 + c]), code - 127)));
        }
      }
  }
}

// The golden GEMM on FP6 operands (also mixed with FP8): exact products, one RNE per
// addition in K order for fp32; floor to 2^-F and saturate for fixed.
TEST(Fp6, GoldenGemmAddsExactProductsInOrder) {
  const int64_t m = 3, n = 4, k = 70;
  std::vector<float> xa = test::random_matrix(m, k, 1, 2), xb = test::random_matrix(n, k, 2, 2);
  for (const auto& [fa, fb] : {std::pair{"fp6:e3m2", "fp6:e3m2"}, std::pair{"fp6:e2m3", "fp6:e2m3"},
                               std::pair{"fp6:e2m3", "fp6:e3m2"}, std::pair{"fp6:e3m2", "fp8:e4m3"}}) {
    SCOPED_TRACE(std::string(fa) + " x " + fb);
    auto a_format = parse_format(fa), b_format = parse_format(fb);
    QuantizedTensor a = a_format->quantize(xa.data(), m, k), b = b_format->quantize(xb.data(), n, k);
    const MinifloatParams& pa = *a_format->minifloat_operand().element;
    const MinifloatParams& pb = *b_format->minifloat_operand().element;
    GemmResult fp = golden_gemm(a, b, AccumulatorSpec::parse("fp32"));
    GemmResult fx = golden_gemm(a, b, AccumulatorSpec::parse("fixed40.12"));
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) {
        float acc = 0.0f;
        int64_t fixed = 0;
        for (int64_t kk = 0; kk < k; ++kk) {
          const double p = decode_minifloat(pa, a.codes[i * k + kk]) * decode_minifloat(pb, b.codes[j * k + kk]);
          acc = static_cast<float>(static_cast<double>(acc) + p);  // |p| small: the double sum is exact
          fixed += static_cast<int64_t>(std::floor(std::ldexp(p, 12)));
        }
        EXPECT_EQ(fp.out[i * n + j], acc) << i << "," << j;
        EXPECT_EQ(fx.acc_raw[i * n + j], fixed) << i << "," << j;
        EXPECT_EQ(fp.flags[i * n + j], 0);
      }
  }
}

// What the unit tells the rest: hardware, the hardware key, its accumulator, label, variant.
TEST(Fp6, FormatUnitDescribesItsHardwareAndReports) {
  auto e3m2 = parse_format("fp6:e3m2"), e2m3 = parse_format("fp6:e2m3,block=0");
  EXPECT_EQ(e3m2->gemm_operand(), GemmOperandKind::minifloat);
  HardwareOperand h = e2m3->hardware();
  EXPECT_EQ(h.family, HardwareOperand::Family::minifloat);
  EXPECT_EQ(h.code_bits, 6);
  EXPECT_EQ(h.mf_exp_bits, 2);
  EXPECT_EQ(h.mf_man_bits, 3);
  EXPECT_EQ(h.mf_bias, 1);
  EXPECT_FALSE(h.mf_ieee_specials);
  EXPECT_FALSE(h.mf_has_nan);
  EXPECT_EQ(e3m2->hardware().mf_bias, 3);
  EXPECT_THROW(parse_format("fp6:e3m2,block=32")->hardware(), UsageError);
  EXPECT_EQ(e3m2->hardware_spec(), "fp6:e3m2,block=0");
  EXPECT_EQ(e3m2->natural_accumulator(), AccumulatorSpec::parse("fp32"));
  EXPECT_EQ(e3m2->label(), "FP6 E3M2");
  EXPECT_EQ(e2m3->variant(), "fp6-e2m3");
  EXPECT_DOUBLE_EQ(parse_format("fp6:e2m3,block=32")->bits_per_element(), 6.25);
  // The short design form gets the natural accumulator.
  DesignPoint d = DesignPoint::parse("fp6:e3m2@array2x2");
  EXPECT_EQ(d.str(), "fp6:e3m2,block=0@array2x2,acc=fp32,flow=os,pipe=1");
}

}  // namespace
}  // namespace gsqhw
