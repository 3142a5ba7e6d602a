// GSE-INT(b, G, E): group-shared-exponent integers (docs/formats.md, "GSE-INT").
//
// A group of G consecutive elements along cols shares an E-bit exponent code e (bias
// B = 2^(E-1)-1, all-ones code = NaN group); element i is a b-bit two's-complement integer m_i
// with value m_i * 2^(e - B) * 2^-(b-2)  (Q1.(b-2) fixed point scaled by the group's 2^(e-B)).
// Valid exponent codes 0 .. 2^E-2, i.e. unbiased exponents -B .. B.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "numerics/format.h"
#include "numerics/spec_parse.h"

namespace gsqhw {

struct GseParams {
  enum class Scale { floor, ceil };
  enum class Round { rne, rna, stochastic, trunc };
  enum class Range { symmetric, full };

  int b = 8;   // element bits including sign, 2..8
  int g = 32;  // group size, power of two 4..256
  int e = 5;   // exponent bits, 4..8
  Scale scale = Scale::floor;
  Round round = Round::rne;
  Range range = Range::symmetric;
  uint64_t seed = 0;  // stochastic rounding only (printed only then)

  int bias() const { return (1 << (e - 1)) - 1; }
  int nan_code() const { return (1 << e) - 1; }
  int max_exp_code() const { return (1 << e) - 2; }
  int min_unbiased_exp() const { return -bias(); }
  int max_unbiased_exp() const { return max_exp_code() - bias(); }
  int frac_bits() const { return b - 2; }  // element fraction bits (Q1.(b-2))
  int elem_max() const { return (1 << (b - 1)) - 1; }
  int elem_min() const { return range == Range::full ? -(1 << (b - 1)) : -elem_max(); }

  std::string spec() const;  // canonical
  static GseParams parse(const spec::Parts& parts);
  static GseParams parse(std::string_view spec_text);
  bool operator==(const GseParams&) const = default;
};

// Value of element m in a group with exponent code `exp_code` (not the NaN code): exact.
double gse_element_value(const GseParams& p, int m, int exp_code);

// Chooses the group's exponent code for the values x[0..n) per the scale rule (floor/ceil),
// clamped to the representable range; 0 for an all-zero group, nan_code() when any element is
// NaN or Inf.
int gse_choose_exponent(const GseParams& p, const float* x, int64_t n);

// Quantizes one value given the group exponent code (never the NaN code). `random_unit` in
// [0, 1) is used by round=stochastic only: the result rounds up iff random_unit < fraction.
int gse_quantize_element(const GseParams& p, float x, int exp_code, double random_unit);

// The reproducible uniform [0, 1) number of stochastic rounding for element `index`
// (row * cols + col) of a tensor quantized with `seed` (format seed combined with the caller's).
double gse_stochastic_unit(uint64_t seed, uint64_t index);

std::unique_ptr<Format> make_gse_format(const spec::Parts& parts);

}  // namespace gsqhw
