// Decoding and validation of design points for the generator (gen/pe_spec.h).
#include "gen/pe_spec.h"

#include <fmt/format.h>

#include "gen/verilog_text.h"
#include "base/errors.h"

namespace gsqhw::gen {
namespace {

void require(bool ok, const std::string& message) {
  if (!ok) throw UsageError(message);
}

}  // namespace

OperandFormat decode_operand_format(const std::string& spec) {
  return parse_format(spec)->hardware();
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
  if (minifloat_group_sums()) return 1 + fixed_product_width() + ceil_log2(acc.group);
  return format.family == OperandFamily::gse ? 2 * format.gse_b + ceil_log2(format.gse_g) : 0;
}

int PeSpec::fixed_product_width() const {
  // exp_code = a_eff + b_eff >= 2: the product of the smallest codes is the LSB.
  // The products' largest exponent code sum (exp_code_max() is 0 for the column unit).
  const int largest_code_sum = 2 * ((1 << format.mf_exp_bits) - 1);
  return format.family == OperandFamily::minifloat ? product_width() + largest_code_sum - 2 : 0;
}

int PeSpec::exp_code_width() const {
  if (column_unit) return 0;
  switch (format.family) {
    case OperandFamily::gse: return format.gse_e + 1;
    case OperandFamily::minifloat: return format.mf_exp_bits + 1;
    case OperandFamily::integer: return 0;
  }
  return 0;
}

int PeSpec::exp_code_max() const {
  if (column_unit) return 0;
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
    case OperandFamily::minifloat:
      // The column unit's group sum counts units of the smallest product (exp_code 2).
      return -2 * format.mf_bias - 2 * format.mf_man_bits + (column_unit ? 2 : 0);
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
