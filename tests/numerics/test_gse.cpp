// GSE-INT quantization: every element code, rounding modes, scale rules, special groups,
// MXINT8 equivalence, stochastic rounding statistics.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "base/errors.h"
#include "numerics/format.h"
#include "numerics/gse.h"
#include "tests/numerics/numerics_test_util.h"

namespace gsqhw {
namespace {

std::vector<float> dequantized(const Format& f, const QuantizedTensor& q) {
  std::vector<float> out(static_cast<size_t>(q.rows * q.cols));
  f.dequantize(q, out.data());
  return out;
}

TEST(Gse, EveryElementCodeForEveryWidthRoundTrips) {
  for (int b = 2; b <= 8; ++b) {
    for (int e : {4, 5, 8}) {
      for (const char* range : {"symmetric", "full"}) {
        GseParams p = GseParams::parse(fmt::format("gse:b={},g=4,e={},range={}", b, e, range));
        auto format = parse_format(p.spec());
        for (int exp_code : {0, 1, p.bias(), p.max_exp_code() - 1}) {
          // Element 0 holds the largest magnitude so that the group keeps this exponent.
          std::vector<float> x, expected;
          for (int m = p.elem_min(); m <= p.elem_max(); ++m) {
            float top = static_cast<float>(gse_element_value(p, p.elem_max(), exp_code));
            float v = static_cast<float>(gse_element_value(p, m, exp_code));
            EXPECT_EQ(static_cast<double>(v), std::ldexp(m, exp_code - p.bias() - (b - 2)));
            // -2^(b-1) (range=full) has magnitude 2^(e+1): as an input it would raise the
            // group's exponent, so it is reached by rounding -(2^(b-1) - 1/4) steps instead.
            if (m < -p.elem_max())
              v = static_cast<float>(gse_element_value(p, 4 * m + 1, exp_code) / 4);
            x.insert(x.end(), {top, v, 0.0f, -v});
          }
          int64_t rows = static_cast<int64_t>(x.size() / 4);
          QuantizedTensor q = format->quantize(x.data(), rows, 4);
          std::vector<float> back = dequantized(*format, q);
          for (int64_t r = 0; r < rows; ++r) {
            int m = p.elem_min() + static_cast<int>(r);
            SCOPED_TRACE(testing::Message() << p.spec() << " exp " << exp_code << " m " << m);
            EXPECT_EQ(q.group_exponents[r], exp_code);
            EXPECT_EQ(q.codes[r * 4 + 1], m);
            EXPECT_EQ(static_cast<double>(back[r * 4 + 1]), gse_element_value(p, m, exp_code));
            // -m is representable except -(-2^(b-1)), which saturates to elem_max.
            EXPECT_EQ(q.codes[r * 4 + 3], std::min(-m, p.elem_max()));
          }
        }
      }
    }
  }
}

// Independent reference of one GSE element: nearest grid value by brute force over all
// codes, with the tie rule of each rounding mode.
int reference_element(const GseParams& p, double x, int exp_code) {
  int best = 0;
  double best_err = std::numeric_limits<double>::infinity();
  for (int m = p.elem_min(); m <= p.elem_max(); ++m) {
    double v = gse_element_value(p, m, exp_code);
    double err = std::fabs(v - x);
    bool better = err < best_err;
    if (err == best_err) {
      if (p.round == GseParams::Round::rne) better = (m % 2) == 0;
      if (p.round == GseParams::Round::rna) better = std::fabs(v) > std::fabs(x);
    }
    if (better) {
      best = m;
      best_err = err;
    }
  }
  if (p.round == GseParams::Round::trunc) {  // largest magnitude not above |x|, same sign
    best = 0;
    for (int m = p.elem_min(); m <= p.elem_max(); ++m) {
      double v = gse_element_value(p, m, exp_code);
      if (std::fabs(v) <= std::fabs(x) && (v == 0 || (v > 0) == (x > 0)) &&
          std::fabs(v) >= std::fabs(gse_element_value(p, best, exp_code)))
        best = m;
    }
  }
  return best;
}

TEST(Gse, MatchesBruteForceReferenceOnRandomData) {
  const int64_t rows = 8, cols = 100;  // 100 = 3 full groups of 32 + a partial group of 4
  for (int b = 2; b <= 8; ++b) {
    for (const char* scale : {"floor", "ceil"}) {
      for (const char* round : {"rne", "rna", "trunc"}) {
        for (const char* range : {"symmetric", "full"}) {
          GseParams p = GseParams::parse(fmt::format("gse:b={},g=32,e=5,scale={},round={},range={}",
                                                     b, scale, round, range));
          auto format = parse_format(p.spec());
          std::vector<float> x = test::random_matrix(rows, cols, 100 + b, 30);
          QuantizedTensor q = format->quantize(x.data(), rows, cols);
          for (int64_t r = 0; r < rows; ++r) {
            for (int64_t c = 0; c < cols; ++c) {
              int exp_code = q.group_exponents[r * 4 + c / 32];
              ASSERT_EQ(q.codes[r * cols + c], reference_element(p, x[r * cols + c], exp_code))
                  << p.spec() << " x=" << x[r * cols + c] << " exp " << exp_code;
            }
          }
        }
      }
    }
  }
}

TEST(Gse, ExponentRuleFloorCeilAndClamp) {
  GseParams floor_p = GseParams::parse("gse:b=8,g=4,e=5");
  GseParams ceil_p = GseParams::parse("gse:b=8,g=4,e=5,scale=ceil");
  float group[4] = {1.5f, -0.25f, 0.0f, 1.0f};
  EXPECT_EQ(gse_choose_exponent(floor_p, group, 4), 0 + 15);  // floor(log2 1.5) = 0
  EXPECT_EQ(gse_choose_exponent(ceil_p, group, 4), 0 + 15);   // 1.5 <= 127/64
  float edge[4] = {1.99f, 0, 0, 0};
  EXPECT_EQ(gse_choose_exponent(floor_p, edge, 4), 15);
  EXPECT_EQ(gse_choose_exponent(ceil_p, edge, 4), 16);  // 1.99 > 127/64: next exponent
  float huge[4] = {1e30f, 0, 0, 0}, tiny[4] = {1e-30f, 0, 0, 0}, zero[4] = {0, -0.0f, 0, 0};
  EXPECT_EQ(gse_choose_exponent(floor_p, huge, 4), 30);  // clamped to the top code (2^E - 2)
  EXPECT_EQ(gse_choose_exponent(floor_p, tiny, 4), 0);   // clamped to the bottom code
  EXPECT_EQ(gse_choose_exponent(floor_p, zero, 4), 0);
  float with_nan[4] = {1, NAN, 0, 0}, with_inf[4] = {1, -INFINITY, 0, 0};
  EXPECT_EQ(gse_choose_exponent(floor_p, with_nan, 4), 31);
  EXPECT_EQ(gse_choose_exponent(floor_p, with_inf, 4), 31);
  // Huge values saturate at the clamped exponent instead of overflowing.
  EXPECT_EQ(gse_quantize_element(floor_p, 1e30f, 30, 0), 127);
  EXPECT_EQ(gse_quantize_element(floor_p, -1e30f, 30, 0), -127);
}

TEST(Gse, FloorCanSaturateCeilNeverClips) {
  // 1.995 * 2^6 = 127.68 rounds to 128 > 127: floor saturates (defined behaviour), ceil moves
  // to the next exponent and represents it within half a step.
  auto floor_f = parse_format("gse:b=8,g=4,e=5,scale=floor");
  auto ceil_f = parse_format("gse:b=8,g=4,e=5,scale=ceil");
  float x[4] = {1.995f, 0.5f, -0.75f, 0.01f};
  QuantizedTensor qf = floor_f->quantize(x, 1, 4), qc = ceil_f->quantize(x, 1, 4);
  EXPECT_EQ(qf.codes[0], 127);
  EXPECT_EQ(qf.group_exponents[0], 15);
  EXPECT_EQ(qc.group_exponents[0], 16);
  EXPECT_EQ(qc.codes[0], 64);  // 1.995 * 2^5 = 63.84 -> 64
  auto back_f = dequantized(*floor_f, qf), back_c = dequantized(*ceil_f, qc);
  EXPECT_GT(std::fabs(back_f[0] - x[0]), std::ldexp(1.0f, -6) / 2);  // clipped
  EXPECT_LE(std::fabs(back_c[0] - x[0]), std::ldexp(1.0f, -5) / 2);

  // Ceil never clips on random data (rne): every error within half a step.
  for (int b = 2; b <= 8; ++b) {
    GseParams p = GseParams::parse(fmt::format("gse:b={},g=16,e=8,scale=ceil", b));
    auto f = parse_format(p.spec());
    std::vector<float> data = test::random_matrix(32, 64, 900 + b, 10);
    QuantizedTensor q = f->quantize(data.data(), 32, 64);
    auto back = dequantized(*f, q);
    for (size_t i = 0; i < data.size(); ++i) {
      int exp_code = q.group_exponents[i / 16];
      double step = std::ldexp(1.0, exp_code - p.bias() - p.frac_bits());
      ASSERT_LE(std::fabs(static_cast<double>(back[i]) - data[i]), step / 2) << p.spec();
    }
  }
}

TEST(Gse, ErrorBoundsPerRoundingMode) {
  for (const char* round : {"rne", "rna", "trunc", "stochastic"}) {
    for (int b : {3, 4, 6, 8}) {
      GseParams p = GseParams::parse(fmt::format("gse:b={},g=32,e=6,round={}", b, round));
      auto f = parse_format(p.spec());
      std::vector<float> x = test::random_matrix(16, 96, 40 + b, 8);
      QuantizedTensor q = f->quantize(x.data(), 16, 96, 3);
      auto y = dequantized(*f, q);
      for (size_t i = 0; i < x.size(); ++i) {
        int exp_code = q.group_exponents[i / 32];
        double step = std::ldexp(1.0, exp_code - p.bias() - p.frac_bits());
        double err = std::fabs(static_cast<double>(y[i]) - x[i]);
        bool saturated = std::abs(q.codes[i]) == p.elem_max();
        bool nearest = p.round == GseParams::Round::rne || p.round == GseParams::Round::rna;
        // Nearest modes: half a step, except a floor-saturated element (< one step).
        double bound = nearest && !saturated ? step / 2 : step;
        ASSERT_LE(err, bound) << p.spec() << " x=" << x[i];
        if (p.round == GseParams::Round::trunc) {
          ASSERT_LE(std::fabs(y[i]), std::fabs(x[i]));
        }
      }
    }
  }
}

TEST(Gse, QuantizeIsIdempotent) {
  // (Symmetric range only: with range=full a group whose minimum rounds to -2^(b-1), i.e.
  // -2^(e+1), gets exponent e+1 when quantized again, as in OCP MXINT8. Documented in
  // docs/numerics.md.)
  for (const char* spec : {"gse:b=8", "gse:b=4,g=16,scale=ceil", "gse:b=3,g=8,round=trunc",
                           "gse:b=6,round=stochastic,seed=9", "gse:b=2,g=4,e=4",
                           "gse:b=5,g=64,e=8,round=rna,scale=ceil", "gse:b=7,g=4,e=4,scale=ceil,round=trunc"}) {
    auto f = parse_format(spec);
    std::vector<float> x = test::random_matrix(8, 200, 77, 40);
    auto once = dequantized(*f, f->quantize(x.data(), 8, 200, 1));
    auto twice = dequantized(*f, f->quantize(once.data(), 8, 200, 2));
    for (size_t i = 0; i < x.size(); ++i) ASSERT_EQ(once[i], twice[i]) << spec << " i=" << i;
  }
}

TEST(Gse, NanZeroAndPartialGroups) {
  auto f = parse_format("gse:b=6,g=8,e=5");
  // Row of 21: groups [0,8) normal, [8,16) NaN (an Inf), [16,21) partial and all zero.
  std::vector<float> x(21, 0.0f);
  for (int i = 0; i < 8; ++i) x[i] = 0.1f * (i + 1);
  for (int i = 8; i < 16; ++i) x[i] = 1.0f;
  x[11] = INFINITY;
  QuantizedTensor q = f->quantize(x.data(), 1, 21);
  ASSERT_EQ(q.groups_per_row(), 3);
  EXPECT_EQ(q.group_exponents[0], 15 - 1);  // amax 0.8: floor(log2 0.8) = -1
  EXPECT_EQ(q.group_exponents[1], 31);
  EXPECT_EQ(q.group_exponents[2], 0);
  auto y = dequantized(*f, q);
  for (int i = 8; i < 16; ++i) {
    EXPECT_TRUE(std::isnan(y[i]));
    EXPECT_EQ(q.codes[i], 0);
  }
  for (int i = 16; i < 21; ++i) EXPECT_EQ(y[i], 0.0f);
  // A partial group takes its exponent from its own elements only.
  std::vector<float> z(21, 0.001f);
  z[20] = 5.0f;
  QuantizedTensor qz = f->quantize(z.data(), 1, 21);
  EXPECT_EQ(qz.group_exponents[2], 15 + 2);
  EXPECT_EQ(qz.group_exponents[0], 15 - 10);
}

TEST(Gse, Mxint8ProfileMatchesOcpMx) {
  // OCP MX v1.0 MXINT8: X = 2^(floor(log2(amax)) - 0) as E8M0 (clamped to 2^-127..2^127);
  // P_i = clamp(RNE(V_i / X * 64) / 64, -2, 1 + 63/64); value = X * P_i.
  auto f = parse_format("gse:b=8,e=8,g=32,range=full");
  EXPECT_EQ(f->spec(), "gse:b=8,g=32,e=8,scale=floor,round=rne,range=full");
  std::vector<float> x = test::random_matrix(64, 96, 2024, 60);
  // Row 5: FP32 subnormals around 2^-130, below E8M0's 2^-127: the scale clamps.
  for (int i = 0; i < 96; ++i) x[5 * 96 + i] = std::ldexp(0.37f * static_cast<float>(i % 7 - 3), -130);
  QuantizedTensor q = f->quantize(x.data(), 64, 96);
  auto y = dequantized(*f, q);
  for (int64_t r = 0; r < 64; ++r) {
    for (int g = 0; g < 3; ++g) {
      float amax = 0;
      for (int c = g * 32; c < g * 32 + 32; ++c) amax = std::max(amax, std::fabs(x[r * 96 + c]));
      int shared = std::clamp(static_cast<int>(std::floor(std::log2(amax))), -127, 127);
      EXPECT_EQ(q.group_exponents[r * 3 + g], shared + 127);
      for (int c = g * 32; c < g * 32 + 32; ++c) {
        double v = std::ldexp(static_cast<double>(x[r * 96 + c]), -shared) * 64;
        double p = std::nearbyint(v) / 64;
        p = std::clamp(p, -2.0, 1.0 + 63.0 / 64);
        ASSERT_EQ(static_cast<double>(y[r * 96 + c]), std::ldexp(p, shared)) << r << "," << c;
      }
    }
  }
}

TEST(Gse, FullRangeNeverDequantizesToInfinity) {
  // MXINT8 at the top exponent: -2 * 2^127 is not an FP32 number, so the range stays symmetric.
  auto f = parse_format("gse:b=8,e=8,g=4,range=full");
  float x[4] = {-3.4e38f, 1e38f, 0, 0};
  QuantizedTensor q = f->quantize(x, 1, 4);
  EXPECT_EQ(q.group_exponents[0], 254);
  EXPECT_EQ(q.codes[0], -127);
  auto y = dequantized(*f, q);
  EXPECT_TRUE(std::isfinite(y[0]));
}

TEST(Gse, StochasticRoundingIsUnbiasedAndReproducible) {
  // Every group: element 0 = 1.0 fixes the exponent (step 2^-6 for b=8), the others hold
  // v = 0.3 steps above a grid point; the mean must approach v.
  auto f = parse_format("gse:b=8,g=32,round=stochastic,seed=5");
  const int64_t rows = 2000;
  const double step = std::ldexp(1.0, -6);
  const float v = static_cast<float>(10 * step + 0.3 * step);
  std::vector<float> x(static_cast<size_t>(rows * 32), v);
  for (int64_t r = 0; r < rows; ++r) x[r * 32] = 1.0f;
  QuantizedTensor q1 = f->quantize(x.data(), rows, 32, 11);
  auto y = dequantized(*f, q1);
  double sum = 0;
  int64_t n = 0, ups = 0;
  for (int64_t r = 0; r < rows; ++r)
    for (int c = 1; c < 32; ++c) {
      sum += y[r * 32 + c];
      ups += q1.codes[r * 32 + c] == 11;
      ++n;
    }
  double p_up = 0.3, sigma = std::sqrt(p_up * (1 - p_up) / n);
  EXPECT_NEAR(static_cast<double>(ups) / n, p_up, 5 * sigma);
  EXPECT_NEAR(sum / n, v, 5 * sigma * step);

  QuantizedTensor q2 = f->quantize(x.data(), rows, 32, 11);
  EXPECT_EQ(q1.codes, q2.codes);  // same seeds: identical
  QuantizedTensor q3 = f->quantize(x.data(), rows, 32, 12);
  EXPECT_NE(q1.codes, q3.codes);  // another call seed
  auto g = parse_format("gse:b=8,g=32,round=stochastic,seed=6");
  EXPECT_NE(q1.codes, g->quantize(x.data(), rows, 32, 11).codes);  // another spec seed
}

TEST(Gse, SpecsParseAndPrint) {
  EXPECT_EQ(parse_format("gse")->spec(), "gse:b=8,g=32,e=5,scale=floor,round=rne,range=symmetric");
  EXPECT_EQ(parse_format("gse:b=6")->spec(),
            "gse:b=6,g=32,e=5,scale=floor,round=rne,range=symmetric");
  const char* canonical = "gse:b=6,g=32,e=5,scale=floor,round=stochastic,range=symmetric,seed=1";
  EXPECT_EQ(parse_format(canonical)->spec(), canonical);
  EXPECT_EQ(parse_format("gse:range=full,e=8,b=3,g=256,scale=ceil,round=trunc")->spec(),
            "gse:b=3,g=256,e=8,scale=ceil,round=trunc,range=full");
  for (const char* bad : {"gse:b=1", "gse:b=9", "gse:g=0", "gse:g=2", "gse:g=24", "gse:g=512",
                          "gse:e=3", "gse:e=20", "gse:b=x", "gse:b=", "gse:b", "gse:scale=up",
                          "gse:round=even", "gse:range=half", "gse:seed=1", "gse:b=6,,g=8",
                          "gse:b=6,b=7", "gse:", "gse:q=1", "gse:round=stochastic,seed=-1"}) {
    EXPECT_THROW(parse_format(bad), UsageError) << bad;
  }
  try {
    parse_format("gse:g=24");
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("power of two"), std::string::npos) << e.what();
  }
  auto f = parse_format("gse:b=6,g=32,e=5");
  EXPECT_EQ(f->family(), "gse");
  EXPECT_EQ(f->element_bits(), 6);
  EXPECT_DOUBLE_EQ(f->bits_per_element(), 6 + 5.0 / 32);
}

}  // namespace
}  // namespace gsqhw
