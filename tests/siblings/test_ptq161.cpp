// PTQ1.61 golden model: parameters, salient-channel choice, the mixed 4-bit / binary
// quantizer, bits per weight, the integer GEMM.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "base/errors.h"
#include "numerics/lota.h"
#include "numerics/ptq161.h"
#include "tests/siblings/random_data.h"
#include "workloads/lora.h"

namespace gsqhw {
namespace {

using ptq161::Ptq161Params;

TEST(Ptq161Params, RefusesSalientFractionOutsideZeroOne) {
  EXPECT_NO_THROW(ptq161::validate({0.2, 2}));
  EXPECT_NO_THROW(ptq161::validate({0.0, 1}));
  EXPECT_NO_THROW(ptq161::validate({1.0, 1}));
  for (double bad : {-0.01, 1.01, std::numeric_limits<double>::quiet_NaN()}) {
    try {
      ptq161::validate({bad, 2});
      ADD_FAILURE() << "accepted fraction " << bad;
    } catch (const UsageError& e) {
      EXPECT_NE(std::string(e.what()).find("salient fraction"), std::string::npos);
    }
    EXPECT_THROW(ptq161::choose_salient({1, 2, 3}, bad), UsageError);
  }
  EXPECT_THROW(ptq161::validate({0.2, 0}), UsageError);
  EXPECT_THROW(ptq161::validate({0.2, 17}), UsageError);
}

TEST(Ptq161Mask, LargestActivationChannelsTiesToLowerIndex) {
  std::vector<float> mag = {1, 5, 3, 5, 0, 2, 9, 1, 1, 4};
  auto m = ptq161::choose_salient(mag, 0.2);  // 2 of 10
  EXPECT_EQ(m, (std::vector<uint8_t>{0, 1, 0, 0, 0, 0, 1, 0, 0, 0}));  // 9, then 5 at index 1
  m = ptq161::choose_salient(mag, 0.3);  // 9, then the tie 5/5 -> indices 1 and 3
  EXPECT_EQ(m, (std::vector<uint8_t>{0, 1, 0, 1, 0, 0, 1, 0, 0, 0}));
  EXPECT_EQ(ptq161::choose_salient(mag, 0.0), std::vector<uint8_t>(10, 0));
  EXPECT_EQ(ptq161::choose_salient(mag, 1.0), std::vector<uint8_t>(10, 1));
}

TEST(Ptq161Mask, ChannelMagnitudeIsMeanAbsoluteActivation) {
  std::vector<float> x = {1, -2, 3, -3, 0, 1};
  auto m = ptq161::channel_magnitudes(x.data(), 2, 3);
  EXPECT_FLOAT_EQ(m[0], 2.0f);
  EXPECT_FLOAT_EQ(m[1], 1.0f);
  EXPECT_FLOAT_EQ(m[2], 2.0f);
}

struct Data {
  std::vector<float> w, x;
  std::vector<uint8_t> mask;
};

// Weights N(0, 0.02) with per-column spread; activations with 10% outlier channels (x8).
Data synthetic(int64_t d_out, int64_t d_in, int64_t tokens, double fraction, uint64_t seed) {
  test::Rng rng(seed);
  Data d;
  d.w = rng.normals(d_out * d_in, 0.02);
  for (int64_t c = 0; c < d_in; ++c) {
    const double col = 0.5 + rng.uniform();
    for (int64_t o = 0; o < d_out; ++o) d.w[o * d_in + c] *= static_cast<float>(col);
  }
  d.x = rng.normals(tokens * d_in, 1.0);
  for (int64_t c = 0; c < d_in; c += 10)
    for (int64_t t = 0; t < tokens; ++t) d.x[t * d_in + c] *= 8.0f;
  d.mask = ptq161::choose_salient(ptq161::channel_magnitudes(d.x.data(), tokens, d_in), fraction);
  return d;
}

TEST(Ptq161Quantize, CodesScalesAndSalientReconstruction) {
  Data d = synthetic(16, 100, 8, 0.2, 1);
  auto L = ptq161::quantize(d.w.data(), 16, 100, d.mask, {0.2, 3});
  EXPECT_EQ(L.salient_count(), 20);
  std::vector<float> deq(16 * 100);
  L.dequantize(deq.data());
  for (int64_t o = 0; o < 16; ++o) {
    EXPECT_GE(L.z[o], 0);
    EXPECT_LE(L.z[o], 15);
    for (float v : {L.s[o], L.alpha[o], L.mu[o], L.r[o]}) EXPECT_EQ(v, lota::round_to_fp16(v));
    for (int64_t c = 0; c < 100; ++c) {
      const uint8_t code = L.code[o * 100 + c];
      if (L.salient[c]) {
        ASSERT_LE(code, 15);
        // 4-bit: within half a step plus FP16 rounding of the step.
        EXPECT_LE(std::fabs(deq[o * 100 + c] - d.w[o * 100 + c]), 0.5 * L.s[o] * (1 + 0x1p-8));
      } else {
        ASSERT_LE(code, 1);
      }
    }
  }
  for (int64_t c = 0; c < 100; ++c) {
    EXPECT_GT(L.t[c], 0.0f);
    if (L.salient[c]) {
      EXPECT_EQ(L.t[c], 1.0f);
    }
  }
}

// ||a - ref|| / ||ref|| over same-sized outputs.
double relative_error(const std::vector<float>& a, const std::vector<float>& ref) {
  return error_stats(a.data(), ref.data(), static_cast<int64_t>(ref.size())).rel_rms;
}

// The point of the method: with outlier activation channels, keeping the salient ones at
// 4 bits cuts the output error well below a fully binary layer, and the column/row scale
// fit does not make the binary part worse than plain per-row binarisation.
TEST(Ptq161Quantize, SalientChannelsAndScaleFitReduceOutputError) {
  Data d = synthetic(64, 320, 16, 0.2, 2);
  auto ref = reference_product(d.x, d.w, 16, 64, 320);
  auto output_error = [&](const std::vector<uint8_t>& mask, int iterations) {
    auto L = ptq161::quantize(d.w.data(), 64, 320, mask, {0.2, iterations});
    std::vector<float> deq(64 * 320);
    L.dequantize(deq.data());
    return relative_error(reference_product(d.x, deq, 16, 64, 320), ref);
  };
  const double salient = output_error(d.mask, 3);
  const double binary_only = output_error(std::vector<uint8_t>(320, 0), 3);
  EXPECT_LT(salient, 0.8 * binary_only) << salient << " vs " << binary_only;
  const double plain = output_error(d.mask, 1);
  EXPECT_LE(salient, plain * 1.02) << salient << " vs " << plain;
}

TEST(Ptq161Bits, StorageFormulaAndAbout161BitsAtLlamaSize) {
  ptq161::Ptq161Layer L;
  L.rows = 4096;
  L.cols = 4096;
  L.salient.assign(4096, 0);
  for (int c = 0; c < 819; ++c) L.salient[c * 5] = 1;  // round(0.2 * 4096) = 819
  auto b = ptq161::storage_bits(L);
  EXPECT_EQ(b.mask, 4096);
  EXPECT_EQ(b.salient_codes, 4.0 * 4096 * 819);
  EXPECT_EQ(b.binary_codes, 1.0 * 4096 * 3277);
  EXPECT_EQ(b.row_params, 4096.0 * 68);
  EXPECT_EQ(b.col_params, 16.0 * 3277);
  const double bpw = ptq161::bits_per_weight(L);
  EXPECT_GT(bpw, 1.60);
  EXPECT_LT(bpw, 1.63);
}

TEST(Ptq161Gemm, IntegerSumsExactAndOutputMatchesElementwiseReference) {
  Data d = synthetic(8, 96, 6, 0.25, 3);
  auto L = ptq161::quantize(d.w.data(), 8, 96, d.mask, {0.25, 2});
  auto xq = ptq161::quantize_activations(d.x.data(), 6, L);
  auto r = ptq161::gemm(xq, L);
  for (int64_t t = 0; t < 6; ++t) {
    int64_t xs = 0, xb = 0;
    for (int64_t c = 0; c < 96; ++c) {
      if (L.salient[c]) xs += xq.codes[t * 96 + c];
      else xb += xq.codes[t * 96 + c];
    }
    EXPECT_EQ(r.x_sal[t], xs);
    EXPECT_EQ(r.x_bin[t], xb);
    for (int64_t o = 0; o < 8; ++o) {
      int64_t ps = 0, pb = 0;
      double ref = 0, mag = 0;
      for (int64_t c = 0; c < 96; ++c) {
        const int x = xq.codes[t * 96 + c];
        const int code = L.code[o * 96 + c];
        double w;  // the weight divided by its column scale (t is in the activation)
        if (L.salient[c]) {
          ps += x * code;
          w = static_cast<double>(L.s[o]) * (code - L.z[o]);
        } else {
          pb += code ? x : -x;
          w = static_cast<double>(L.r[o]) * (static_cast<double>(L.alpha[o]) * (code ? 1 : -1) + L.mu[o]);
        }
        ref += static_cast<double>(xq.scales[t]) * x * w;
        mag += std::fabs(static_cast<double>(xq.scales[t]) * x * w);
      }
      EXPECT_EQ(r.p_sal[t * 8 + o], ps);
      EXPECT_EQ(r.p_bin[t * 8 + o], pb);
      EXPECT_NEAR(r.out[t * 8 + o], ref, 1e-6 * mag);
    }
  }
  // End to end it still approximates the FP32 layer.
  auto ref = reference_product(d.x, d.w, 6, 8, 96);
  EXPECT_LT(relative_error(r.out, ref), 0.6);
}

TEST(Ptq161Quantize, RefusesBadShapesAndValues) {
  std::vector<float> w(4 * 8, 0.1f);
  std::vector<uint8_t> mask(8, 0);
  EXPECT_THROW(ptq161::quantize(w.data(), 4, 8, std::vector<uint8_t>(7, 0), {}), UsageError);
  EXPECT_THROW(ptq161::quantize(w.data(), 0, 8, mask, {}), UsageError);
  w[5] = std::numeric_limits<float>::infinity();
  EXPECT_THROW(ptq161::quantize(w.data(), 4, 8, mask, {}), UsageError);
}

}  // namespace
}  // namespace gsqhw
