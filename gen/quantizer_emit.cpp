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

// The round-up decision of a magnitude rounding, per rounding mode (GSE's round= or RNE).
// Declares `inc` from `kept`, the bits of sig at and below the rounding position (rs >= 1).
std::string rounding_wires(GseParams::Round mode) {
  const std::string round_bit =
      "  wire        round_bit = (sig & (24'd1 << (rs - 5'd1))) != 24'd0;  // first bit shifted out\n";
  const std::string sticky =
      "  wire        sticky = (sig & ~({24{1'b1}} << (rs - 5'd1))) != 24'd0;  // any bit below it\n";
  switch (mode) {
    case GseParams::Round::rne:
      return round_bit + sticky +
             "  wire        inc = round_bit && (sticky || kept[0]);  // to nearest, ties to even\n";
    case GseParams::Round::rna:
      return round_bit + "  wire        inc = round_bit;  // to nearest, ties away from zero\n";
    case GseParams::Round::trunc:
      return "  wire        inc = 1'b0;  // toward zero: the magnitude is truncated\n";
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
  std::string ceil_part;
  std::string log_expr = "floor_log";
  if (g.scale == GseParams::Scale::ceil) {
    // amax > elem_max * 2^(floor - (b-2)) <=> the fraction f of amax's significand exceeds
    // 1 - 2^-(b-2): its top b-2 bits are all ones and some bit below them is set.
    std::string cond = fb == 0 ? "frac != 23'd0"
                               : fmt::format("(&frac[22:{}]) && (frac[{}:0] != {})", 23 - fb,
                                             22 - fb, vlit(23 - fb, 0));
    ceil_part = fill(R"(  // scale=ceil: one more when elem_max * 2^(floor - (b-2)) < amax
  wire [22:0] frac = (fe != 8'd0) ? fm : fm << (5'd23 - lead);  // fraction of the significand
  wire        above = ${cond};
  wire [8:0]  chosen_log = floor_log + {8'd0, above};
)",
                     {{"cond", cond}});
    log_expr = "chosen_log";
  }
  return file_header(p.design, "gsqhw_quant_gse_scale",
                     "GSE shared exponent of a group from its largest magnitude (golden "
                     "gse_choose_exponent)") +
         fill(R"(module gsqhw_quant_gse_scale (
  input  wire [30:0]       amax,       // |x| bits of the group's largest magnitude
  input  wire              nonfinite,  // the group holds a NaN or an Inf
  output wire [${xw1}:0] exp_code     // biased; all ones = NaN group
);
  wire [7:0]  fe = amax[30:23];
  wire [22:0] fm = amax[22:0];
  wire [4:0]  lead;  // FP32 subnormal: index of the leading one of the mantissa
${lead_assign}  wire        unused_fm_bit0 = fm[0];  // the leading one's index never reads it
  // floor(log2 amax) + 149 (ilogb, subnormals included)
  wire [8:0]  floor_log = (fe != 8'd0) ? {1'b0, fe} + 9'd22 : {4'd0, lead};
${ceil_part}  // exponent code = log - (149 - bias), clamped to 0 .. ${max_code}
  wire [8:0]  code_full = ${log_expr} - ${lo};
  wire [8:0]  unused_code_top = code_full;
  assign exp_code = nonfinite ? ${nan_code} :
                    (amax == 31'd0) ? ${zero} :
                    (${log_expr} < ${lo}) ? ${zero} :
                    (${log_expr} > ${hi}) ? ${max_code_lit} :
                    code_full[${xw1}:0];
endmodule
)",
              {{"xw1", std::to_string(p.xw - 1)},
               {"lead_assign", msb_index_assign("lead", "fm", 23, 5)},
               {"ceil_part", ceil_part},
               {"max_code", std::to_string(max_code)},
               {"log_expr", log_expr},
               {"lo", vlit(9, lo)},
               {"hi", vlit(9, hi)},
               {"nan_code", vlit(p.xw, g.nan_code())},
               {"zero", vlit(p.xw, 0)},
               {"max_code_lit", vlit(p.xw, max_code)}});
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
  return file_header(p.design, "gsqhw_quant_gse_elem",
                     "GSE element code of one FP32 value in a group with a given exponent "
                     "(golden gse_quantize_element)") +
         fill(R"(module gsqhw_quant_gse_elem (
  input  wire [31:0]       x,
  input  wire [${xw1}:0] exp_code,  // the group's exponent code
  output wire [${cw1}:0] code      // b-bit two's complement
);
  wire        sign = x[31];
  wire [7:0]  fe = x[30:23];
  wire [7:0]  fe_eff = (fe == 8'd0) ? 8'd1 : fe;
  wire [23:0] sig = {fe != 8'd0, x[22:0]};
  // x / quantum = sig * 2^-rs, rs = ${rs0} + exp_code - fe_eff
  wire [9:0]  shift_base = ${rs0_lit} + {${pad}, exp_code};
  wire        too_big = shift_base <= {2'b00, fe_eff};  // rs <= 0: at least 2^23, saturates
  wire [9:0]  rs_full = shift_base - {2'b00, fe_eff};
  wire [4:0]  rs = (rs_full > 10'd25) ? 5'd25 : rs_full[4:0];
  wire [23:0] kept = sig >> rs;
${rounding}  wire [24:0] rounded = {1'b0, kept} + {24'd0, inc};
  // saturate to the element range: elem_max = ${elem_max}, the negative limit per range=
  wire [24:0] limit = sign ? ${neg_limit} : ${pos_limit};
  wire [24:0] magnitude = (too_big && sig != 24'd0) ? limit : (rounded > limit) ? limit : rounded;
  wire [24:0] unused_magnitude_top = magnitude;
  wire [${cw1}:0] mag_code = magnitude[${cw1}:0];
  assign code = (exp_code == ${nan_code}) ? ${zero_code} :  // NaN group: elements are 0
                sign ? ~mag_code + ${one_code} : mag_code;
endmodule
)",
              {{"xw1", std::to_string(p.xw - 1)},
               {"cw1", std::to_string(p.cw - 1)},
               {"rs0", std::to_string(rs0)},
               {"rs0_lit", vlit(10, rs0)},
               {"pad", vlit(10 - p.xw, 0)},
               {"rounding", rounding_wires(g.round)},
               {"elem_max", std::to_string(elem_max)},
               {"neg_limit", neg_limit},
               {"pos_limit", vlit(25, elem_max)},
               {"nan_code", vlit(p.xw, g.nan_code())},
               {"zero_code", vlit(p.cw, 0)},
               {"one_code", vlit(p.cw, 1)}});
}

std::string gse_quantizer_module(const CoreParams& p, const GseParams& g) {
  const int giw = p.log2g;
  return file_header(p.design, "gsqhw_quantizer",
                     "FP32 stream -> GSE element codes and group exponents (two group buffers: "
                     "one fills while the other is emitted)") +
         fill(R"(// A group ends after G words or at the end of a row (a partial last group). Its words go
// into one of two group buffers while the max-abs search runs; once complete, the buffer
// emits one code per cycle (the group's exponent beside each) while the other buffer fills.
// The input stalls only when the buffer it would fill still emits (a short group behind a
// long one).
module gsqhw_quantizer (
  input  wire              clk,
  input  wire              rst,
  input  wire [${sw1}:0] row_len,   // K >= 1, held while a tensor streams in
  input  wire              in_valid,
  output wire              in_ready,
  input  wire [31:0]       in_data,   // FP32
  output wire              q_valid,   // one code per cycle while emitting, in input order
  output wire [${cw1}:0] q_code,
  output wire [${xw1}:0] q_exp      // exponent code of q_code's group
);
  localparam G = ${g};

  reg  [31:0]      group_words [0:2*G-1];  // buffer b, slot s at {b, s}
  reg  [1:0]       full;         // buffer b holds a complete group not yet emitted
  reg              wsel;         // the buffer being filled
  reg              rsel;         // the buffer being emitted
  reg  [${giw1}:0] fill;         // next free slot of the buffer being filled
  reg  [${giw1}:0] emit;         // element being emitted
  reg  [${giw1}:0] last_slot0, last_slot1;  // each buffer's last element
  reg  [${sw1}:0] col;          // position of the next word in its row
  reg  [30:0]      amax0, amax1; // largest magnitude per buffer (FP32 magnitudes order as integers)
  reg              nonfinite0, nonfinite1;  // a NaN or an Inf was seen: a NaN group

  wire filling_full = wsel ? full[1] : full[0];
  wire emitting = rsel ? full[1] : full[0];
  wire take = in_valid && !filling_full;
  wire row_end = col == row_len - ${one_s};
  wire group_end = fill == ${g_last} || row_end;
  wire emit_end = emit == (rsel ? last_slot1 : last_slot0);
  wire larger = in_data[30:0] > (wsel ? amax1 : amax0);
  wire special = in_data[30:23] == 8'hff;
  assign in_ready = !filling_full;

  // A buffer is only filled while not full and only emitted while full, so the fill and the
  // emit side never touch the same buffer's state in one cycle.
  always @(posedge clk) begin
    if (rst) begin
      full <= 2'b00;
      wsel <= 1'b0;
      rsel <= 1'b0;
      fill <= ${zero_g};
      emit <= ${zero_g};
      last_slot0 <= ${zero_g};
      last_slot1 <= ${zero_g};
      col <= ${zero_s};
      amax0 <= 31'd0;
      amax1 <= 31'd0;
      nonfinite0 <= 1'b0;
      nonfinite1 <= 1'b0;
    end else begin
      if (take) begin
        col <= row_end ? ${zero_s} : col + ${one_s};
        if (wsel) begin
          if (larger) amax1 <= in_data[30:0];
          if (special) nonfinite1 <= 1'b1;
        end else begin
          if (larger) amax0 <= in_data[30:0];
          if (special) nonfinite0 <= 1'b1;
        end
        if (group_end) begin
          if (wsel) begin
            full[1] <= 1'b1;
            last_slot1 <= fill;
          end else begin
            full[0] <= 1'b1;
            last_slot0 <= fill;
          end
          wsel <= !wsel;
          fill <= ${zero_g};
        end else begin
          fill <= fill + ${one_g};
        end
      end
      if (emitting) begin
        if (emit_end) begin
          if (rsel) begin
            full[1] <= 1'b0;
            amax1 <= 31'd0;
            nonfinite1 <= 1'b0;
          end else begin
            full[0] <= 1'b0;
            amax0 <= 31'd0;
            nonfinite0 <= 1'b0;
          end
          rsel <= !rsel;
          emit <= ${zero_g};
        end else begin
          emit <= emit + ${one_g};
        end
      end
    end
  end

  always @(posedge clk) if (take) group_words[{wsel, fill}] <= in_data;

  wire [${xw1}:0] exp_code;
  gsqhw_quant_gse_scale scale (
      .amax(rsel ? amax1 : amax0), .nonfinite(rsel ? nonfinite1 : nonfinite0),
      .exp_code(exp_code));
  gsqhw_quant_gse_elem element (.x(group_words[{rsel, emit}]), .exp_code(exp_code), .code(q_code));
  assign q_valid = emitting;
  assign q_exp = exp_code;
endmodule
)",
              {{"sw1", std::to_string(p.sw - 1)},
               {"cw1", std::to_string(p.cw - 1)},
               {"xw1", std::to_string(p.xw - 1)},
               {"g", std::to_string(g.g)},
               {"giw1", std::to_string(giw - 1)},
               {"one_s", vlit(p.sw, 1)},
               {"zero_s", vlit(p.sw, 0)},
               {"g_last", vlit(giw, g.g - 1)},
               {"zero_g", vlit(giw, 0)},
               {"one_g", vlit(giw, 1)}});
}

// gsqhw_quant_mf: FP32 -> minifloat code with RNE, exactly encode_minifloat (numerics/minifloat.cpp).
std::string minifloat_encoder_module(const CoreParams& p, const MinifloatParams& m,
                                     bool saturate) {
  const int mb = m.man_bits, eb = m.exp_bits;
  const int emin127 = 128 - m.bias;  // smallest normal binade, biased by 127
  const int rs0 = 23 - mb;           // right shift of a normal value's significand
  const uint32_t max_finite =
      m.specials == MinifloatParams::Specials::ieee
          ? (((1u << eb) - 2) << mb) | ((1u << mb) - 1)
          : (((1u << eb) - 1) << mb) | ((1u << mb) - 2);
  const uint32_t overflow_code = saturate ? max_finite
                                 : m.has_inf() ? ((1u << eb) - 1) << mb
                                               : m.nan_code();
  const int top127 = m.max_exp() + 127;  // largest finite binade, biased by 127
  std::string top_mantissa_check =
      m.specials == MinifloatParams::Specials::e4m3_like
          ? fmt::format(" ||\n                  (e_final == {} && mantissa == {})", vlit(9, top127),
                        vlit(mb, (1 << mb) - 1))
          : "";
  const int cw = p.cw;
  return file_header(p.design, "gsqhw_quant_mf",
                     fmt::format("FP32 -> {} code, round to nearest even, {} (golden "
                                 "encode_minifloat)",
                                 m.name, saturate ? "saturating" : "overflow to Inf/NaN")) +
         fill(R"(module gsqhw_quant_mf (
  input  wire [31:0]     x,
  output wire [${cw1}:0] code  // sign | exponent (${eb} bits) | mantissa (${mb} bits)
);
  wire        sign = x[31];
  wire [7:0]  fe = x[30:23];
  wire        is_nan = fe == 8'hff && x[22:0] != 23'd0;
  wire        is_inf = fe == 8'hff && x[22:0] == 23'd0;
  wire [7:0]  fe_eff = (fe == 8'd0) ? 8'd1 : fe;
  wire [23:0] sig = {fe != 8'd0, x[22:0]};
  // the target's binade (biased by 127): x's own, or the smallest normal one (subnormals)
  wire [7:0]  e127 = (fe_eff > ${emin}) ? fe_eff : ${emin};
  wire [7:0]  below_min = e127 - fe_eff;
  wire [4:0]  rs = (below_min > ${max_extra}) ? 5'd25 : ${rs0} + below_min[4:0];
  wire [23:0] kept = sig >> rs;  // below 2^${mb1}
  wire [23:0] unused_kept_top = kept;
${rounding}  wire [${mb1}:0] r = kept[${mb1}:0] + {${r_pad}, inc};
  // rounding up to 2^(mb+1) moves into the next binade
  wire        carry = r[${mb1}];
  wire        normal = carry || r[${mb}];
  wire [8:0]  e_final = {1'b0, e127} + {8'd0, carry};
  wire [${mb_1}:0] mantissa = carry ? ${zero_m} : r[${mb_1}:0];
  wire        overflow = normal && (e_final > ${top127}${top_mantissa_check});
  wire [8:0]  field_full = e_final - ${field_offset};  // exponent field: e - 127 + bias
  wire [8:0]  unused_field_top = field_full;
  assign code = is_nan ? {sign, ${nan_code}} :
                (is_inf || overflow) ? {sign, ${overflow_code}} :
                normal ? {sign, field_full[${eb_1}:0], mantissa} :
                {sign, ${zero_e}, r[${mb_1}:0]};  // subnormal or zero
endmodule
)",
              {{"cw1", std::to_string(cw - 1)},
               {"eb", std::to_string(eb)},
               {"mb", std::to_string(mb)},
               {"mb1", std::to_string(mb + 1)},
               {"mb_1", std::to_string(mb - 1)},
               {"eb_1", std::to_string(eb - 1)},
               {"emin", vlit(8, emin127)},
               {"max_extra", vlit(8, 25 - rs0)},
               {"rs0", vlit(5, rs0)},
               {"rounding", rounding_wires(GseParams::Round::rne)},
               {"r_pad", vlit(mb + 1, 0)},
               {"zero_m", vlit(mb, 0)},
               {"zero_e", vlit(eb, 0)},
               {"top127", vlit(9, top127)},
               {"top_mantissa_check", top_mantissa_check},
               {"field_offset", vlit(9, 127 - m.bias)},
               {"nan_code", vlit(cw - 1, m.nan_code())},
               {"overflow_code", vlit(cw - 1, overflow_code)}});
}

std::string minifloat_quantizer_module(const CoreParams& p) {
  return file_header(p.design, "gsqhw_quantizer",
                     "FP32 stream -> element codes, one per cycle (no group state)") +
         fill(R"(module gsqhw_quantizer (
  input  wire              clk,
  input  wire              rst,
  input  wire [${sw1}:0] row_len,   // unused: minifloat elements have no groups
  input  wire              in_valid,
  output wire              in_ready,
  input  wire [31:0]       in_data,   // FP32
  output wire              q_valid,   // the code of the word taken this cycle
  output wire [${cw1}:0] q_code
);
  wire unused_inputs = clk | rst | (|row_len);
  assign in_ready = 1'b1;
  assign q_valid = in_valid;
  gsqhw_quant_mf encoder (.x(in_data), .code(q_code));
endmodule
)",
              {{"sw1", std::to_string(p.sw - 1)}, {"cw1", std::to_string(p.cw - 1)}});
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
