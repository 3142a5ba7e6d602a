// Decoding and validation of design points for the generator (gen/pe_spec.h).
#include "gen/pe_spec.h"

#include <fmt/format.h>

#include <charconv>
#include <map>
#include <string_view>

#include "gen/verilog_text.h"
#include "base/errors.h"

namespace gsqhw::gen {
namespace {

struct SpecItems {
  std::string family;
  std::vector<std::string> words;            // bare items such as "e4m3"
  std::map<std::string, std::string> values;  // key=value items
};

SpecItems split(const std::string& spec) {
  SpecItems items;
  auto colon = spec.find(':');
  items.family = spec.substr(0, colon);
  if (colon == std::string::npos) return items;
  std::string_view rest = std::string_view(spec).substr(colon + 1);
  while (!rest.empty()) {
    auto comma = rest.find(',');
    std::string_view item = rest.substr(0, comma);
    auto eq = item.find('=');
    if (eq == std::string_view::npos) items.words.emplace_back(item);
    else items.values[std::string(item.substr(0, eq))] = std::string(item.substr(eq + 1));
    if (comma == std::string_view::npos) break;
    rest = rest.substr(comma + 1);
  }
  return items;
}

int int_value(const SpecItems& items, const std::string& key, int fallback,
              const std::string& spec) {
  auto it = items.values.find(key);
  if (it == items.values.end()) return fallback;
  int value = 0;
  const std::string& text = it->second;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || ptr != text.data() + text.size())
    throw UsageError(fmt::format("format '{}': {}='{}' is not an integer", spec, key, text));
  return value;
}

void require(bool ok, const std::string& message) {
  if (!ok) throw UsageError(message);
}

}  // namespace

OperandFormat decode_operand_format(const std::string& spec) {
  SpecItems items = split(spec);
  OperandFormat f;
  f.family_name = items.family;
  if (items.family == "gse") {
    f.family = OperandFamily::gse;
    f.gse_b = int_value(items, "b", 8, spec);
    f.gse_g = int_value(items, "g", 32, spec);
    f.gse_e = int_value(items, "e", 5, spec);
    auto range_it = items.values.find("range");
    f.gse_full_range = range_it != items.values.end() && range_it->second == "full";
    require(f.gse_b >= 2 && f.gse_b <= 8,
            fmt::format("GSE element bits b = {} is outside the generator's range 2..8", f.gse_b));
    require(f.gse_g >= 4 && f.gse_g <= 256 && (f.gse_g & (f.gse_g - 1)) == 0,
            fmt::format("GSE group size g = {} is not a power of two in 4..256", f.gse_g));
    require(f.gse_e >= 4 && f.gse_e <= 8,
            fmt::format("GSE exponent bits e = {} is outside 4..8", f.gse_e));
    f.code_bits = f.gse_b;
    f.exp_bits = f.gse_e;
    return f;
  }
  if (items.family == "fp8" || items.family == "bf16" || items.family == "fp16") {
    f.family = OperandFamily::minifloat;
    if (items.family == "fp8") {
      bool e4m3 = items.words.empty() || items.words[0] == "e4m3";
      require(items.words.empty() || items.words[0] == "e4m3" || items.words[0] == "e5m2",
              fmt::format("format '{}': fp8 variant must be e4m3 or e5m2", spec));
      f.variant = e4m3 ? "e4m3" : "e5m2";
      f.mf_exp_bits = e4m3 ? 4 : 5;
      f.mf_man_bits = e4m3 ? 3 : 2;
      f.mf_ieee_specials = !e4m3;
      int block = int_value(items, "block", 0, spec);
      require(block == 0, fmt::format("format '{}': MX block scales (block={}) are not supported "
                                      "by the RTL generator yet; use block=0",
                                      spec, block));
    } else if (items.family == "bf16") {
      f.mf_exp_bits = 8;
      f.mf_man_bits = 7;
    } else {
      f.mf_exp_bits = 5;
      f.mf_man_bits = 10;
    }
    f.mf_bias = (1 << (f.mf_exp_bits - 1)) - 1;
    f.code_bits = 1 + f.mf_exp_bits + f.mf_man_bits;
    return f;
  }
  if (items.family == "int8") {
    f.family = OperandFamily::integer;
    f.int_bits = 8;
    f.code_bits = 8;
    return f;
  }
  throw UsageError(fmt::format(
      "format family '{}' cannot be a PE operand format of the RTL generator (supported: gse, "
      "fp8, bf16, fp16, int8)",
      items.family));
}

int PeSpec::product_width() const {
  switch (format.family) {
    case OperandFamily::gse: return 2 * format.gse_b;
    case OperandFamily::integer: return 2 * format.int_bits;
    case OperandFamily::minifloat: return 2 * (format.mf_man_bits + 1);
  }
  return 0;
}

int PeSpec::group_sum_width() const {
  return format.family == OperandFamily::gse ? 2 * format.gse_b + ceil_log2(format.gse_g) : 0;
}

int PeSpec::exp_code_width() const {
  switch (format.family) {
    case OperandFamily::gse: return format.gse_e + 1;
    case OperandFamily::minifloat: return format.mf_exp_bits + 1;
    case OperandFamily::integer: return 0;
  }
  return 0;
}

int PeSpec::exp_code_max() const {
  switch (format.family) {
    case OperandFamily::gse: return 2 * ((1 << format.gse_e) - 2);
    case OperandFamily::minifloat: return 2 * ((1 << format.mf_exp_bits) - 1);
    case OperandFamily::integer: return 0;
  }
  return 0;
}

int PeSpec::value_offset() const {
  switch (format.family) {
    case OperandFamily::gse: return -2 * format.gse_bias() - 2 * (format.gse_b - 2);
    case OperandFamily::minifloat: return -2 * format.mf_bias - 2 * format.mf_man_bits;
    case OperandFamily::integer: return 0;
  }
  return 0;
}

PeSpec make_pe_spec(const DesignPoint& design, int int_bits_override) {
  PeSpec pe;
  pe.format = decode_operand_format(design.format);
  if (int_bits_override != 0) {
    require(pe.format.family == OperandFamily::integer,
            "the plain INT-b option applies to the int8 family only");
    require(int_bits_override >= 2 && int_bits_override <= 8,
            fmt::format("plain integer bits {} is outside 2..8", int_bits_override));
    pe.format.int_bits = int_bits_override;
    pe.format.code_bits = int_bits_override;
  }
  pe.acc = design.acc;
  pe.pipeline = design.pipeline;
  require(design.pipeline >= 1 && design.pipeline <= 4,
          fmt::format("pipeline depth pipe = {} is outside 1..4", design.pipeline));
  require(design.rows >= 1 && design.rows <= 64,
          fmt::format("array rows R = {} is outside 1..64", design.rows));
  require(design.cols >= 1 && design.cols <= 64,
          fmt::format("array columns C = {} is outside 1..64", design.cols));
  if (design.dataflow == DesignPoint::Dataflow::weight_stationary) {
    require(design.level != DesignPoint::Level::pe,
            "flow=ws needs an array: a lone PE has no weights to hold stationary against "
            "streaming rows (use array1x1,flow=ws)");
    require(design.alignment == DesignPoint::Alignment::per_pe,
            "flow=ws GSE arrays already share the per-group hardware per column; drop "
            "align=shared");
  }
  require(design.level != DesignPoint::Level::core,
          "level coreRxC is not implemented by the RTL generator yet; use pe or arrayRxC");
  if (pe.acc.kind == AccumulatorSpec::Kind::fixed) {
    require(pe.acc.width >= 2 && pe.acc.width <= 64,
            fmt::format("accumulator width W = {} is outside 2..64", pe.acc.width));
  }
  // Integer families: the exact group sum (GSE) or product (INT) must fit the accumulator.
  // Minifloat products are aligned by their exponent anyway, so no such limit applies.
  if (pe.acc.kind == AccumulatorSpec::Kind::fixed &&
      pe.format.family != OperandFamily::minifloat) {
    int needed = pe.format.family == OperandFamily::gse ? pe.group_sum_width() : pe.product_width();
    require(pe.acc.width >= needed,
            fmt::format("accumulator fixed{}.{} is narrower than the {} of {} bits{}", pe.acc.width,
                        pe.acc.frac_bits,
                        pe.format.family == OperandFamily::gse ? "group sum" : "product", needed,
                        pe.format.family == OperandFamily::gse ? " (2b + log2 G)" : ""));
  }
  return pe;
}

}  // namespace gsqhw::gen
