// The accumulator of a GEMM (docs/formats.md, "MAC semantics"): a named parameter of every
// design, printed in its canonical string. Parsing and printing live in numerics/design.cpp.
#pragma once

#include <string>
#include <string_view>

namespace gsqhw {

struct AccumulatorSpec {
  enum class Kind { fixed, fp32 };
  Kind kind = Kind::fixed;
  int width = 32;      // W, fixed only: 2..64
  int frac_bits = 16;  // F, fixed only: may be negative or larger than W
  // Minifloat operands only: G > 0 sums the exact products of each group of G consecutive K
  // elements first and adds each finished group sum into the accumulator (one fp32 rounding /
  // one fixed-point addend per group; numerics/gemm.h). 0: one addition per product. Set by a
  // design's align=shared,group=G (numerics/design.h); not part of str(), which names the
  // accumulator kind only.
  int group = 0;

  std::string str() const;                          // "fixed32.16" or "fp32"
  static AccumulatorSpec parse(std::string_view s);  // throws UsageError
  bool operator==(const AccumulatorSpec&) const = default;
};

}  // namespace gsqhw
