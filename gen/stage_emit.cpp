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

using verilog::Block;
using verilog::Instance;

void product_instance(Block& body, const PeSpec& pe, const std::string& a, const std::string& b,
                      std::vector<Signal>& signals) {
  const int pw = pe.product_width(), uw = pe.exp_code_width();
  Instance product("gsqhw_product", "u_product");
  product.pin("a", a).pin("b", b);
  if (!is_mini(pe)) {
    signals.push_back({"product", pw, true, false});
    body.wire_signed("p_product", pw);
    body.instance(product.pin("product", "p_product"));
    return;
  }
  signals.push_back({"sign", 1, false, false});
  signals.push_back({"magnitude", pw, false, false});
  signals.push_back({"exp_code", uw, false, false});
  signals.push_back({"nan", 1, false, false});
  if (has_inf(pe)) signals.push_back({"inf", 1, false, false});
  body.wire("p_sign").wire("p_magnitude", pw).wire("p_exp_code", uw);
  body.wire(has_inf(pe) ? "p_nan, p_inf" : "p_nan");
  product.pin("sign", "p_sign").pin("magnitude", "p_magnitude").pin("exp_code", "p_exp_code");
  product.pin("is_nan", "p_nan");
  if (has_inf(pe)) product.pin("is_inf", "p_inf");
  body.instance(product);
}

void addend_unit(Block& body, const PeSpec& pe, const Pins& inputs,
                 std::vector<Signal>& q_signals) {
  Instance unit(is_fixed(pe) ? "gsqhw_addend_fixed" : "gsqhw_addend_fp32", "u_prepare");
  for (const auto& [port, expr] : inputs) unit.pin(port, expr);
  if (is_fixed(pe)) {
    const int w = pe.acc.width;
    q_signals.push_back({"addend", w, true, false});
    q_signals.push_back({"overflow", 1, false, false});
    body.wire_signed("q_addend", w).wire("q_overflow");
    body.instance(unit.pin("addend", "q_addend").pin("overflow", "q_overflow"));
    return;
  }
  const int p = fp32_mant_width(pe);
  q_signals.push_back({"sign", 1, false, false});
  q_signals.push_back({"mant", p, false, false});
  q_signals.push_back({"top", kTopWidth, true, false});
  body.wire("q_sign").wire("q_mant", p).wire_signed("q_top", kTopWidth);
  body.instance(unit.pin("sign", "q_sign").pin("mant", "q_mant").pin("top", "q_top"));
}

void prepare_addend_stage(Block& body, const PeSpec& pe, const std::string& from,
                          std::vector<Signal>& q_signals) {
  const bool gse = is_gse(pe), mini = is_mini(pe);
  Pins inputs;
  if (is_fixed(pe)) {
    if (mini) {
      body.comment("floor() of a negative product needs its two's complement form");
      body.wire_signed(from + "_signed", pe.product_width() + 1,
                       fmt::format("{0}_sign ? -{{1'b0, {0}_magnitude}} : {{1'b0, {0}_magnitude}}",
                                   from));
    }
    inputs.emplace_back("value", from + (gse ? "_value" : mini ? "_signed" : "_product"));
    if (pe.exp_code_width() > 0) inputs.emplace_back("exp_code", from + "_exp_code");
    addend_unit(body, pe, inputs, q_signals);
    if (has_nan(pe)) {
      q_signals.push_back({"nan", 1, false, false});
      body.comment(fmt::format("fixed accumulators add nothing for a NaN{} and raise the NaN flag",
                               gse ? " group" : " or Inf operand"));
      body.wire("q_nan", 1,
                from + "_nan" + (has_inf(pe) ? fmt::format(" | {}_inf", from) : ""));
    }
    return;
  }
  if (mini) {
    inputs.emplace_back("value_sign", from + "_sign");
    inputs.emplace_back("magnitude", from + "_magnitude");
  } else {
    inputs.emplace_back("value", from + (gse ? "_value" : "_product"));
  }
  if (pe.exp_code_width() > 0) inputs.emplace_back("exp_code", from + "_exp_code");
  addend_unit(body, pe, inputs, q_signals);
  if (has_nan(pe)) {
    q_signals.push_back({"nan", 1, false, false});
    if (gse) body.comment("a NaN group adds nothing and raises the NaN flag");
    body.wire("q_nan", 1, from + "_nan");
  }
  if (has_inf(pe)) {
    q_signals.push_back({"inf", 1, false, false});
    body.wire("q_inf", 1, from + "_inf");
  }
}

void accumulator_adder(Block& body, const PeSpec& pe, const std::string& restart,
                       const std::string& acc_in, const std::string& flags_in) {
  if (is_fixed(pe)) {
    const int w = pe.acc.width;
    body.wire_signed("acc_base", w,
                     fmt::format("{} ? {} : $signed({})", restart, vlit(w, 0, true), acc_in));
    body.wire("flags_base", 2, fmt::format("{} ? 2'b00 : {}", restart, flags_in));
    body.wire_signed("acc_sum", w).wire("sum_overflow");
    body.instance(Instance("gsqhw_acc_fixed", "u_adder")
                      .pin("acc", "acc_base").pin("addend", "r_addend").pin("sum", "acc_sum")
                      .pin("overflow", "sum_overflow"));
    return;
  }
  body.wire("acc_base", 32, fmt::format("{} ? 32'd0 : {}", restart, acc_in), "+0.0");
  body.wire("flags_base", 2, fmt::format("{} ? 2'b00 : {}", restart, flags_in));
  body.wire("acc_sum", 32);
  Instance adder("gsqhw_acc_fp32", "u_adder");
  adder.pin("acc", "acc_base").pin("add_sign", "r_sign").pin("add_mant", "r_mant");
  adder.pin("add_top", "r_top");
  // GSE and the minifloat column unit mark NaN groups themselves (they add nothing);
  // minifloat NaN/Inf operands go to the adder.
  adder.pin("add_nan", has_nan(pe) && !is_gse(pe) && !pe.column_unit ? "r_nan" : "1'b0");
  if (has_inf(pe)) adder.pin("add_inf", "r_inf");
  body.instance(adder.pin("sum", "acc_sum"));
}

void accumulate_stage(Block& body, const PeSpec& pe, const AccumulateWiring& wiring) {
  accumulator_adder(body, pe, wiring.restart, wiring.acc_in, wiring.flags_in);
  if (!is_fixed(pe)) {
    body.comment("a NaN result is always the canonical quiet NaN and raises the sticky NaN flag");
    body.wire("sum_is_nan", 1, "(&acc_sum[30:23]) & (|acc_sum[22:0])");
  }
  Block& ff = body.always_ff();
  if (wiring.tile_end_valid) ff.line("out_valid <= rst ? 1'b0 : r_valid & r_last;");
  Block& step = ff.if_("r_valid");
  // A NaN step (fixed: any NaN; fp32: a NaN GSE group) leaves the accumulator unchanged.
  const bool nan_keeps_acc = is_fixed(pe) ? has_nan(pe) : is_gse(pe);
  step.line(fmt::format("{} <= {};", wiring.acc_out,
                        nan_keeps_acc ? "r_nan ? acc_base : acc_sum" : "acc_sum"));
  if (is_fixed(pe))
    step.line(fmt::format("out_flags <= flags_base | {};",
                          has_nan(pe) ? "{r_nan, ~r_nan & (r_overflow | sum_overflow)}"
                                      : "{1'b0, r_overflow | sum_overflow}"));
  else
    step.line(fmt::format("out_flags <= flags_base | {};",
                          is_gse(pe) ? "{r_nan | sum_is_nan, 1'b0}" : "{sum_is_nan, 1'b0}"));
}

void group_exponent(Block& body, const PeSpec& pe, const std::string& a_exp,
                    const std::string& b_exp, const std::string& exp_code, const std::string& nan) {
  body.comment("the group's scale: exponent codes add (biases are folded into the shift offset);\n"
               "an all-ones code marks a NaN group");
  body.wire(exp_code, pe.exp_code_width()).wire(nan);
  body.instance(Instance("gsqhw_exp_add", "u_exponent")
                    .pin("a_exp", a_exp).pin("b_exp", b_exp)
                    .pin("exp_code", exp_code).pin("group_nan", nan));
}

void group_sum_adder(Block& body, const PeSpec& pe, const std::string& restart,
                     const std::string& base, const std::string& product, const std::string& sum) {
  const int sw = pe.group_sum_width();
  body.wire_signed(sum + "_base", sw,
                   fmt::format("{} ? {} : $signed({})", restart, vlit(sw, 0, true), base));
  body.wire_signed(sum, sw);
  body.instance(Instance("gsqhw_add_group", "u_group_add")
                    .pin("base", sum + "_base").pin("product", product).pin("sum", sum));
}

void stage_cut(Block& body, const std::string& from, const std::string& to,
               const std::vector<Signal>& signals, bool registered, const std::string& comment) {
  body.blank();
  body.comment(comment);
  for (const auto& s : signals)
    body.decl({registered ? "reg" : "wire", to + "_" + s.name, verilog::range(s.width),
               s.is_signed, registered ? "" : from + "_" + s.name, ""});
  if (!registered) return;
  Block& ff = body.always_ff();
  for (const auto& s : signals)
    if (s.is_control)
      ff.line(fmt::format("{}_{} <= rst ? 1'b0 : {}_{};", to, s.name, from, s.name));
  Block& load = ff.if_(from + "_valid");
  for (const auto& s : signals)
    if (!s.is_control) load.line(fmt::format("{}_{} <= {}_{};", to, s.name, from, s.name));
}

}  // namespace gsqhw::gen
