// Minifloat (FP8 E4M3, FP6) array with per-column shared accumulation (align=shared on a
// minifloat format; issue #16's "fair FP8 baseline").
//
// Why: an FP8 PE with its own fp32 accumulator spends most of its area on the fp32 adder
// (docs/synthesis.md, the 64x64 breakdown). Like the shared-column GSE-INT array
// (gen/shared_emit.cpp), each PE here keeps only the multiplier and an exact group sum: every
// E4M3 product is an integer multiple of 2^-18 below 2^17.6, so G products add exactly in a
// (1 + 36 + log2 G)-bit integer register. Once per group the finished sum goes down the
// column's OR-bus to one gsqhw_group_acc per column, which adds it into the output's fp32
// (one RNE rounding per group) or fixed accumulator, held in a ring of R accumulators. The
// semantics are numerics/gemm.h's "minifloat group sums" (AccumulatorSpec::group).
//
// The structure and timing are the shared-column GSE array's (same pipeline plan, latency
// C + pipe + 1, timing.min_steps_per_group = R; the driver pads short groups with zero codes),
// without exponents: a minifloat group sum has a constant scale 2^q, so the column unit has no
// exponent add and its alignment shift is static. A group with a NaN operand is a NaN group,
// as in GSE: it adds nothing and sets the NaN flag.
#include <fmt/format.h>

#include "gen/emit.h"
#include "gen/pipeline.h"
#include "gen/verilog_text.h"

namespace gsqhw::gen {
namespace {

using verilog::Block;
using verilog::Instance;
using verilog::in;
using verilog::out;

bool fixed_acc(const PeSpec& pe) { return pe.acc.kind == AccumulatorSpec::Kind::fixed; }

// The column unit's view of the design: its addend units take the group sum.
PeSpec column_spec(const PeSpec& pe) {
  PeSpec column = pe;
  column.column_unit = true;
  return column;
}

// gsqhw_pe_gsum: the format's multiplier and the exact fixed-point group sum.
std::string pe_gsum_module(const DesignPoint& d, const PeSpec& pe) {
  const int cw = pe.format.code_bits, pw = pe.product_width(), uw = pe.exp_code_width();
  const int fw = pe.fixed_product_width(), sw = pe.group_sum_width();
  const PipelinePlan cuts = pipeline_plan(d, pe);
  verilog::Module m("gsqhw_pe_gsum");
  m.preamble =
      file_header(d, "gsqhw_pe_gsum",
                  "minifloat PE without an accumulator: multiplier and exact fixed-point group sum") +
      fmt::format("// Every product is an integer multiple of 2^{}: magnitude << (exp_code - 2). "
                  "group_done is high\n// for one cycle when group_sum holds a finished group "
                  "(its accumulation happens in the column's\n// gsqhw_group_acc).\n",
                  column_spec(pe).value_offset());
  m.port(in("clk")).port(in("rst")).port(in("in_valid")).port(in("in_first")).port(in("in_last"));
  m.port(in("in_group_last")).port(in("in_a", cw)).port(in("in_b", cw));
  m.port(out("group_done").as_reg());
  m.port(out("group_first").as_reg().note("the finished group is the first of its tile"));
  m.port(out("group_tile_last").as_reg().note("the finished group is the last of its tile"));
  m.port(out("group_nan").as_reg().note("the finished group holds a NaN operand"));
  m.port(out("group_sum", sw).as_reg().as_signed());
  Block& body = m.body;
  body.wire("p_valid", 1, "in_valid").wire("p_first", 1, "in_first").wire("p_last", 1, "in_last");
  body.wire("p_group_last", 1, "in_group_last");
  std::vector<Signal> p_signals = {{"valid", 1, false, true},
                                   {"first", 1, false, true},
                                   {"last", 1, false, true},
                                   {"group_last", 1, false, true}};
  product_instance(body, pe, "in_a", "in_b", p_signals);
  stage_cut(body, "p", "m", p_signals, cuts.product_cut,
            cuts.product_cut ? "[cut 1] pipeline register after the product"
                             : "(no register after the product at this pipeline depth)");
  body.blank();
  body.comment(fmt::format("--- the product as a fixed-point integer ({} bits unsigned, {} signed)",
                           fw, fw + 1));
  body.wire("m_shift", uw, fmt::format("m_exp_code - {}", vlit(uw, 2)),
            "exponent codes add to at least 2");
  body.wire("m_aligned", fw,
            fmt::format("{{{}, m_magnitude}} << m_shift", vlit(fw - pw, 0)));
  body.wire_signed("m_term", sw,
                   fmt::format("m_sign ? -$signed({{{}, m_aligned}}) : $signed({{{}, m_aligned}})",
                               vlit(sw - fw, 0), vlit(sw - fw, 0)));
  body.blank();
  body.comment(fmt::format("--- exact group sum ({} bits = 1 + {} + log2 G); a NaN operand marks the group",
                           sw, fw));
  body.reg("group_open", 1, "a group has started and not yet ended");
  body.reg("group_is_first", 1, "the open group began with in_first");
  body.wire("group_start", 1, "m_first | ~group_open");
  body.wire("group_end", 1, "m_group_last | m_last");
  Block& ff = body.always_ff();
  ff.line("if (rst) group_open <= 1'b0;").line("else if (m_valid) group_open <= ~group_end;");
  ff.line("group_done <= rst ? 1'b0 : m_valid & group_end;");
  ff.if_("m_valid")
      .line(fmt::format("group_sum <= (group_start ? {} : group_sum) + m_term;", vlit(sw, 0, true)))
      .line("group_nan <= (group_start ? 1'b0 : group_nan) | m_nan;")
      .line("group_is_first <= group_start ? m_first : group_is_first;");
  ff.if_("m_valid & group_end")
      .line("group_first <= group_start ? m_first : group_is_first;")
      .line("group_tile_last <= m_last;");
  return m.str();
}

// gsqhw_group_acc: the column's accumulation of one finished group sum per cycle into a ring
// of R accumulators (the GSE column unit without the exponent add).
std::string group_acc_module(const DesignPoint& d, const PeSpec& pe) {
  const PeSpec col = column_spec(pe);
  const int sw = pe.group_sum_width(), aw = pe.acc_width(), r = d.rows;
  const PipelinePlan cuts = pipeline_plan(d, pe);
  verilog::Module m("gsqhw_group_acc");
  m.preamble =
      file_header(d, "gsqhw_group_acc",
                  fmt::format("a column's accumulation of minifloat group sums (value = sum * "
                              "2^{}): {} accumulation into a ring of {} accumulators",
                              col.value_offset(), pe.acc.str(), r)) +
      "// One finished group sum per cycle at most, rows in order 0..R-1 within each wave.\n";
  m.port(in("clk")).port(in("rst")).port(in("in_valid"));
  m.port(in("in_first").note("first group of the tile: the accumulator starts from zero"));
  m.port(in("in_last").note("last group of the tile: the new accumulator is the result"));
  m.port(in("in_sum", sw).as_signed()).port(in("in_nan").note("a NaN group: adds nothing"));
  m.port(out("out_valid").as_reg()).port(out("out_acc", aw).as_reg()).port(out("out_flags", 2).as_reg());
  Block& body = m.body;
  body.wire("g_valid", 1, "in_valid").wire("g_first", 1, "in_first").wire("g_last", 1, "in_last");
  body.wire_signed("g_sum", sw, "in_sum").wire("g_nan", 1, "in_nan");
  std::vector<Signal> g_signals = {{"valid", 1, false, true}, {"first", 1, false, true},
                                   {"last", 1, false, true},  {"sum", sw, true, false},
                                   {"nan", 1, false, false}};
  stage_cut(body, "g", "a", g_signals, cuts.prepare_cut,
            cuts.prepare_cut ? "[cut] pipeline register before the addend is prepared"
                             : "(no register before the addend preparation at this depth)");
  std::vector<Signal> q_signals = {{"valid", 1, false, true}, {"first", 1, false, true},
                                   {"last", 1, false, true}, {"nan", 1, false, false}};
  body.blank();
  body.comment("--- prepare the addend: a static shift (fixed) or normalisation (fp32) of the sum");
  body.wire("q_valid", 1, "a_valid").wire("q_first", 1, "a_first").wire("q_last", 1, "a_last");
  body.wire("q_nan", 1, "a_nan");
  addend_unit(body, col, {{"value", "a_sum"}}, q_signals);
  stage_cut(body, "q", "r", q_signals, cuts.accumulate_cut,
            cuts.accumulate_cut ? "[cut 3] pipeline register before the accumulator"
                                : "(no register before the accumulator at this depth)");
  const int slot = aw + 2;
  body.blank();
  body.comment("--- the ring of R accumulators {flags, acc}, head (row on the bus) at the bottom slot;\n"
               "it rotates once per finished group, the new value entering at the top");
  body.reg("ring", r * slot);
  body.wire("head_acc", aw, fmt::format("ring[{}:0]", aw - 1));
  body.wire("head_flags", 2, fmt::format("ring[{}:{}]", aw + 1, aw));
  accumulator_adder(body, col, "r_first", "head_acc", "head_flags");
  if (fixed_acc(pe)) {
    body.comment("a NaN group adds nothing and raises the NaN flag");
    body.wire("acc_new", aw, "r_nan ? acc_base : acc_sum");
    body.wire("flags_new", 2, "flags_base | {r_nan, ~r_nan & (r_overflow | sum_overflow)}");
  } else {
    body.comment("a NaN group adds nothing; a NaN result is the canonical quiet NaN: both raise the NaN flag");
    body.wire("sum_is_nan", 1, "(&acc_sum[30:23]) & (|acc_sum[22:0])");
    body.wire("acc_new", 32, "r_nan ? acc_base : acc_sum");
    body.wire("flags_new", 2, "flags_base | {r_nan | sum_is_nan, 1'b0}");
  }
  Block& ff = body.always_ff();
  if (r == 1)
    ff.line("if (r_valid) ring <= {flags_new, acc_new};");
  else
    ff.line(fmt::format("if (r_valid) ring <= {{flags_new, acc_new, ring[{}:{}]}};", r * slot - 1,
                        slot));
  ff.line("out_valid <= rst ? 1'b0 : r_valid & r_last;");
  ff.if_("r_valid & r_last").line("out_acc <= acc_new;").line("out_flags <= flags_new;");
  return m.str();
}

// Skew at the edges: row i's lane enters i cycles late, column j's lane j cycles late.
void edge_skew(Block& gen) {
  const std::string ctrl = "{in_valid, in_first, in_last, in_group_last}";
  gen.comment("--- skew at the edges: row i's lane enters i cycles late, column j's lane j cycles late");
  Block& row = gen.for_("i", "R", "row_skew");
  row.if_("i == 0", "direct").assign("ctrl_at[0 +: NC]", ctrl).assign("a_at[0 +: CW]", "in_a[0 +: CW]");
  row.else_("delayed")
      .instance(Instance("gsqhw_delay_clear", "ctrl_skew")
                    .param("WIDTH", "NC").param("DEPTH", "i")
                    .pin("clk", "clk").pin("rst", "rst").pin("d", ctrl)
                    .pin("q", "ctrl_at[i*C*NC +: NC]"))
      .instance(Instance("gsqhw_delay", "a_skew")
                    .param("WIDTH", "CW").param("DEPTH", "i")
                    .pin("clk", "clk").pin("d", "in_a[i*CW +: CW]").pin("q", "a_at[i*C*CW +: CW]"));
  Block& column = gen.for_("j", "C", "column_skew");
  column.if_("j == 0", "direct").assign("b_at[0 +: CW]", "in_b[0 +: CW]");
  column.else_("delayed")
      .instance(Instance("gsqhw_delay", "b_skew")
                    .param("WIDTH", "CW").param("DEPTH", "j")
                    .pin("clk", "clk").pin("d", "in_b[j*CW +: CW]").pin("q", "b_at[j*CW +: CW]"));
}

// Column j's unit: the OR-bus of the (at most one) PE finishing a group per cycle, its
// register, gsqhw_group_acc and the result deskew.
void column_unit(Block& gen, int r) {
  Block& unit = gen.for_("j", "C", "unit");
  unit.comment("the column's OR-bus: at most one PE finishes a group per cycle");
  unit.reg_range("finished_sum", "[SW-1:0]");
  unit.reg("finished_any, finished_first, finished_last, finished_nan").integer("r");
  Block& bus = unit.always_comb();
  bus.line("finished_sum = {SW{1'b0}};").line("finished_any = 1'b0;");
  bus.line("finished_first = 1'b0;").line("finished_last = 1'b0;").line("finished_nan = 1'b0;");
  bus.for_("r", "R").if_("pe_done[r*C + j]")
      .line("finished_sum = finished_sum | pe_sum[(r*C + j)*SW +: SW];")
      .line("finished_any = 1'b1;")
      .line("finished_first = finished_first | pe_first[r*C + j];")
      .line("finished_last = finished_last | pe_tile_last[r*C + j];")
      .line("finished_nan = finished_nan | pe_nan[r*C + j];");
  unit.reg("bus_valid, bus_first, bus_last, bus_nan");
  unit.decl({"reg", "bus_sum", "[SW-1:0]", true, "", ""});
  Block& hold = unit.always_ff();
  hold.line("bus_valid <= rst ? 1'b0 : finished_any;");
  hold.if_("finished_any")
      .line("bus_sum <= finished_sum;")
      .line("bus_first <= finished_first;")
      .line("bus_last <= finished_last;")
      .line("bus_nan <= finished_nan;");
  unit.wire("result_valid").wire_range("result_acc", "[AW-1:0]").wire("result_flags", 2);
  unit.instance(Instance("gsqhw_group_acc", "group_acc")
                    .pin("clk", "clk").pin("rst", "rst").pin("in_valid", "bus_valid")
                    .pin("in_first", "bus_first").pin("in_last", "bus_last")
                    .pin("in_sum", "bus_sum").pin("in_nan", "bus_nan")
                    .pin("out_valid", "result_valid").pin("out_acc", "result_acc")
                    .pin("out_flags", "result_flags"));
  unit.comment("deskew: column j is C-1-j cycles ahead of the last column");
  Block& direct = column_result_deskew(unit);
  direct.comment("results leave in complete waves of R rows, in order: count them");
  result_row_counter(direct, r, "result_valid");
}

std::string array_module(const DesignPoint& d, const PeSpec& pe) {
  const int r = d.rows, c = d.cols;
  const PipelinePlan plan = pipeline_plan(d, pe);
  verilog::Module m("gsqhw_array");
  m.preamble =
      file_header(d, "gsqhw_array",
                  fmt::format("{} x {} output-stationary minifloat array, group sums of {} steps "
                              "accumulated once per group by one unit per column; ports of "
                              "docs/array-protocol.md",
                              r, c, pe.acc.group)) +
      fmt::format("// Timing: a tile whose in_last step is presented in cycle t has row r of its "
                  "results on\n// out_acc in cycle t + {} + r. Tiles and groups need at least R "
                  "= {} steps each.\n",
                  plan.latency, r);
  m.ports(with_regs(os_array_ports(pe, r, c), {"out_row"}));
  Block& body = m.body;
  body.localparam("R", std::to_string(r));
  body.localparam("C", std::to_string(c));
  body.localparam("CW", std::to_string(pe.format.code_bits), "element code width");
  body.localparam("SW", std::to_string(pe.group_sum_width()), "exact group sum width");
  body.localparam("AW", std::to_string(pe.acc_width()), "accumulator width");
  body.localparam("NC", "4", "controls: {valid, first, last, group_last}");
  body.blank();
  body.comment("What each PE(i,j) sees, flattened at index k = i*C + j.");
  body.wire_range("ctrl_at", "[R*C*NC-1:0]").wire_range("a_at", "[R*C*CW-1:0]");
  body.wire_range("b_at", "[R*C*CW-1:0]");
  body.wire_range("pe_done, pe_first, pe_tile_last, pe_nan", "[R*C-1:0]");
  body.wire_range("pe_sum", "[R*C*SW-1:0]");
  body.blank();
  body.line("genvar i, j;");
  Block& gen = body.generate();
  edge_skew(gen);
  gen.blank();
  gen.comment("--- the PE grid: codes and controls move right, codes move down, one PE per cycle");
  grid_forwarding(gen, "CW", "CW")
      .instance(Instance("gsqhw_pe_gsum", "pe")
                    .pin("clk", "clk").pin("rst", "rst")
                    .pin("in_valid", "ctrl_at[K*NC + 3]").pin("in_first", "ctrl_at[K*NC + 2]")
                    .pin("in_last", "ctrl_at[K*NC + 1]").pin("in_group_last", "ctrl_at[K*NC]")
                    .pin("in_a", "a_at[K*CW +: CW]").pin("in_b", "b_at[K*CW +: CW]")
                    .pin("group_done", "pe_done[K]").pin("group_first", "pe_first[K]")
                    .pin("group_tile_last", "pe_tile_last[K]").pin("group_nan", "pe_nan[K]")
                    .pin("group_sum", "pe_sum[K*SW +: SW]"));
  body.blank();
  column_unit(body.generate(), r);
  return m.str();
}

}  // namespace

std::vector<VerilogFile> emit_minifloat_shared_array_files(const DesignPoint& d, const PeSpec& pe) {
  // The PE's multiplier is the format's; the addend and adder belong to the column unit.
  std::vector<VerilogFile> files;
  for (auto& file : emit_leaf_files(d, pe))
    if (file.first == "gsqhw_product.v") files.push_back(std::move(file));
  for (auto& file : emit_leaf_files(d, column_spec(pe)))
    if (file.first != "gsqhw_product.v") files.push_back(std::move(file));
  files.emplace_back("gsqhw_pe_gsum.v", pe_gsum_module(d, pe));
  files.emplace_back("gsqhw_group_acc.v", group_acc_module(d, pe));
  auto delays = emit_delay_files(d);
  files.insert(files.end(), delays.begin(), delays.end());
  files.emplace_back("gsqhw_array.v", array_module(d, pe));
  return files;
}

}  // namespace gsqhw::gen
