// The baseline designs (synth/baseline.h): parsing, and their RTL from the generator
// (gen/baseline_emit.h for the MACs, the narrowed INT8 array for intarray).
#include "synth/baseline.h"

#include <charconv>

#include <fmt/format.h>

#include "gen/baseline_emit.h"
#include "gen/generator.h"
#include "numerics/design.h"
#include "base/errors.h"

namespace gsqhw::synth {

namespace {

const char* kind_name(Baseline::Kind kind) {
  switch (kind) {
    case Baseline::Kind::bare: return "bare";
    case Baseline::Kind::intmac: return "intmac";
    case Baseline::Kind::intarray: return "intarray";
  }
  return "?";
}

// "8x8" -> rows, cols (1..64 each).
void parse_shape(std::string_view value, Baseline& baseline) {
  size_t x = value.find('x');
  auto number = [&](std::string_view part) {
    int n = 0;
    auto [ptr, ec] = std::from_chars(part.data(), part.data() + part.size(), n);
    if (ec != std::errc() || ptr != part.data() + part.size() || part.empty() || n < 1 || n > 64)
      throw UsageError(fmt::format("baseline array '{}' is not RxC with R, C in 1..64", value));
    return n;
  };
  if (x == std::string_view::npos) throw UsageError(fmt::format("baseline array '{}' is not RxC (e.g. 8x8)", value));
  baseline.rows = number(value.substr(0, x));
  baseline.cols = number(value.substr(x + 1));
}

}  // namespace

std::string Baseline::str() const {
  if (kind == Kind::intarray)
    return fmt::format("baseline:intarray,b={},w={},f={},array={}x{}", bits, acc_width, acc_frac, rows, cols);
  return fmt::format("baseline:{},b={},w={}", kind_name(kind), bits, acc_width);
}

Baseline::Rtl Baseline::rtl() const {
  Rtl rtl;
  if (kind != Kind::intarray) {
    rtl.top = kind == Kind::bare ? "gsqhw_bare_mac" : "gsqhw_int_mac_pe";
    // gen/baseline_emit.h writes the Verilog; synthesis only asks for it.
    rtl.files.push_back({rtl.top + ".v", kind == Kind::bare
                                             ? gen::bare_mac_verilog(bits, acc_width, str())
                                             : gen::int_mac_pe_verilog(bits, acc_width, str())});
    return rtl;
  }
  // The generator's INT8 array with its PEs narrowed to b bits: the same skew, forwarding,
  // drain and accumulator as the GSE-INT array it is compared with.
  GeneratorOptions options;
  options.int_bits = bits;
  GeneratedDesign generated = generate_design(
      DesignPoint::parse(fmt::format("int8@array{}x{},acc=fixed{}.{}", rows, cols, acc_width, acc_frac)), options);
  rtl.files = generated.files;
  rtl.top = generated.top;
  rtl.macs_per_cycle = generated.manifest.at("timing").at("macs_per_cycle").get<int64_t>();
  return rtl;
}

Baseline Baseline::parse(std::string_view s) {
  if (!is_baseline(s))
    throw UsageError(fmt::format("'{}' is not a baseline (baseline:bare|intmac,b=B,w=W)", s));
  Baseline baseline;
  std::string_view rest = s.substr(9);
  size_t comma = rest.find(',');
  std::string_view kind = rest.substr(0, comma);
  if (kind == "bare") baseline.kind = Kind::bare;
  else if (kind == "intmac") baseline.kind = Kind::intmac;
  else if (kind == "intarray") baseline.kind = Kind::intarray, baseline.acc_frac = 16, baseline.rows = baseline.cols = 4;
  else throw UsageError(fmt::format("baseline kind '{}' is not one of bare, intmac, intarray", kind));
  const bool array = baseline.kind == Kind::intarray;
  while (comma != std::string_view::npos) {
    rest = rest.substr(comma + 1);
    comma = rest.find(',');
    std::string_view option = rest.substr(0, comma);
    size_t eq = option.find('=');
    if (eq == std::string_view::npos) throw UsageError(fmt::format("baseline option '{}' is not key=value", option));
    std::string_view key = option.substr(0, eq), value = option.substr(eq + 1);
    if (key == "array" && array) {
      parse_shape(value, baseline);
      continue;
    }
    int number = 0;
    auto [ptr, ec] = std::from_chars(value.data(), value.data() + value.size(), number);
    if (ec != std::errc() || ptr != value.data() + value.size())
      throw UsageError(fmt::format("baseline option {}: '{}' is not an integer", key, value));
    if (key == "b") baseline.bits = number;
    else if (key == "w") baseline.acc_width = number;
    else if (key == "f" && array) baseline.acc_frac = number;
    else throw UsageError(fmt::format("unknown baseline option '{}' (known: b, w{})", key, array ? ", f, array" : ""));
  }
  if (baseline.bits < 2 || baseline.bits > (array ? 8 : 16))
    throw UsageError(fmt::format("baseline b = {} is outside 2..{}", baseline.bits, array ? 8 : 16));
  if (baseline.acc_width <= 2 * baseline.bits || baseline.acc_width > 64)
    throw UsageError(fmt::format("baseline w = {} is outside 2b+1..64 = {}..64", baseline.acc_width, 2 * baseline.bits + 1));
  return baseline;
}

long long intmac_step(long long acc, bool first, long long a, long long b, int acc_width, bool* overflow) {
  __int128 sum = static_cast<__int128>(first ? 0 : acc) + static_cast<__int128>(a) * b;
  const __int128 max = (static_cast<__int128>(1) << (acc_width - 1)) - 1;
  const __int128 min = -max - 1;
  bool over = sum > max || sum < min;
  if (overflow) *overflow = over;
  if (sum > max) sum = max;
  if (sum < min) sum = min;
  return static_cast<long long>(sum);
}

}  // namespace gsqhw::synth
