// NF4 block quantization, bit-compatible with bitsandbytes (numerics/nf4.h).
#include "numerics/nf4.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "base/errors.h"

namespace gsqhw {
namespace {

// Decision thresholds: the float literals of bitsandbytes' dQuantizeNF4 decision tree, in
// ascending order. They are the midpoints of adjacent levels printed to 16 digits; they are
// kept literally because rounding the exact double midpoint to float can land on the other
// neighbouring float (it does for 0.8614784181118011f), and bit-compatibility is the point.
constexpr std::array<float, 15> kThresholds = {
    -0.8480964004993439f,  -0.6106329262256622f, -0.4599952697753906f, -0.33967943489551544f,
    -0.23460740596055984f, -0.13791173323988914f, -0.045525018125772476f, 0.03979014977812767f,
    0.1202552504837513f,   0.2035212516784668f,  0.2920137718319893f,  0.3893125355243683f,
    0.5016634166240692f,   0.6427869200706482f,  0.8614784181118011f,
};

}  // namespace

int nf4_code(float normalized) {
  // Equivalent to bitsandbytes' binary decision tree: every node tests x > threshold.
  int code = 0;
  while (code < 15 && normalized > kThresholds[code]) ++code;
  return code;
}

float nf4_threshold(int i) { return kThresholds[i]; }

namespace {

class Nf4Format final : public Format {
 public:
  explicit Nf4Format(int block) : block_(block) {}
  std::string spec() const override { return fmt::format("nf4:block={}", block_); }
  std::string family() const override { return "nf4"; }
  int element_bits() const override { return 4; }
  double bits_per_element() const override { return 4.0 + 32.0 / block_; }

  // The storage format of the frozen base weight: dequantized before any GEMM.
  GemmOperandKind gemm_operand() const override { return GemmOperandKind::none; }
  std::string label() const override { return "NF4"; }

  QuantizedTensor quantize(const float* x, int64_t rows, int64_t cols, uint64_t) const override {
    QuantizedTensor q;
    q.format_spec = spec();
    q.rows = rows;
    q.cols = cols;
    q.group_size = block_;
    q.codes.resize(static_cast<size_t>(rows * cols));
    int64_t groups = q.groups_per_row();
    q.scales.resize(static_cast<size_t>(rows * groups));
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t g = 0; g < groups; ++g) {
        int64_t begin = r * cols + g * block_, end = r * cols + std::min(cols, (g + 1) * block_);
        float absmax = 0;
        for (int64_t i = begin; i < end; ++i) {
          if (!std::isfinite(x[i]))
            throw UsageError(fmt::format("nf4 cannot represent {} (row {}, col {})", x[i], r,
                                         i - r * cols));
          absmax = std::max(absmax, std::fabs(x[i]));
        }
        q.scales[r * groups + g] = absmax;
        float inverse = absmax == 0 ? 0.0f : 1.0f / absmax;
        for (int64_t i = begin; i < end; ++i) q.codes[i] = nf4_code(x[i] * inverse);
      }
    }
    return q;
  }

  void dequantize(const QuantizedTensor& q, float* out) const override {
    int64_t groups = q.groups_per_row();
    for (int64_t r = 0; r < q.rows; ++r)
      for (int64_t c = 0; c < q.cols; ++c)
        out[r * q.cols + c] = kNf4Levels[q.codes[r * q.cols + c] & 15] *
                              q.scales[r * groups + c / block_];
  }

 private:
  int block_;
};

}  // namespace

std::unique_ptr<Format> make_nf4_format(const spec::Parts& parts) {
  spec::check_known_keys(parts, {"block"});
  int block = static_cast<int>(spec::int_option(parts, "block", 64, 4, 4096));
  if (!spec::is_power_of_two(block))
    throw UsageError(fmt::format(
        "format spec '{}': block={} is not a power of two (4 .. 4096; QLoRA uses 64)", parts.text,
        block));
  return std::make_unique<Nf4Format>(block);
}

}  // namespace gsqhw
