// Parsing and printing of DesignPoint and AccumulatorSpec strings (numerics/design.h, numerics/gemm.h).
#include "numerics/design.h"

#include <fmt/format.h>

#include <charconv>
#include <functional>
#include <vector>

#include "base/errors.h"
#include "numerics/format.h"
#include "numerics/gemm_impl.h"

namespace gsqhw {
namespace {

int parse_int(std::string_view text, std::string_view what) {
  int value = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || ptr != text.data() + text.size())
    throw UsageError(fmt::format("{}: '{}' is not an integer", what, text));
  return value;
}

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  while (true) {
    size_t pos = s.find(sep, start);
    parts.push_back(s.substr(start, pos == std::string_view::npos ? s.npos : pos - start));
    if (pos == std::string_view::npos) break;
    start = pos + 1;
  }
  return parts;
}

// "4x4" -> {4, 4}; both in 1..64.
std::pair<int, int> parse_shape(std::string_view text, std::string_view level) {
  auto x = text.find('x');
  if (x == std::string_view::npos)
    throw UsageError(fmt::format("design level '{}{}' needs a shape RxC, e.g. {}4x4", level,
                                 text, level));
  int r = parse_int(text.substr(0, x), "array rows R");
  int c = parse_int(text.substr(x + 1), "array columns C");
  if (r < 1 || r > 64) throw UsageError(fmt::format("array rows R = {} is outside 1..64", r));
  if (c < 1 || c > 64) throw UsageError(fmt::format("array columns C = {} is outside 1..64", c));
  return {r, c};
}

}  // namespace

std::string AccumulatorSpec::str() const {
  if (kind == Kind::fp32) return "fp32";
  return fmt::format("fixed{}.{}", width, frac_bits);
}

AccumulatorSpec AccumulatorSpec::parse(std::string_view s) {
  AccumulatorSpec spec;
  if (s == "fp32") {
    spec.kind = Kind::fp32;
    return spec;
  }
  if (s.substr(0, 5) != "fixed")
    throw UsageError(fmt::format(
        "accumulator '{}' is not one of fp32, fixedW.F (e.g. fixed32.16: W=32 bits, F=16 "
        "fraction bits)",
        s));
  std::string_view rest = s.substr(5);
  auto dot = rest.find('.');
  if (dot == std::string_view::npos)
    throw UsageError(fmt::format("accumulator '{}' needs fixedW.F, e.g. fixed32.16", s));
  spec.kind = Kind::fixed;
  spec.width = parse_int(rest.substr(0, dot), "accumulator width W");
  spec.frac_bits = parse_int(rest.substr(dot + 1), "accumulator fraction bits F");
  if (spec.width < 2 || spec.width > 64)
    throw UsageError(fmt::format("accumulator width W = {} is outside 2..64", spec.width));
  if (spec.frac_bits < -256 || spec.frac_bits > 256)
    throw UsageError(
        fmt::format("accumulator fraction bits F = {} is outside -256..256", spec.frac_bits));
  return spec;
}

std::string DesignPoint::str() const {
  std::string level_text;
  switch (level) {
    case Level::pe: level_text = "pe"; break;
    case Level::array: level_text = fmt::format("array{}x{}", rows, cols); break;
    case Level::core: level_text = fmt::format("core{}x{}", rows, cols); break;
  }
  return fmt::format("{}@{},acc={},flow={},pipe={}{}{}", format, level_text, acc.str(),
                     dataflow == Dataflow::output_stationary ? "os" : "ws", pipeline,
                     alignment == Alignment::shared_column ? ",align=shared" : "",
                     acc.group > 0 ? fmt::format(",group={}", acc.group) : "");
}

std::string DesignPoint::slug() const {
  // Readable where possible, plus a short hash so that two designs never share a folder.
  std::string canonical = str();
  std::string readable;
  for (char ch : canonical) {
    if (std::isalnum(static_cast<unsigned char>(ch)) || ch == '.' || ch == '-') readable += ch;
    else if (ch == '@') readable += "__";
    else if (ch == '=') continue;
    else readable += '_';
  }
  // FNV-1a: stable across platforms and runs (std::hash is not).
  uint64_t hash = 1469598103934665603ull;
  for (unsigned char ch : canonical) hash = (hash ^ ch) * 1099511628211ull;
  return fmt::format("{}_{:08x}", readable, static_cast<uint32_t>(hash ^ (hash >> 32)));
}

namespace {

// `gse:b=6,acc=fp32@pe` puts a design option among the format's: say where it goes, with the
// corrected string, rather than letting the format parser call `acc` an unknown gse option.
void check_design_options_after_at(std::string_view s, size_t at) {
  std::vector<std::string> format_options, moved;
  std::string_view format = s.substr(0, at);
  const auto colon = format.find(':');
  const std::string family(format.substr(0, colon));
  if (colon != std::string_view::npos)
    for (std::string_view option : split(format.substr(colon + 1), ',')) {
      const std::string_view key = option.substr(0, option.find('='));
      (key == "acc" || key == "flow" || key == "pipe" || key == "align" || key == "group"
           ? moved
           : format_options)
          .emplace_back(option);
    }
  if (moved.empty()) return;
  const std::string fixed_format =
      format_options.empty() ? family : fmt::format("{}:{}", family, fmt::join(format_options, ","));
  throw UsageError(fmt::format(
      "design '{}': {} {} design option{} and belong{} after '@' (format@level,options): {}@{},{}", s,
      fmt::join(moved, ", "), moved.size() == 1 ? "is a" : "are", moved.size() == 1 ? "" : "s",
      moved.size() == 1 ? "s" : "", fixed_format, s.substr(at + 1), fmt::join(moved, ",")));
}

}  // namespace

namespace {
// parse's check of align= and group= against the format: refuses what cannot be shared and
// sets design.acc.group for minifloat shared-column arrays (`group` 0: the default).
void check_shared_alignment(DesignPoint& design, const Format& format, int group);
}  // namespace

DesignPoint DesignPoint::parse(std::string_view s) {
  auto at = s.find('@');
  if (at == std::string_view::npos)
    throw UsageError(fmt::format(
        "design '{}' needs <format>@<level>[,acc=..,flow=..,pipe=..], e.g. "
        "gse:b=6@array4x4,acc=fixed32.16",
        s));
  check_design_options_after_at(s, at);
  DesignPoint design;
  const auto format = parse_format(s.substr(0, at));
  design.format = format->spec();
  // Without acc= a design gets its format's natural accumulator, the one every report
  // compares it with (fp32 for minifloats, fixed32.16 for GSE-INT, fixed32.0 for INT8).
  design.acc = format->natural_accumulator();

  auto parts = split(s.substr(at + 1), ',');
  std::string_view level = parts[0];
  if (level == "pe") {
    design.level = Level::pe;
  } else if (level.substr(0, 5) == "array") {
    design.level = Level::array;
    std::tie(design.rows, design.cols) = parse_shape(level.substr(5), "array");
  } else if (level.substr(0, 4) == "core") {
    design.level = Level::core;
    std::tie(design.rows, design.cols) = parse_shape(level.substr(4), "core");
  } else {
    throw UsageError(
        fmt::format("design level '{}' is not one of pe, arrayRxC, coreRxC", level));
  }

  int group = 0;  // group=G, minifloat shared-column arrays only (checked below)
  for (size_t i = 1; i < parts.size(); ++i) {
    auto eq = parts[i].find('=');
    if (eq == std::string_view::npos)
      throw UsageError(fmt::format("design option '{}' is not key=value", parts[i]));
    std::string_view key = parts[i].substr(0, eq), value = parts[i].substr(eq + 1);
    if (key == "acc") {
      design.acc = AccumulatorSpec::parse(value);
    } else if (key == "flow") {
      if (value == "os") design.dataflow = Dataflow::output_stationary;
      else if (value == "ws") design.dataflow = Dataflow::weight_stationary;
      else throw UsageError(fmt::format("dataflow '{}' is not one of os, ws", value));
    } else if (key == "pipe") {
      design.pipeline = parse_int(value, "pipeline depth pipe");
      if (design.pipeline < 1 || design.pipeline > 4)
        throw UsageError(fmt::format("pipeline depth pipe = {} is outside 1..4", design.pipeline));
    } else if (key == "align") {
      if (value == "pe") design.alignment = Alignment::per_pe;
      else if (value == "shared") design.alignment = Alignment::shared_column;
      else throw UsageError(fmt::format("alignment '{}' is not one of pe, shared", value));
    } else if (key == "group") {
      group = parse_int(value, "group size group");
      if (group < 1 || group > kMaxDesignGroup)
        throw UsageError(fmt::format("group size group = {} is outside 1..{}", group,
                                     kMaxDesignGroup));
    } else {
      throw UsageError(
          fmt::format("unknown design option '{}' (known: acc, flow, pipe, align, group)", key));
    }
  }
  check_shared_alignment(design, *format, group);
  return design;
}

namespace {

void check_shared_alignment(DesignPoint& design, const Format& format, int group) {
  using Alignment = DesignPoint::Alignment;
  const GemmOperandKind kind = format.gemm_operand();
  if (group != 0 && (design.alignment != Alignment::shared_column ||
                     kind != GemmOperandKind::minifloat))
    throw UsageError(fmt::format(
        "group={} sets the group size of a minifloat shared-column array (e.g. "
        "fp8:e4m3@array4x4,acc=fp32,align=shared,group=32); {}",
        group,
        kind == GemmOperandKind::gse ? "a GSE-INT group is its format's g="
                                     : "it needs align=shared and an fp8/fp6 format"));
  if (design.alignment != Alignment::shared_column) return;
  // GSE groups and minifloat group sums have per-group hardware to share; a lone PE has
  // nobody to share it with.
  if (kind != GemmOperandKind::gse && kind != GemmOperandKind::minifloat)
    throw UsageError(fmt::format(
        "align=shared shares the per-group hardware of GSE-INT and minifloat (fp8, fp6) "
        "arrays; format {} has no groups (use align=pe)",
        design.format));
  if (design.level == DesignPoint::Level::pe)
    throw UsageError(
        "align=shared needs an array (arrayRxC or coreRxC): a single PE has no column to "
        "share its per-group hardware with");
  if (kind == GemmOperandKind::minifloat) {
    // Each PE sums the exact products of G steps; the column adds the group sums.
    design.acc.group = group == 0 ? kDefaultDesignGroup : group;
    const MinifloatOperand mf = format.minifloat_operand();
    if (mf.block)
      throw UsageError(fmt::format("align=shared with MX block scales ({}) is not supported: "
                                   "use block=0",
                                   design.format));
    const int bits = minifloat_group_sum_bits(*mf.element, *mf.element, design.acc.group);
    if (bits > kMaxMinifloatGroupSumBits)
      throw UsageError(fmt::format(
          "align=shared: the exact sum of {} {} products needs {} bits, more than {} (E4M3 and "
          "FP6 fit; E5M2, BF16 and FP16 products span too many binades)",
          design.acc.group, design.format, bits, kMaxMinifloatGroupSumBits));
  }
}

}  // namespace

}  // namespace gsqhw
