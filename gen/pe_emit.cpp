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
// Integer families and the minifloat column unit's group sum hand a two's-complement value to
// the prepare stage; minifloat products a sign and a magnitude.
bool twos_complement_value(const PeSpec& pe) {
  return pe.format.family != OperandFamily::minifloat || pe.column_unit;
}
// Width of the value the prepare stage receives.
int value_width(const PeSpec& pe) {
  if (pe.column_unit) return pe.group_sum_width();
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

using verilog::Block;
using verilog::in;
using verilog::out;

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
  const int cw = pe.format.code_bits;
  const std::string purpose =
      pe.format.family == OperandFamily::gse
          ? fmt::format("exact product of two GSE-INT element codes ({}-bit two's complement)", cw)
          : fmt::format("exact product of two INT{} codes (two's complement)", cw);
  verilog::Module m("gsqhw_product");
  m.preamble = file_header(d, "gsqhw_product", purpose);
  m.ports({in("a", cw).as_signed(), in("b", cw).as_signed(),
           out("product", 2 * cw).as_signed().note(
               fmt::format("exact: {} bits hold every product", 2 * cw))});
  m.body.assign("product", "a * b");
  return m.str();
}

// The NaN (and Inf) flags of a minifloat product, per the format's special values.
void minifloat_specials(Block& b, const PeSpec& pe) {
  const auto& f = pe.format;
  if (f.mf_ieee_specials) {
    b.comment("IEEE specials: all-ones exponent is Inf (mantissa 0) or NaN; Inf x 0 is NaN");
    b.wire("a_zero", 1, fmt::format("~|a[{}:0]", f.code_bits - 2));
    b.wire("b_zero", 1, fmt::format("~|b[{}:0]", f.code_bits - 2));
    b.wire("a_nan", 1, "(&a_exp) & (|a_man)");
    b.wire("b_nan", 1, "(&b_exp) & (|b_man)");
    b.wire("a_inf", 1, "(&a_exp) & ~(|a_man)");
    b.wire("b_inf", 1, "(&b_exp) & ~(|b_man)");
    b.assign("is_nan", "a_nan | b_nan | (a_inf & b_zero) | (b_inf & a_zero)");
    b.assign("is_inf", "(a_inf | b_inf) & ~is_nan");
  } else if (f.mf_has_nan) {
    b.comment("E4M3: no infinities; only S.1111.111 is NaN");
    b.wire("a_nan", 1, "(&a_exp) & (&a_man)");
    b.wire("b_nan", 1, "(&b_exp) & (&b_man)");
    b.assign("is_nan", "a_nan | b_nan");
  } else {
    b.comment("no Inf or NaN codes (OCP MX FP6): every code is a finite value");
    b.assign("is_nan", "1'b0");
  }
}

std::string minifloat_product_module(const DesignPoint& d, const PeSpec& pe) {
  const auto& f = pe.format;
  const int n = f.code_bits, eb = f.mf_exp_bits, mb = f.mf_man_bits;
  const std::string name = f.variant.empty() ? f.family_name : f.family_name + " " + f.variant;
  verilog::Module m("gsqhw_product");
  m.preamble =
      file_header(d, "gsqhw_product",
                  fmt::format("exact product of two {} values (sign, {}-bit magnitude, exponent "
                              "code)",
                              name, 2 * mb + 2)) +
      fmt::format("// value(code) = significand * 2^(exponent code - {} - {}); subnormals use "
                  "exponent code 1\n"
                  "// product value = magnitude * 2^(exp_code - {}), exact (no rounding)\n",
                  f.mf_bias, mb, 2 * f.mf_bias + 2 * mb);
  m.ports({in("a", n), in("b", n), out("sign"), out("magnitude", 2 * mb + 2),
           out("exp_code", eb + 1), out("is_nan")});
  if (f.mf_ieee_specials) m.port(out("is_inf"));
  Block& b = m.body;
  for (const char* x : {"a", "b"}) b.wire(fmt::format("{}_exp", x), eb, fmt::format("{}[{}:{}]", x, n - 2, mb));
  for (const char* x : {"a", "b"}) b.wire(fmt::format("{}_man", x), mb, fmt::format("{}[{}:0]", x, mb - 1));
  for (const char* x : {"a", "b"})
    b.wire(fmt::format("{}_subnormal", x), 1, fmt::format("{}_exp == {}", x, vlit(eb, 0)));
  b.comment("significands with the hidden bit; subnormals share the exponent of the smallest normal");
  for (const char* x : {"a", "b"})
    b.wire(fmt::format("{}_sig", x), mb + 1, fmt::format("{{~{0}_subnormal, {0}_man}}", x));
  for (const char* x : {"a", "b"})
    b.wire(fmt::format("{}_eff", x), eb, fmt::format("{0}_subnormal ? {1} : {0}_exp", x, vlit(eb, 1)));
  minifloat_specials(b, pe);
  b.assign("sign", fmt::format("a[{0}] ^ b[{0}]", n - 1));
  b.assign("magnitude", "a_sig * b_sig");
  b.assign("exp_code", "{1'b0, a_eff} + {1'b0, b_eff}");
  return m.str();
}

}  // namespace

// ---------------------------------------------------------------------------------------
// The PE

namespace {

// Once per group the finished sum and the group's exponent code go on as the addend stream
// a_*: straight from the group-sum adder, or (cut 2) from the group-sum register, which holds
// the complete sum for one cycle while the next group's first product is being added.
void group_handoff(verilog::Block& body, int uw, int sw, bool cut2) {
  if (!cut2) {
    body.comment("once per group: the finished sum and the group's exponent code go on");
    body.wire("a_valid", 1, "m_valid & group_end");
    body.wire("a_first", 1, "group_start ? m_first : group_is_first");
    body.wire("a_last", 1, "m_last");
    body.wire_signed("a_value", sw, "group_sum_next");
    body.wire("a_exp_code", uw, "m_exp_code");
    body.wire("a_nan", 1, "m_group_nan");
    return;
  }
  body.blank();
  body.comment("[cut 2] the group-sum register is this stage's register: the cycle after a group ends it\n"
               "still holds the complete sum while the next group's first product is being added");
  body.reg("g_valid").reg("g_first").reg("g_last").reg("g_exp_code", uw).reg("g_nan");
  verilog::Block& cut = body.always_ff();
  cut.line("g_valid <= rst ? 1'b0 : m_valid & group_end;");
  cut.line("g_first <= rst ? 1'b0 : group_start ? m_first : group_is_first;");
  cut.line("g_last <= rst ? 1'b0 : m_last;");
  cut.if_("m_valid & group_end").line("g_exp_code <= m_exp_code;").line("g_nan <= m_group_nan;");
  body.wire("a_valid", 1, "g_valid").wire("a_first", 1, "g_first").wire("a_last", 1, "g_last");
  body.wire_signed("a_value", sw, "group_sum");
  body.wire("a_exp_code", uw, "g_exp_code");
  body.wire("a_nan", 1, "g_nan");
}

std::string pe_module(const DesignPoint& d, const PeSpec& pe) {
  const auto& f = pe.format;
  bool gse = f.family == OperandFamily::gse;
  int uw = pe.exp_code_width();
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
  body.blank();
  body.comment("--- product: exact, format specific");
  body.wire("p_valid", 1, "in_valid").wire("p_first", 1, "in_first").wire("p_last", 1, "in_last");
  if (gse) {
    p_signals.push_back({"group_last", 1, false, true});
    body.wire("p_group_last", 1, "in_group_last");
    product_instance(body, pe, "in_a", "in_b", p_signals);
    p_signals.push_back({"exp_code", uw, false, false});
    p_signals.push_back({"group_nan", 1, false, false});
    group_exponent(body, pe, "in_a_exp", "in_b_exp", "p_exp_code", "p_group_nan");
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
    body.blank();
    body.comment(fmt::format("--- group: exact integer sum of the group's products ({} bits = 2b + log2 G)", sw));
    body.reg_signed("group_sum", sw);
    body.reg("group_open", 1, "a group has started and not yet ended");
    body.reg("group_is_first", 1, "the open group began with in_first (first group of a tile)");
    body.wire("group_start", 1, "m_first | ~group_open");
    body.wire("group_end", 1, "m_group_last | m_last");
    group_sum_adder(body, pe, "group_start", "group_sum", "m_product", "group_sum_next");
    verilog::Block& ff = body.always_ff();
    ff.if_("rst").line("group_open <= 1'b0;");
    ff.else_if("m_valid").line("group_open <= ~group_end;");
    ff.if_("m_valid")
        .line("group_sum <= group_sum_next;")
        .line("group_is_first <= group_start ? m_first : group_is_first;");
    group_handoff(body, uw, sw, cut2);
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
  body.blank();
  body.comment("--- prepare the addend for the accumulator");
  body.wire("q_valid", 1, "a_valid").wire("q_first", 1, "a_first").wire("q_last", 1, "a_last");
  prepare_addend_stage(body, pe, "a", q_signals);
  stage_cut(body, "q", "r", q_signals, cut3,
                    cut3 ? "[cut 3] pipeline register between the prepared addend and the accumulator"
                         : "(no register before the accumulator at this pipeline depth)");

  // --- accumulate
  body.blank();
  body.comment("--- accumulate: a tile's first step starts from zero with clear flags");
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
  if (pe.format.family == OperandFamily::gse) {
    auto group = emit_group_files(design, pe);
    files.insert(files.end(), group.begin(), group.end());
  }
  auto accumulator = emit_accumulator_files(design, pe);
  files.insert(files.end(), accumulator.begin(), accumulator.end());
  return files;
}

std::vector<VerilogFile> emit_pe_files(const DesignPoint& design, const PeSpec& pe) {
  std::vector<VerilogFile> files = emit_leaf_files(design, pe);
  files.emplace_back("gsqhw_pe.v", pe_module(design, pe));
  return files;
}

}  // namespace gsqhw::gen
