// GSE-INT array with the per-group hardware shared by the PEs of a column
// (design option align=shared).
//
// Why: a GSE PE needs its exponent add, alignment shifter and wide accumulator adder only once
// per group (every G steps). Here each PE keeps just the b x b multiplier and the exact
// (2b + log2 G)-bit group sum; the accumulators and the per-group hardware live at the bottom
// of each column:
//
//   - PE(i,j) finishes a group in cycle t_g + i + j (t_g: the group's last step at the ports),
//     so in a column the PEs finish one per cycle, top to bottom. An OR-bus carries the one
//     finished group sum per cycle to the column's gsqhw_group_acc.
//   - gsqhw_group_acc adds the group's exponent codes, aligns the sum (gsqhw_addend_*) and
//     accumulates it (gsqhw_acc_*) into a ring of R accumulators that rotates once per
//     finished group sum: rows arrive in order 0..R-1, so the ring's head is always the row on
//     the bus. On a tile's last group the new accumulator is the result: it leaves through the
//     same deskew as the per-PE array (rows in order, one per cycle).
//   - exponent codes never enter the grid: they are skewed at the edges with the codes; the
//     row exponent is picked off the left edge when a group ends there and delayed along the
//     bottom, the column exponent is held at the top of each column.
//
// The price: a column serves one group end per cycle, so every group must have at least R
// steps (timing.min_steps_per_group = R; the driver pads short groups with zero elements that
// carry the group's exponent). Full groups satisfy it whenever G >= R.
#include <fmt/format.h>

#include "gen/emit.h"
#include "gen/pipeline.h"
#include "gen/verilog_text.h"

namespace gsqhw::gen {
namespace {

bool fixed_acc(const PeSpec& pe) { return pe.acc.kind == AccumulatorSpec::Kind::fixed; }

std::string pe_gsum_module(const DesignPoint& d, const PeSpec& pe) {
  int cw = pe.format.code_bits, sw = pe.group_sum_width();
  // Cuts (gen/pipeline.h): cut 1 after the product, cut 2 in front of the group accumulator's
  // addend preparation, cut 3 between preparation and the accumulator loop.
  const PipelinePlan cuts = pipeline_plan(d, pe);
  verilog::Module m("gsqhw_pe_gsum");
  m.preamble = file_header(
      d, "gsqhw_pe_gsum",
      "GSE-INT PE without per-group hardware: b x b multiplier and exact group sum only") +
      "// group_done is high for one cycle when group_sum holds a finished group (its scale,\n"
      "// alignment and accumulation happen in the column's gsqhw_group_acc).\n";
  using verilog::in;
  using verilog::out;
  m.port(in("clk")).port(in("rst")).port(in("in_valid")).port(in("in_first")).port(in("in_last"));
  m.port(in("in_group_last")).port(in("in_a", cw)).port(in("in_b", cw));
  m.port(out("group_done").as_reg());
  m.port(out("group_first").as_reg().note("the finished group is the first of its tile"));
  m.port(out("group_tile_last").as_reg().note("the finished group is the last of its tile"));
  m.port(out("group_sum", sw).as_reg().as_signed());
  verilog::Block& body = m.body;
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
  body.comment("--- exact integer group sum");
  body.reg("group_open", 1, "a group has started and not yet ended");
  body.reg("group_is_first", 1, "the open group began with in_first");
  body.wire("group_start", 1, "m_first | ~group_open");
  body.wire("group_end", 1, "m_group_last | m_last");
  group_sum_adder(body, pe, "group_start", "group_sum", "m_product", "group_sum_next");
  verilog::Block& ff = body.always_ff();
  ff.if_("rst").line("group_open <= 1'b0;");
  ff.else_if("m_valid").line("group_open <= ~group_end;");
  ff.line("group_done <= rst ? 1'b0 : m_valid & group_end;");
  ff.if_("m_valid")
      .line("group_sum <= group_sum_next;")
      .line("group_is_first <= group_start ? m_first : group_is_first;");
  ff.if_("m_valid & group_end")
      .line("group_first <= group_start ? m_first : group_is_first;")
      .line("group_tile_last <= m_last;");
  return m.str();
}

std::string group_acc_module(const DesignPoint& d, const PeSpec& pe) {
  int sw = pe.group_sum_width(), xw = pe.format.exp_bits, uw = pe.exp_code_width();
  int aw = pe.acc_width(), r = d.rows;
  // Cuts (gen/pipeline.h): cut 1 after the product, cut 2 in front of the group accumulator's
  // addend preparation, cut 3 between preparation and the accumulator loop.
  const PipelinePlan cuts = pipeline_plan(d, pe);
  verilog::Module m("gsqhw_group_acc");
  m.preamble =
      file_header(d, "gsqhw_group_acc",
                  fmt::format("a column's per-group hardware: exponent add, alignment, {} "
                              "accumulation into a ring of {} accumulators",
                              pe.acc.str(), r)) +
      "// One finished group sum per cycle at most, rows in order 0..R-1 within each wave.\n";
  using verilog::in;
  using verilog::out;
  m.port(in("clk")).port(in("rst")).port(in("in_valid"));
  m.port(in("in_first").note("first group of the tile: the accumulator starts from zero"));
  m.port(in("in_last").note("last group of the tile: the new accumulator is the result"));
  m.port(in("in_sum", sw).as_signed()).port(in("in_a_exp", xw)).port(in("in_b_exp", xw));
  m.port(out("out_valid").as_reg()).port(out("out_acc", aw).as_reg()).port(out("out_flags", 2).as_reg());
  verilog::Block& body = m.body;
  body.wire("g_valid", 1, "in_valid").wire("g_first", 1, "in_first").wire("g_last", 1, "in_last");
  body.wire_signed("g_sum", sw, "in_sum");
  group_exponent(body, pe, "in_a_exp", "in_b_exp", "g_exp_code", "g_nan");
  std::vector<Signal> g_signals = {{"valid", 1, false, true}, {"first", 1, false, true},
                                   {"last", 1, false, true},  {"sum", sw, true, false},
                                   {"exp_code", uw, false, false}, {"nan", 1, false, false}};
  stage_cut(body, "g", "a", g_signals, cuts.prepare_cut,
                    cuts.prepare_cut ? "[cut] pipeline register before the addend is prepared"
                                    : "(no register before the addend preparation at this depth)");
  std::vector<Signal> q_signals = {{"valid", 1, false, true}, {"first", 1, false, true},
                                   {"last", 1, false, true}, {"nan", 1, false, false}};
  body.blank();
  body.comment("--- prepare the addend");
  body.wire("q_valid", 1, "a_valid").wire("q_first", 1, "a_first").wire("q_last", 1, "a_last");
  body.wire("q_nan", 1, "a_nan");
  addend_unit(body, pe, {{"value", "a_sum"}, {"exp_code", "a_exp_code"}}, q_signals);
  stage_cut(body, "q", "r", q_signals, cuts.accumulate_cut,
                    cuts.accumulate_cut ? "[cut 3] pipeline register before the accumulator"
                                       : "(no register before the accumulator at this depth)");
  int slot = aw + 2;
  body.blank();
  body.comment("--- the ring of R accumulators {flags, acc}, head (row on the bus) at the bottom slot;\n"
               "it rotates once per finished group, the new value entering at the top");
  body.reg("ring", r * slot);
  body.wire("head_acc", aw, fmt::format("ring[{}:0]", aw - 1));
  body.wire("head_flags", 2, fmt::format("ring[{}:{}]", aw + 1, aw));
  accumulator_adder(body, pe, "r_first", "head_acc", "head_flags");
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
  verilog::Block& ff = body.always_ff();
  if (r == 1)
    ff.line("if (r_valid) ring <= {flags_new, acc_new};");
  else
    ff.line(fmt::format("if (r_valid) ring <= {{flags_new, acc_new, ring[{}:{}]}};", r * slot - 1,
                        slot));
  ff.line("out_valid <= rst ? 1'b0 : r_valid & r_last;");
  ff.if_("r_valid & r_last").line("out_acc <= acc_new;").line("out_flags <= flags_new;");
  return m.str();
}

using verilog::Block;
using verilog::Instance;

// Skew at the edges: row i's lane enters i cycles late, column j's lane j cycles late; the
// exponents stay at the edges (a_exp_left, b_exp_top), only codes enter the grid.
void shared_edge_skew(Block& gen) {
  const std::string ctrl = "{in_valid, in_first, in_last, in_group_last}";
  gen.comment("--- skew at the edges: row i's lane enters i cycles late, column j's lane j cycles late");
  Block& row = gen.for_("i", "R", "row_skew");
  row.if_("i == 0", "direct")
      .assign("ctrl_at[0 +: NC]", ctrl)
      .assign("{a_exp_left[0 +: XW], a_at[0 +: CW]}", "{in_a_exp[0 +: XW], in_a[0 +: CW]}");
  row.else_("delayed")
      .instance(Instance("gsqhw_delay_clear", "ctrl_skew")
                    .param("WIDTH", "NC").param("DEPTH", "i")
                    .pin("clk", "clk").pin("rst", "rst").pin("d", ctrl)
                    .pin("q", "ctrl_at[i*C*NC +: NC]"))
      .instance(Instance("gsqhw_delay", "a_skew")
                    .param("WIDTH", "LX").param("DEPTH", "i")
                    .pin("clk", "clk").pin("d", "{in_a_exp[i*XW +: XW], in_a[i*CW +: CW]}")
                    .pin("q", "{a_exp_left[i*XW +: XW], a_at[i*C*CW +: CW]}"));
  Block& column = gen.for_("j", "C", "column_skew");
  column.if_("j == 0", "direct")
      .assign("{b_exp_top[0 +: XW], b_at[0 +: CW]}", "{in_b_exp[0 +: XW], in_b[0 +: CW]}");
  column.else_("delayed")
      .instance(Instance("gsqhw_delay", "b_skew")
                    .param("WIDTH", "LX").param("DEPTH", "j")
                    .pin("clk", "clk").pin("d", "{in_b_exp[j*XW +: XW], in_b[j*CW +: CW]}")
                    .pin("q", "{b_exp_top[j*XW +: XW], b_at[j*CW +: CW]}"));
}

// Row exponents: when a group ends at the left edge of row i (cycle t_g + i), its exponent is
// picked off there; the stream then walks along the bottom, one column per cycle.
void row_exponent_wave(Block& body, int to_unit) {
  body.comment("--- row exponents: when a group ends at the left edge of row i (cycle t_g + i), its\n"
               "exponent is picked off there; the stream then walks along the bottom, one column per cycle");
  body.reg_range("a_exp_wave", "[XW-1:0]").integer("left_row");
  Block& pick = body.always_comb();
  pick.line("a_exp_wave = {XW{1'b0}};");
  pick.for_("left_row", "R")
      .if_("ctrl_at[left_row*C*NC + 3] & (ctrl_at[left_row*C*NC] | ctrl_at[left_row*C*NC + 1])")
      .line("a_exp_wave = a_exp_wave | a_exp_left[left_row*XW +: XW];");
  body.wire_range("a_exp_bottom", "[C*XW-1:0]",
                  fmt::format("column j: a_exp_wave delayed {} + j cycles", to_unit));
  body.instance(Instance("gsqhw_delay", "a_exp_to_units")
                    .param("WIDTH", "XW").param("DEPTH", std::to_string(to_unit))
                    .pin("clk", "clk").pin("d", "a_exp_wave").pin("q", "a_exp_bottom[0 +: XW]"));
}

// Column j's unit: the walking row exponent, the held column exponent, the OR-bus of the
// (at most one) PE finishing a group per cycle, gsqhw_group_acc and the result deskew.
void column_unit(Block& gen, int r, int to_unit) {
  Block& unit = gen.for_("j", "C", "unit");
  unit.if_("j + 1 < C", "walk")
      .instance(Instance("gsqhw_delay", "a_exp_step")
                    .param("WIDTH", "XW").param("DEPTH", "1")
                    .pin("clk", "clk").pin("d", "a_exp_bottom[j*XW +: XW]")
                    .pin("q", "a_exp_bottom[(j+1)*XW +: XW]"));
  unit.comment("column exponent: held when the group ends at the top of the column (cycle t_g + j)\n"
               "and delayed to meet the group's wave of sums at the unit");
  unit.reg_range("b_exp_held", "[XW-1:0]");
  unit.always_ff()
      .if_("ctrl_at[j*NC + 3] & (ctrl_at[j*NC] | ctrl_at[j*NC + 1])")
      .line("b_exp_held <= b_exp_top[j*XW +: XW];");
  unit.wire_range("b_exp_at_unit", "[XW-1:0]");
  if (to_unit - 1 == 0)
    unit.assign("b_exp_at_unit", "b_exp_held");
  else
    unit.instance(Instance("gsqhw_delay", "b_exp_to_unit")
                      .param("WIDTH", "XW").param("DEPTH", std::to_string(to_unit - 1))
                      .pin("clk", "clk").pin("d", "b_exp_held").pin("q", "b_exp_at_unit"));
  unit.comment("the column's OR-bus: at most one PE finishes a group per cycle");
  unit.reg_range("finished_sum", "[SW-1:0]");
  unit.reg("finished_any, finished_first, finished_last").integer("r");
  Block& bus = unit.always_comb();
  bus.line("finished_sum = {SW{1'b0}};").line("finished_any = 1'b0;");
  bus.line("finished_first = 1'b0;").line("finished_last = 1'b0;");
  bus.for_("r", "R").if_("pe_done[r*C + j]")
      .line("finished_sum = finished_sum | pe_sum[(r*C + j)*SW +: SW];")
      .line("finished_any = 1'b1;")
      .line("finished_first = finished_first | pe_first[r*C + j];")
      .line("finished_last = finished_last | pe_tile_last[r*C + j];");
  unit.reg("bus_valid, bus_first, bus_last");
  unit.decl({"reg", "bus_sum", "[SW-1:0]", true, "", ""});
  Block& hold = unit.always_ff();
  hold.line("bus_valid <= rst ? 1'b0 : finished_any;");
  hold.if_("finished_any")
      .line("bus_sum <= finished_sum;")
      .line("bus_first <= finished_first;")
      .line("bus_last <= finished_last;");
  unit.wire("result_valid").wire_range("result_acc", "[AW-1:0]").wire("result_flags", 2);
  unit.instance(Instance("gsqhw_group_acc", "group_acc")
                    .pin("clk", "clk").pin("rst", "rst").pin("in_valid", "bus_valid")
                    .pin("in_first", "bus_first").pin("in_last", "bus_last")
                    .pin("in_sum", "bus_sum").pin("in_a_exp", "a_exp_bottom[j*XW +: XW]")
                    .pin("in_b_exp", "b_exp_at_unit").pin("out_valid", "result_valid")
                    .pin("out_acc", "result_acc").pin("out_flags", "result_flags"));
  unit.comment("deskew: column j is C-1-j cycles ahead of the last column");
  Block& direct = column_result_deskew(unit);
  direct.comment("results leave in complete waves of R rows, in order: count them");
  result_row_counter(direct, r, "result_valid");
}

std::string shared_array_module(const DesignPoint& d, const PeSpec& pe) {
  const int r = d.rows, c = d.cols;
  // Cycles from a group's last step at PE(i,j) to its sum at the column unit (gen/pipeline.h).
  const PipelinePlan plan = pipeline_plan(d, pe);
  verilog::Module m("gsqhw_array");
  m.preamble =
      file_header(d, "gsqhw_array",
                  fmt::format("{} x {} output-stationary GSE-INT array, per-group hardware "
                              "shared by the PEs of each column; ports of docs/array-protocol.md",
                              r, c)) +
      fmt::format("// Timing: a tile whose in_last step is presented in cycle t has row r of its "
                  "results on\n// out_acc in cycle t + {} + r. Tiles and groups need at least R "
                  "= {} steps each.\n",
                  plan.latency, r);
  m.ports(with_regs(os_array_ports(pe, r, c), {"out_row"}));
  Block& body = m.body;
  body.localparam("R", std::to_string(r));
  body.localparam("C", std::to_string(c));
  body.localparam("CW", std::to_string(pe.format.code_bits), "element code width");
  body.localparam("XW", std::to_string(pe.format.exp_bits), "exponent code width");
  body.localparam("SW", std::to_string(pe.group_sum_width()), "group sum width, 2b + log2 G");
  body.localparam("AW", std::to_string(pe.acc_width()), "accumulator width");
  body.localparam("NC", "4", "controls: {valid, first, last, group_last}");
  body.localparam("LX", "CW + XW", "edge lanes: {exponent, code}; only codes enter the grid");
  body.blank();
  body.comment("What each PE(i,j) sees, flattened at index k = i*C + j.");
  body.wire_range("ctrl_at", "[R*C*NC-1:0]").wire_range("a_at", "[R*C*CW-1:0]");
  body.wire_range("b_at", "[R*C*CW-1:0]");
  body.wire_range("a_exp_left", "[R*XW-1:0]", "row i's exponent at the left edge (skewed like its codes)");
  body.wire_range("b_exp_top", "[C*XW-1:0]", "column j's exponent at the top edge");
  body.wire_range("pe_done, pe_first, pe_tile_last", "[R*C-1:0]");
  body.wire_range("pe_sum", "[R*C*SW-1:0]");
  body.blank();
  body.line("genvar i, j;");
  Block& gen = body.generate();
  shared_edge_skew(gen);
  gen.blank();
  gen.comment("--- the PE grid: codes and controls move right, codes move down, one PE per cycle");
  grid_forwarding(gen, "CW", "CW")
      .instance(Instance("gsqhw_pe_gsum", "pe")
                    .pin("clk", "clk").pin("rst", "rst")
                    .pin("in_valid", "ctrl_at[K*NC + 3]").pin("in_first", "ctrl_at[K*NC + 2]")
                    .pin("in_last", "ctrl_at[K*NC + 1]").pin("in_group_last", "ctrl_at[K*NC]")
                    .pin("in_a", "a_at[K*CW +: CW]").pin("in_b", "b_at[K*CW +: CW]")
                    .pin("group_done", "pe_done[K]").pin("group_first", "pe_first[K]")
                    .pin("group_tile_last", "pe_tile_last[K]").pin("group_sum", "pe_sum[K*SW +: SW]"));
  body.blank();
  row_exponent_wave(body, plan.sum_to_unit);
  body.blank();
  column_unit(body.generate(), r, plan.sum_to_unit);
  return m.str();
}

}  // namespace

std::string group_acc_file(const DesignPoint& d, const PeSpec& pe) { return group_acc_module(d, pe); }

std::vector<VerilogFile> emit_shared_array_files(const DesignPoint& d, const PeSpec& pe) {
  std::vector<VerilogFile> files = emit_leaf_files(d, pe);
  files.emplace_back("gsqhw_pe_gsum.v", pe_gsum_module(d, pe));
  files.emplace_back("gsqhw_group_acc.v", group_acc_module(d, pe));
  auto delays = emit_delay_files(d);
  files.insert(files.end(), delays.begin(), delays.end());
  files.emplace_back("gsqhw_array.v", shared_array_module(d, pe));
  return files;
}

}  // namespace gsqhw::gen
