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

  std::string str() const;                          // "fixed32.16" or "fp32"
  static AccumulatorSpec parse(std::string_view s);  // throws UsageError
  bool operator==(const AccumulatorSpec&) const = default;
};

}  // namespace gsqhw
