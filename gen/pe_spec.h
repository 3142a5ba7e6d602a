// What the generator needs to know about a design point, decoded and validated once:
// operand format parameters, port widths and the datapath widths derived from them.
//
// The operand's hardware comes from its format unit (Format::hardware()); this file adds the
// datapath widths and the design limits (pipeline, shape, accumulator).
#pragma once

#include <string>

#include "numerics/design.h"
#include "numerics/format.h"

namespace gsqhw::gen {

// The operand hardware is the format unit's (numerics/format.h, Format::hardware()).
using OperandFormat = HardwareOperand;
using OperandFamily = HardwareOperand::Family;

// parse_format(spec)->hardware(): throws UsageError for families the generator cannot build
// (nf4, fp32, MX block scales) and for parameters outside the limits.
OperandFormat decode_operand_format(const std::string& spec);

// Everything one PE's datapath needs.
struct PeSpec {
  OperandFormat format;
  AccumulatorSpec acc;  // acc.group > 0: minifloat group sums (align=shared, numerics/gemm.h)
  int pipeline = 1;
  // The column unit of a minifloat shared-column array (gen/minifloat_shared_emit.cpp): its
  // addend units take the exact fixed-point group sum (two's complement, group_sum_width()
  // bits, no exponent code, value = sum * 2^value_offset()) instead of a product.
  bool column_unit = false;

  // Minifloat operands summed exactly per group in the PE (acc.group > 0).
  bool minifloat_group_sums() const {
    return format.family == OperandFamily::minifloat && acc.group > 0;
  }

  int acc_width() const { return acc.kind == AccumulatorSpec::Kind::fixed ? acc.width : 32; }
  // Width of the exact product of two element codes (two's complement for GSE/INT,
  // unsigned magnitude for minifloats).
  int product_width() const;
  // GSE: width of the exact group sum, 2b + log2(G) (signed). Minifloat group sums: 1 + the
  // product magnitude shifted by up to (largest exponent code sum - 2) + log2(G), as
  // minifloat_group_sum_bits (E4M3, G = 32: 42). 0 otherwise.
  int group_sum_width() const;
  // Minifloat group sums: width of one product as a fixed-point integer (magnitude bits plus
  // the largest shift, unsigned; E4M3: 36).
  int fixed_product_width() const;
  // Width of the unsigned exponent code u of the addend (value = val * 2^(u + offset)),
  // 0 when the family has no exponent (integers, the minifloat column unit).
  int exp_code_width() const;
  int exp_code_max() const;  // largest u
  // Value exponent offset: addend value = val * 2^(u + value_offset()).
  int value_offset() const;
};

// Validates the design and derives the PE spec. Throws UsageError naming the broken limit.
PeSpec make_pe_spec(const DesignPoint& design, int int_bits_override = 0);

}  // namespace gsqhw::gen
