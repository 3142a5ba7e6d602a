// The datapath stages that several PE-level modules share: the product (gsqhw_pe, gsqhw_pe_ws,
// gsqhw_pe_gsum), the addend preparation and the accumulator adder (gsqhw_pe, gsqhw_pe_ws,
// gsqhw_group_acc). Each caller strings them together with its own pipeline cuts (stage_cut)
// and control signals; keeping the stages here means a fix to one of them reaches every
// module that instantiates the same leaf (gsqhw_product, gsqhw_addend_*, gsqhw_acc_*).
#include <fmt/format.h>

#include "gen/emit.h"
#include "gen/verilog_text.h"

namespace gsqhw::gen {
namespace {

bool is_fixed(const PeSpec& pe) { return pe.acc.kind == AccumulatorSpec::Kind::fixed; }
bool is_gse(const PeSpec& pe) { return pe.format.family == OperandFamily::gse; }
bool is_mini(const PeSpec& pe) { return pe.format.family == OperandFamily::minifloat; }
// Integers have no NaN; only minifloats with IEEE specials have infinities.
bool has_nan(const PeSpec& pe) { return pe.format.family != OperandFamily::integer; }
bool has_inf(const PeSpec& pe) { return is_mini(pe) && pe.format.mf_ieee_specials; }

}  // namespace

std::string product_instance(const PeSpec& pe, const std::string& a, const std::string& b,
                             std::vector<Signal>& signals) {
  const int pw = pe.product_width(), uw = pe.exp_code_width();
  if (!is_mini(pe)) {
    signals.push_back({"product", pw, true, false});
    return fmt::format("  wire signed [{}:0] p_product;\n"
                       "  gsqhw_product u_product (.a({}), .b({}), .product(p_product));\n",
                       pw - 1, a, b);
  }
  signals.push_back({"sign", 1, false, false});
  signals.push_back({"magnitude", pw, false, false});
  signals.push_back({"exp_code", uw, false, false});
  signals.push_back({"nan", 1, false, false});
  if (has_inf(pe)) signals.push_back({"inf", 1, false, false});
  std::string text = fmt::format(
      "  wire p_sign;\n  wire [{}:0] p_magnitude;\n  wire [{}:0] p_exp_code;\n", pw - 1, uw - 1);
  text += has_inf(pe) ? "  wire p_nan, p_inf;\n" : "  wire p_nan;\n";
  text += fmt::format(
      "  gsqhw_product u_product (.a({}), .b({}), .sign(p_sign), .magnitude(p_magnitude),\n"
      "                           .exp_code(p_exp_code), .is_nan(p_nan){});\n",
      a, b, has_inf(pe) ? ", .is_inf(p_inf)" : "");
  return text;
}

std::string addend_unit(const PeSpec& pe, const std::string& inputs,
                        std::vector<Signal>& q_signals) {
  if (is_fixed(pe)) {
    const int w = pe.acc.width;
    q_signals.push_back({"addend", w, true, false});
    q_signals.push_back({"overflow", 1, false, false});
    return fmt::format("  wire signed [{}:0] q_addend;\n  wire q_overflow;\n"
                       "  gsqhw_addend_fixed u_prepare ({}.addend(q_addend), "
                       ".overflow(q_overflow));\n",
                       w - 1, inputs);
  }
  const int p = fp32_mant_width(pe);
  q_signals.push_back({"sign", 1, false, false});
  q_signals.push_back({"mant", p, false, false});
  q_signals.push_back({"top", kTopWidth, true, false});
  return fmt::format("  wire q_sign;\n  wire [{}:0] q_mant;\n  wire signed [{}:0] q_top;\n"
                     "  gsqhw_addend_fp32 u_prepare ({}.sign(q_sign), .mant(q_mant), "
                     ".top(q_top));\n",
                     p - 1, kTopWidth - 1, inputs);
}

std::string prepare_addend_stage(const PeSpec& pe, const std::string& from,
                                 std::vector<Signal>& q_signals) {
  const bool gse = is_gse(pe), mini = is_mini(pe);
  const std::string exp_code =
      pe.exp_code_width() > 0 ? fmt::format(".exp_code({}_exp_code), ", from) : "";
  std::string text;
  if (is_fixed(pe)) {
    if (mini) {
      text += "  // floor() of a negative product needs its two's complement form\n";
      text += fmt::format(
          "  wire signed [{0}:0] {1}_signed = {1}_sign ? -{{1'b0, {1}_magnitude}} : {{1'b0, "
          "{1}_magnitude}};\n",
          pe.product_width(), from);
    }
    const std::string value = from + (gse ? "_value" : mini ? "_signed" : "_product");
    text += addend_unit(pe, fmt::format(".value({}), {}", value, exp_code), q_signals);
    if (has_nan(pe)) {
      q_signals.push_back({"nan", 1, false, false});
      text += fmt::format("  // fixed accumulators add nothing for a NaN{} and raise the NaN flag\n",
                          gse ? " group" : " or Inf operand");
      text += fmt::format("  wire q_nan = {0}_nan{1};\n", from,
                          has_inf(pe) ? fmt::format(" | {}_inf", from) : "");
    }
    return text;
  }
  const std::string value =
      mini ? fmt::format(".value_sign({0}_sign), .magnitude({0}_magnitude), ", from)
           : fmt::format(".value({}{}), ", from, gse ? "_value" : "_product");
  text += addend_unit(pe, value + exp_code, q_signals);
  if (has_nan(pe)) {
    q_signals.push_back({"nan", 1, false, false});
    text += gse ? "  // a NaN group adds nothing and raises the NaN flag\n" : "";
    text += fmt::format("  wire q_nan = {}_nan;\n", from);
  }
  if (has_inf(pe)) {
    q_signals.push_back({"inf", 1, false, false});
    text += fmt::format("  wire q_inf = {}_inf;\n", from);
  }
  return text;
}

std::string accumulator_adder(const PeSpec& pe, const std::string& restart,
                              const std::string& acc_in, const std::string& flags_in) {
  const std::string flags_base =
      fmt::format("  wire [1:0] flags_base = {} ? 2'b00 : {};\n", restart, flags_in);
  if (is_fixed(pe)) {
    const int w = pe.acc.width;
    return fmt::format("  wire signed [{}:0] acc_base = {} ? {} : $signed({});\n", w - 1, restart,
                       vlit(w, 0, true), acc_in) +
           flags_base +
           fmt::format("  wire signed [{}:0] acc_sum;\n  wire sum_overflow;\n", w - 1) +
           "  gsqhw_acc_fixed u_adder (.acc(acc_base), .addend(r_addend), .sum(acc_sum), "
           ".overflow(sum_overflow));\n";
  }
  // GSE marks NaN groups itself (they add nothing); minifloat NaN/Inf operands go to the adder.
  std::string specials = has_nan(pe) && !is_gse(pe) ? ".add_nan(r_nan), " : ".add_nan(1'b0), ";
  if (has_inf(pe)) specials += ".add_inf(r_inf), ";
  return fmt::format("  wire [31:0] acc_base = {} ? 32'd0 : {};  // +0.0\n", restart, acc_in) +
         flags_base + "  wire [31:0] acc_sum;\n" +
         fmt::format("  gsqhw_acc_fp32 u_adder (.acc(acc_base), .add_sign(r_sign), "
                     ".add_mant(r_mant), .add_top(r_top), {}.sum(acc_sum));\n",
                     specials);
}

std::string accumulate_stage(const PeSpec& pe, const AccumulateWiring& wiring) {
  std::string text = accumulator_adder(pe, wiring.restart, wiring.acc_in, wiring.flags_in);
  if (!is_fixed(pe)) {
    text += "  // a NaN result is always the canonical quiet NaN and raises the sticky NaN flag\n";
    text += "  wire sum_is_nan = (&acc_sum[30:23]) & (|acc_sum[22:0]);\n";
  }
  text += "  always @(posedge clk) begin\n";
  if (wiring.tile_end_valid) text += "    out_valid <= rst ? 1'b0 : r_valid & r_last;\n";
  text += "    if (r_valid) begin\n";
  // A NaN step (fixed: any NaN; fp32: a NaN GSE group) leaves the accumulator unchanged.
  const bool nan_keeps_acc = is_fixed(pe) ? has_nan(pe) : is_gse(pe);
  text += fmt::format("      {} <= {};\n", wiring.acc_out,
                      nan_keeps_acc ? "r_nan ? acc_base : acc_sum" : "acc_sum");
  if (is_fixed(pe))
    text += fmt::format("      out_flags <= flags_base | {};\n",
                        has_nan(pe) ? "{r_nan, ~r_nan & (r_overflow | sum_overflow)}"
                                    : "{1'b0, r_overflow | sum_overflow}");
  else
    text += fmt::format("      out_flags <= flags_base | {};\n",
                        is_gse(pe) ? "{r_nan | sum_is_nan, 1'b0}" : "{sum_is_nan, 1'b0}");
  text += "    end\n  end\n";
  return text;
}

}  // namespace gsqhw::gen
