// The accumulator's leaf modules, split along the parts of issue #16's area and energy
// breakdown so that synthesis of a hierarchical run can measure each part on its own
// (synth/compose.cpp maps module names to parts by their prefix):
//
//   gsqhw_exp_*    exponent path: the group's exponent add (GSE), the fixed addend's shift
//                  amount, the fp32 addend's exponent, the fp32 adder's operand ordering
//   gsqhw_align_*  alignment shifter: the fixed addend's shift, the fp32 adder's alignment of
//                  the smaller significand (with its sticky bit)
//   gsqhw_add_*    accumulator adder: the fp32 significand adder, the GSE group-sum adder
//                  (gsqhw_acc_fixed, the saturating fixed adder, is one module already)
//   gsqhw_norm_*   normalisation/rounding: the fp32 addend's normalisation, the unpacking of a
//                  (subnormal) fp32 accumulator, the fp32 result's normalisation and RNE
//                  rounding; gsqhw_sat_fixed: the fixed addend's saturation to W bits
//
// gsqhw_addend_fixed|fp32 and gsqhw_acc_fixed|fp32 keep their ports, so the PE emitters
// (gen/stage_emit.cpp) are unchanged; the wrappers hold only wiring and (fp32) the special
// values. The logic is the same expressions as before the split, moved behind ports with the
// same widths and signedness: behaviour is unchanged (co-simulation, and Yosys equivalence of
// the old and new PEs, docs/generator.md).
#include <fmt/format.h>

#include "gen/emit.h"
#include "gen/verilog_text.h"

namespace gsqhw::gen {
namespace {

using verilog::Block;
using verilog::Instance;
using verilog::Module;

// Integers, GSE group sums and the minifloat column unit's group sum (PeSpec::column_unit) are
// two's complement; minifloat products a sign and a magnitude.
bool twos_complement_value(const PeSpec& pe) {
  return pe.format.family != OperandFamily::minifloat || pe.column_unit;
}
bool has_inf(const PeSpec& pe) {
  return pe.format.family == OperandFamily::minifloat && pe.format.mf_ieee_specials;
}
// Width of the value the prepare stage receives (GSE: the group sum; otherwise the product,
// for minifloats its unsigned magnitude).
int value_width(const PeSpec& pe) {
  return pe.format.family == OperandFamily::gse || pe.column_unit ? pe.group_sum_width()
                                                                  : pe.product_width();
}

std::string all_ones(int width) { return fmt::format("{{{}{{1'b1}}}}", width); }
std::string max_signed(int width) { return fmt::format("{{1'b0, {{{}{{1'b1}}}}}}", width - 1); }
std::string min_signed(int width) { return fmt::format("{{1'b1, {{{}{{1'b0}}}}}}", width - 1); }
std::string zero_extend(const std::string& signal, int from, int to) {
  if (to == from) return signal;
  return fmt::format("{{{}'d0, {}}}", to - from, signal);
}

VerilogFile file_of(const DesignPoint& d, Module& m, const std::string& purpose,
                    const std::string& description = "") {
  m.preamble = file_header(d, m.name(), purpose) + description;
  return {m.name() + ".v", m.str()};
}

verilog::Port signed_in(std::string name, int width) {
  return verilog::in(std::move(name), width).as_signed();
}
verilog::Port signed_out(std::string name, int width) {
  return verilog::out(std::move(name), width).as_signed();
}

// ---------------------------------------------------------------------------------------
// Fixed-point accumulator: the addend floor(value * 2^(exp_code + off)) saturated to W bits

struct FixedAddendShape {
  int vw, w, uw, off, umax, ew;
  bool can_left, can_right;
  int sw, lw, rw;  // shift amount, clamped left and right amounts (uw > 0)
  bool variable() const { return uw > 0 && (can_left || can_right); }
};

FixedAddendShape fixed_addend_shape(const PeSpec& pe) {
  FixedAddendShape s{};
  s.vw = twos_complement_value(pe) ? value_width(pe) : value_width(pe) + 1;
  s.w = pe.acc.width;
  s.uw = pe.exp_code_width();
  s.off = pe.value_offset() + pe.acc.frac_bits;
  s.umax = pe.exp_code_max();
  s.ew = s.vw + s.w;  // holds value << W without losing bits
  s.can_left = s.off + s.umax > 0;
  s.can_right = s.off < 0;
  s.sw = bits_for_signed_range(std::min(s.off, 0) - s.vw - 1, std::max(s.off + s.umax, s.w) + 1);
  s.lw = bits_for_unsigned(s.w);
  s.rw = bits_for_unsigned(s.vw);
  return s;
}

VerilogFile exp_shift_module(const DesignPoint& d, const FixedAddendShape& s) {
  Module m("gsqhw_exp_shift");
  m.port(verilog::in("exp_code", s.uw));
  if (s.can_left) m.port(verilog::out("left_amount", s.lw));
  if (s.can_right) m.port(verilog::out("right_amount", s.rw));
  Block& b = m.body;
  b.comment("Shift amount exp_code + offset. Left shifts beyond W bits and right shifts beyond\n"
            "the value's width change nothing more, so the amounts are clamped there.");
  b.wire_signed("shift", s.sw,
                fmt::format("$signed({}) + {}", zero_extend("exp_code", s.uw, s.sw),
                            vlit(s.sw, s.off, true)));
  if (s.can_left)
    b.assign("left_amount", fmt::format("shift[{}] ? {} : (shift > {}) ? {} : shift[{}:0]",
                                        s.sw - 1, vlit(s.lw, 0), vlit(s.sw, s.w, true),
                                        vlit(s.lw, s.w), s.lw - 1));
  if (s.can_right) {
    b.wire("shift_negated", s.sw, "-shift");
    b.assign("right_amount",
             fmt::format("~shift[{}] ? {} : (shift_negated > {}) ? {} : shift_negated[{}:0]",
                         s.sw - 1, vlit(s.rw, 0), vlit(s.sw, s.vw), vlit(s.rw, s.vw), s.rw - 1));
  }
  return file_of(d, m, fmt::format("exponent path of the fixed addend: shift amount exp_code + {}, "
                                   "clamped", s.off));
}

VerilogFile align_fixed_module(const DesignPoint& d, const FixedAddendShape& s) {
  Module m("gsqhw_align_fixed");
  m.port(signed_in("value", s.vw));
  if (s.variable() && s.can_left) m.port(verilog::in("left_amount", s.lw));
  if (s.variable() && s.can_right) m.port(verilog::in("right_amount", s.rw));
  m.port(signed_out("shifted", s.ew));
  Block& b = m.body;
  b.wire_signed("widened", s.ew,
                fmt::format("{{{{{}{{value[{}]}}}}, value}}", s.ew - s.vw, s.vw - 1));
  if (!s.variable()) {
    // A static shift: plain wiring.
    b.assign("shifted", s.off >= 0 ? fmt::format("widened <<< {}", std::min(s.off, s.w))
                                   : fmt::format("widened >>> {}", std::min(-s.off, s.vw)));
  } else {
    std::string expr = "widened";
    if (s.can_left) expr = "(" + expr + " <<< left_amount)";
    if (s.can_right) expr = "(" + expr + " >>> right_amount)";
    b.assign("shifted", expr);
  }
  return file_of(d, m, "alignment shifter of the fixed addend (arithmetic shift, value widened by W bits)");
}

VerilogFile sat_fixed_module(const DesignPoint& d, const FixedAddendShape& s) {
  Module m("gsqhw_sat_fixed");
  m.port(signed_in("shifted", s.ew));
  m.port(signed_out("addend", s.w));
  m.port(verilog::out("overflow").note(fmt::format("the addend did not fit in {} bits and was saturated", s.w)));
  Block& b = m.body;
  b.comment(fmt::format("the addend fits in {} bits iff bits {}..{} are all equal", s.w, s.ew - 1,
                        s.w - 1));
  b.wire("fits", 1,
         fmt::format("(&shifted[{0}:{1}]) | ~(|shifted[{0}:{1}])", s.ew - 1, s.w - 1));
  b.assign("overflow", "~fits");
  b.assign("addend", fmt::format("fits ? shifted[{}:0] : shifted[{}] ? {} : {}", s.w - 1, s.ew - 1,
                                 min_signed(s.w), max_signed(s.w)));
  return file_of(d, m, fmt::format("saturation of the fixed addend to {} bits", s.w));
}

VerilogFile addend_fixed_module(const DesignPoint& d, const PeSpec& pe, const FixedAddendShape& s) {
  Module m("gsqhw_addend_fixed");
  m.port(signed_in("value", s.vw));
  if (s.uw > 0) m.port(verilog::in("exp_code", s.uw));
  m.port(signed_out("addend", s.w));
  m.port(verilog::out("overflow").note(fmt::format("the addend did not fit in {} bits and was saturated", s.w)));
  Block& b = m.body;
  Instance align("gsqhw_align_fixed", "u_align");
  align.pin("value", "value");
  if (s.variable()) {
    Instance amount("gsqhw_exp_shift", "u_shift");
    amount.pin("exp_code", "exp_code");
    if (s.can_left) {
      b.wire("left_amount", s.lw);
      amount.pin("left_amount", "left_amount");
      align.pin("left_amount", "left_amount");
    }
    if (s.can_right) {
      b.wire("right_amount", s.rw);
      amount.pin("right_amount", "right_amount");
      align.pin("right_amount", "right_amount");
    }
    b.instance(amount);
  } else if (s.uw > 0) {
    b.comment("exp_code cannot move the addend: every shift amount clamps to the same value");
  }
  b.wire_signed("shifted", s.ew);
  b.instance(align.pin("shifted", "shifted"));
  b.instance(Instance("gsqhw_sat_fixed", "u_saturate")
                 .pin("shifted", "shifted").pin("addend", "addend").pin("overflow", "overflow"));
  return file_of(d, m,
                 fmt::format("addend for the fixed{}.{} accumulator: floor(value * 2^(exp_code + {})), "
                             "saturated to {} bits",
                             s.w, pe.acc.frac_bits, s.off, s.w),
                 "// exponent path (gsqhw_exp_shift) -> alignment shifter (gsqhw_align_fixed) -> saturation\n"
                 "// (gsqhw_sat_fixed)\n");
}

VerilogFile acc_fixed_module(const DesignPoint& d, const PeSpec& pe) {
  const int w = pe.acc.width;
  Module m("gsqhw_acc_fixed");
  m.port(signed_in("acc", w)).port(signed_in("addend", w)).port(signed_out("sum", w));
  m.port(verilog::out("overflow").note("the exact sum did not fit: saturated"));
  Block& b = m.body;
  b.wire_signed("total", w + 1, fmt::format("{{acc[{0}], acc}} + {{addend[{0}], addend}}", w - 1));
  b.assign("overflow", fmt::format("total[{}] ^ total[{}]", w, w - 1));
  b.assign("sum", fmt::format("overflow ? (total[{}] ? {} : {}) : total[{}:0]", w, min_signed(w),
                              max_signed(w), w - 1));
  return file_of(d, m, fmt::format("saturating {}-bit two's complement adder of the accumulator", w));
}

// ---------------------------------------------------------------------------------------
// fp32 accumulator: the addend normalised to its leading one, and the one-rounding adder

struct Fp32Shape {
  int p;   // significand width of the datapath (>= 24)
  int aw;  // significand, guard, round, sticky
  int zw;  // plus a carry
  int tw;  // exponent of a leading bit
  int dw;  // alignment shift amount
  int zi;  // index of the sum's leading one
  int nw;  // denormalisation shift amount
};

Fp32Shape fp32_shape(const PeSpec& pe) {
  Fp32Shape s{};
  s.p = fp32_mant_width(pe);
  s.aw = s.p + 3;
  s.zw = s.aw + 1;
  s.tw = kTopWidth;
  s.dw = bits_for_unsigned(s.aw);
  s.zi = bits_for_unsigned(s.zw - 1);
  s.nw = bits_for_unsigned(s.zw);
  return s;
}

VerilogFile norm_addend_module(const DesignPoint& d, const PeSpec& pe) {
  const int vw = value_width(pe), mw = vw, p = fp32_mant_width(pe);
  const int iw = bits_for_unsigned(mw - 1);
  Module m("gsqhw_norm_addend");
  if (twos_complement_value(pe))
    m.port(signed_in("value", vw));
  else
    m.port(verilog::in("value_sign")).port(verilog::in("magnitude", mw));
  m.port(verilog::out("sign"));
  m.port(verilog::out("mant", p).note(fmt::format("bit {} set unless the addend is zero", p - 1)));
  m.port(verilog::out("msb", iw).note("index of the magnitude's leading one"));
  Block& b = m.body;
  if (twos_complement_value(pe)) {
    b.assign("sign", fmt::format("value[{}]", vw - 1));
    b.wire("magnitude", mw, "sign ? -value : value");
  } else {
    b.assign("sign", "value_sign");
  }
  b.lines(msb_index_assign("msb", "magnitude", mw, iw));
  b.wire("normalised", mw, fmt::format("magnitude << ({} - msb)", vlit(iw, mw - 1)));
  b.assign("mant", p > mw ? fmt::format("{{normalised, {}'d0}}", p - mw) : "normalised");
  return file_of(d, m, "normalisation of the fp32 addend: sign and magnitude, leading one on top");
}

VerilogFile exp_top_module(const DesignPoint& d, const PeSpec& pe) {
  const int mw = value_width(pe), uw = pe.exp_code_width(), off = pe.value_offset();
  const int iw = bits_for_unsigned(mw - 1);
  Module m("gsqhw_exp_top");
  m.port(verilog::in("msb", iw));
  if (uw > 0) m.port(verilog::in("exp_code", uw));
  m.port(signed_out("top", kTopWidth).note("exponent of the addend's leading bit"));
  std::string top = fmt::format("$signed({})", zero_extend("msb", iw, kTopWidth));
  if (uw > 0) top += fmt::format(" + $signed({})", zero_extend("exp_code", uw, kTopWidth));
  if (off != 0) top += " + " + vlit(kTopWidth, off, true);
  m.body.assign("top", top);
  return file_of(d, m, "exponent path of the fp32 addend: exponent of its leading bit");
}

VerilogFile addend_fp32_module(const DesignPoint& d, const PeSpec& pe) {
  const int vw = value_width(pe), mw = vw, p = fp32_mant_width(pe), uw = pe.exp_code_width();
  const int iw = bits_for_unsigned(mw - 1);
  Module m("gsqhw_addend_fp32");
  Instance norm("gsqhw_norm_addend", "u_normalise");
  if (twos_complement_value(pe)) {
    m.port(signed_in("value", vw));
    norm.pin("value", "value");
  } else {
    m.port(verilog::in("value_sign")).port(verilog::in("magnitude", mw));
    norm.pin("value_sign", "value_sign").pin("magnitude", "magnitude");
  }
  if (uw > 0) m.port(verilog::in("exp_code", uw));
  m.port(verilog::out("sign"));
  m.port(verilog::out("mant", p).note(fmt::format("bit {} set unless the addend is zero", p - 1)));
  m.port(signed_out("top", kTopWidth).note("exponent of mant's leading bit"));
  Block& b = m.body;
  b.wire("msb", iw);
  b.instance(norm.pin("sign", "sign").pin("mant", "mant").pin("msb", "msb"));
  Instance top("gsqhw_exp_top", "u_exponent");
  top.pin("msb", "msb");
  if (uw > 0) top.pin("exp_code", "exp_code");
  b.instance(top.pin("top", "top"));
  return file_of(d, m,
                 "addend for the fp32 accumulator: sign, significand normalised to its leading one, "
                 "and the exponent of that leading bit",
                 fmt::format("// addend value = (-1)^sign * mant * 2^(top - {}), mant = 0 for a zero addend\n"
                             "// normalisation (gsqhw_norm_addend) and exponent path (gsqhw_exp_top)\n",
                             p - 1));
}

// The accumulator's significand with its leading one on top (subnormals normalised).
VerilogFile norm_unpack_module(const DesignPoint& d, const Fp32Shape& s) {
  Module m("gsqhw_norm_unpack");
  m.port(verilog::in("acc_frac", 23)).port(verilog::in("acc_normal"));
  m.port(verilog::out("acc_mant", s.p)).port(verilog::out("frac_msb", 5).note("subnormal accumulator: its leading one"));
  Block& b = m.body;
  b.lines(msb_index_assign("frac_msb", "acc_frac", 23, 5));
  b.wire("acc_sig", 24, "acc_normal ? {1'b1, acc_frac} : {1'b0, acc_frac} << (5'd23 - frac_msb)");
  b.assign("acc_mant", s.p > 24 ? fmt::format("{{acc_sig, {}'d0}}", s.p - 24) : "acc_sig");
  return file_of(d, m, "unpacking of the fp32 accumulator: significand normalised to its leading one");
}

// Which operand is bigger in magnitude, the bigger one's exponent and the distance between them.
VerilogFile exp_compare_module(const DesignPoint& d, const Fp32Shape& s) {
  const int tw = s.tw;
  Module m("gsqhw_exp_compare");
  m.port(verilog::in("acc_field", 8)).port(verilog::in("frac_msb", 5));
  m.port(verilog::in("acc_normal")).port(verilog::in("acc_zero"));
  m.port(verilog::in("acc_mant", s.p)).port(verilog::in("add_mant", s.p));
  m.port(signed_in("add_top", tw));
  m.port(verilog::out("acc_bigger").note("|acc| >= |addend|"));
  m.port(signed_out("big_top", tw)).port(verilog::out("distance", tw));
  Block& b = m.body;
  b.localparam(fmt::format("signed [{}:0] TOP_OF_ZERO", tw - 1),
               vlit(tw, -(int64_t{1} << (tw - 1)), true), "below every real exponent");
  b.wire_signed("acc_top", tw,
                fmt::format("acc_zero ? TOP_OF_ZERO : acc_normal ? $signed({}) - {} : "
                            "$signed({}) - {}",
                            zero_extend("acc_field", 8, tw), vlit(tw, 127, true),
                            zero_extend("frac_msb", 5, tw), vlit(tw, 149, true)));
  b.wire("add_zero", 1, fmt::format("~add_mant[{}]", s.p - 1));
  b.wire_signed("add_key", tw, "add_zero ? TOP_OF_ZERO : add_top");
  b.assign("acc_bigger", "(acc_top > add_key) || (acc_top == add_key && acc_mant >= add_mant)");
  b.assign("big_top", "acc_bigger ? acc_top : add_key");
  b.wire_signed("small_top", tw, "acc_bigger ? add_key : acc_top");
  b.assign("distance", "big_top - small_top");
  return file_of(d, m, "exponent path of the fp32 adder: order the operands by magnitude, exponent distance");
}

VerilogFile align_fp32_module(const DesignPoint& d, const Fp32Shape& s) {
  const int p = s.p, aw = s.aw, tw = s.tw;
  Module m("gsqhw_align_fp32");
  m.port(verilog::in("acc_bigger")).port(verilog::in("acc_sign")).port(verilog::in("add_sign"));
  m.port(verilog::in("acc_mant", p)).port(verilog::in("add_mant", p)).port(verilog::in("distance", tw));
  m.port(verilog::out("big_sign")).port(verilog::out("small_sign"));
  m.port(verilog::out("big_ext", aw)).port(verilog::out("small_aligned", aw).note("guard, round and sticky bits at the bottom"));
  Block& b = m.body;
  b.assign("big_sign", "acc_bigger ? acc_sign : add_sign");
  b.assign("small_sign", "acc_bigger ? add_sign : acc_sign");
  b.wire("big_mant", p, "acc_bigger ? acc_mant : add_mant");
  b.wire("small_mant", p, "acc_bigger ? add_mant : acc_mant");
  b.comment("align the smaller significand; bits shifted out collapse into the sticky bit 0");
  b.assign("big_ext", "{big_mant, 3'b000}");
  b.wire("small_ext", aw, "{small_mant, 3'b000}");
  b.wire("far", 1, fmt::format("distance >= {}", vlit(tw, aw)));
  b.wire("shift", s.dw, fmt::format("distance[{}:0]", s.dw - 1));
  b.wire("small_shifted", aw, fmt::format("far ? {} : small_ext >> shift", vlit(aw, 0)));
  b.wire("lost", 1, fmt::format("far ? |small_mant : |(small_ext & ~({} << shift))", all_ones(aw)));
  b.assign("small_aligned", fmt::format("{{small_shifted[{}:1], small_shifted[0] | lost}}", aw - 1));
  return file_of(d, m, "alignment shifter of the fp32 adder: the smaller significand shifted to the bigger one's exponent");
}

VerilogFile add_fp32_module(const DesignPoint& d, const Fp32Shape& s) {
  const int aw = s.aw, zw = s.zw;
  Module m("gsqhw_add_fp32");
  m.port(verilog::in("big_sign")).port(verilog::in("small_sign"));
  m.port(verilog::in("big_ext", aw)).port(verilog::in("small_aligned", aw));
  m.port(verilog::out("total", zw));
  Block& b = m.body;
  b.comment("add or subtract (|big| >= |small|, so the difference is not negative)");
  b.wire("subtract", 1, "big_sign ^ small_sign");
  b.assign("total", "subtract ? {1'b0, big_ext} - {1'b0, small_aligned} : {1'b0, big_ext} + {1'b0, small_aligned}");
  return file_of(d, m, "significand adder of the fp32 accumulator (add or subtract the aligned significands)");
}

VerilogFile norm_round_module(const DesignPoint& d, const Fp32Shape& s) {
  const int tw = s.tw, zw = s.zw, zi = s.zi, nw = s.nw, aw = s.aw;
  Module m("gsqhw_norm_round");
  m.port(verilog::in("total", zw)).port(signed_in("big_top", tw));
  m.port(verilog::in("big_sign")).port(verilog::in("small_sign"));
  m.port(verilog::out("finite_sum", 32));
  Block& b = m.body;
  b.wire("total_zero", 1, "~|total");
  b.wire("total_msb", zi);
  b.lines(msb_index_assign("total_msb", "total", zw, zi));
  b.comment(fmt::format("leading one moved to bit {}; the exponent of the result's leading bit:", zw - 1));
  b.wire("normalised", zw, fmt::format("total << ({} - total_msb)", vlit(zi, zw - 1)));
  b.wire_signed("result_top", tw,
                fmt::format("big_top + $signed({}) - {}", zero_extend("total_msb", zi, tw),
                            vlit(tw, aw - 1, true)));
  b.blank();
  b.comment("below 2^-126 the significand keeps fewer bits: shift right to the 2^-149 grid");
  b.wire("subnormal", 1, fmt::format("result_top < {}", vlit(tw, -126, true)));
  b.wire("denormalise", tw, fmt::format("{} - result_top", vlit(tw, -126, true)));
  b.wire("denorm_far", 1, fmt::format("subnormal & (denormalise >= {})", vlit(tw, zw)));
  b.wire("denorm_shift", nw, fmt::format("subnormal ? denormalise[{}:0] : {}", nw - 1, vlit(nw, 0)));
  b.wire("aligned", zw, fmt::format("denorm_far ? {} : normalised >> denorm_shift", vlit(zw, 0)));
  b.wire("denorm_lost", 1,
         fmt::format("denorm_far ? |normalised : |(normalised & ~({} << denorm_shift))", all_ones(zw)));
  b.blank();
  b.comment(fmt::format("round to nearest, ties to even, at bit 23 below bit {}\n"
                        "(the leading bit itself is the implicit bit: it survives exactly for normal results)",
                        zw - 1));
  b.wire("kept", 23, fmt::format("aligned[{}:{}]", zw - 2, zw - 24));
  b.wire("guard", 1, fmt::format("aligned[{}]", zw - 25));
  b.wire("sticky", 1, fmt::format("(|aligned[{}:0]) | denorm_lost", zw - 26));
  b.wire("round_up", 1, "guard & (sticky | kept[0])");
  b.wire("too_big", 1, fmt::format("~subnormal & (result_top > {})", vlit(tw, 127, true)));
  b.comment("for results in the normal range, result_top + 127 lies in 1..254");
  b.wire("field", 8, fmt::format("aligned[{}] ? result_top[7:0] + 8'd127 : 8'd0", zw - 1));
  b.wire("rounded", 31, "{field, kept} + {30'd0, round_up}");
  b.wire("result_sign", 1, "total_zero ? (big_sign & small_sign) : big_sign");
  b.assign("finite_sum", "total_zero ? {result_sign, 31'd0} : too_big ? {result_sign, 8'hff, 23'd0} : {result_sign, rounded}");
  return file_of(d, m, "normalisation and RNE rounding of the fp32 sum (subnormal results on the 2^-149 grid)");
}

VerilogFile acc_fp32_module(const DesignPoint& d, const PeSpec& pe, const Fp32Shape& s) {
  const int p = s.p, tw = s.tw;
  Module m("gsqhw_acc_fp32");
  m.port(verilog::in("acc", 32)).port(verilog::in("add_sign")).port(verilog::in("add_mant", p));
  m.port(signed_in("add_top", tw)).port(verilog::in("add_nan"));
  if (has_inf(pe)) m.port(verilog::in("add_inf"));
  m.port(verilog::out("sum", 32));
  Block& b = m.body;
  b.comment("--- the accumulator's fields and special values");
  b.wire("acc_sign", 1, "acc[31]").wire("acc_field", 8, "acc[30:23]").wire("acc_frac", 23, "acc[22:0]");
  b.wire("acc_is_nan", 1, "(&acc_field) & (|acc_frac)");
  b.wire("acc_is_inf", 1, "(&acc_field) & ~(|acc_frac)");
  b.wire("acc_normal", 1, "|acc_field");
  b.wire("acc_zero", 1, "~acc_normal & ~(|acc_frac)");
  b.blank();
  b.comment("--- unpack (normalisation) and order by magnitude (exponent path)");
  b.wire("acc_mant", p).wire("frac_msb", 5);
  b.instance(Instance("gsqhw_norm_unpack", "u_unpack")
                 .pin("acc_frac", "acc_frac").pin("acc_normal", "acc_normal")
                 .pin("acc_mant", "acc_mant").pin("frac_msb", "frac_msb"));
  b.wire("acc_bigger").wire_signed("big_top", tw).wire("distance", tw);
  b.instance(Instance("gsqhw_exp_compare", "u_compare")
                 .pin("acc_field", "acc_field").pin("frac_msb", "frac_msb")
                 .pin("acc_normal", "acc_normal").pin("acc_zero", "acc_zero")
                 .pin("acc_mant", "acc_mant").pin("add_mant", "add_mant").pin("add_top", "add_top")
                 .pin("acc_bigger", "acc_bigger").pin("big_top", "big_top").pin("distance", "distance"));
  b.blank();
  b.comment("--- align the smaller significand, add, normalise and round");
  b.wire("big_sign").wire("small_sign").wire("big_ext", s.aw).wire("small_aligned", s.aw);
  b.instance(Instance("gsqhw_align_fp32", "u_align")
                 .pin("acc_bigger", "acc_bigger").pin("acc_sign", "acc_sign").pin("add_sign", "add_sign")
                 .pin("acc_mant", "acc_mant").pin("add_mant", "add_mant").pin("distance", "distance")
                 .pin("big_sign", "big_sign").pin("small_sign", "small_sign")
                 .pin("big_ext", "big_ext").pin("small_aligned", "small_aligned"));
  b.wire("total", s.zw);
  b.instance(Instance("gsqhw_add_fp32", "u_add")
                 .pin("big_sign", "big_sign").pin("small_sign", "small_sign")
                 .pin("big_ext", "big_ext").pin("small_aligned", "small_aligned").pin("total", "total"));
  b.wire("finite_sum", 32);
  b.instance(Instance("gsqhw_norm_round", "u_round")
                 .pin("total", "total").pin("big_top", "big_top").pin("big_sign", "big_sign")
                 .pin("small_sign", "small_sign").pin("finite_sum", "finite_sum"));
  b.blank();
  b.comment("--- specials");
  if (has_inf(pe)) {
    b.wire("nan", 1, "acc_is_nan | add_nan | (acc_is_inf & add_inf & (acc_sign ^ add_sign))");
    b.assign("sum", fmt::format("nan ? 32'h{:08x} : acc_is_inf ? acc : add_inf ? {{add_sign, 8'hff, 23'd0}} : finite_sum",
                                kFp32QuietNaN));
  } else {
    b.wire("nan", 1, "acc_is_nan | add_nan");
    b.assign("sum", fmt::format("nan ? 32'h{:08x} : acc_is_inf ? acc : finite_sum", kFp32QuietNaN));
  }
  return file_of(
      d, m,
      "IEEE binary32 accumulate: RNE(acc + addend) with ONE rounding of the exact sum; "
      "subnormals, infinities and NaN per IEEE 754",
      "// The addend is exact (a group sum or an exact product), given normalised by gsqhw_addend_fp32.\n"
      "// Classic single-path adder: order the operands by magnitude (gsqhw_exp_compare), align the\n"
      "// smaller one with a guard, a round and a sticky bit (gsqhw_align_fp32; enough for one correct\n"
      "// rounding), add or subtract (gsqhw_add_fp32), normalise, then round to nearest even at bit 23\n"
      "// below the leading one, or at 2^-149 for subnormal results (gsqhw_norm_round). The rounding\n"
      "// increment may carry into the exponent field, which is exactly IEEE's behaviour (largest\n"
      "// subnormal -> smallest normal, largest finite -> Inf).\n");
}

}  // namespace

std::vector<VerilogFile> emit_accumulator_files(const DesignPoint& d, const PeSpec& pe) {
  std::vector<VerilogFile> files;
  if (pe.acc.kind == AccumulatorSpec::Kind::fixed) {
    const FixedAddendShape s = fixed_addend_shape(pe);
    if (s.variable()) files.push_back(exp_shift_module(d, s));
    files.push_back(align_fixed_module(d, s));
    files.push_back(sat_fixed_module(d, s));
    files.push_back(addend_fixed_module(d, pe, s));
    files.push_back(acc_fixed_module(d, pe));
    return files;
  }
  const Fp32Shape s = fp32_shape(pe);
  files.push_back(norm_addend_module(d, pe));
  files.push_back(exp_top_module(d, pe));
  files.push_back(addend_fp32_module(d, pe));
  files.push_back(norm_unpack_module(d, s));
  files.push_back(exp_compare_module(d, s));
  files.push_back(align_fp32_module(d, s));
  files.push_back(add_fp32_module(d, s));
  files.push_back(norm_round_module(d, s));
  files.push_back(acc_fp32_module(d, pe, s));
  return files;
}

std::vector<VerilogFile> emit_group_files(const DesignPoint& d, const PeSpec& pe) {
  const int xw = pe.format.exp_bits, uw = pe.exp_code_width();
  const int sw = pe.group_sum_width(), pw = pe.product_width();
  std::vector<VerilogFile> files;
  {
    Module m("gsqhw_exp_add");
    m.port(verilog::in("a_exp", xw)).port(verilog::in("b_exp", xw));
    m.port(verilog::out("exp_code", uw)).port(verilog::out("group_nan").note("an all-ones code marks a NaN group"));
    m.body.comment("the group's scale: exponent codes add (biases are folded into the shift offset)");
    m.body.assign("exp_code", "{1'b0, a_exp} + {1'b0, b_exp}");
    m.body.assign("group_nan", "(&a_exp) | (&b_exp)");
    files.push_back(file_of(d, m, "exponent path of a GSE group: e_a + e_b and the NaN-group mark"));
  }
  {
    Module m("gsqhw_add_group");
    m.port(signed_in("base", sw)).port(signed_in("product", pw)).port(signed_out("sum", sw));
    m.body.assign("sum", "base + " + sign_extend("product", pw, sw));
    files.push_back(file_of(d, m, fmt::format("the exact GSE group-sum adder ({} bits = 2b + log2 G)", sw)));
  }
  return files;
}

}  // namespace gsqhw::gen
