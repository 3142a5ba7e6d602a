// The registry and the baseline formats: BF16, FP16, FP32, INT8, NF4.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>

#include "base/errors.h"
#include "numerics/format.h"
#include "numerics/int8.h"
#include "numerics/minifloat.h"
#include "numerics/nf4.h"
#include "tests/numerics/numerics_test_util.h"

namespace gsqhw {
namespace {

TEST(Registry, EveryExampleIsCanonicalAndEveryFamilyListed) {
  std::vector<std::string> families;
  for (const auto& info : registered_formats()) {
    families.push_back(info.family);
    auto f = parse_format(info.example);
    EXPECT_EQ(f->spec(), info.example);
    EXPECT_EQ(f->family(), info.family);
    EXPECT_EQ(parse_format(f->spec())->spec(), f->spec());
    EXPECT_FALSE(info.syntax.empty());
    EXPECT_FALSE(info.description.empty());
  }
  EXPECT_EQ(families, (std::vector<std::string>{"gse", "fp8", "fp6", "int8", "bf16", "fp16", "fp32", "nf4"}));
}

TEST(Registry, ShortFormsFillDefaults) {
  EXPECT_EQ(parse_format("fp8")->spec(), "fp8:e4m3,sat=satfinite,block=0");
  EXPECT_EQ(parse_format("fp8:e5m2")->spec(), "fp8:e5m2,sat=satfinite,block=0");
  EXPECT_EQ(parse_format("fp8:block=32,e5m2,sat=nonsat")->spec(), "fp8:e5m2,sat=nonsat,block=32");
  EXPECT_EQ(parse_format("int8")->spec(), "int8:per=channel");
  EXPECT_EQ(parse_format("int8:per=tensor")->spec(), "int8:per=tensor");
  EXPECT_EQ(parse_format("nf4")->spec(), "nf4:block=64");
  EXPECT_EQ(parse_format("nf4:block=128")->spec(), "nf4:block=128");
  EXPECT_EQ(parse_format("bf16")->spec(), "bf16");
}

TEST(Registry, MalformedSpecsAreUsageErrors) {
  for (const char* bad :
       {"", ":", "gse8", "fp9", "fp8:e4m2", "fp8:e4m3,e5m2", "fp8:sat=maybe", "fp8:block=33",
        "fp8:block=-1", "fp8:block=1", "int8:per=row", "int8:x", "bf16:x=1", "fp32:", "nf4:block=0",
        "nf4:block=100", "nf4:block=8192", "gse:b=6,", ",gse", "GSE:b=6"}) {
    EXPECT_THROW(parse_format(bad), UsageError) << "'" << bad << "'";
  }
  try {
    parse_format("fp9");
    FAIL();
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("known: gse, fp8"), std::string::npos) << e.what();
  }
}

// All 65536 codes of a 16-bit format decode like the widening of the format to FP32 and
// round-trip; random FP32 values round to nearest even (checked against neighbours).
void check_16bit(const MinifloatParams& p, const char* spec) {
  auto f = parse_format(spec);
  std::vector<float> values(65536);
  for (uint32_t code = 0; code < 65536; ++code) values[code] = static_cast<float>(decode_minifloat(p, code));
  QuantizedTensor q = f->quantize(values.data(), 1, 65536);
  for (uint32_t code = 0; code < 65536; ++code) {
    if (minifloat_is_nan(p, code)) {
      ASSERT_TRUE(std::isnan(values[code]));
      ASSERT_TRUE(minifloat_is_nan(p, q.codes[code]));
    } else {
      ASSERT_EQ(q.codes[code], static_cast<int32_t>(code)) << spec;
    }
  }
  if (std::string(spec) == "bf16") {
    // BF16 is the top half of FP32: decoding is a shift, rounding is the classic bias trick.
    for (uint32_t code = 0; code < 65536; ++code) {
      if (minifloat_is_nan(p, code)) continue;
      ASSERT_EQ(test::bits_of(values[code]), code << 16);
    }
    std::mt19937 rng(3);
    for (int i = 0; i < 200000; ++i) {
      uint32_t bits = rng();
      float x;
      std::memcpy(&x, &bits, 4);
      if (std::isnan(x)) continue;
      uint32_t expected = (bits + 0x7fff + ((bits >> 16) & 1)) >> 16;
      ASSERT_EQ(encode_minifloat(p, x, false), expected) << std::hex << bits;
    }
  } else {
    // FP16: compare with the compiler's _Float16 conversion (IEEE RNE).
    std::mt19937 rng(4);
    std::uniform_real_distribution<float> m(-1, 1);
    std::uniform_int_distribution<int> e(-30, 18);
    for (int i = 0; i < 200000; ++i) {
      float x = std::ldexp(m(rng), e(rng));
      _Float16 h = static_cast<_Float16>(x);
      uint16_t expected;
      std::memcpy(&expected, &h, 2);
      ASSERT_EQ(encode_minifloat(p, x, false), expected) << x;
    }
  }
}

TEST(PlainFloats, Bf16AllCodesAndRounding) { check_16bit(bf16_params(), "bf16"); }
TEST(PlainFloats, Fp16AllCodesAndRounding) { check_16bit(fp16_params(), "fp16"); }

TEST(PlainFloats, Fp32IsIdentityOnBits) {
  auto f = parse_format("fp32");
  std::vector<float> x = {0.0f, -0.0f, 1.5f, -INFINITY, std::numeric_limits<float>::denorm_min(),
                          std::numeric_limits<float>::max()};
  QuantizedTensor q = f->quantize(x.data(), 2, 3);
  std::vector<float> y(6);
  f->dequantize(q, y.data());
  for (int i = 0; i < 6; ++i) {
    EXPECT_EQ(static_cast<uint32_t>(q.codes[i]), test::bits_of(x[i]));
    EXPECT_EQ(test::bits_of(y[i]), test::bits_of(x[i]));
  }
}

TEST(Int8, PerChannelAndPerTensorAbsmax) {
  std::vector<float> x = test::random_matrix(6, 50, 12, 5);
  for (bool per_channel : {true, false}) {
    auto f = parse_format(per_channel ? "int8:per=channel" : "int8:per=tensor");
    QuantizedTensor q = f->quantize(x.data(), 6, 50);
    ASSERT_EQ(q.scales.size(), per_channel ? 6u : 1u);
    std::vector<float> y(x.size());
    f->dequantize(q, y.data());
    for (int r = 0; r < 6; ++r) {
      float amax = 0;
      for (int c = 0; c < (per_channel ? 50 : 300); ++c)
        amax = std::max(amax, std::fabs(x[(per_channel ? r * 50 : 0) + c]));
      float scale = amax / 127.0f;
      EXPECT_EQ(q.scales[per_channel ? r : 0], scale);
      for (int c = 0; c < 50; ++c) {
        int i = r * 50 + c;
        int expected = static_cast<int>(std::clamp(std::nearbyint(x[i] / scale), -127.0f, 127.0f));
        EXPECT_EQ(q.codes[i], expected);
        EXPECT_EQ(y[i], static_cast<float>(expected) * scale);
        EXPECT_LE(std::fabs(y[i] - x[i]), scale * 0.5f * 1.0001f);
      }
    }
  }
  // The absmax element maps to +-127; an all-zero row gets scale 0.
  std::vector<float> z = {0, 0, 0, -2.0f, 1.0f, 0.5f};
  QuantizedTensor qz = parse_format("int8")->quantize(z.data(), 2, 3);
  EXPECT_EQ(qz.scales[0], 0.0f);
  EXPECT_EQ(qz.codes[3], -127);
  EXPECT_EQ(qz.codes[4], 64);  // 63.5 -> 64 (ties to even)
  std::vector<float> bad = {1.0f, NAN};
  EXPECT_THROW(parse_format("int8")->quantize(bad.data(), 1, 2), UsageError);
}

TEST(Nf4, LevelsAndThresholdsAreBitsandbytes) {
  EXPECT_EQ(kNf4Levels[0], -1.0f);
  EXPECT_EQ(kNf4Levels[7], 0.0f);
  EXPECT_EQ(kNf4Levels[15], 1.0f);
  for (int i = 0; i < 15; ++i) EXPECT_LT(kNf4Levels[i], kNf4Levels[i + 1]);
  // A few of the literal decision constants of bitsandbytes' dQuantizeNF4.
  const std::vector<std::pair<float, int>> thresholds = {
      {0.8614784181118011f, 14}, {0.03979014977812767f, 7}, {-0.045525018125772476f, 6},
      {-0.8480964004993439f, 0}, {0.6427869200706482f, 13}, {-0.33967943489551544f, 3}};
  for (auto [t, lower] : thresholds) {
    EXPECT_EQ(nf4_code(t), lower) << t;  // exactly on the threshold: the lower level ('>')
    EXPECT_EQ(nf4_code(std::nextafter(t, 2.0f)), lower + 1) << t;
  }
  for (int i = 0; i < 16; ++i) EXPECT_EQ(nf4_code(kNf4Levels[i]), i);
  // Every threshold is the midpoint of its two levels (to the 16 printed digits).
  for (int i = 0; i < 15; ++i) {
    double mid = (static_cast<double>(kNf4Levels[i]) + kNf4Levels[i + 1]) / 2;
    EXPECT_NEAR(nf4_threshold(i), mid, 1e-7) << i;
    EXPECT_EQ(nf4_code(nf4_threshold(i)), i);
    EXPECT_EQ(nf4_code(std::nextafter(nf4_threshold(i), 2.0f)), i + 1);
  }
}

TEST(Nf4, BlockAbsmaxQuantization) {
  auto f = parse_format("nf4:block=64");
  std::vector<float> x = test::random_matrix(3, 150, 8, 3);  // partial last block of 22
  QuantizedTensor q = f->quantize(x.data(), 3, 150);
  ASSERT_EQ(q.groups_per_row(), 3);
  ASSERT_EQ(q.scales.size(), 9u);
  std::vector<float> y(x.size());
  f->dequantize(q, y.data());
  for (int r = 0; r < 3; ++r) {
    for (int c = 0; c < 150; ++c) {
      int block = c / 64;
      float absmax = 0;
      for (int k = block * 64; k < std::min(150, block * 64 + 64); ++k)
        absmax = std::max(absmax, std::fabs(x[r * 150 + k]));
      EXPECT_EQ(q.scales[r * 3 + block], absmax);
      float n = x[r * 150 + c] * (1.0f / absmax);
      // Nearest level (ties cannot occur on random data).
      int best = 0;
      for (int l = 1; l < 16; ++l)
        if (std::fabs(kNf4Levels[l] - n) < std::fabs(kNf4Levels[best] - n)) best = l;
      EXPECT_EQ(q.codes[r * 150 + c], best);
      EXPECT_EQ(y[r * 150 + c], kNf4Levels[best] * absmax);
    }
  }
  EXPECT_DOUBLE_EQ(f->bits_per_element(), 4.5);
}

}  // namespace
}  // namespace gsqhw
