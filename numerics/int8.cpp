// INT8 absmax quantization (numerics/int8.h).
#include "numerics/int8.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "base/errors.h"

namespace gsqhw {

int int8_quantize_value(float x, float scale) {
  if (scale == 0) return 0;
  float ratio = x / scale;  // FP32 division, RNE
  float rounded = std::nearbyint(ratio);  // default rounding mode: ties to even
  return static_cast<int>(std::clamp(rounded, -127.0f, 127.0f));
}

namespace {

void check_finite(const float* x, int64_t rows, int64_t cols) {
  for (int64_t i = 0; i < rows * cols; ++i)
    if (!std::isfinite(x[i]))
      throw UsageError(fmt::format("int8 cannot represent {} (row {}, col {}); use gse or fp8 "
                                   "for tensors with NaN/Inf",
                                   x[i], i / cols, i % cols));
}

float absmax_scale(const float* x, int64_t n) {
  float amax = 0;
  for (int64_t i = 0; i < n; ++i) amax = std::max(amax, std::fabs(x[i]));
  return amax / 127.0f;
}

class Int8Format final : public Format {
 public:
  explicit Int8Format(Int8Params p) : p_(p) {}
  std::string spec() const override { return p_.spec(); }
  std::string family() const override { return "int8"; }
  int element_bits() const override { return 8; }
  double bits_per_element() const override { return 8.0; }  // one FP32 scale per row/tensor

  GemmOperandKind gemm_operand() const override { return GemmOperandKind::integer; }
  HardwareOperand hardware() const override {
    HardwareOperand h;
    h.family = HardwareOperand::Family::integer;
    h.family_name = "int8";
    h.int_bits = 8;
    h.code_bits = 8;
    return h;
  }
  // The scales (per row or per tensor) are applied after the GEMM, outside the array.
  std::string hardware_spec() const override { return "int8"; }
  // Exact integer sums: the binary point at 0 keeps every product exact in 32 bits.
  AccumulatorSpec natural_accumulator() const override { return {AccumulatorSpec::Kind::fixed, 32, 0}; }
  std::string label() const override { return "INT8"; }

  QuantizedTensor quantize(const float* x, int64_t rows, int64_t cols, uint64_t) const override {
    check_finite(x, rows, cols);
    QuantizedTensor q;
    q.format_spec = spec();
    q.rows = rows;
    q.cols = cols;
    q.codes.resize(static_cast<size_t>(rows * cols));
    if (p_.per_channel) {
      for (int64_t r = 0; r < rows; ++r) q.scales.push_back(absmax_scale(x + r * cols, cols));
    } else {
      q.scales.push_back(absmax_scale(x, rows * cols));
    }
    for (int64_t r = 0; r < rows; ++r) {
      float scale = q.scales[p_.per_channel ? r : 0];
      for (int64_t c = 0; c < cols; ++c)
        q.codes[r * cols + c] = int8_quantize_value(x[r * cols + c], scale);
    }
    return q;
  }

  void dequantize(const QuantizedTensor& q, float* out) const override {
    for (int64_t r = 0; r < q.rows; ++r) {
      float scale = q.scales[p_.per_channel ? r : 0];
      for (int64_t c = 0; c < q.cols; ++c)
        out[r * q.cols + c] = static_cast<float>(q.codes[r * q.cols + c]) * scale;
    }
  }

 private:
  Int8Params p_;
};

}  // namespace

std::unique_ptr<Format> make_int8_format(const spec::Parts& parts) {
  spec::check_known_keys(parts, {"per"});
  Int8Params p;
  p.per_channel = spec::choice_option(parts, "per", {"channel", "tensor"}, 0) == 0;
  return std::make_unique<Int8Format>(p);
}

}  // namespace gsqhw
