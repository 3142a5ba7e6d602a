// Exact RNE rounding to binary32 (numerics/fp32_round.h).
#include "numerics/fp32_round.h"

#include <cmath>
#include <cstring>
#include <limits>

namespace gsqhw {

uint32_t fp32_bits(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, sizeof bits);
  return bits;
}

float fp32_from_bits(uint32_t bits) {
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

float round_pair_to_fp32(double hi, double lo) {
  float nearest = static_cast<float>(hi);  // RNE of hi alone
  if (lo == 0 || !std::isfinite(hi) || static_cast<double>(nearest) == hi) return nearest;
  // hi lies strictly between two adjacent floats `below` < hi < `above`. Since hi is the double
  // nearest to the exact value and every float midpoint is a double, the exact value is on the
  // same side of the midpoint as hi, unless hi IS the midpoint: then lo decides (no tie).
  float below = static_cast<double>(nearest) < hi
                    ? nearest
                    : std::nextafter(nearest, -std::numeric_limits<float>::infinity());
  float above = std::nextafter(below, std::numeric_limits<float>::infinity());
  // The midpoint between FLT_MAX and "the next float" (2^128) decides overflow to Inf.
  double above_value = std::isinf(above) ? std::ldexp(1.0, 128) : static_cast<double>(above);
  double below_value = std::isinf(below) ? -std::ldexp(1.0, 128) : static_cast<double>(below);
  double midpoint = below_value / 2 + above_value / 2;  // exact: both are floats
  if (hi != midpoint) return nearest;
  return lo > 0 ? above : below;
}

float add_exact_fp32(float acc, double addend) {
  double a = acc;
  if (!std::isfinite(a) || !std::isfinite(addend)) {
    double sum = a + addend;  // IEEE specials; NaN stays NaN
    return static_cast<float>(sum);
  }
  double s, err;
  two_sum(a, addend, s, err);
  if (!std::isfinite(s)) return static_cast<float>(s);  // far beyond float range: +-Inf
  return round_pair_to_fp32(s, err);
}

float scaled_int_to_fp32(int64_t value, int exp2) {
  // Split the 64-bit integer into a double-rounded head and its exact remainder.
  double hi = static_cast<double>(value);  // RNE to 53 bits
  __int128 rest = static_cast<__int128>(value) - static_cast<__int128>(hi);
  double lo = static_cast<double>(static_cast<int64_t>(rest));  // |rest| <= 2^10: exact
  // Scaling by a power of two is exact while the pair stays in the normal double range.
  return round_pair_to_fp32(std::ldexp(hi, exp2), std::ldexp(lo, exp2));
}

}  // namespace gsqhw
