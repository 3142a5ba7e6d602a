// What the generator needs to know about a design point, decoded and validated once:
// operand format parameters, port widths and the datapath widths derived from them.
//
// The format strings are the canonical specs of numerics/format.h; this file reads only the
// parameters that shape hardware (the quantizer's scale/round choices do not).
#pragma once

#include <string>

#include "numerics/design.h"

namespace gsqhw::gen {

enum class OperandFamily { gse, minifloat, integer };

struct OperandFormat {
  OperandFamily family = OperandFamily::gse;
  std::string family_name;  // "gse", "fp8", "bf16", "fp16", "int8"
  std::string variant;      // "e4m3"/"e5m2" for fp8, "" otherwise
  int code_bits = 0;        // CW: element code width on in_a / in_b
  int exp_bits = 0;         // XW: width of in_a_exp / in_b_exp, 0 when the family has none

  // GSE-INT(b, G, E)
  int gse_b = 0, gse_g = 0, gse_e = 0;
  bool gse_full_range = false;  // range=full allows -2^(b-1)
  int gse_bias() const { return (1 << (gse_e - 1)) - 1; }

  // Minifloats: sign | exponent field | mantissa field
  int mf_exp_bits = 0, mf_man_bits = 0, mf_bias = 0;
  bool mf_ieee_specials = true;  // false: E4M3 (no Inf, only S.1111.111 is NaN)

  // Plain integers: INT8 (b = 8) or the plain INT-b MAC baseline of GeneratorOptions.
  int int_bits = 0;

  bool has_groups() const { return family == OperandFamily::gse; }
};

// Reads a canonical (or short) format spec. Throws UsageError for families the generator
// cannot build (nf4, fp32, MX block scales) and for parameters outside the hardware limits.
OperandFormat decode_operand_format(const std::string& spec);

// Everything one PE's datapath needs.
struct PeSpec {
  OperandFormat format;
  AccumulatorSpec acc;
  int pipeline = 1;

  int acc_width() const { return acc.kind == AccumulatorSpec::Kind::fixed ? acc.width : 32; }
  // Width of the exact product of two element codes (two's complement for GSE/INT,
  // unsigned magnitude for minifloats).
  int product_width() const;
  // GSE: width of the exact group sum, 2b + log2(G) (signed). 0 for other families.
  int group_sum_width() const;
  // Width of the unsigned exponent code u of the addend (value = val * 2^(u + offset)),
  // 0 when the family has no exponent (integers).
  int exp_code_width() const;
  int exp_code_max() const;  // largest u
  // Value exponent offset: addend value = val * 2^(u + value_offset()).
  int value_offset() const;
};

// Validates the design and derives the PE spec. Throws UsageError naming the broken limit.
PeSpec make_pe_spec(const DesignPoint& design, int int_bits_override = 0);

}  // namespace gsqhw::gen
