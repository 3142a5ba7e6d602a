// PE emitters: one product module per format family, one addend/adder pair per accumulator
// kind, and the PE that strings them together with its pipeline registers.
//
// PE datapath, in order (a "cut" is an optional pipeline register stage; gen/pipeline.h says
// which cuts a pipeline depth places):
//
//   product   exact product of the two element codes (format specific)
//   [cut 1]
//   group     GSE only: exact integer group sum; once per group (at in_group_last) it hands
//             the sum and the group's exponent code e_a + e_b to the stages below
//   [cut 2]   (GSE: free, the group-sum register itself is the stage register)
//   prepare   the addend: fixed -> floor(value * 2^(shift)) saturated to W bits;
//             fp32 -> sign, normalised significand and exponent of its leading bit
//   [cut 3]
//   accumulate  the accumulator register and its loop (saturating add / one RNE fp32 add)
//
// For GSE the product and group stages run every step while prepare and accumulate work once
// per group: they are the per-group exponent/alignment hardware of the format.
#include <fmt/format.h>

#include <stdexcept>

#include "gen/emit.h"
#include "gen/pipeline.h"
#include "gen/verilog_text.h"

namespace gsqhw::gen {
namespace {

bool is_fixed(const PeSpec& pe) { return pe.acc.kind == AccumulatorSpec::Kind::fixed; }
bool has_inf(const PeSpec& pe) {
  return pe.format.family == OperandFamily::minifloat && pe.format.mf_ieee_specials;
}
// Integer families hand a two's-complement value to the prepare stage; minifloats a sign and
// a magnitude.
bool twos_complement_value(const PeSpec& pe) {
  return pe.format.family != OperandFamily::minifloat;
}
// Width of the value the prepare stage receives.
int value_width(const PeSpec& pe) {
  switch (pe.format.family) {
    case OperandFamily::gse: return pe.group_sum_width();
    case OperandFamily::integer: return pe.product_width();
    case OperandFamily::minifloat: return pe.product_width();  // unsigned magnitude
  }
  return 0;
}
}  // namespace

int fp32_mant_width(const PeSpec& pe) { return std::max(24, value_width(pe)); }

namespace {

std::string all_ones(int width) { return fmt::format("{{{}{{1'b1}}}}", width); }
std::string max_signed(int width) { return fmt::format("{{1'b0, {{{}{{1'b1}}}}}}", width - 1); }
std::string min_signed(int width) { return fmt::format("{{1'b1, {{{}{{1'b0}}}}}}", width - 1); }
std::string zero_extend(const std::string& signal, int from, int to) {
  if (to == from) return signal;
  return fmt::format("{{{}'d0, {}}}", to - from, signal);
}

// ---------------------------------------------------------------------------------------
// Product modules

std::string integer_product_module(const DesignPoint& d, const PeSpec& pe) {
  int cw = pe.format.code_bits;
  std::string purpose =
      pe.format.family == OperandFamily::gse
          ? fmt::format("exact product of two GSE-INT element codes ({}-bit two's complement)", cw)
          : fmt::format("exact product of two INT{} codes (two's complement)", cw);
  return file_header(d, "gsqhw_product", purpose) + fill(R"(module gsqhw_product (
  input  wire signed [${cw1}:0] a,
  input  wire signed [${cw1}:0] b,
  output wire signed [${pw1}:0] product  // exact: ${pw} bits hold every product
);
  assign product = a * b;
endmodule
)",
                                                         {{"cw1", std::to_string(cw - 1)},
                                                          {"pw", std::to_string(2 * cw)},
                                                          {"pw1", std::to_string(2 * cw - 1)}});
}

std::string minifloat_product_module(const DesignPoint& d, const PeSpec& pe) {
  const auto& f = pe.format;
  int n = f.code_bits, eb = f.mf_exp_bits, mb = f.mf_man_bits;
  std::string name = f.variant.empty() ? f.family_name : f.family_name + " " + f.variant;
  std::string text = file_header(
      d, "gsqhw_product",
      fmt::format("exact product of two {} values (sign, {}-bit magnitude, exponent code)", name,
                  2 * mb + 2));
  text += fill(R"(// value(code) = significand * 2^(exponent code - ${bias} - ${mb}); subnormals use exponent code 1
// product value = magnitude * 2^(exp_code - ${off}), exact (no rounding)
module gsqhw_product (
  input  wire [${n1}:0] a,
  input  wire [${n1}:0] b,
  output wire        sign,
  output wire [${mw1}:0] magnitude,
  output wire [${eb}:0] exp_code,
  output wire        is_nan,
${inf_port})
;
  wire [${eb1}:0] a_exp = a[${n2}:${mb}];
  wire [${eb1}:0] b_exp = b[${n2}:${mb}];
  wire [${mb1}:0] a_man = a[${mb1}:0];
  wire [${mb1}:0] b_man = b[${mb1}:0];
  wire a_subnormal = a_exp == ${zero_exp};
  wire b_subnormal = b_exp == ${zero_exp};
  // significands with the hidden bit; subnormals share the exponent of the smallest normal
  wire [${mb}:0] a_sig = {~a_subnormal, a_man};
  wire [${mb}:0] b_sig = {~b_subnormal, b_man};
  wire [${eb1}:0] a_eff = a_subnormal ? ${one_exp} : a_exp;
  wire [${eb1}:0] b_eff = b_subnormal ? ${one_exp} : b_exp;
${specials}
  assign sign = a[${n1}] ^ b[${n1}];
  assign magnitude = a_sig * b_sig;
  assign exp_code = {1'b0, a_eff} + {1'b0, b_eff};
endmodule
)",
               {{"bias", std::to_string(f.mf_bias)},
                {"mb", std::to_string(mb)},
                {"off", std::to_string(2 * f.mf_bias + 2 * mb)},
                {"n1", std::to_string(n - 1)},
                {"n2", std::to_string(n - 2)},
                {"mw1", std::to_string(2 * mb + 1)},
                {"eb", std::to_string(eb)},
                {"eb1", std::to_string(eb - 1)},
                {"mb1", std::to_string(mb - 1)},
                {"zero_exp", vlit(eb, 0)},
                {"one_exp", vlit(eb, 1)},
                {"inf_port", f.mf_ieee_specials ? "  output wire        is_inf\n" : ""},
                {"specials",
                 f.mf_ieee_specials
                     ? fill(R"(  // IEEE specials: all-ones exponent is Inf (mantissa 0) or NaN; Inf x 0 is NaN
  wire a_zero = ~|a[${n2}:0];
  wire b_zero = ~|b[${n2}:0];
  wire a_nan = (&a_exp) & (|a_man);
  wire b_nan = (&b_exp) & (|b_man);
  wire a_inf = (&a_exp) & ~(|a_man);
  wire b_inf = (&b_exp) & ~(|b_man);
  assign is_nan = a_nan | b_nan | (a_inf & b_zero) | (b_inf & a_zero);
  assign is_inf = (a_inf | b_inf) & ~is_nan;)", {{"n2", std::to_string(n - 2)}})
                 : f.mf_has_nan ? std::string(R"(  // E4M3: no infinities; only S.1111.111 is NaN
  wire a_nan = (&a_exp) & (&a_man);
  wire b_nan = (&b_exp) & (&b_man);
  assign is_nan = a_nan | b_nan;)")
                                : std::string(R"(  // no Inf or NaN codes (OCP MX FP6): every code is a finite value
  assign is_nan = 1'b0;)")}});
  // Without IEEE specials there is no is_inf port: drop the dangling comma of the port list.
  if (!f.mf_ieee_specials) {
    auto pos = text.find("output wire        is_nan,\n");
    text.replace(pos, std::string("output wire        is_nan,\n").size(),
                 "output wire        is_nan\n");
  }
  return text;
}

// ---------------------------------------------------------------------------------------
// Fixed-point accumulator: addend preparation and the saturating adder

std::string addend_fixed_module(const DesignPoint& d, const PeSpec& pe) {
  int vw = twos_complement_value(pe) ? value_width(pe) : value_width(pe) + 1;
  int w = pe.acc.width;
  int uw = pe.exp_code_width();
  int off = pe.value_offset() + pe.acc.frac_bits;  // shift = exp_code + off
  int umax = pe.exp_code_max();
  int ew = vw + w;  // holds value << W without losing bits
  std::string text = file_header(
      d, "gsqhw_addend_fixed",
      fmt::format("addend for the fixed{}.{} accumulator: floor(value * 2^(exp_code + {})), "
                  "saturated to {} bits",
                  w, pe.acc.frac_bits, off, w));
  std::string ports = fmt::format(R"(module gsqhw_addend_fixed (
  input  wire signed [{}:0] value,
{}  output wire signed [{}:0] addend,
  output wire        overflow  // the addend did not fit in {} bits and was saturated
);
)",
                                  vw - 1,
                                  uw > 0 ? fmt::format("  input  wire [{}:0] exp_code,\n", uw - 1)
                                         : "",
                                  w - 1, w);
  text += ports;
  text += fmt::format("  wire signed [{}:0] widened = {{{{{}{{value[{}]}}}}, value}};\n", ew - 1,
                      ew - vw, vw - 1);
  bool can_left = off + umax > 0, can_right = off < 0;
  if (uw == 0) {
    // A static shift: plain wiring.
    if (off >= 0)
      text += fmt::format("  wire signed [{}:0] shifted = widened <<< {};\n", ew - 1,
                          std::min(off, w));
    else
      text += fmt::format("  wire signed [{}:0] shifted = widened >>> {};\n", ew - 1,
                          std::min(-off, vw));
  } else {
    int sw = bits_for_signed_range(std::min(off, 0) - vw - 1, std::max(off + umax, w) + 1);
    int lw = bits_for_unsigned(w), rw = bits_for_unsigned(vw);
    text += "  // Shift amount exp_code + offset. Left shifts beyond W bits and right shifts beyond\n"
            "  // the value's width change nothing more, so the amounts are clamped there.\n";
    text += fmt::format("  wire signed [{}:0] shift = $signed({}) + {};\n", sw - 1,
                        zero_extend("exp_code", uw, sw), vlit(sw, off, true));
    std::string shift_expr = "widened";
    if (can_left) {
      text += fmt::format(
          "  wire [{}:0] left_amount = shift[{}] ? {} : (shift > {}) ? {} : shift[{}:0];\n",
          lw - 1, sw - 1, vlit(lw, 0), vlit(sw, w, true), vlit(lw, w), lw - 1);
      shift_expr = "(" + shift_expr + " <<< left_amount)";
    }
    if (can_right) {
      text += fmt::format("  wire [{}:0] shift_negated = -shift;\n", sw - 1);
      text += fmt::format(
          "  wire [{}:0] right_amount = ~shift[{}] ? {} : (shift_negated > {}) ? {} : "
          "shift_negated[{}:0];\n",
          rw - 1, sw - 1, vlit(rw, 0), vlit(sw, vw), vlit(rw, vw), rw - 1);
      shift_expr = "(" + shift_expr + " >>> right_amount)";
    }
    text += fmt::format("  wire signed [{}:0] shifted = {};\n", ew - 1, shift_expr);
  }
  text += fmt::format(R"(  // the addend fits in {} bits iff bits {}..{} are all equal
  wire fits = (&shifted[{}:{}]) | ~(|shifted[{}:{}]);
  assign overflow = ~fits;
  assign addend = fits ? shifted[{}:0] : shifted[{}] ? {} : {};
endmodule
)",
                      w, ew - 1, w - 1, ew - 1, w - 1, ew - 1, w - 1, w - 1, ew - 1,
                      min_signed(w), max_signed(w));
  return text;
}

std::string acc_fixed_module(const DesignPoint& d, const PeSpec& pe) {
  int w = pe.acc.width;
  return file_header(d, "gsqhw_acc_fixed",
                     fmt::format("saturating {}-bit two's complement adder of the accumulator", w)) +
         fill(R"(module gsqhw_acc_fixed (
  input  wire signed [${w1}:0] acc,
  input  wire signed [${w1}:0] addend,
  output wire signed [${w1}:0] sum,
  output wire        overflow  // the exact sum did not fit: saturated
);
  wire signed [${w}:0] total = {acc[${w1}], acc} + {addend[${w1}], addend};
  assign overflow = total[${w}] ^ total[${w1}];
  assign sum = overflow ? (total[${w}] ? ${min} : ${max}) : total[${w1}:0];
endmodule
)",
              {{"w", std::to_string(w)},
               {"w1", std::to_string(w - 1)},
               {"min", min_signed(w)},
               {"max", max_signed(w)}});
}

// ---------------------------------------------------------------------------------------
// fp32 accumulator: addend normalisation and the one-rounding adder

std::string addend_fp32_module(const DesignPoint& d, const PeSpec& pe) {
  int vw = value_width(pe);
  int mw = vw;  // magnitude width (two's complement values: |min| still fits vw bits)
  int p = fp32_mant_width(pe);
  int uw = pe.exp_code_width();
  int iw = bits_for_unsigned(mw - 1);
  int off = pe.value_offset();
  std::string text = file_header(
      d, "gsqhw_addend_fp32",
      "addend for the fp32 accumulator: sign, significand normalised to its leading one, and "
      "the exponent of that leading bit");
  std::string in_ports;
  if (twos_complement_value(pe))
    in_ports += fmt::format("  input  wire signed [{}:0] value,\n", vw - 1);
  else
    in_ports += fmt::format("  input  wire        value_sign,\n  input  wire [{}:0] magnitude,\n",
                            mw - 1);
  if (uw > 0) in_ports += fmt::format("  input  wire [{}:0] exp_code,\n", uw - 1);
  text += fmt::format(R"(// addend value = (-1)^sign * mant * 2^(top - {}), mant = 0 for a zero addend
module gsqhw_addend_fp32 (
{}  output wire        sign,
  output wire [{}:0] mant,   // bit {} set unless the addend is zero
  output wire signed [{}:0] top  // exponent of mant's leading bit
);
)",
                      p - 1, in_ports, p - 1, p - 1, kTopWidth - 1);
  if (twos_complement_value(pe)) {
    text += fmt::format("  assign sign = value[{}];\n", vw - 1);
    text += fmt::format("  wire [{}:0] magnitude = sign ? -value : value;\n", mw - 1);
  } else {
    text += "  assign sign = value_sign;\n";
  }
  text += fmt::format("  wire [{}:0] msb;  // index of the leading one\n", iw - 1);
  text += msb_index_assign("msb", "magnitude", mw, iw);
  text += fmt::format("  wire [{}:0] normalised = magnitude << ({} - msb);\n", mw - 1,
                      vlit(iw, mw - 1));
  if (p > mw)
    text += fmt::format("  assign mant = {{normalised, {}'d0}};\n", p - mw);
  else
    text += "  assign mant = normalised;\n";
  std::string top = fmt::format("$signed({})", zero_extend("msb", iw, kTopWidth));
  if (uw > 0) top += fmt::format(" + $signed({})", zero_extend("exp_code", uw, kTopWidth));
  if (off != 0) top += " + " + vlit(kTopWidth, off, true);
  text += fmt::format("  assign top = {};\nendmodule\n", top);
  return text;
}

std::string acc_fp32_module(const DesignPoint& d, const PeSpec& pe) {
  int p = fp32_mant_width(pe);
  int aw = p + 3;  // significand, guard, round, sticky
  int zw = aw + 1;  // plus a carry
  int tw = kTopWidth;
  int dw = bits_for_unsigned(aw);
  int zi = bits_for_unsigned(zw - 1);
  int nw = bits_for_unsigned(zw);
  std::string specials =
      has_inf(pe)
          ? fmt::format(R"(  wire nan = acc_is_nan | add_nan | (acc_is_inf & add_inf & (acc_sign ^ add_sign));
  assign sum = nan ? 32'h{:08x} : acc_is_inf ? acc : add_inf ? {{add_sign, 8'hff, 23'd0}} : finite_sum;
)",
                        kFp32QuietNaN)
          : fmt::format(R"(  wire nan = acc_is_nan | add_nan;
  assign sum = nan ? 32'h{:08x} : acc_is_inf ? acc : finite_sum;
)",
                        kFp32QuietNaN);
  std::string text = file_header(
      d, "gsqhw_acc_fp32",
      "IEEE binary32 accumulate: RNE(acc + addend) with ONE rounding of the exact sum; "
      "subnormals, infinities and NaN per IEEE 754");
  text += fill(R"(// The addend is exact (a group sum or an exact product), given normalised by gsqhw_addend_fp32.
// Classic single-path adder: order the operands by magnitude, align the smaller one with a
// guard, a round and a sticky bit (enough for one correct rounding), add or subtract,
// normalise, then round to nearest even at bit 23 below the leading one, or at 2^-149 for
// subnormal results. The rounding increment may carry into the exponent field, which is
// exactly IEEE's behaviour (largest subnormal -> smallest normal, largest finite -> Inf).
module gsqhw_acc_fp32 (
  input  wire [31:0] acc,
  input  wire        add_sign,
  input  wire [${p1}:0] add_mant,
  input  wire signed [${tw1}:0] add_top,
  input  wire        add_nan,
${inf_port}  output wire [31:0] sum
);
  localparam signed [${tw1}:0] TOP_OF_ZERO = ${top_min};  // below every real exponent

  // --- the accumulator as sign, normalised significand and exponent of its leading bit
  wire       acc_sign = acc[31];
  wire [7:0] acc_field = acc[30:23];
  wire [22:0] acc_frac = acc[22:0];
  wire acc_is_nan = (&acc_field) & (|acc_frac);
  wire acc_is_inf = (&acc_field) & ~(|acc_frac);
  wire acc_normal = |acc_field;
  wire acc_zero = ~acc_normal & ~(|acc_frac);
  wire [4:0] frac_msb;  // subnormal accumulator: its leading one
${frac_msb}  wire [23:0] acc_sig = acc_normal ? {1'b1, acc_frac} : {1'b0, acc_frac} << (5'd23 - frac_msb);
  wire signed [${tw1}:0] acc_top = acc_zero ? TOP_OF_ZERO :
      acc_normal ? $signed(${acc_field_ext}) - ${c127} : $signed(${frac_msb_ext}) - ${c149};
  wire [${p1}:0] acc_mant = ${acc_mant};
  wire add_zero = ~add_mant[${p1}];
  wire signed [${tw1}:0] add_key = add_zero ? TOP_OF_ZERO : add_top;

  // --- order by magnitude: "big" >= "small"
  wire acc_bigger = (acc_top > add_key) || (acc_top == add_key && acc_mant >= add_mant);
  wire big_sign = acc_bigger ? acc_sign : add_sign;
  wire small_sign = acc_bigger ? add_sign : acc_sign;
  wire [${p1}:0] big_mant = acc_bigger ? acc_mant : add_mant;
  wire [${p1}:0] small_mant = acc_bigger ? add_mant : acc_mant;
  wire signed [${tw1}:0] big_top = acc_bigger ? acc_top : add_key;
  wire signed [${tw1}:0] small_top = acc_bigger ? add_key : acc_top;
  wire [${tw1}:0] distance = big_top - small_top;

  // --- align the smaller significand; bits shifted out collapse into the sticky bit 0
  wire [${aw1}:0] big_ext = {big_mant, 3'b000};
  wire [${aw1}:0] small_ext = {small_mant, 3'b000};
  wire far = distance >= ${aw_t};
  wire [${dw1}:0] shift = distance[${dw1}:0];
  wire [${aw1}:0] small_shifted = far ? ${aw_zero} : small_ext >> shift;
  wire lost = far ? |small_mant : |(small_ext & ~(${aw_ones} << shift));
  wire [${aw1}:0] small_aligned = {small_shifted[${aw1}:1], small_shifted[0] | lost};

  // --- add or subtract (|big| >= |small|, so the difference is not negative)
  wire subtract = big_sign ^ small_sign;
  wire [${zw1}:0] total = subtract ? {1'b0, big_ext} - {1'b0, small_aligned}
                                 : {1'b0, big_ext} + {1'b0, small_aligned};
  wire total_zero = ~|total;
  wire [${zi1}:0] total_msb;
${total_msb}  // leading one moved to bit ${zw1}; the exponent of the result's leading bit:
  wire [${zw1}:0] normalised = total << (${zw1_lit} - total_msb);
  wire signed [${tw1}:0] result_top = big_top + $signed(${total_msb_ext}) - ${aw1_t};

  // --- below 2^-126 the significand keeps fewer bits: shift right to the 2^-149 grid
  wire subnormal = result_top < ${m126};
  wire [${tw1}:0] denormalise = ${m126} - result_top;
  wire denorm_far = subnormal & (denormalise >= ${zw_t});
  wire [${nw1}:0] denorm_shift = subnormal ? denormalise[${nw1}:0] : ${nw_zero};
  wire [${zw1}:0] aligned = denorm_far ? ${zw_zero} : normalised >> denorm_shift;
  wire denorm_lost = denorm_far ? |normalised : |(normalised & ~(${zw_ones} << denorm_shift));

  // --- round to nearest, ties to even, at bit 23 below bit ${zw1}
  // (the leading bit itself is the implicit bit: it survives exactly for normal results)
  wire [22:0] kept = aligned[${zw2}:${zw24}];
  wire guard = aligned[${zw25}];
  wire sticky = (|aligned[${zw26}:0]) | denorm_lost;
  wire round_up = guard & (sticky | kept[0]);
  wire too_big = ~subnormal & (result_top > ${c127});
  // for results in the normal range, result_top + 127 lies in 1..254
  wire [7:0] field = aligned[${zw1}] ? result_top[7:0] + 8'd127 : 8'd0;
  wire [30:0] rounded = {field, kept} + {30'd0, round_up};
  wire result_sign = total_zero ? (big_sign & small_sign) : big_sign;
  wire [31:0] finite_sum = total_zero ? {result_sign, 31'd0}
                         : too_big ? {result_sign, 8'hff, 23'd0} : {result_sign, rounded};

  // --- specials
${specials}endmodule
)",
               {{"p1", std::to_string(p - 1)},
                {"tw1", std::to_string(tw - 1)},
                {"inf_port", has_inf(pe) ? "  input  wire        add_inf,\n" : ""},
                {"top_min", vlit(tw, -(int64_t{1} << (tw - 1)), true)},
                {"frac_msb", msb_index_assign("frac_msb", "acc_frac", 23, 5)},
                {"acc_field_ext", zero_extend("acc_field", 8, tw)},
                {"frac_msb_ext", zero_extend("frac_msb", 5, tw)},
                {"c127", vlit(tw, 127, true)},
                {"c149", vlit(tw, 149, true)},
                {"m126", vlit(tw, -126, true)},
                {"acc_mant", p > 24 ? fmt::format("{{acc_sig, {}'d0}}", p - 24) : "acc_sig"},
                {"aw1", std::to_string(aw - 1)},
                {"aw_t", vlit(tw, aw)},
                {"aw1_t", vlit(tw, aw - 1, true)},
                {"dw1", std::to_string(dw - 1)},
                {"aw_zero", vlit(aw, 0)},
                {"aw_ones", all_ones(aw)},
                {"zw1", std::to_string(zw - 1)},
                {"zw1_lit", vlit(zi, zw - 1)},
                {"zi1", std::to_string(zi - 1)},
                {"total_msb", msb_index_assign("total_msb", "total", zw, zi)},
                {"total_msb_ext", zero_extend("total_msb", zi, tw)},
                {"zw_t", vlit(tw, zw)},
                {"nw1", std::to_string(nw - 1)},
                {"nw_zero", vlit(nw, 0)},
                {"zw_zero", vlit(zw, 0)},
                {"zw_ones", all_ones(zw)},
                {"zw24", std::to_string(zw - 24)},
                {"zw2", std::to_string(zw - 2)},
                {"zw25", std::to_string(zw - 25)},
                {"zw26", std::to_string(zw - 26)},
                {"specials", specials}});
  return text;
}

}  // namespace

// ---------------------------------------------------------------------------------------
// The PE

namespace {

std::string pe_module(const DesignPoint& d, const PeSpec& pe) {
  const auto& f = pe.format;
  bool gse = f.family == OperandFamily::gse;
  int uw = pe.exp_code_width();
  int pw = pe.product_width();
  const PipelinePlan plan = pipeline_plan(d, pe);
  const bool cut1 = plan.product_cut, cut2 = plan.prepare_cut, cut3 = plan.accumulate_cut;

  verilog::Module m("gsqhw_pe");
  m.preamble =
      file_header(d, "gsqhw_pe",
                  fmt::format("one processing element (output-stationary MAC, {} accumulator, "
                              "{} pipeline stage{}); ports of docs/array-protocol.md",
                              pe.acc.str(), pe.pipeline, pe.pipeline > 1 ? "s" : "")) +
      fmt::format("// A step presented at the inputs in cycle t is in the accumulator in cycle "
                  "t + {}; the cycle\n// after a tile's in_last step has been accumulated, "
                  "out_valid is high for one cycle and\n// out_acc/out_flags hold the tile's "
                  "result (the next tile may already be streaming in).\n",
                  pe.pipeline);
  m.ports(with_regs(os_array_ports(pe, 1, 1), {"out_valid", "out_acc", "out_flags"}));
  verilog::Block& body = m.body;
  body.assign("out_row", "1'b0", "a PE is a 1x1 array: its only row");

  // --- product stage
  std::vector<Signal> p_signals = {{"valid", 1, false, true},
                                   {"first", 1, false, true},
                                   {"last", 1, false, true}};
  body.lines("\n  // --- product: exact, format specific\n");
  body.lines("  wire p_valid = in_valid;\n  wire p_first = in_first;\n  wire p_last = in_last;\n");
  if (gse) {
    p_signals.push_back({"group_last", 1, false, true});
    body.lines("  wire p_group_last = in_group_last;\n");
    product_instance(body, pe, "in_a", "in_b", p_signals);
    p_signals.push_back({"exp_code", uw, false, false});
    p_signals.push_back({"group_nan", 1, false, false});
    body.lines("  // the group's scale: exponent codes add (biases are folded into the shift offset);\n"
            "  // an all-ones code marks a NaN group\n");
    body.lines(fmt::format("  wire [{}:0] p_exp_code = {{1'b0, in_a_exp}} + {{1'b0, in_b_exp}};\n",
                        uw - 1));
    body.lines("  wire p_group_nan = (&in_a_exp) | (&in_b_exp);\n");
  } else {
    product_instance(body, pe, "in_a", "in_b", p_signals);
  }
  stage_cut(body, "p", "m", p_signals, cut1,
                    cut1 ? "[cut 1] pipeline register after the product"
                         : "(no register after the product at this pipeline depth)");

  // --- group stage (GSE) -> the addend stream a_*
  std::vector<Signal> a_signals = {{"valid", 1, false, true},
                                   {"first", 1, false, true},
                                   {"last", 1, false, true}};
  if (gse) {
    int sw = pe.group_sum_width();
    a_signals.push_back({"value", sw, true, false});
    a_signals.push_back({"exp_code", uw, false, false});
    a_signals.push_back({"nan", 1, false, false});
    body.lines(fill(R"(
  // --- group: exact integer sum of the group's products (${sw} bits = 2b + log2 G)
  reg  signed [${sw1}:0] group_sum;
  reg         group_open;      // a group has started and not yet ended
  reg         group_is_first;  // the open group began with in_first (first group of a tile)
  wire group_start = m_first | ~group_open;
  wire group_end = m_group_last | m_last;
  wire signed [${sw1}:0] group_sum_next = (group_start ? ${sw_zero} : group_sum) + ${product_ext};
  always @(posedge clk) begin
    if (rst) group_open <= 1'b0;
    else if (m_valid) group_open <= ~group_end;
    if (m_valid) begin
      group_sum <= group_sum_next;
      group_is_first <= group_start ? m_first : group_is_first;
    end
  end
)",
                 {{"sw", std::to_string(sw)},
                  {"sw1", std::to_string(sw - 1)},
                  {"sw_zero", vlit(sw, 0, true)},
                  {"product_ext", sign_extend("m_product", pw, sw)}}));
    if (cut2) {
      body.lines(R"(
  // [cut 2] the group-sum register is this stage's register: the cycle after a group ends it
  // still holds the complete sum while the next group's first product is being added
  reg  g_valid, g_first, g_last;
)");
      body.lines(fmt::format("  reg  [{}:0] g_exp_code;\n  reg  g_nan;\n", uw - 1));
      body.lines(R"(  always @(posedge clk) begin
    g_valid <= rst ? 1'b0 : m_valid & group_end;
    g_first <= rst ? 1'b0 : group_start ? m_first : group_is_first;
    g_last <= rst ? 1'b0 : m_last;
    if (m_valid & group_end) begin
      g_exp_code <= m_exp_code;
      g_nan <= m_group_nan;
    end
  end
  wire a_valid = g_valid;
  wire a_first = g_first;
  wire a_last = g_last;
)");
      body.lines(fmt::format("  wire signed [{}:0] a_value = group_sum;\n", sw - 1));
      body.lines(fmt::format("  wire [{}:0] a_exp_code = g_exp_code;\n  wire a_nan = g_nan;\n", uw - 1));
    } else {
      body.lines("  // once per group: the finished sum and the group's exponent code go on\n");
      body.lines("  wire a_valid = m_valid & group_end;\n");
      body.lines("  wire a_first = group_start ? m_first : group_is_first;\n");
      body.lines("  wire a_last = m_last;\n");
      body.lines(fmt::format("  wire signed [{}:0] a_value = group_sum_next;\n", sw - 1));
      body.lines(fmt::format("  wire [{}:0] a_exp_code = m_exp_code;\n", uw - 1));
      body.lines("  wire a_nan = m_group_nan;\n");
    }
  } else {
    std::vector<Signal> data(p_signals.begin() + 3, p_signals.end());
    for (auto& s : data) a_signals.push_back(s);
    stage_cut(body, "m", "a", a_signals, cut2,
                      cut2 ? "[cut 2] pipeline register (before the addend is prepared)"
                           : "(no second pipeline register at this pipeline depth)");
  }

  // --- prepare the addend -> q_*
  std::vector<Signal> q_signals = {{"valid", 1, false, true},
                                   {"first", 1, false, true},
                                   {"last", 1, false, true}};
  body.lines("\n  // --- prepare the addend for the accumulator\n");
  body.lines("  wire q_valid = a_valid;\n  wire q_first = a_first;\n  wire q_last = a_last;\n");
  prepare_addend_stage(body, pe, "a", q_signals);
  stage_cut(body, "q", "r", q_signals, cut3,
                    cut3 ? "[cut 3] pipeline register between the prepared addend and the accumulator"
                         : "(no register before the accumulator at this pipeline depth)");

  // --- accumulate
  body.lines("\n  // --- accumulate: a tile's first step starts from zero with clear flags\n");
  accumulate_stage(body, pe, {.restart = "r_first",
                                .acc_in = "out_acc",
                                .flags_in = "out_flags",
                                .acc_out = "out_acc",
                                .tile_end_valid = true});
  return m.str();
}

}  // namespace

std::vector<VerilogFile> emit_leaf_files(const DesignPoint& design, const PeSpec& pe) {
  std::vector<VerilogFile> files;
  files.emplace_back("gsqhw_product.v", pe.format.family == OperandFamily::minifloat
                                            ? minifloat_product_module(design, pe)
                                            : integer_product_module(design, pe));
  if (is_fixed(pe)) {
    files.emplace_back("gsqhw_addend_fixed.v", addend_fixed_module(design, pe));
    files.emplace_back("gsqhw_acc_fixed.v", acc_fixed_module(design, pe));
  } else {
    files.emplace_back("gsqhw_addend_fp32.v", addend_fp32_module(design, pe));
    files.emplace_back("gsqhw_acc_fp32.v", acc_fp32_module(design, pe));
  }
  return files;
}

std::vector<VerilogFile> emit_pe_files(const DesignPoint& design, const PeSpec& pe) {
  std::vector<VerilogFile> files = emit_leaf_files(design, pe);
  files.emplace_back("gsqhw_pe.v", pe_module(design, pe));
  return files;
}

}  // namespace gsqhw::gen
