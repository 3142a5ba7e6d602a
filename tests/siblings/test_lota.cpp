// LoTA-QAF golden model: parameters, the per-weight merge (exhaustive for small ranks), the
// layer merge and its zero-point correction, the merged integer GEMM, t-SignSGD.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "base/errors.h"
#include "numerics/lota.h"
#include "tests/siblings/random_data.h"

namespace gsqhw {
namespace {

using lota::LotaParams;

TEST(LotaParams, RefusesBadParametersWithClearMessages) {
  auto refused = [](LotaParams p, const char* needle) {
    try {
      lota::validate(p);
    } catch (const UsageError& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
      return true;
    }
    return false;
  };
  const LotaParams good{4, 64, 16, 12.0};
  EXPECT_NO_THROW(lota::validate(good));
  EXPECT_NO_THROW(lota::validate({2, 128, 4, 3.0}));
  EXPECT_TRUE(refused({1, 64, 16, 12}, "bits N"));
  EXPECT_TRUE(refused({5, 64, 16, 12}, "bits N"));
  EXPECT_TRUE(refused({4, 32, 16, 12}, "group"));
  EXPECT_TRUE(refused({4, 100, 16, 12}, "group"));
  EXPECT_TRUE(refused({4, 64, 0, 0.5}, "rank"));
  EXPECT_TRUE(refused({4, 64, 65, 12}, "rank"));
  EXPECT_TRUE(refused({4, 64, 16, 0.0}, "omega"));
  EXPECT_TRUE(refused({4, 64, 16, 16.0}, "omega"));
  EXPECT_TRUE(refused({4, 64, 16, -1.0}, "omega"));
  EXPECT_TRUE(refused({4, 64, 16, std::numeric_limits<double>::quiet_NaN()}, "omega"));
}

TEST(LotaThreshold, IntegerThresholdIsTheSmallestIntegerAboveOmega) {
  EXPECT_EQ(lota::threshold(12.0), 13);
  EXPECT_EQ(lota::threshold(12.5), 13);
  EXPECT_EQ(lota::threshold(0.75), 1);
  for (double omega = 0.05; omega < 64; omega += 0.05)
    for (int dw = -64; dw <= 64; ++dw)
      ASSERT_EQ(std::abs(dw) > omega, std::abs(dw) >= lota::threshold(omega)) << omega << " " << dw;
}

TEST(LotaFp16, MatchesTheCompilerFp16Conversion) {
  test::Rng rng(7);
  for (int k = 0; k < 200000; ++k) {
    // Magnitudes from deep subnormal to near the FP16 maximum.
    float x = static_cast<float>(rng.normal() * std::ldexp(1.0, rng.below(40) - 26));
    if (std::fabs(x) > 65000) continue;
    ASSERT_EQ(lota::round_to_fp16(x), static_cast<float>(static_cast<_Float16>(x))) << x;
  }
  EXPECT_EQ(lota::round_to_fp16(1.0f + 0x1p-11f), 1.0f);                // tie to even
  EXPECT_EQ(lota::round_to_fp16(1.0f + 3 * 0x1p-11f), 1.0f + 0x1p-9f);  // tie to even (up)
  EXPECT_THROW(lota::round_to_fp16(70000.0f), UsageError);
  EXPECT_THROW(lota::round_to_fp16(std::numeric_limits<float>::infinity()), UsageError);
}

// Every ternary rank-r pattern pair for r = 1..4, every code of every width, several omegas:
// the merge follows its definition written with the real-valued omega.
TEST(LotaMergeCode, ExhaustiveSmallRankEveryCode) {
  for (int r = 1; r <= 4; ++r) {
    int patterns = 1;
    for (int j = 0; j < r; ++j) patterns *= 3;
    std::vector<int8_t> a(r), b(r);
    for (double frac : {0.25, 0.5, 0.75, 0.9}) {
      const double omega = frac * r;
      const int t = lota::threshold(omega);
      for (int pa = 0; pa < patterns; ++pa)
        for (int pb = 0; pb < patterns; ++pb) {
          int da = pa, db = pb, expect_dw = 0;
          for (int j = 0; j < r; ++j, da /= 3, db /= 3) {
            a[j] = static_cast<int8_t>(da % 3 - 1);
            b[j] = static_cast<int8_t>(db % 3 - 1);
            if (a[j] != 0 && b[j] != 0) expect_dw += a[j] == b[j] ? 1 : -1;
          }
          const int dw = lota::ternary_dot(a.data(), b.data(), r);
          ASSERT_EQ(dw, expect_dw);
          for (int bits = 2; bits <= 4; ++bits)
            for (int q = 0; q < (1 << bits); ++q) {
              int expect = q;
              if (std::abs(dw) > omega) expect = q + (dw > 0 ? 1 : -1);
              expect = std::max(0, std::min((1 << bits) - 1, expect));
              ASSERT_EQ(lota::merge_code(q, dw, t, bits), expect)
                  << "r=" << r << " omega=" << omega << " q=" << q << " dw=" << dw;
            }
        }
    }
  }
}

TEST(LotaMergeCode, SaturatesAtBothEndsOfTheGrid) {
  EXPECT_EQ(lota::merge_code(15, 16, 13, 4), 15);
  EXPECT_EQ(lota::merge_code(0, -16, 13, 4), 0);
  EXPECT_EQ(lota::merge_code(3, 4, 3, 2), 3);
  EXPECT_EQ(lota::merge_code(14, 13, 13, 4), 15);
  EXPECT_EQ(lota::merge_code(1, -13, 13, 4), 0);
  EXPECT_EQ(lota::merge_code(7, 12, 13, 4), 7);  // |dW| = omega is not "greater than"
}

struct Layer {
  std::vector<float> w;
  lota::QuantizedWeights base;
  lota::Adapters ad;
};

Layer random_layer(int64_t d_out, int64_t d_in, LotaParams p, uint64_t seed) {
  test::Rng rng(seed);
  Layer L;
  L.w = rng.normals(d_out * d_in, 0.02);
  L.base = lota::quantize_weights(L.w.data(), d_out, d_in, p.bits, p.group);
  L.ad.d_in = d_in;
  L.ad.d_out = d_out;
  L.ad.rank = p.rank;
  // Correlated adapters so that |dW| often passes the threshold: each rank column leans to
  // one sign, with some zeros.
  auto draw = [&](int lean) {
    double u = rng.uniform();
    if (u < 0.05) return int8_t{0};
    return static_cast<int8_t>(u < 0.97 ? lean : -lean);
  };
  for (int64_t i = 0; i < d_in; ++i) {
    int lean = (i % 3 == 0) ? -1 : 1;
    for (int j = 0; j < p.rank; ++j) L.ad.a.push_back(draw(lean));
  }
  for (int j = 0; j < p.rank; ++j)
    for (int64_t o = 0; o < d_out; ++o) L.ad.b.push_back(draw(o % 2 ? 1 : -1));
  return L;
}

TEST(LotaQuantize, MinMaxGroupsReconstructWithinHalfAStep) {
  for (int bits = 2; bits <= 4; ++bits) {
    LotaParams p{bits, 64, 8, 6};
    Layer L = random_layer(8, 200, p, 11 + bits);  // 200 = 3 full groups + a partial one
    ASSERT_EQ(L.base.groups_per_row(), 4);
    EXPECT_EQ(L.base.group_count(3), 8);
    std::vector<float> deq(L.w.size());
    L.base.dequantize(deq.data());
    for (int64_t o = 0; o < 8; ++o)
      for (int64_t i = 0; i < 200; ++i) {
        const int64_t g = o * 4 + i / 64;
        const double s = L.base.scale[g];
        ASSERT_LE(L.base.q[o * 200 + i], (1 << bits) - 1);
        // Half a step, plus the FP16 rounding of s and z (relative 2^-11 of the range).
        EXPECT_LE(std::fabs(deq[o * 200 + i] - L.w[o * 200 + i]), 0.5 * s + 0.01 * s * (1 << bits))
            << o << "," << i;
      }
  }
  std::vector<float> constant(64, 0.25f);
  auto q = lota::quantize_weights(constant.data(), 1, 64, 4, 64);
  std::vector<float> deq(64);
  q.dequantize(deq.data());
  for (float v : deq) EXPECT_EQ(v, 0.25f);
}

TEST(LotaMerge, LayerMergeFollowsTheScalarUnitAndTheZeroPointRule) {
  const LotaParams p{4, 64, 16, 12.0};
  Layer L = random_layer(12, 192, p, 3);
  auto res = lota::merge(L.base, L.ad, p);
  const int t = lota::threshold(p.omega);
  const int64_t groups = L.base.groups_per_row();
  int64_t changed = 0, clipped = 0;
  std::vector<int64_t> sum_dw(12 * groups, 0), sum_app(12 * groups, 0);
  for (int64_t o = 0; o < 12; ++o)
    for (int64_t i = 0; i < 192; ++i) {
      int dw = 0;
      for (int j = 0; j < p.rank; ++j) dw += L.ad.a[i * p.rank + j] * L.ad.b[j * 12 + o];
      const int64_t k = o * 192 + i;
      ASSERT_EQ(res.dw[k], dw);
      const int q_new = lota::merge_code(L.base.q[k], dw, t, p.bits);
      ASSERT_EQ(res.merged.q[k], q_new);
      ASSERT_EQ(res.applied[k], q_new - L.base.q[k]);
      changed += q_new != L.base.q[k];
      clipped += (q_new - L.base.q[k]) != lota::ternary_decision(dw, t);
      sum_dw[o * groups + i / 64] += dw;
      sum_app[o * groups + i / 64] += q_new - L.base.q[k];
    }
  EXPECT_EQ(res.changed, changed);
  EXPECT_EQ(res.clipped, clipped);
  EXPECT_GT(changed, 100);  // the data is built so that the adapters do something
  EXPECT_EQ(res.group_sum_dw, sum_dw);
  EXPECT_EQ(res.group_sum_applied, sum_app);
  for (int64_t g = 0; g < 12 * groups; ++g) {
    EXPECT_EQ(res.merged.scale[g], L.base.scale[g]);
    const double mu = (sum_dw[g] - p.omega * sum_app[g]) / 64.0;
    const double z_exact = L.base.zero[g] + static_cast<double>(L.base.scale[g]) * mu;
    EXPECT_NEAR(res.merged.zero[g], z_exact, std::fabs(z_exact) * 0x1p-11 + 1e-12) << g;
    EXPECT_EQ(res.merged.zero[g], lota::round_to_fp16(res.merged.zero[g]));
  }
}

TEST(LotaMerge, ClampedDecisionsAreCountedAndLeaveTheCode) {
  const LotaParams p{2, 64, 4, 3.0};
  lota::QuantizedWeights base;
  base.rows = 1;
  base.cols = 64;
  base.bits = 2;
  base.group = 64;
  base.q.assign(64, 3);  // every code at the top of the 2-bit grid
  base.q[1] = 0;
  base.scale = {0.5f};
  base.zero = {-1.0f};
  lota::Adapters ad{64, 1, 4, std::vector<int8_t>(64 * 4, 1), std::vector<int8_t>(4, 1)};
  auto res = lota::merge(base, ad, p);  // dW = +4 everywhere: every decision is +1
  EXPECT_EQ(res.clipped, 63);
  EXPECT_EQ(res.changed, 1);
  EXPECT_EQ(res.merged.q[1], 1);
  EXPECT_EQ(res.merged.q[0], 3);
  // mu = (64 * 4 - 3 * 1) / 64; z' = -1 + 0.5 mu
  EXPECT_FLOAT_EQ(res.merged.zero[0], lota::round_to_fp16(static_cast<float>(-1.0 + 0.5 * (253.0 / 64))));
}

TEST(LotaMerge, RefusesMismatchedAdaptersAndNonTernaryValues) {
  const LotaParams p{4, 64, 4, 3.0};
  Layer L = random_layer(2, 64, p, 5);
  auto bad = L.ad;
  bad.a[3] = 2;
  EXPECT_THROW(lota::merge(L.base, bad, p), UsageError);
  bad = L.ad;
  bad.d_in = 32;
  EXPECT_THROW(lota::merge(L.base, bad, p), UsageError);
  EXPECT_THROW(lota::merge(L.base, L.ad, LotaParams{4, 64, 8, 3.0}), UsageError);  // rank
  EXPECT_THROW(lota::merge(L.base, L.ad, LotaParams{3, 64, 4, 3.0}), UsageError);  // bits
}

TEST(LotaActivations, PerTokenInt8) {
  std::vector<float> x = {0.5f, -1.0f, 0.25f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 3.0f, 1.0f, -3.0f, 0.001f};
  auto q = lota::quantize_activations(x.data(), 3, 4);
  EXPECT_EQ(q.format_spec, "int8:per=channel");
  EXPECT_EQ(q.scales[0], 1.0f / 127.0f);
  EXPECT_EQ(q.codes[1], -127);
  EXPECT_EQ(q.codes[0], 64);  // 63.5 rounds to even
  EXPECT_EQ(q.scales[1], 0.0f);
  for (int i = 4; i < 8; ++i) EXPECT_EQ(q.codes[i], 0);
  EXPECT_EQ(q.codes[8], 127);
  EXPECT_EQ(q.codes[10], -127);
  EXPECT_EQ(q.codes[11], 0);
  x[2] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_THROW(lota::quantize_activations(x.data(), 3, 4), UsageError);
}

TEST(LotaGemm, IntegerSumsAreExactAndOutputMatchesTheDequantizedProduct) {
  const LotaParams p{3, 128, 8, 6.0};
  Layer L = random_layer(6, 320, p, 9);
  auto merged = lota::merge(L.base, L.ad, p).merged;
  test::Rng rng(17);
  auto x = rng.normals(5 * 320, 1.0);
  auto xq = lota::quantize_activations(x.data(), 5, 320);
  auto r = lota::merged_gemm(xq, merged);
  ASSERT_EQ(r.groups, 3);
  std::vector<float> wdeq(6 * 320);
  merged.dequantize(wdeq.data());
  for (int64_t t = 0; t < 5; ++t)
    for (int64_t o = 0; o < 6; ++o) {
      double ref = 0, mag = 0;
      for (int64_t g = 0; g < 3; ++g) {
        int64_t dot = 0, xs = 0;
        for (int64_t i = g * 128; i < std::min<int64_t>(320, (g + 1) * 128); ++i) {
          dot += xq.codes[t * 320 + i] * merged.q[o * 320 + i];
          xs += xq.codes[t * 320 + i];
        }
        ASSERT_EQ(r.group_dot[(t * 6 + o) * 3 + g], dot);
        ASSERT_EQ(r.group_xsum[t * 3 + g], xs);
      }
      for (int64_t i = 0; i < 320; ++i) {
        double term = static_cast<double>(xq.scales[t]) * xq.codes[t * 320 + i] * wdeq[o * 320 + i];
        ref += term;
        mag += std::fabs(term);
      }
      EXPECT_NEAR(r.out[t * 6 + o], ref, 1e-6 * mag + 1e-30);
    }
}

TEST(LotaSignSgd, StepRuleOnEveryStateAndGradientSign) {
  for (int x0 = -1; x0 <= 1; ++x0)
    for (float g : {-2.0f, -0.5f, 0.0f, 0.5f, 2.0f}) {
      std::vector<int8_t> x = {static_cast<int8_t>(x0)};
      int64_t changed = lota::t_signsgd_step(x, {g}, 1.0f);
      int expect = x0;
      if (std::fabs(g) > 1.0f) expect = std::max(-1, std::min(1, x0 - (g > 0 ? 1 : -1)));
      EXPECT_EQ(x[0], expect) << x0 << " " << g;
      EXPECT_EQ(changed, expect != x0 ? 1 : 0);
    }
  std::vector<int8_t> x(3, 0);
  EXPECT_THROW(lota::t_signsgd_step(x, {1, 2, 3}, -1.0f), UsageError);
  EXPECT_THROW(lota::t_signsgd_step(x, {1, 2}, 1.0f), UsageError);
}

TEST(LotaSignSgd, PercentileThresholdLetsTheRequestedFractionMove) {
  test::Rng rng(4);
  auto g = rng.normals(1000, 1.0);
  for (double f : {0.0, 0.01, 0.1, 0.5}) {
    float thr = lota::percentile_threshold(g, f);
    int above = 0;
    for (float v : g) above += std::fabs(v) > thr;
    EXPECT_EQ(above, static_cast<int>(std::ceil(f * 1000))) << f;
  }
  EXPECT_EQ(lota::percentile_threshold(g, 1.0), 0.0f);
  EXPECT_THROW(lota::percentile_threshold(g, 1.5), UsageError);
}

TEST(LotaSignSgd, AdapterGradientsMatchTheChainRuleAndAStepLowersALinearLoss) {
  const LotaParams p{4, 64, 4, 3.0};
  Layer L = random_layer(5, 64, p, 21);
  test::Rng rng(22);
  auto gw = rng.normals(5 * 64, 1.0);
  auto grads = lota::adapter_gradients(gw.data(), L.base, L.ad);
  for (int64_t i = 0; i < 64; ++i)
    for (int j = 0; j < 4; ++j) {
      double ref = 0;
      for (int64_t o = 0; o < 5; ++o)
        ref += gw[o * 64 + i] * static_cast<double>(L.base.scale[o]) * L.ad.b[j * 5 + o];
      EXPECT_NEAR(grads.a[i * 4 + j], ref, 1e-5 * (1 + std::fabs(ref)));
    }
  // Surrogate loss sum gW * s * dW is linear in A: a sign step can only lower it.
  auto surrogate = [&](const lota::Adapters& ad) {
    double loss = 0;
    for (int64_t o = 0; o < 5; ++o)
      for (int64_t i = 0; i < 64; ++i) {
        int dw = 0;
        for (int j = 0; j < 4; ++j) dw += ad.a[i * 4 + j] * ad.b[j * 5 + o];
        loss += gw[o * 64 + i] * static_cast<double>(L.base.scale[o]) * dw;
      }
    return loss;
  };
  const double before = surrogate(L.ad);
  auto stepped = L.ad;
  EXPECT_GT(lota::t_signsgd_step(stepped.a, grads.a, lota::percentile_threshold(grads.a, 0.2)), 0);
  EXPECT_LT(surrogate(stepped), before);
}

}  // namespace
}  // namespace gsqhw
