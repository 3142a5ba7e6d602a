// GSE-INT quantization (numerics/gse.h; semantics in docs/formats.md).
#include "numerics/gse.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "base/errors.h"

namespace gsqhw {
namespace {

const std::vector<std::string> kScaleNames = {"floor", "ceil"};
const std::vector<std::string> kRoundNames = {"rne", "rna", "stochastic", "trunc"};
const std::vector<std::string> kRangeNames = {"symmetric", "full"};

uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// The most negative element allowed in a group with this exponent. range=full allows
// -2^(b-1), except where that value (-2^(unbiased+1)) would not be an FP32 number: only the
// top exponent 127 of E=8 (MXINT8's -2 * 2^127 = -2^128); there the range stays symmetric so
// that every code dequantizes exactly (numerics/format.h promises exact FP32 values).
int effective_elem_min(const GseParams& p, int exp_code) {
  if (p.range == GseParams::Range::full && exp_code - p.bias() + 1 >= 128) return -p.elem_max();
  return p.elem_min();
}

}  // namespace

std::string GseParams::spec() const {
  std::string text = fmt::format("gse:b={},g={},e={},scale={},round={},range={}", b, g, e,
                                 kScaleNames[static_cast<int>(scale)],
                                 kRoundNames[static_cast<int>(round)],
                                 kRangeNames[static_cast<int>(range)]);
  if (round == Round::stochastic) text += fmt::format(",seed={}", seed);
  return text;
}

GseParams GseParams::parse(const spec::Parts& parts) {
  if (parts.family != "gse")
    throw UsageError(fmt::format("format spec '{}' is not a gse spec", parts.text));
  spec::check_known_keys(parts, {"b", "g", "e", "scale", "round", "range", "seed"});
  GseParams p;
  p.b = static_cast<int>(spec::int_option(parts, "b", 8, 2, 8));
  p.g = static_cast<int>(spec::int_option(parts, "g", 32, 4, 256));
  if (!spec::is_power_of_two(p.g))
    throw UsageError(fmt::format(
        "format spec '{}': group size g={} is not a power of two (4, 8, ..., 256)", parts.text,
        p.g));
  p.e = static_cast<int>(spec::int_option(parts, "e", 5, 4, 8));
  p.scale = static_cast<Scale>(spec::choice_option(parts, "scale", kScaleNames, 0));
  p.round = static_cast<Round>(spec::choice_option(parts, "round", kRoundNames, 0));
  p.range = static_cast<Range>(spec::choice_option(parts, "range", kRangeNames, 0));
  if (spec::has_key(parts, "seed") && p.round != Round::stochastic)
    throw UsageError(fmt::format(
        "format spec '{}': seed= applies only to round=stochastic", parts.text));
  p.seed = spec::u64_option(parts, "seed", 0);
  return p;
}

GseParams GseParams::parse(std::string_view spec_text) {
  return parse(spec::split_spec(spec_text));
}

double gse_element_value(const GseParams& p, int m, int exp_code) {
  return std::ldexp(static_cast<double>(m), exp_code - p.bias() - p.frac_bits());
}

int gse_choose_exponent(const GseParams& p, const float* x, int64_t n) {
  float amax = 0;
  for (int64_t i = 0; i < n; ++i) {
    if (!std::isfinite(x[i])) return p.nan_code();
    amax = std::max(amax, std::fabs(x[i]));
  }
  if (amax == 0) return 0;
  int exponent = std::ilogb(amax);  // floor(log2(amax)), exact (subnormals included)
  if (p.scale == GseParams::Scale::ceil) {
    // Smallest exponent whose largest element value elem_max * 2^(e - (b-2)) >= amax; since
    // amax < 2^(floor+1) that is floor or floor + 1.
    if (static_cast<double>(amax) > gse_element_value(p, p.elem_max(), exponent + p.bias()))
      exponent += 1;
  }
  exponent = std::clamp(exponent, p.min_unbiased_exp(), p.max_unbiased_exp());
  return exponent + p.bias();
}

namespace {

// 2^((b-2) - (e-B)): multiplying by it divides x by the group's element quantum, exactly.
double element_scale(const GseParams& p, int exp_code) {
  return std::ldexp(1.0, p.frac_bits() - (exp_code - p.bias()));
}

// Rounds v = x / quantum (exact) to an element code per p.round and saturates.
int round_scaled_element(const GseParams& p, double v, int elem_min, double random_unit) {
  // Values beyond the range saturate whatever the rounding; clamping first keeps the integer
  // arithmetic below small (and is exact: the bounds are integers).
  v = std::clamp(v, static_cast<double>(elem_min) - 1, static_cast<double>(p.elem_max()) + 1);
  double lower = std::floor(v);
  double frac = v - lower;  // exact
  int code = static_cast<int>(lower);
  switch (p.round) {
    case GseParams::Round::rne:
      if (frac > 0.5 || (frac == 0.5 && (code & 1) != 0)) ++code;
      break;
    case GseParams::Round::rna:
      if (frac > 0.5 || (frac == 0.5 && v > 0)) ++code;
      break;
    case GseParams::Round::stochastic:
      if (random_unit < frac) ++code;
      break;
    case GseParams::Round::trunc:
      if (v < 0 && frac != 0) ++code;
      break;
  }
  return std::clamp(code, elem_min, p.elem_max());
}

}  // namespace

int gse_quantize_element(const GseParams& p, float x, int exp_code, double random_unit) {
  return round_scaled_element(p, static_cast<double>(x) * element_scale(p, exp_code),
                              effective_elem_min(p, exp_code), random_unit);
}

double gse_stochastic_unit(uint64_t seed, uint64_t index) {
  uint64_t h = splitmix64(splitmix64(seed) + index);
  return static_cast<double>(h >> 11) * 0x1.0p-53;
}

namespace {

class GseFormat final : public Format {
 public:
  explicit GseFormat(GseParams p) : p_(p) {}
  std::string spec() const override { return p_.spec(); }
  std::string family() const override { return "gse"; }
  int element_bits() const override { return p_.b; }
  double bits_per_element() const override { return p_.b + static_cast<double>(p_.e) / p_.g; }

  GemmOperandKind gemm_operand() const override { return GemmOperandKind::gse; }
  // The parse limits (b 2..8, g a power of two 4..256, e 4..8) are the generator's too.
  HardwareOperand hardware() const override {
    HardwareOperand h;
    h.family = HardwareOperand::Family::gse;
    h.family_name = "gse";
    h.gse_b = p_.b;
    h.gse_g = p_.g;
    h.gse_e = p_.e;
    h.gse_full_range = p_.range == GseParams::Range::full;
    h.code_bits = p_.b;
    h.exp_bits = p_.e;
    return h;
  }
  // scale, round and seed choose codes; the hardware only multiplies and adds them.
  std::string hardware_spec() const override {
    return fmt::format("gse:b={},g={},e={},range={}", p_.b, p_.g, p_.e,
                       p_.range == GseParams::Range::full ? "full" : "symmetric");
  }
  AccumulatorSpec natural_accumulator() const override { return {AccumulatorSpec::Kind::fixed, 32, 16}; }
  std::string label() const override { return fmt::format("GSE-INT{}", p_.b); }

  QuantizedTensor quantize(const float* x, int64_t rows, int64_t cols,
                           uint64_t seed) const override {
    QuantizedTensor q;
    q.format_spec = spec();
    q.rows = rows;
    q.cols = cols;
    q.group_size = p_.g;
    q.codes.assign(static_cast<size_t>(rows * cols), 0);
    int64_t groups = q.groups_per_row();
    q.group_exponents.resize(static_cast<size_t>(rows * groups));
    // The spec's seed and the caller's seed both matter; either changes every draw.
    uint64_t combined_seed = splitmix64(p_.seed ^ splitmix64(seed));
    for (int64_t r = 0; r < rows; ++r) {
      const float* row = x + r * cols;
      for (int64_t g = 0; g < groups; ++g) {
        int64_t begin = g * p_.g, end = std::min(cols, begin + p_.g);
        int code = gse_choose_exponent(p_, row + begin, end - begin);
        q.group_exponents[r * groups + g] = code;
        if (code == p_.nan_code()) continue;  // NaN group: elements stay 0
        const double scale = element_scale(p_, code);
        const int elem_min = effective_elem_min(p_, code);
        for (int64_t c = begin; c < end; ++c) {
          uint64_t index = static_cast<uint64_t>(r * cols + c);
          double unit = p_.round == GseParams::Round::stochastic
                            ? gse_stochastic_unit(combined_seed, index)
                            : 0.0;
          q.codes[r * cols + c] =
              round_scaled_element(p_, static_cast<double>(row[c]) * scale, elem_min, unit);
        }
      }
    }
    return q;
  }

  void dequantize(const QuantizedTensor& q, float* out) const override {
    int64_t groups = q.groups_per_row();
    for (int64_t r = 0; r < q.rows; ++r) {
      for (int64_t g = 0; g < groups; ++g) {
        int code = q.group_exponents[r * groups + g];
        const bool nan_group = code == p_.nan_code();
        const double quantum = nan_group ? 0.0 : gse_element_value(p_, 1, code);
        for (int64_t c = g * p_.g; c < std::min(q.cols, (g + 1) * p_.g); ++c)
          out[r * q.cols + c] =
              nan_group ? std::numeric_limits<float>::quiet_NaN()
                        : static_cast<float>(q.codes[r * q.cols + c] * quantum);  // exact
      }
    }
  }

 private:
  GseParams p_;
};

}  // namespace

std::unique_ptr<Format> make_gse_format(const spec::Parts& parts) {
  return std::make_unique<GseFormat>(GseParams::parse(parts));
}

}  // namespace gsqhw
