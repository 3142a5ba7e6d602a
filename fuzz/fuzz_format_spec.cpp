// libFuzzer target: format spec and design point strings. Properties checked on every input:
// no crash / hang / sanitizer report; bad input throws only UsageError; a spec that parses
// prints a canonical form that parses back to itself; the format quantizes and dequantizes a
// small tensor (with NaN, Inf, zero, huge and tiny values) without fault.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <string>

#include "numerics/design.h"
#include "base/errors.h"
#include "numerics/format.h"

namespace {

void check(bool ok, const char* what, const std::string& input) {
  if (ok) return;
  std::fprintf(stderr, "property failed: %s for input '%s'\n", what, input.c_str());
  std::abort();
}

void exercise_format(const std::string& text) {
  std::unique_ptr<gsqhw::Format> format;
  try {
    format = gsqhw::parse_format(text);
  } catch (const gsqhw::UsageError&) {
    return;
  }
  const std::string canonical = format->spec();
  check(gsqhw::parse_format(canonical)->spec() == canonical, "canonical spec round trip", text);
  const float x[12] = {1.0f, -2.5f, 0.0f, 3e38f, -1e-40f, 7.0f, 0.125f, -0.0f, 65504.0f, 1e-3f,
                       -448.0f, 0.3f};
  const float special[4] = {std::numeric_limits<float>::quiet_NaN(),
                            std::numeric_limits<float>::infinity(), 1.0f, -1.0f};
  try {
    gsqhw::QuantizedTensor q = format->quantize(x, 3, 4, 7);
    float out[12];
    format->dequantize(q, out);
    gsqhw::QuantizedTensor s = format->quantize(special, 1, 4, 7);
    float out_special[4];
    format->dequantize(s, out_special);
  } catch (const gsqhw::UsageError&) {
    // int8/nf4 reject NaN/Inf inputs by design.
  }
}

void exercise_design(const std::string& text) {
  try {
    gsqhw::DesignPoint design = gsqhw::DesignPoint::parse(text);
    const std::string canonical = design.str();
    check(gsqhw::DesignPoint::parse(canonical) == design, "design round trip", text);
    check(!design.slug().empty(), "design slug", text);
  } catch (const gsqhw::UsageError&) {
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 512) return 0;
  std::string text(reinterpret_cast<const char*>(data), size);
  exercise_format(text);
  exercise_design(text);
  return 0;
}
