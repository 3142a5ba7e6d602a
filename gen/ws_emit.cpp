// The weight-stationary systolic array (flow=ws; docs/generator.md "Weight-stationary arrays",
// protocol in docs/array-protocol.md).
//
// Mapping: the reduction is cut into chunks of R elements. During one chunk PE(i,j) holds the
// weight B[col0+j][k0+i] (k0: the chunk's first element) and the R rows of the tile's A stripe
// stream through the array, one row per cycle: lane i of in_a is A[row][k0+i]. Partial sums
// flow down the columns, so the column adds the chunk's R products of one output in element
// order k0, k0+1, ... -- exactly numerics/gemm.h's order.
//
//   - Skew: lane i enters row i i cycles late and moves one PE to the right per cycle, so
//     PE(i,j) sees the row presented in cycle t in cycle t + i + j.
//   - The running sums live in the PEs: each column is a ring. The sum leaving the bottom PE
//     in cycle t + R + j (the row of cycle t) re-enters the top PE in that same cycle, just
//     when the row of cycle t + R -- the same output row, next chunk -- arrives there. So the
//     column's R psum registers hold the R accumulators of the tile; a chunk's first row
//     restarts them (in_first; GSE: in_group_first). This needs the chunks of a tile back to
//     back, R rows each.
//   - Weights: double-buffered. During chunk c the weight rows of chunk c+1 come in on in_w
//     (row in_w_row, one per cycle, skewed j cycles for column j) into each PE's load
//     register; a PE switches to it when the next chunk's first row reaches it. The first
//     chunk's weights are loaded in the R cycles before the first step (timing.weight_preload).
//   - Formats without groups: each PE adds its product to the partial sum with one rounding
//     (fp32) or one saturating addition (fixed), like the OS PE's accumulate stage; the bottom
//     PE's sum is the result after the tile's last chunk.
//   - GSE: the column sums the products as exact integers (the group sum); after a group's last
//     chunk the bottom PE's sum goes to the column's gsqhw_group_acc (exponent add, alignment,
//     accumulation into a ring of R accumulators; the shared-column unit), which emits the
//     result after the tile's last group. Each group is padded to whole chunks with zero
//     elements so that no chunk straddles two groups.
#include <fmt/format.h>

#include "gen/emit.h"
#include "gen/pipeline.h"
#include "gen/verilog_text.h"

namespace gsqhw::gen {
namespace {

bool is_gse(const PeSpec& pe) { return pe.format.family == OperandFamily::gse; }

// Width of the partial sum that flows down a column: the exact group sum (GSE) or the
// accumulator.
int psum_width(const PeSpec& pe) { return is_gse(pe) ? pe.group_sum_width() : pe.acc_width(); }


std::string pe_ws_module(const DesignPoint& d, const PeSpec& pe) {
  const auto& f = pe.format;
  const bool gse = is_gse(pe);
  const int cw = f.code_bits;
  const int sw = psum_width(pe);
  const PipelinePlan plan = pipeline_plan(d, pe);
  verilog::Module m("gsqhw_pe_ws");
  m.preamble =
      file_header(d, "gsqhw_pe_ws",
                  fmt::format("weight-stationary PE: held weight, product, one {} addition into "
                              "the partial sum passing down the column",
                              gse ? "exact integer" : pe.acc.str())) +
      fmt::format("// A row reaching the PE in cycle t has its partial sum on out_psum in cycle "
                  "t + {} + 1.\n",
                  plan.psum_lag);
  using verilog::in;
  using verilog::out;
  m.port(in("clk")).port(in("rst"));
  m.port(in("in_valid").note("a row of A reaches this PE"));
  m.port(in("in_chunk_start").note("...the first row of a chunk: use the loaded weight from now on"));
  m.port(in("in_restart").note("the partial sum starts from zero (top row only)"));
  m.port(in("in_a", cw));
  m.port(in("in_w_load").note("in_w is this PE's weight for the next chunk"));
  m.port(in("in_w", cw));
  m.port(in("in_psum", sw).note("from the PE above (top row: the column's bottom PE)"));
  if (!gse) m.port(in("in_flags", 2));
  m.port(out("out_psum", sw).as_reg());
  if (!gse) m.port(out("out_flags", 2).as_reg());
  verilog::Block& body = m.body;
  body.comment("--- the weight: the active one multiplies; the loaded one takes over at the next chunk");
  body.reg("w_active", cw).reg("w_loaded", cw);
  body.wire("w_now", cw, "in_chunk_start ? w_loaded : w_active");
  body.always_ff()
      .line("if (in_valid & in_chunk_start) w_active <= w_loaded;")
      .line("if (in_w_load) w_loaded <= in_w;");
  body.wire("x_valid", 1, "in_valid").wire("x_restart", 1, "in_restart");
  body.wire("x_a", cw, "in_a").wire("x_w", cw, "w_now");
  // cut 2 of gen/pipeline.h: in front of the multiplier here (GSE: in gsqhw_group_acc)
  const bool cut_operands = !gse && plan.prepare_cut;
  if (plan.cuts() == 0)
    body.wire("unused_rst", 1, "rst", "no pipeline register to clear at this depth");
  stage_cut(body, "x", "o",
                    {{"valid", 1, false, true},
                     {"restart", 1, false, true},
                     {"a", cw, false, false},
                     {"w", cw, false, false}},
                    cut_operands,
                    cut_operands ? "[cut 0] pipeline register in front of the multiplier"
                                 : "(no register in front of the multiplier at this depth)");

  // --- product
  std::vector<Signal> p_signals = {{"valid", 1, false, true}, {"restart", 1, false, true}};
  body.blank();
  body.comment("--- product: exact, format specific");
  body.wire("p_valid", 1, "o_valid").wire("p_restart", 1, "o_restart");
  product_instance(body, pe, "o_a", "o_w", p_signals);
  const bool cut_product = plan.product_cut;
  stage_cut(body, "p", "m", p_signals, cut_product,
                    cut_product ? "[cut 1] pipeline register after the product"
                                : "(no register after the product at this pipeline depth)");

  if (gse) {
    body.blank();
    body.comment(fmt::format("--- the exact integer partial group sum ({} bits = 2b + log2 G hold any group's sum)", sw));
    group_sum_adder(body, pe, "m_restart", "in_psum", "m_product", "psum_next");
    body.always_ff().if_("m_valid").line("out_psum <= psum_next;");
    return m.str();
  }

  // --- prepare the addend (as the OS PE does)
  std::vector<Signal> q_signals = {{"valid", 1, false, true}, {"restart", 1, false, true}};
  body.blank();
  body.comment("--- prepare the addend");
  body.wire("q_valid", 1, "m_valid").wire("q_restart", 1, "m_restart");
  prepare_addend_stage(body, pe, "m", q_signals);
  const bool cut_addend = plan.accumulate_cut;
  stage_cut(body, "q", "r", q_signals, cut_addend,
                    cut_addend ? "[cut 2] pipeline register between the prepared addend and the adder"
                               : "(no register before the adder at this pipeline depth)");

  // --- add into the partial sum
  body.blank();
  body.comment("--- one addition into the partial sum; a chunk's restart begins from zero");
  accumulate_stage(body, pe, {.restart = "r_restart",
                                .acc_in = "in_psum",
                                .flags_in = "in_flags",
                                .acc_out = "out_psum",
                                .tile_end_valid = false});
  return m.str();
}

using verilog::Block;
using verilog::Instance;

// Which of the R rows of a chunk the step is: chunk_start is high on row 0.
void chunk_counter(Block& body, int r, int rw) {
  body.comment("--- chunk position: steps come in whole chunks of R rows");
  if (r == 1) {
    body.wire("chunk_start", 1, "1'b1", "every chunk is one row");
    return;
  }
  body.reg_range("chunk_step", "[RW-1:0]");
  Block& count = body.always_ff();
  count.line(fmt::format("if (rst) chunk_step <= {};", vlit(rw, 0)));
  count.line(fmt::format("else if (in_valid) chunk_step <= chunk_step == {} ? {} : chunk_step + {};",
                         vlit(rw, r - 1), vlit(rw, 0), vlit(rw, 1)));
  body.wire("chunk_start", 1, fmt::format("chunk_step == {}", vlit(rw, 0)));
}

// Skew at the edges: lane i enters row i i cycles late, column j's weights j cycles late.
void ws_edge_skew(Block& gen, bool gse) {
  gen.comment("--- skew at the edges: lane i enters row i i cycles late, column j's weights j cycles late");
  Block& row = gen.for_("i", "R", "row_skew");
  row.if_("i == 0", "direct")
      .assign("ctrl_at[0 +: NC]", "{in_valid, chunk_start}")
      .assign("a_at[0 +: CW]", "in_a[0 +: CW]");
  row.else_("delayed")
      .instance(Instance("gsqhw_delay_clear", "ctrl_skew")
                    .param("WIDTH", "NC").param("DEPTH", "i")
                    .pin("clk", "clk").pin("rst", "rst").pin("d", "{in_valid, chunk_start}")
                    .pin("q", "ctrl_at[i*C*NC +: NC]"))
      .instance(Instance("gsqhw_delay", "a_skew")
                    .param("WIDTH", "CW").param("DEPTH", "i")
                    .pin("clk", "clk").pin("d", "in_a[i*CW +: CW]").pin("q", "a_at[i*C*CW +: CW]"));
  Block& column = gen.for_("j", "C", "column_skew");
  column.if_("j == 0", "direct")
      .assign("restart_top[0]", gse ? "in_group_first" : "in_first")
      .assign("w_valid_at[0]", "in_w_valid")
      .assign("{w_row_at[0 +: RW], w_at[0 +: CW]}", "{in_w_row, in_w[0 +: CW]}");
  column.else_("delayed")
      .instance(Instance("gsqhw_delay_clear", "restart_step")
                    .param("WIDTH", "2").param("DEPTH", "1")
                    .pin("clk", "clk").pin("rst", "rst")
                    .pin("d", "{restart_top[j-1], w_valid_at[j-1]}")
                    .pin("q", "{restart_top[j], w_valid_at[j]}"))
      .instance(Instance("gsqhw_delay", "w_row_step")
                    .param("WIDTH", "RW").param("DEPTH", "1")
                    .pin("clk", "clk").pin("d", "w_row_at[(j-1)*RW +: RW]")
                    .pin("q", "w_row_at[j*RW +: RW]"))
      .instance(Instance("gsqhw_delay", "w_skew")
                    .param("WIDTH", "CW").param("DEPTH", "j")
                    .pin("clk", "clk").pin("d", "in_w[j*CW +: CW]").pin("q", "w_at[j*CW +: CW]"));
}

// The PE grid: rows move right; partial sums (and, without groups, their flags) move down,
// the bottom row feeding the top.
void ws_grid(Block& gen, bool gse, int rw) {
  gen.comment("--- the PE grid: rows move right; partial sums move down, the bottom feeding the top");
  Block& column = grid_forwarding(gen, "CW", "");
  Block& ring = column.if_("i == 0", "ring");
  ring.assign("psum_above[K*SW +: SW]", "psum[((R-1)*C + j)*SW +: SW]");
  if (!gse) ring.assign("flags_above[K*2 +: 2]", "flags[((R-1)*C + j)*2 +: 2]");
  Block& chain = column.else_("chain");
  chain.assign("psum_above[K*SW +: SW]", "psum[(K-C)*SW +: SW]");
  if (!gse) chain.assign("flags_above[K*2 +: 2]", "flags[(K-C)*2 +: 2]");
  Instance pe("gsqhw_pe_ws", "pe");
  pe.pin("clk", "clk").pin("rst", "rst");
  pe.pin("in_valid", "ctrl_at[K*NC + 1]").pin("in_chunk_start", "ctrl_at[K*NC]");
  pe.pin("in_restart", "i == 0 && restart_top[j]").pin("in_a", "a_at[K*CW +: CW]");
  pe.pin("in_w_load", fmt::format("w_valid_at[j] && {{{}'d0, w_row_at[j*RW +: RW]}} == i", 32 - rw));
  pe.pin("in_w", "w_at[j*CW +: CW]").pin("in_psum", "psum_above[K*SW +: SW]");
  if (!gse) pe.pin("in_flags", "flags_above[K*2 +: 2]").pin("out_flags", "flags[K*2 +: 2]");
  pe.pin("out_psum", "psum[K*SW +: SW]");
  column.instance(pe);
}

// GSE: after a group's last chunk the column's sums (rows in order, one per cycle) go to the
// column's gsqhw_group_acc, with the exponents delayed to meet them.
void ws_group_units(Block& body, int r, int xw) {
  body.comment("--- after a group's last chunk the column's sums (rows in order, one per cycle) go to the\n"
               "column's gsqhw_group_acc, with the exponents delayed to meet them");
  Block& unit = body.generate().for_("j", "C", "unit");
  unit.wire("bottom_ctrl", 4, "", "{valid, first, last, group_last} of the row leaving the bottom PE");
  unit.wire("a_exp_bottom", xw).wire("b_exp_bottom", xw);
  unit.instance(Instance("gsqhw_delay_clear", "ctrl_to_bottom")
                    .param("WIDTH", "4").param("DEPTH", "R + j + LAG")
                    .pin("clk", "clk").pin("rst", "rst")
                    .pin("d", "{in_valid, in_first, in_last, in_group_last}").pin("q", "bottom_ctrl"));
  unit.instance(Instance("gsqhw_delay", "exps_to_bottom")
                    .param("WIDTH", std::to_string(2 * xw)).param("DEPTH", "R + j + LAG")
                    .pin("clk", "clk").pin("d", fmt::format("{{in_a_exp, in_b_exp[j*{0} +: {0}]}}", xw))
                    .pin("q", "{a_exp_bottom, b_exp_bottom}"));
  unit.wire("result_valid").wire_range("result_acc", "[AW-1:0]").wire("result_flags", 2);
  unit.instance(Instance("gsqhw_group_acc", "group_acc")
                    .pin("clk", "clk").pin("rst", "rst")
                    .pin("in_valid", "bottom_ctrl[3] & bottom_ctrl[0]")
                    .pin("in_first", "bottom_ctrl[2]").pin("in_last", "bottom_ctrl[1]")
                    .pin("in_sum", "psum[((R-1)*C + j)*SW +: SW]")
                    .pin("in_a_exp", "a_exp_bottom").pin("in_b_exp", "b_exp_bottom")
                    .pin("out_valid", "result_valid").pin("out_acc", "result_acc")
                    .pin("out_flags", "result_flags"));
  result_row_counter(column_result_deskew(unit), r, "result_valid");
}

// Others: after a tile's last chunk the bottom PE of column j holds row r's result in cycle
// t_r + R + j + LAG; column C-1's copy of the controls says when.
void ws_drain(Block& body, int r) {
  body.comment("--- after a tile's last chunk the bottom PE of column j holds row r's result in cycle\n"
               "t_r + R + j + LAG; column C-1's copy of the controls says when");
  body.wire("bottom_ctrl", 2, "", "{valid, last} of the row leaving the bottom of column C-1");
  body.instance(Instance("gsqhw_delay_clear", "ctrl_to_bottom")
                    .param("WIDTH", "2").param("DEPTH", "R + C - 1 + LAG")
                    .pin("clk", "clk").pin("rst", "rst").pin("d", "{in_valid, in_last}")
                    .pin("q", "bottom_ctrl"));
  body.assign("out_valid", "bottom_ctrl[1] & bottom_ctrl[0]");
  Block& drain = body.generate().for_("j", "C", "drain");
  drain.localparam_integer("BOTTOM", "(R-1)*C + j");
  const std::string bottom = "{flags[BOTTOM*2 +: 2], psum[BOTTOM*SW +: SW]}";
  const std::string outputs = "{out_flags[j*2 +: 2], out_acc[j*AW +: AW]}";
  Block& direct = drain.if_("j == C-1", "direct");
  direct.assign(outputs, bottom);
  result_row_counter(direct, r, "out_valid");
  drain.else_("deskew").instance(Instance("gsqhw_delay", "deskew_line")
                                     .param("WIDTH", "AW+2").param("DEPTH", "C-1-j")
                                     .pin("clk", "clk").pin("d", bottom).pin("q", outputs));
}

std::string ws_array_module(const DesignPoint& d, const PeSpec& pe) {
  const bool gse = is_gse(pe);
  const int r = d.rows, c = d.cols, cw = pe.format.code_bits, xw = pe.format.exp_bits;
  const PipelinePlan plan = pipeline_plan(d, pe);
  const int rw = std::max(1, ceil_log2(r));
  verilog::Module m("gsqhw_array");
  m.preamble =
      file_header(d, "gsqhw_array",
                  fmt::format("{} x {} weight-stationary systolic array of gsqhw_pe_ws{}; ports "
                              "of docs/array-protocol.md",
                              r, c, gse ? " with a gsqhw_group_acc per column" : "")) +
      fmt::format("// Timing: the R weight rows of a GEMM's first chunk are loaded in the R "
                  "cycles before its\n// first step; then steps (one A row each) come back to "
                  "back in whole chunks of R. A tile whose\n// last step is presented in cycle t "
                  "has row r of its results on out_acc in cycle t + {} + r.\n",
                  plan.latency);
  m.ports(with_regs(ws_array_ports(d, pe), {"out_row"}));
  Block& body = m.body;
  body.localparam("R", std::to_string(r));
  body.localparam("C", std::to_string(c));
  body.localparam("CW", std::to_string(cw), "element code width");
  body.localparam("RW", std::to_string(rw), "row index width");
  body.localparam("SW", std::to_string(psum_width(pe)),
                  gse ? "partial sum width (exact group sum, 2b + log2 G)"
                      : "partial sum width (the accumulator)");
  body.localparam("AW", std::to_string(pe.acc_width()), "accumulator width");
  body.localparam("NC", "2", "controls travelling with the rows: {valid, chunk_start}");
  body.localparam("LAG", std::to_string(plan.psum_lag),
                  "cycles from a row reaching a PE to its addition there");
  body.blank();
  chunk_counter(body, r, rw);
  body.blank();
  body.comment("What each PE(i,j) sees, flattened at index k = i*C + j.");
  body.wire_range("ctrl_at", "[R*C*NC-1:0]").wire_range("a_at", "[R*C*CW-1:0]");
  body.wire_range("restart_top", "[C-1:0]", "column j's top PE: the partial sums restart (row 0's skew)");
  body.wire_range("w_valid_at", "[C-1:0]", "column j's weight bus (skewed j cycles)");
  body.wire_range("w_row_at", "[C*RW-1:0]").wire_range("w_at", "[C*CW-1:0]");
  body.wire_range("psum", "[R*C*SW-1:0]", "PE(i,j)'s partial sum register");
  body.wire_range("psum_above", "[R*C*SW-1:0]", "what enters PE(i,j) from above");
  if (!gse) {
    body.wire_range("flags", "[R*C*2-1:0]", "PE(i,j)'s sticky flags (travel with its partial sum)");
    body.wire_range("flags_above", "[R*C*2-1:0]");
  }
  body.blank();
  body.line("genvar i, j;");
  Block& gen = body.generate();
  ws_edge_skew(gen, gse);
  gen.blank();
  ws_grid(gen, gse, rw);
  // The bottom of each column, then the deskew that lines the columns up (column j is C-1-j
  // cycles ahead of the last one); results leave in complete waves of R rows, in order.
  body.blank();
  if (gse)
    ws_group_units(body, r, xw);
  else
    ws_drain(body, r);
  return m.str();
}

}  // namespace

std::vector<VerilogFile> emit_ws_array_files(const DesignPoint& d, const PeSpec& pe) {
  std::vector<VerilogFile> files = emit_leaf_files(d, pe);
  files.emplace_back("gsqhw_pe_ws.v", pe_ws_module(d, pe));
  if (is_gse(pe)) files.emplace_back("gsqhw_group_acc.v", group_acc_file(d, pe));
  auto delays = emit_delay_files(d);
  files.insert(files.end(), delays.begin(), delays.end());
  files.emplace_back("gsqhw_array.v", ws_array_module(d, pe));
  return files;
}

}  // namespace gsqhw::gen
