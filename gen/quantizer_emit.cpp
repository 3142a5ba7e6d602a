// The core's quantizer: FP32 words in, the design's element codes (and GSE group exponents)
// out, bit-exact with the golden quantize of numerics/gse.cpp and numerics/minifloat.cpp.
//
// FP32 fields: x = (-1)^s * sig * 2^(fe_eff - 150) with fe_eff = max(fe, 1) and
// sig = {fe != 0, mantissa} (24 bits). Every conversion below is "shift sig right by rs, then
// round at the last bit shifted out", which is the golden model's exact scaling followed by one
// rounding; rs is at least 1 wherever the result can be in range, and beyond 25 nothing of sig
// survives (sig < 2^24, so the value is below a half and rounds to 0).
#include <fmt/format.h>

#include "gen/core_internal.h"
#include "gen/verilog_text.h"
#include "base/errors.h"
#include "numerics/gse.h"
#include "numerics/minifloat.h"

namespace gsqhw::gen {
namespace {

using verilog::Block;
using verilog::in;
using verilog::out;

// The round-up decision of a magnitude rounding, per rounding mode (GSE's round= or RNE).
// Declares `inc` from `kept`, the bits of sig at and below the rounding position (rs >= 1).
void rounding_wires(Block& b, GseParams::Round mode) {
  auto round_bit = [&] {
    b.wire("round_bit", 1, "(sig & (24'd1 << (rs - 5'd1))) != 24'd0", "first bit shifted out");
  };
  auto sticky = [&] {
    b.wire("sticky", 1, "(sig & ~({24{1'b1}} << (rs - 5'd1))) != 24'd0", "any bit below it");
  };
  switch (mode) {
    case GseParams::Round::rne:
      round_bit();
      sticky();
      b.wire("inc", 1, "round_bit && (sticky || kept[0])", "to nearest, ties to even");
      return;
    case GseParams::Round::rna:
      round_bit();
      b.wire("inc", 1, "round_bit", "to nearest, ties away from zero");
      return;
    case GseParams::Round::trunc:
      b.wire("inc", 1, "1'b0", "toward zero: the magnitude is truncated");
      return;
    case GseParams::Round::stochastic: break;
  }
  throw UsageError("the core's quantizer does not implement round=stochastic");
}

// gsqhw_quant_gse_scale: the group's shared exponent code from its largest magnitude, exactly
// gse_choose_exponent (numerics/gse.cpp).
std::string gse_scale_module(const CoreParams& p, const GseParams& g) {
  const int bias = g.bias(), max_code = g.max_exp_code(), fb = g.frac_bits();
  // floor(log2 amax) + 149 lies in 0..276; the code is that minus (149 - bias), clamped.
  const int lo = 149 - bias, hi = 149 + max_code - bias;
  verilog::Module m("gsqhw_quant_gse_scale");
  m.preamble = file_header(p.design, "gsqhw_quant_gse_scale",
                           "GSE shared exponent of a group from its largest magnitude (golden "
                           "gse_choose_exponent)");
  m.ports({in("amax", 31).note("|x| bits of the group's largest magnitude"),
           in("nonfinite").note("the group holds a NaN or an Inf"),
           out("exp_code", p.xw).note("biased; all ones = NaN group")});
  Block& b = m.body;
  b.wire("fe", 8, "amax[30:23]");
  b.wire("fm", 23, "amax[22:0]");
  b.wire("lead", 5, "", "FP32 subnormal: index of the leading one of the mantissa");
  b.lines(msb_index_assign("lead", "fm", 23, 5));
  b.wire("unused_fm_bit0", 1, "fm[0]", "the leading one's index never reads it");
  b.comment("floor(log2 amax) + 149 (ilogb, subnormals included)");
  b.wire("floor_log", 9, "(fe != 8'd0) ? {1'b0, fe} + 9'd22 : {4'd0, lead}");
  std::string log_expr = "floor_log";
  if (g.scale == GseParams::Scale::ceil) {
    // amax > elem_max * 2^(floor - (b-2)) <=> the fraction f of amax's significand exceeds
    // 1 - 2^-(b-2): its top b-2 bits are all ones and some bit below them is set.
    const std::string cond = fb == 0 ? "frac != 23'd0"
                                     : fmt::format("(&frac[22:{}]) && (frac[{}:0] != {})",
                                                   23 - fb, 22 - fb, vlit(23 - fb, 0));
    b.comment("scale=ceil: one more when elem_max * 2^(floor - (b-2)) < amax");
    b.wire("frac", 23, "(fe != 8'd0) ? fm : fm << (5'd23 - lead)", "fraction of the significand");
    b.wire("above", 1, cond);
    b.wire("chosen_log", 9, "floor_log + {8'd0, above}");
    log_expr = "chosen_log";
  }
  b.comment(fmt::format("exponent code = log - (149 - bias), clamped to 0 .. {}", max_code));
  b.wire("code_full", 9, fmt::format("{} - {}", log_expr, vlit(9, lo)));
  b.wire("unused_code_top", 9, "code_full");
  const std::string zero = vlit(p.xw, 0);
  b.lines(fmt::format("assign exp_code = nonfinite ? {} :\n"
                      "                  (amax == 31'd0) ? {} :\n"
                      "                  ({} < {}) ? {} :\n"
                      "                  ({} > {}) ? {} :\n"
                      "                  code_full[{}:0];",
                      vlit(p.xw, g.nan_code()), zero, log_expr, vlit(9, lo), zero, log_expr,
                      vlit(9, hi), vlit(p.xw, max_code), p.xw - 1));
  return m.str();
}

// gsqhw_quant_gse_elem: one element code given the group's exponent, exactly
// gse_quantize_element (round per the spec, saturate to the element range).
std::string gse_elem_module(const CoreParams& p, const GseParams& g) {
  const int rs0 = 150 - g.frac_bits() - g.bias();  // rs = rs0 + exp_code - fe_eff
  const int elem_max = g.elem_max();
  // range=full allows -2^(b-1) except where that value is not an FP32 number (numerics/gse.cpp
  // effective_elem_min: E = 8, exponent code 254).
  std::string neg_limit;
  if (g.range == GseParams::Range::symmetric) {
    neg_limit = vlit(25, elem_max);
  } else if (g.e == 8) {
    neg_limit = fmt::format("(exp_code == 8'd254) ? {} : {}", vlit(25, elem_max),
                            vlit(25, int64_t{1} << (g.b - 1)));
  } else {
    neg_limit = vlit(25, int64_t{1} << (g.b - 1));
  }
  verilog::Module m("gsqhw_quant_gse_elem");
  m.preamble = file_header(p.design, "gsqhw_quant_gse_elem",
                           "GSE element code of one FP32 value in a group with a given exponent "
                           "(golden gse_quantize_element)");
  m.ports({in("x", 32), in("exp_code", p.xw).note("the group's exponent code"),
           out("code", p.cw).note("b-bit two's complement")});
  Block& b = m.body;
  b.wire("sign", 1, "x[31]");
  b.wire("fe", 8, "x[30:23]");
  b.wire("fe_eff", 8, "(fe == 8'd0) ? 8'd1 : fe");
  b.wire("sig", 24, "{fe != 8'd0, x[22:0]}");
  b.comment(fmt::format("x / quantum = sig * 2^-rs, rs = {} + exp_code - fe_eff", rs0));
  b.wire("shift_base", 10, fmt::format("{} + {}", vlit(10, rs0), verilog::cat({vlit(10 - p.xw, 0), "exp_code"})));
  b.wire("too_big", 1, "shift_base <= {2'b00, fe_eff}", "rs <= 0: at least 2^23, saturates");
  b.wire("rs_full", 10, "shift_base - {2'b00, fe_eff}");
  b.wire("rs", 5, "(rs_full > 10'd25) ? 5'd25 : rs_full[4:0]");
  b.wire("kept", 24, "sig >> rs");
  rounding_wires(b, g.round);
  b.wire("rounded", 25, "{1'b0, kept} + {24'd0, inc}");
  b.comment(fmt::format("saturate to the element range: elem_max = {}, the negative limit per range=",
                        elem_max));
  b.wire("limit", 25, fmt::format("sign ? {} : {}", neg_limit, vlit(25, elem_max)));
  b.wire("magnitude", 25, "(too_big && sig != 24'd0) ? limit : (rounded > limit) ? limit : rounded");
  b.wire("unused_magnitude_top", 25, "magnitude");
  b.wire("mag_code", p.cw, fmt::format("magnitude[{}:0]", p.cw - 1));
  b.lines(fmt::format("assign code = (exp_code == {}) ? {} :  // NaN group: elements are 0\n"
                      "              sign ? ~mag_code + {} : mag_code;",
                      vlit(p.xw, g.nan_code()), vlit(p.cw, 0), vlit(p.cw, 1)));
  return m.str();
}

// gsqhw_quantizer's state machine for groups: fill one buffer, emit the other.
void gse_group_buffers(Block& b, const CoreParams& p, const GseParams& g) {
  const int giw = p.log2g;
  const std::string zero_g = vlit(giw, 0), one_g = vlit(giw, 1);
  const std::string zero_s = vlit(p.sw, 0), one_s = vlit(p.sw, 1);
  b.localparam("G", std::to_string(g.g));
  b.blank();
  b.reg_range("group_words [0:2*G-1]", "[31:0]", "buffer b, slot s at {b, s}");
  b.reg("full", 2, "buffer b holds a complete group not yet emitted");
  b.reg("wsel", 1, "the buffer being filled");
  b.reg("rsel", 1, "the buffer being emitted");
  b.reg("fill", giw, "next free slot of the buffer being filled");
  b.reg("emit", giw, "element being emitted");
  b.reg("last_slot0", giw, "each buffer's last element");
  b.reg("last_slot1", giw);
  b.reg("col", p.sw, "position of the next word in its row");
  b.reg("amax0", 31, "largest magnitude per buffer (FP32 magnitudes order as integers)");
  b.reg("amax1", 31);
  b.reg("nonfinite0", 1, "a NaN or an Inf was seen: a NaN group");
  b.reg("nonfinite1", 1);
  b.blank();
  b.wire("filling_full", 1, "wsel ? full[1] : full[0]");
  b.wire("emitting", 1, "rsel ? full[1] : full[0]");
  b.wire("take", 1, "in_valid && !filling_full");
  b.wire("row_end", 1, "col == row_len - " + one_s);
  b.wire("group_end", 1, fmt::format("fill == {} || row_end", vlit(giw, g.g - 1)));
  b.wire("emit_end", 1, "emit == (rsel ? last_slot1 : last_slot0)");
  b.wire("larger", 1, "in_data[30:0] > (wsel ? amax1 : amax0)");
  b.wire("special", 1, "in_data[30:23] == 8'hff");
  b.assign("in_ready", "!filling_full");
  b.blank();
  b.comment("A buffer is only filled while not full and only emitted while full, so the fill and the\n"
            "emit side never touch the same buffer's state in one cycle.");
  Block& clocked = b.always_ff();
  Block& reset = clocked.if_("rst");
  for (const char* line : {"full <= 2'b00;", "wsel <= 1'b0;", "rsel <= 1'b0;"}) reset.line(line);
  for (const char* r : {"fill", "emit", "last_slot0", "last_slot1"})
    reset.line(fmt::format("{} <= {};", r, zero_g));
  reset.line(fmt::format("col <= {};", zero_s));
  for (const char* line : {"amax0 <= 31'd0;", "amax1 <= 31'd0;", "nonfinite0 <= 1'b0;",
                           "nonfinite1 <= 1'b0;"})
    reset.line(line);
  Block& run = clocked.else_();
  Block& take = run.if_("take");
  take.line(fmt::format("col <= row_end ? {} : col + {};", zero_s, one_s));
  for (int buffer : {1, 0}) {  // the search for the largest magnitude and any NaN or Inf
    Block& side = buffer == 1 ? take.if_("wsel") : take.else_();
    side.line(fmt::format("if (larger) amax{} <= in_data[30:0];", buffer));
    side.line(fmt::format("if (special) nonfinite{} <= 1'b1;", buffer));
  }
  Block& ends = take.if_("group_end");
  for (int buffer : {1, 0}) {
    Block& side = buffer == 1 ? ends.if_("wsel") : ends.else_();
    side.line(fmt::format("full[{}] <= 1'b1;", buffer));
    side.line(fmt::format("last_slot{} <= fill;", buffer));
  }
  ends.line("wsel <= !wsel;");
  ends.line(fmt::format("fill <= {};", zero_g));
  take.else_().line(fmt::format("fill <= fill + {};", one_g));
  Block& emitting = run.if_("emitting");
  Block& done = emitting.if_("emit_end");
  for (int buffer : {1, 0}) {
    Block& side = buffer == 1 ? done.if_("rsel") : done.else_();
    side.line(fmt::format("full[{}] <= 1'b0;", buffer));
    side.line(fmt::format("amax{} <= 31'd0;", buffer));
    side.line(fmt::format("nonfinite{} <= 1'b0;", buffer));
  }
  done.line("rsel <= !rsel;");
  done.line(fmt::format("emit <= {};", zero_g));
  emitting.else_().line(fmt::format("emit <= emit + {};", one_g));
  b.blank();
  b.always_ff().line("if (take) group_words[{wsel, fill}] <= in_data;");
}

std::string gse_quantizer_module(const CoreParams& p, const GseParams& g) {
  verilog::Module m("gsqhw_quantizer");
  m.preamble = file_header(p.design, "gsqhw_quantizer",
                           "FP32 stream -> GSE element codes and group exponents (two group "
                           "buffers: one fills while the other is emitted)") +
               "// A group ends after G words or at the end of a row (a partial last group). Its words go\n"
               "// into one of two group buffers while the max-abs search runs; once complete, the buffer\n"
               "// emits one code per cycle (the group's exponent beside each) while the other buffer fills.\n"
               "// The input stalls only when the buffer it would fill still emits (a short group behind a\n"
               "// long one).\n";
  m.ports({in("clk"), in("rst"), in("row_len", p.sw).note("K >= 1, held while a tensor streams in"),
           in("in_valid"), out("in_ready"), in("in_data", 32).note("FP32"),
           out("q_valid").note("one code per cycle while emitting, in input order"),
           out("q_code", p.cw), out("q_exp", p.xw).note("exponent code of q_code's group")});
  Block& b = m.body;
  gse_group_buffers(b, p, g);
  b.blank();
  b.wire("exp_code", p.xw);
  b.instance(verilog::Instance("gsqhw_quant_gse_scale", "scale")
                 .pin("amax", "rsel ? amax1 : amax0")
                 .pin("nonfinite", "rsel ? nonfinite1 : nonfinite0")
                 .pin("exp_code", "exp_code"));
  b.instance(verilog::Instance("gsqhw_quant_gse_elem", "element")
                 .pin("x", "group_words[{rsel, emit}]")
                 .pin("exp_code", "exp_code")
                 .pin("code", "q_code"));
  b.assign("q_valid", "emitting");
  b.assign("q_exp", "exp_code");
  return m.str();
}

// gsqhw_quant_mf: FP32 -> minifloat code with RNE, exactly encode_minifloat (numerics/minifloat.cpp).
std::string minifloat_encoder_module(const CoreParams& p, const MinifloatParams& mf,
                                     bool saturate) {
  const int mb = mf.man_bits, eb = mf.exp_bits;
  const int emin127 = 128 - mf.bias;  // smallest normal binade, biased by 127
  const int rs0 = 23 - mb;            // right shift of a normal value's significand
  const uint32_t max_finite =
      mf.specials == MinifloatParams::Specials::ieee
          ? (((1u << eb) - 2) << mb) | ((1u << mb) - 1)
          : (((1u << eb) - 1) << mb) | ((1u << mb) - 2);
  const uint32_t overflow_code = saturate ? max_finite
                                 : mf.has_inf() ? ((1u << eb) - 1) << mb
                                                : mf.nan_code();
  const int top127 = mf.max_exp() + 127;  // largest finite binade, biased by 127
  const std::string top_mantissa_check =
      mf.specials == MinifloatParams::Specials::e4m3_like
          ? fmt::format(" || (e_final == {} && mantissa == {})", vlit(9, top127),
                        vlit(mb, (1 << mb) - 1))
          : "";
  const int cw = p.cw;
  verilog::Module m("gsqhw_quant_mf");
  m.preamble = file_header(p.design, "gsqhw_quant_mf",
                           fmt::format("FP32 -> {} code, round to nearest even, {} (golden "
                                       "encode_minifloat)",
                                       mf.name, saturate ? "saturating" : "overflow to Inf/NaN"));
  m.ports({in("x", 32),
           out("code", cw).note(fmt::format("sign | exponent ({} bits) | mantissa ({} bits)", eb, mb))});
  Block& b = m.body;
  b.wire("sign", 1, "x[31]");
  b.wire("fe", 8, "x[30:23]");
  b.wire("is_nan", 1, "fe == 8'hff && x[22:0] != 23'd0");
  b.wire("is_inf", 1, "fe == 8'hff && x[22:0] == 23'd0");
  b.wire("fe_eff", 8, "(fe == 8'd0) ? 8'd1 : fe");
  b.wire("sig", 24, "{fe != 8'd0, x[22:0]}");
  b.comment("the target's binade (biased by 127): x's own, or the smallest normal one (subnormals)");
  b.wire("e127", 8, fmt::format("(fe_eff > {0}) ? fe_eff : {0}", vlit(8, emin127)));
  b.wire("below_min", 8, "e127 - fe_eff");
  b.wire("rs", 5, fmt::format("(below_min > {}) ? 5'd25 : {} + below_min[4:0]", vlit(8, 25 - rs0),
                              vlit(5, rs0)));
  b.wire("kept", 24, "sig >> rs", fmt::format("below 2^{}", mb + 1));
  b.wire("unused_kept_top", 24, "kept");
  rounding_wires(b, GseParams::Round::rne);
  b.wire("r", mb + 2, fmt::format("kept[{}:0] + {}", mb + 1, verilog::cat({vlit(mb + 1, 0), "inc"})));
  b.comment("rounding up to 2^(mb+1) moves into the next binade");
  b.wire("carry", 1, fmt::format("r[{}]", mb + 1));
  b.wire("normal", 1, fmt::format("carry || r[{}]", mb));
  b.wire("e_final", 9, "{1'b0, e127} + {8'd0, carry}");
  b.wire("mantissa", mb, fmt::format("carry ? {} : r[{}:0]", vlit(mb, 0), mb - 1));
  b.wire("overflow", 1,
         fmt::format("normal && (e_final > {}{})", vlit(9, top127), top_mantissa_check));
  b.wire("field_full", 9, fmt::format("e_final - {}", vlit(9, 127 - mf.bias)),
         "exponent field: e - 127 + bias");
  b.wire("unused_field_top", 9, "field_full");
  b.lines(fmt::format("assign code = is_nan ? {{sign, {}}} :\n"
                      "              (is_inf || overflow) ? {{sign, {}}} :\n"
                      "              normal ? {{sign, field_full[{}:0], mantissa}} :\n"
                      "              {{sign, {}, r[{}:0]}};  // subnormal or zero",
                      vlit(cw - 1, mf.nan_code()), vlit(cw - 1, overflow_code), eb - 1,
                      vlit(eb, 0), mb - 1));
  return m.str();
}

std::string minifloat_quantizer_module(const CoreParams& p) {
  verilog::Module m("gsqhw_quantizer");
  m.preamble = file_header(p.design, "gsqhw_quantizer",
                           "FP32 stream -> element codes, one per cycle (no group state)");
  m.ports({in("clk"), in("rst"), in("row_len", p.sw).note("unused: minifloat elements have no groups"),
           in("in_valid"), out("in_ready"), in("in_data", 32).note("FP32"),
           out("q_valid").note("the code of the word taken this cycle"), out("q_code", p.cw)});
  Block& b = m.body;
  b.wire("unused_inputs", 1, "clk | rst | (|row_len)");
  b.assign("in_ready", "1'b1");
  b.assign("q_valid", "in_valid");
  b.instance(verilog::Instance("gsqhw_quant_mf", "encoder").pin("x", "in_data").pin("code", "q_code"));
  return m.str();
}

}  // namespace

std::vector<VerilogFile> emit_quantizer_files(const CoreParams& p) {
  if (p.groups) {
    GseParams g = GseParams::parse(p.design.format);
    return {{"gsqhw_quant_gse_scale.v", gse_scale_module(p, g)},
            {"gsqhw_quant_gse_elem.v", gse_elem_module(p, g)},
            {"gsqhw_quantizer.v", gse_quantizer_module(p, g)}};
  }
  const MinifloatOperand mf = parse_format(p.design.format)->minifloat_operand();
  if (!mf.element->has_nan())
    throw UsageError(fmt::format(
        "format {}: the core's FP32 quantizer is built for minifloats with a NaN code (fp8, bf16, "
        "fp16); {} has none, so its cores are not generated (PEs and arrays are)",
        p.design.format, mf.element->name));
  return {{"gsqhw_quant_mf.v", minifloat_encoder_module(p, *mf.element, mf.saturate)},
          {"gsqhw_quantizer.v", minifloat_quantizer_module(p)}};
}

}  // namespace gsqhw::gen
