// Parsing and generating the sibling design strings (synth/sibling_design.h).
#include "synth/sibling_design.h"

#include <fmt/format.h>

#include <charconv>
#include <cmath>
#include <set>

#include "gen/lota.h"
#include "gen/ptq161.h"
#include "base/errors.h"

namespace gsqhw::synth {
namespace {

int64_t parse_integer(std::string_view key, std::string_view value, std::string_view design) {
  int64_t v = 0;
  auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), v);
  if (ec != std::errc() || end != value.data() + value.size())
    throw UsageError(fmt::format("{}: '{}={}' is not an integer", design, key, value));
  return v;
}

double parse_real(std::string_view key, std::string_view value, std::string_view design) {
  const std::string text(value);
  char* end = nullptr;
  const double v = std::strtod(text.c_str(), &end);
  if (text.empty() || end != text.c_str() + text.size() || !std::isfinite(v))
    throw UsageError(fmt::format("{}: '{}={}' is not a finite number", design, key, value));
  return v;
}

// "array8x1" -> 8; "pe" -> 1.
int parse_ptq161_level(std::string_view level, std::string_view design) {
  if (level == "pe") return 1;
  if (level.substr(0, 5) == "array") {
    const auto x = level.find('x');
    if (x != std::string_view::npos) {
      const int64_t r = parse_integer("rows", level.substr(5, x - 5), design);
      const int64_t c = parse_integer("cols", level.substr(x + 1), design);
      if (c != 1)
        throw UsageError(fmt::format("{}: the PTQ1.61 datapath has one column (arrayRx1), not {}", design, c));
      if (r < 1 || r > 64) throw UsageError(fmt::format("{}: rows {} is outside 1..64", design, r));
      return static_cast<int>(r);
    }
  }
  throw UsageError(fmt::format("{}: level '{}' is not pe or arrayRx1", design, level));
}

}  // namespace

SiblingDesign SiblingDesign::parse(std::string_view s) {
  SiblingDesign d;
  const auto colon = s.find(':');
  if (!is_sibling(s) || colon == std::string_view::npos)
    throw UsageError(fmt::format("'{}' is not a lota: or ptq161: design", s));
  d.method = s.substr(0, colon) == "lota" ? Method::lota : Method::ptq161;
  std::string_view rest = s.substr(colon + 1);
  std::string_view level = d.method == Method::lota ? "pe" : "array8x1";
  if (const auto at = rest.find('@'); at != std::string_view::npos) {
    level = rest.substr(at + 1);
    rest = rest.substr(0, at);
  }
  bool omega_given = false;
  std::set<std::string, std::less<>> seen;
  while (!rest.empty()) {
    const auto comma = rest.find(',');
    const std::string_view item = rest.substr(0, comma);
    rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
    const auto eq = item.find('=');
    if (eq == std::string_view::npos)
      throw UsageError(fmt::format("{}: '{}' is not key=value", s, item));
    const std::string_view key = item.substr(0, eq), value = item.substr(eq + 1);
    if (!seen.insert(std::string(key)).second) throw UsageError(fmt::format("{}: key '{}' given twice", s, key));
    if (d.method == Method::lota) {
      if (key == "n") d.lota.bits = static_cast<int>(parse_integer(key, value, s));
      else if (key == "g") d.lota.group = static_cast<int>(parse_integer(key, value, s));
      else if (key == "r") d.lota.rank = static_cast<int>(parse_integer(key, value, s));
      else if (key == "omega") d.lota.omega = parse_real(key, value, s), omega_given = true;
      else if (key == "seed") d.seed = static_cast<uint64_t>(parse_integer(key, value, s));
      else throw UsageError(fmt::format("{}: unknown key '{}' (lota keys: n, g, r, omega, seed)", s, key));
    } else {
      if (key == "salient") d.ptq161.salient_fraction = parse_real(key, value, s);
      else if (key == "iters") d.ptq161.iterations = static_cast<int>(parse_integer(key, value, s));
      else if (key == "k") d.max_k = parse_integer(key, value, s);
      else throw UsageError(fmt::format("{}: unknown key '{}' (ptq161 keys: salient, iters, k)", s, key));
    }
  }
  if (d.method == Method::lota) {
    if (level != "pe") throw UsageError(fmt::format("{}: LoTA-QAF has level pe only, not '{}'", s, level));
    if (!omega_given) d.lota.omega = 0.75 * d.lota.rank;
    try {
      lota::validate(d.lota);
    } catch (const UsageError& e) {
      throw UsageError(fmt::format("{}: {}", s, e.what()));
    }
  } else {
    d.rows = parse_ptq161_level(level, s);
    try {
      ptq161::validate(d.ptq161);
      ptq161::validate(ptq161::ArraySpec{d.rows, d.max_k});
    } catch (const UsageError& e) {
      throw UsageError(fmt::format("{}: {}", s, e.what()));
    }
  }
  return d;
}

std::string SiblingDesign::str() const {
  if (method == Method::lota)
    return fmt::format("lota:n={},g={},r={},omega={},seed={}@pe", lota.bits, lota.group, lota.rank, lota.omega, seed);
  return fmt::format("ptq161:salient={},iters={},k={}@array{}x1", ptq161.salient_fraction, ptq161.iterations,
                     max_k, rows);
}

std::string SiblingDesign::slug() const {
  std::string name = str();
  for (char& ch : name)
    if (ch == ':' || ch == ',' || ch == '=' || ch == '@') ch = '_';
  return name;
}

std::string SiblingDesign::level() const {
  return method == Method::lota || rows == 1 ? "pe" : "array";
}

std::vector<std::string> default_sibling_designs() {
  return {"lota:n=4,g=64,r=8,omega=2,seed=1@pe", "ptq161:salient=0.2,iters=2,k=4096@array8x1"};
}

rtlcheck::RtlBundle SiblingDesign::generate() const {
  if (method == Method::lota) return lota::generate_integer_pe(lota);
  return ptq161::generate_array(ptq161::ArraySpec{rows, max_k});
}

}  // namespace gsqhw::synth
