// The output-stationary systolic array (docs/array-protocol.md).
//
// Data movement:
//   - row i's A codes/exponents and the step controls (valid, first, last, group_last) enter
//     i cycles late and move one PE to the right per cycle; column j's B codes/exponents enter
//     j cycles late and move one PE down per cycle, so PE(i,j) sees step k in cycle k + i + j.
//   - drain: PE(i,j) finishes a tile in cycle t + i + j + pipe (t: the cycle of in_last). In a
//     column the PEs therefore finish one per cycle, top to bottom, so a column needs no
//     shadow registers: an OR-bus picks the one finishing PE's result each cycle (at most one
//     PE per column finishes per cycle as long as tiles have >= R steps). Column j's bus is
//     registered and then delayed C-1-j cycles, which lines the columns up: row r of a tile
//     leaves in cycle t + pipe + C + r, rows in order, one per cycle, while the next tile is
//     already accumulating.
#include <fmt/format.h>

#include "gen/emit.h"
#include "gen/pipeline.h"
#include "gen/verilog_text.h"

namespace gsqhw::gen {
namespace {

using verilog::Instance;

// gsqhw_delay / gsqhw_delay_clear: DEPTH >= 1 register stages of WIDTH bits; the clearing
// variant (valid and control bits) resets to zero.
std::string delay_module(const DesignPoint& d, bool clear) {
  const std::string name = clear ? "gsqhw_delay_clear" : "gsqhw_delay";
  verilog::Module m(name);
  m.preamble = file_header(d, name,
                           clear ? "a delay line of DEPTH >= 1 register stages for valid/control "
                                   "bits, cleared by the synchronous reset"
                                 : "a delay line of DEPTH >= 1 register stages for data");
  m.parameter("WIDTH", "1").parameter("DEPTH", "1");
  m.port(verilog::in("clk"));
  if (clear) m.port(verilog::in("rst"));
  m.port(verilog::in("d", "WIDTH")).port(verilog::out("q", "WIDTH"));
  m.body.reg_range("stages", verilog::range("DEPTH*WIDTH"),
                   "stage s at [s*WIDTH +: WIDTH], the oldest on top");
  verilog::Block& gen = m.body.generate();
  const std::string shifted = "{stages[(DEPTH-1)*WIDTH-1:0], d}";
  gen.if_("DEPTH == 1", "single")
      .line(clear ? "always @(posedge clk) stages <= rst ? {WIDTH{1'b0}} : d;"
                  : "always @(posedge clk) stages <= d;");
  gen.else_("chain").line(
      clear ? "always @(posedge clk) stages <= rst ? {DEPTH*WIDTH{1'b0}} : " + shifted + ";"
            : "always @(posedge clk) stages <= " + shifted + ";");
  m.body.assign("q", "stages[(DEPTH-1)*WIDTH +: WIDTH]");
  return m.str();
}

// The skew at the array's edges: row i's controls and A lane enter i cycles late, column j's
// B lane j cycles late.
void edge_skew(verilog::Block& gen, bool groups) {
  const std::string ctrl = groups ? "{in_valid, in_first, in_last, in_group_last}"
                                  : "{in_valid, in_first, in_last}";
  auto lane = [&](char side, const std::string& index) {
    const std::string x = index == "0" ? "0" : index + "*XW", c = index == "0" ? "0" : index + "*CW";
    return groups ? fmt::format("{{in_{0}_exp[{1} +: XW], in_{0}[{2} +: CW]}}", side, x, c)
                  : fmt::format("in_{}[{} +: CW]", side, c);
  };
  gen.comment("--- skew: row i's controls and A lane enter i cycles late, column j's B lane j cycles late");
  verilog::Block& row = gen.for_("i", "R", "row_skew");
  row.if_("i == 0", "direct")
      .assign("ctrl_at[0 +: NC]", ctrl)
      .assign("a_at[0 +: LA]", lane('a', "0"));
  row.else_("delayed")
      .instance(Instance("gsqhw_delay_clear", "ctrl_skew")
                    .param("WIDTH", "NC").param("DEPTH", "i")
                    .pin("clk", "clk").pin("rst", "rst").pin("d", ctrl)
                    .pin("q", "ctrl_at[i*C*NC +: NC]"))
      .instance(Instance("gsqhw_delay", "a_skew")
                    .param("WIDTH", "LA").param("DEPTH", "i")
                    .pin("clk", "clk").pin("d", lane('a', "i")).pin("q", "a_at[i*C*LA +: LA]"));
  verilog::Block& column = gen.for_("j", "C", "column_skew");
  column.if_("j == 0", "direct").assign("b_at[0 +: LB]", lane('b', "0"));
  column.else_("delayed").instance(Instance("gsqhw_delay", "b_skew")
                                       .param("WIDTH", "LB").param("DEPTH", "j")
                                       .pin("clk", "clk").pin("d", lane('b', "j"))
                                       .pin("q", "b_at[j*LB +: LB]"));
}

// PE(i,j) of the grid, wired to the flattened lanes at index K.
Instance grid_pe(bool groups) {
  Instance pe("gsqhw_pe", "pe");
  pe.pin("clk", "clk").pin("rst", "rst");
  pe.pin("in_valid", "ctrl_at[K*NC + NC-1]").pin("in_first", "ctrl_at[K*NC + NC-2]");
  pe.pin("in_last", "ctrl_at[K*NC + NC-3]");
  if (groups) pe.pin("in_group_last", "ctrl_at[K*NC + NC-4]");
  pe.pin("in_a", "a_at[K*LA +: CW]").pin("in_b", "b_at[K*LB +: CW]");
  if (groups) pe.pin("in_a_exp", "a_at[K*LA + CW +: XW]").pin("in_b_exp", "b_at[K*LB + CW +: XW]");
  pe.pin("out_valid", "pe_done[K]").pin("out_row", "unused_pe_row[K]");
  pe.pin("out_acc", "pe_acc[K*AW +: AW]").pin("out_flags", "pe_flags[K*2 +: 2]");
  return pe;
}

// Column j's drain: an OR-bus of the (at most one) PE finishing this cycle, registered, then
// delayed C-1-j cycles so that all columns of a row leave together.
void column_drain(verilog::Block& gen) {
  gen.comment("--- drain: per column an OR-bus of the (at most one) PE finishing this cycle,\n"
              "registered, then delayed C-1-j cycles so that all columns of a row leave together");
  verilog::Block& column = gen.for_("j", "C", "drain");
  column.reg_range("finished_acc", "[AW-1:0]");
  column.reg("finished_flags", 2).reg("finished_any").integer("r");
  verilog::Block& bus = column.always_comb();
  bus.line("finished_acc = {AW{1'b0}};").line("finished_flags = 2'b00;").line("finished_any = 1'b0;");
  bus.for_("r", "R").if_("pe_done[r*C + j]")
      .line("finished_acc = finished_acc | pe_acc[(r*C + j)*AW +: AW];")
      .line("finished_flags = finished_flags | pe_flags[(r*C + j)*2 +: 2];")
      .line("finished_any = 1'b1;");
  column.reg_range("bus", "[AW+1:0]");
  column.line("always @(posedge clk) if (finished_any) bus <= {finished_flags, finished_acc};");
  column.if_("j == C-1", "direct").assign("{out_flags[j*2 +: 2], out_acc[j*AW +: AW]}", "bus");
  column.else_("deskew").instance(Instance("gsqhw_delay", "deskew_line")
                                      .param("WIDTH", "AW+2").param("DEPTH", "C-1-j")
                                      .pin("clk", "clk").pin("d", "bus")
                                      .pin("q", "{out_flags[j*2 +: 2], out_acc[j*AW +: AW]}"));
}

// out_valid / out_row from the last column, whose results need no deskew.
void last_column_valid(verilog::Block& body, int rw) {
  body.comment("--- out_valid / out_row come from the last column, whose results need no deskew");
  body.reg("finishing_row", rw).reg("finishing").integer("row_index");
  verilog::Block& pick = body.always_comb();
  pick.line(fmt::format("finishing_row = {};", vlit(rw, 0))).line("finishing = 1'b0;");
  pick.for_("row_index", "R").if_("pe_done[row_index*C + C-1]")
      .line(fmt::format("finishing_row = finishing_row | row_index[{}:0];", rw - 1))
      .line("finishing = 1'b1;");
  body.always_ff()
      .line("out_valid <= rst ? 1'b0 : finishing;")
      .line("out_row <= finishing_row;");
}

}  // namespace

std::vector<VerilogFile> emit_delay_files(const DesignPoint& d) {
  return {{"gsqhw_delay.v", delay_module(d, false)},
          {"gsqhw_delay_clear.v", delay_module(d, true)}};
}

std::vector<VerilogFile> emit_array_files(const DesignPoint& d, const PeSpec& pe) {
  const auto& f = pe.format;
  const bool groups = f.has_groups();
  const int r = d.rows, c = d.cols;
  const int rw = std::max(1, ceil_log2(r));
  verilog::Module m("gsqhw_array");
  m.preamble =
      file_header(d, "gsqhw_array",
                  fmt::format("{} x {} output-stationary systolic array of gsqhw_pe; ports of "
                              "docs/array-protocol.md",
                              r, c)) +
      fmt::format("// Timing: a tile whose in_last step is presented in cycle t has row r of its "
                  "results on\n// out_acc in cycle t + {} + r (pipe {} + C {}). Tiles need at "
                  "least R = {} steps each.\n",
                  pipeline_plan(d, pe).latency, pe.pipeline, c, r);
  m.ports(with_regs(os_array_ports(pe, r, c), {"out_valid", "out_row"}));

  verilog::Block& body = m.body;
  body.localparam("R", std::to_string(r));
  body.localparam("C", std::to_string(c));
  body.localparam("CW", std::to_string(f.code_bits), "element code width");
  if (groups) body.localparam("XW", std::to_string(f.exp_bits), "exponent code width");
  body.localparam("AW", std::to_string(pe.acc_width()), "accumulator width");
  // controls travelling with A: valid, first, last[, group_last]
  body.localparam("NC", groups ? "4" : "3",
                  groups ? "controls: {valid, first, last, group_last}" : "controls: {valid, first, last}");
  const std::string lane = groups ? "{exponent, code}" : "code";
  body.localparam("LA", std::to_string(f.code_bits + f.exp_bits), "A lane: " + lane);
  body.localparam("LB", std::to_string(f.code_bits + f.exp_bits), "B lane: " + lane);
  body.blank();
  body.comment("What each PE(i,j) sees, flattened at index k = i*C + j.");
  body.wire_range("ctrl_at", "[R*C*NC-1:0]");
  body.wire_range("a_at", "[R*C*LA-1:0]");
  body.wire_range("b_at", "[R*C*LB-1:0]");
  body.wire_range("pe_done", "[R*C-1:0]");
  body.wire_range("pe_acc", "[R*C*AW-1:0]");
  body.wire_range("pe_flags", "[R*C*2-1:0]");
  body.wire_range("unused_pe_row", "[R*C-1:0]", "every PE is row 0 of itself; the array knows better");
  body.blank();
  body.line("genvar i, j;");
  verilog::Block& gen = body.generate();
  edge_skew(gen, groups);
  gen.blank();
  gen.comment("--- the PE grid: A and controls move right, B moves down, one PE per cycle");
  grid_forwarding(gen, "LA", "LB").instance(grid_pe(groups));
  gen.blank();
  column_drain(gen);
  body.blank();
  last_column_valid(body, rw);
  return {{"gsqhw_delay.v", delay_module(d, false)},
          {"gsqhw_delay_clear.v", delay_module(d, true)},
          {"gsqhw_array.v", m.str()}};
}

}  // namespace gsqhw::gen
