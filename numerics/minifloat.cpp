// Minifloat formats (numerics/minifloat.h): OCP FP8 E4M3/E5M2 with optional MX block scales,
// BF16, FP16 and FP32.
#include "numerics/minifloat.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>

#include "base/errors.h"

namespace gsqhw {

// ---------------------------------------------------------------------------------------------
// Parameters

double MinifloatParams::max_normal() const {
  int mantissa_drop = specials == Specials::e4m3_like ? man_bits - 1 : man_bits;
  return std::ldexp(2.0 - std::ldexp(1.0, -mantissa_drop), max_exp());
}

int MinifloatParams::max_exp() const {
  int top_field = (1 << exp_bits) - (specials == Specials::ieee ? 2 : 1);
  return top_field - bias;
}

uint32_t MinifloatParams::nan_code() const {
  uint32_t all_ones_exp = ((1u << exp_bits) - 1) << man_bits;
  if (specials == Specials::e4m3_like) return all_ones_exp | ((1u << man_bits) - 1);
  return all_ones_exp | (1u << (man_bits - 1));  // quiet NaN
}

const MinifloatParams& e4m3_params() {
  static const MinifloatParams p{"e4m3", 4, 3, 7, MinifloatParams::Specials::e4m3_like};
  return p;
}
const MinifloatParams& e5m2_params() {
  static const MinifloatParams p{"e5m2", 5, 2, 15, MinifloatParams::Specials::ieee};
  return p;
}
const MinifloatParams& e3m2_params() {
  static const MinifloatParams p{"e3m2", 3, 2, 3, MinifloatParams::Specials::none};
  return p;
}
const MinifloatParams& e2m3_params() {
  static const MinifloatParams p{"e2m3", 2, 3, 1, MinifloatParams::Specials::none};
  return p;
}
const MinifloatParams& bf16_params() {
  static const MinifloatParams p{"bf16", 8, 7, 127, MinifloatParams::Specials::ieee};
  return p;
}
const MinifloatParams& fp16_params() {
  static const MinifloatParams p{"fp16", 5, 10, 15, MinifloatParams::Specials::ieee};
  return p;
}
const MinifloatParams& fp32_params() {
  static const MinifloatParams p{"fp32", 8, 23, 127, MinifloatParams::Specials::ieee};
  return p;
}

// ---------------------------------------------------------------------------------------------
// Decode / encode

static uint32_t exp_field(const MinifloatParams& p, uint32_t code) {
  return (code >> p.man_bits) & ((1u << p.exp_bits) - 1);
}
static uint32_t man_field(const MinifloatParams& p, uint32_t code) {
  return code & ((1u << p.man_bits) - 1);
}

bool minifloat_is_nan(const MinifloatParams& p, uint32_t code) {
  if (!p.has_nan()) return false;
  uint32_t all_ones = (1u << p.exp_bits) - 1;
  if (p.specials == MinifloatParams::Specials::e4m3_like)
    return exp_field(p, code) == all_ones && man_field(p, code) == (1u << p.man_bits) - 1;
  return exp_field(p, code) == all_ones && man_field(p, code) != 0;
}

bool minifloat_is_inf(const MinifloatParams& p, uint32_t code) {
  return p.has_inf() && exp_field(p, code) == (1u << p.exp_bits) - 1 && man_field(p, code) == 0;
}

double decode_minifloat(const MinifloatParams& p, uint32_t code) {
  bool negative = (code & p.sign_mask()) != 0;
  double magnitude;
  if (minifloat_is_nan(p, code)) {
    magnitude = std::numeric_limits<double>::quiet_NaN();
  } else if (minifloat_is_inf(p, code)) {
    magnitude = std::numeric_limits<double>::infinity();
  } else {
    uint32_t e = exp_field(p, code), m = man_field(p, code);
    if (e == 0) magnitude = std::ldexp(static_cast<double>(m), p.min_normal_exp() - p.man_bits);
    else
      magnitude = std::ldexp(static_cast<double>((1u << p.man_bits) | m),
                             static_cast<int>(e) - p.bias - p.man_bits);
  }
  return negative ? -magnitude : magnitude;
}

// Round-half-to-even of a non-negative double below 2^53 to an integer-valued double.
static double round_half_even(double v) {
  double lower = std::floor(v);
  double frac = v - lower;  // exact
  if (frac > 0.5 || (frac == 0.5 && (static_cast<int64_t>(lower) & 1) != 0)) return lower + 1;
  return lower;
}

// 2^k for k in [-1022, 1023], built from the exponent field (std::ldexp is a slow libm call
// and this runs once per element).
static double pow2(int k) {
  return std::bit_cast<double>(static_cast<uint64_t>(k + 1023) << 52);
}

// floor(log2(a)) for a finite a > 0.
static int floor_log2(double a) {
  int field = static_cast<int>((std::bit_cast<uint64_t>(a) >> 52) & 0x7ff);
  return field != 0 ? field - 1023 : std::ilogb(a);  // double subnormals: rare, slow path
}

uint32_t encode_minifloat(const MinifloatParams& p, double value, bool saturate) {
  uint32_t sign = std::signbit(value) ? p.sign_mask() : 0;
  if (std::isnan(value)) {
    if (!p.has_nan())
      throw UsageError(fmt::format("{} has no NaN code: cannot encode NaN", p.name));
    return sign | p.nan_code();
  }
  const uint32_t all_ones_man = (1u << p.man_bits) - 1;
  uint32_t max_finite_code =
      p.specials == MinifloatParams::Specials::ieee
          ? (((1u << p.exp_bits) - 2) << p.man_bits) | all_ones_man
      : p.specials == MinifloatParams::Specials::e4m3_like
          ? (((1u << p.exp_bits) - 1) << p.man_bits) | (all_ones_man - 1)
          : (((1u << p.exp_bits) - 1) << p.man_bits) | all_ones_man;
  uint32_t overflow_code = saturate || !p.has_nan() ? max_finite_code
                           : p.has_inf() ? ((1u << p.exp_bits) - 1) << p.man_bits
                                         : p.nan_code();
  double a = std::fabs(value);
  if (std::isinf(a)) return sign | overflow_code;
  if (a == 0) return sign;

  // Quantum of the binade holding a (subnormals share the smallest normal binade's quantum).
  int e = std::max(floor_log2(a), p.min_normal_exp());
  // Values at least twice max_normal overflow whatever the rounding (and keep e in range).
  if (e > p.max_exp() + 1) return sign | overflow_code;
  double r = round_half_even(a * pow2(p.man_bits - e));  // exact scaling
  if (r * pow2(e - p.man_bits) > p.max_normal()) return sign | overflow_code;
  double hidden = pow2(p.man_bits);
  if (r == 2 * hidden) {  // rounded up into the next binade
    r = hidden;
    e += 1;
  }
  if (r < hidden) return sign | static_cast<uint32_t>(r);  // subnormal (exponent field 0)
  return sign | (static_cast<uint32_t>(e + p.bias) << p.man_bits) |
         static_cast<uint32_t>(r - hidden);
}

int mx_scale_code(const MinifloatParams& element, const float* x, int64_t n) {
  float amax = 0;
  for (int64_t i = 0; i < n; ++i) {
    if (!std::isfinite(x[i])) return 255;
    amax = std::max(amax, std::fabs(x[i]));
  }
  if (amax == 0) return 0;
  int shared = std::ilogb(amax) - element.max_exp();
  return std::clamp(shared, -127, 127) + 127;
}

// ---------------------------------------------------------------------------------------------
// FP8 family

std::string Fp8Params::spec() const {
  if (!element->has_nan()) return fmt::format("{}:{},block={}", family, element->name, block);
  return fmt::format("{}:{},sat={},block={}", family, element->name,
                     saturate ? "satfinite" : "nonsat", block);
}

namespace {

// The generator's view of a minifloat operand: sign | exponent | mantissa, specials as coded.
HardwareOperand minifloat_hardware(const MinifloatParams& p, const std::string& family,
                                   const std::string& variant) {
  HardwareOperand h;
  h.family = HardwareOperand::Family::minifloat;
  h.family_name = family;
  h.variant = variant;
  h.mf_exp_bits = p.exp_bits;
  h.mf_man_bits = p.man_bits;
  h.mf_bias = p.bias;
  h.mf_ieee_specials = p.specials == MinifloatParams::Specials::ieee;
  h.mf_has_nan = p.has_nan();
  h.code_bits = p.total_bits();
  return h;
}

std::string upper(std::string text) {
  for (char& c : text) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return text;
}

class Fp8Format final : public Format {
 public:
  explicit Fp8Format(Fp8Params p) : p_(p) {}
  std::string spec() const override { return p_.spec(); }
  std::string family() const override { return p_.family; }
  int element_bits() const override { return p_.element->total_bits(); }
  double bits_per_element() const override {
    return p_.block ? element_bits() + 8.0 / p_.block : element_bits();
  }

  GemmOperandKind gemm_operand() const override { return GemmOperandKind::minifloat; }
  MinifloatOperand minifloat_operand() const override {
    return {p_.element, p_.block, p_.saturate};
  }
  HardwareOperand hardware() const override {
    if (p_.block != 0)
      throw UsageError(fmt::format("format '{}': MX block scales (block={}) are not supported "
                                   "by the RTL generator yet; use block=0",
                                   spec(), p_.block));
    return minifloat_hardware(*p_.element, p_.family, p_.element->name);
  }
  // sat= decides how the quantizer rounds overflow; the datapath sees only codes.
  std::string hardware_spec() const override {
    return fmt::format("{}:{},block={}", p_.family, p_.element->name, p_.block);
  }
  std::string label() const override {
    return upper(p_.family) + " " + upper(p_.element->name);
  }
  std::string variant() const override { return fmt::format("{}-{}", p_.family, p_.element->name); }

  QuantizedTensor quantize(const float* x, int64_t rows, int64_t cols, uint64_t) const override {
    QuantizedTensor q;
    q.format_spec = spec();
    q.rows = rows;
    q.cols = cols;
    q.group_size = p_.block;
    q.codes.resize(static_cast<size_t>(rows * cols));
    const MinifloatParams& el = *p_.element;
    if (p_.block == 0) {
      for (int64_t i = 0; i < rows * cols; ++i) {
        if (!el.has_nan() && std::isnan(x[i]))
          throw UsageError(fmt::format("{} has no NaN code: cannot quantize NaN (row {}, col {}); "
                                       "use {},block=32 (a NaN block) or fp8",
                                       spec(), i / cols, i % cols, p_.family));
        q.codes[i] = static_cast<int32_t>(encode_minifloat(el, x[i], p_.saturate));
      }
      return q;
    }
    int64_t groups = q.groups_per_row();
    q.group_exponents.resize(static_cast<size_t>(rows * groups));
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t g = 0; g < groups; ++g) {
        int64_t begin = g * p_.block, end = std::min(cols, begin + p_.block);
        const float* row = x + r * cols;
        int code = mx_scale_code(el, row + begin, end - begin);
        q.group_exponents[r * groups + g] = code;
        for (int64_t c = begin; c < end; ++c) {
          // x / 2^X is exact in double; the element conversion rounds once.
          q.codes[r * cols + c] =
              code == 255 ? 0
                          : static_cast<int32_t>(encode_minifloat(
                                el, std::ldexp(static_cast<double>(row[c]), 127 - code),
                                p_.saturate));
        }
      }
    }
    return q;
  }

  void dequantize(const QuantizedTensor& q, float* out) const override {
    const MinifloatParams& el = *p_.element;
    int64_t groups = q.groups_per_row();
    for (int64_t r = 0; r < q.rows; ++r) {
      for (int64_t c = 0; c < q.cols; ++c) {
        double v = decode_minifloat(el, static_cast<uint32_t>(q.codes[r * q.cols + c]));
        if (p_.block) {
          int code = q.group_exponents[r * groups + c / p_.block];
          v = code == 255 ? std::numeric_limits<double>::quiet_NaN() : std::ldexp(v, code - 127);
        }
        out[r * q.cols + c] = static_cast<float>(v);
      }
    }
  }

  const Fp8Params& params() const { return p_; }

 private:
  Fp8Params p_;
};

// BF16 / FP16 (IEEE, RNE, overflow to Inf) and FP32 (identity on the bit pattern).
class PlainFloatFormat final : public Format {
 public:
  explicit PlainFloatFormat(const MinifloatParams& p) : p_(p) {}
  std::string spec() const override { return p_.name; }
  std::string family() const override { return p_.name; }
  int element_bits() const override { return p_.total_bits(); }
  double bits_per_element() const override { return p_.total_bits(); }

  bool is_fp32() const { return p_.total_bits() == 32; }
  // FP32 is the reference the others are compared with, not a GEMM operand of this model.
  GemmOperandKind gemm_operand() const override {
    return is_fp32() ? GemmOperandKind::none : GemmOperandKind::minifloat;
  }
  MinifloatOperand minifloat_operand() const override {
    return {is_fp32() ? nullptr : &p_, 0, /*saturate=*/false};
  }
  HardwareOperand hardware() const override {
    if (is_fp32()) return Format::hardware();
    return minifloat_hardware(p_, p_.name, "");
  }
  std::string label() const override { return upper(p_.name); }

  QuantizedTensor quantize(const float* x, int64_t rows, int64_t cols, uint64_t) const override {
    QuantizedTensor q;
    q.format_spec = spec();
    q.rows = rows;
    q.cols = cols;
    q.codes.resize(static_cast<size_t>(rows * cols));
    for (int64_t i = 0; i < rows * cols; ++i) {
      if (p_.total_bits() == 32) {
        int32_t bits;
        std::memcpy(&bits, &x[i], sizeof bits);
        q.codes[i] = bits;
      } else {
        q.codes[i] = static_cast<int32_t>(encode_minifloat(p_, x[i], /*saturate=*/false));
      }
    }
    return q;
  }

  void dequantize(const QuantizedTensor& q, float* out) const override {
    for (int64_t i = 0; i < q.rows * q.cols; ++i) {
      if (p_.total_bits() == 32) std::memcpy(&out[i], &q.codes[i], sizeof(float));
      else out[i] = static_cast<float>(decode_minifloat(p_, static_cast<uint32_t>(q.codes[i])));
    }
  }

 private:
  const MinifloatParams& p_;
};

// The variants of each OCP small-float family, the first one its default.
const std::vector<const MinifloatParams*>& ocp_variants(const std::string& family) {
  static const std::vector<const MinifloatParams*> fp8 = {&e4m3_params(), &e5m2_params()};
  static const std::vector<const MinifloatParams*> fp6 = {&e3m2_params(), &e2m3_params()};
  return family == "fp6" ? fp6 : fp8;
}

Fp8Params parse_fp8(const spec::Parts& parts) {
  Fp8Params p;
  p.family = parts.family == "fp6" ? "fp6" : "fp8";
  const auto& variants = ocp_variants(p.family);
  std::vector<std::string> names, known;
  for (const auto* v : variants) names.push_back(v->name);
  p.element = variants.front();
  bool variant_seen = false;
  for (const auto& option : parts.options) {
    if (option.has_value) continue;
    if (variant_seen)
      throw UsageError(fmt::format("format spec '{}' names the {} variant twice", parts.text,
                                   upper(p.family)));
    auto it = std::find(names.begin(), names.end(), option.key);
    if (it == names.end())
      throw UsageError(fmt::format("format spec '{}': '{}' is not an {} variant ({})", parts.text,
                                   option.key, upper(p.family), fmt::join(names, ", ")));
    p.element = variants[static_cast<size_t>(it - names.begin())];
    variant_seen = true;
  }
  // Formats with Inf/NaN choose how overflow rounds; formats without always saturate.
  const bool has_sat = p.element->has_nan();
  known = names;
  if (has_sat) known.push_back("sat");
  known.push_back("block");
  spec::check_known_keys(parts, known);
  if (has_sat) p.saturate = spec::choice_option(parts, "sat", {"satfinite", "nonsat"}, 0) == 0;
  p.block = static_cast<int>(spec::int_option(parts, "block", 0, 0, 256));
  if (p.block != 0 && (p.block < 2 || !spec::is_power_of_two(p.block)))
    throw UsageError(fmt::format(
        "format spec '{}': block={} must be 0 (no block scale) or a power of two 2..256 "
        "(32 = MX{})",
        parts.text, p.block, upper(p.family)));
  return p;
}

}  // namespace

std::unique_ptr<Format> make_fp8_format(const spec::Parts& parts) {
  return std::make_unique<Fp8Format>(parse_fp8(parts));
}

std::unique_ptr<Format> make_plain_float_format(const spec::Parts& parts) {
  if (!parts.options.empty())
    throw UsageError(
        fmt::format("format spec '{}': {} takes no options", parts.text, parts.family));
  if (parts.family == "bf16") return std::make_unique<PlainFloatFormat>(bf16_params());
  if (parts.family == "fp16") return std::make_unique<PlainFloatFormat>(fp16_params());
  if (parts.family == "fp32") return std::make_unique<PlainFloatFormat>(fp32_params());
  throw UsageError(fmt::format("'{}' is not a plain float format", parts.family));
}

const MinifloatParams* minifloat_operand_params(std::string_view spec_text, int* block) {
  const MinifloatOperand operand = parse_format(spec_text)->minifloat_operand();
  *block = operand.block;
  return operand.element;
}

}  // namespace gsqhw
