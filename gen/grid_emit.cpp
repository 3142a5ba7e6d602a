// Pieces of gsqhw_array that the output-stationary (gen/array_emit.cpp), shared-column
// (gen/shared_emit.cpp) and weight-stationary (gen/ws_emit.cpp) arrays have in common: their
// port lists (which also give the manifest's "ports"), the forwarding registers between
// neighbouring PEs, the row counter of the results and the deskew of a column unit's results.
#include <fmt/format.h>

#include "gen/emit.h"
#include "gen/verilog_text.h"

namespace gsqhw::gen {

using verilog::in;
using verilog::out;
using verilog::Port;

namespace {

std::vector<Port> result_ports(const PeSpec& pe, int rows, int cols) {
  const int aw = pe.acc_width();
  return {
      out("out_valid", 1, "one row of finished results is on out_acc"),
      out("out_row", std::max(1, ceil_log2(rows)), "which tile row is on out_acc"),
      out("out_acc", cols * aw,
          pe.acc.kind == AccumulatorSpec::Kind::fixed
              ? fmt::format("column j: final accumulator, {}-bit two's complement", aw)
              : "column j: final accumulator, IEEE binary32 bits"),
      out("out_flags", cols * 2, "column j: bit 0 sticky overflow, bit 1 NaN"),
  };
}

}  // namespace

std::vector<Port> os_array_ports(const PeSpec& pe, int r, int c) {
  const auto& f = pe.format;
  const int cw = f.code_bits, xw = f.exp_bits;
  std::vector<Port> ports = {
      in("clk", 1, "clock"),
      in("rst", 1, "synchronous reset, active high"),
      in("in_valid", 1, "a reduction step k is presented this cycle"),
      in("in_first", 1, "step k is the first (k = 0) of an output tile"),
      in("in_last", 1, "step k is the last (k = K-1) of an output tile"),
  };
  if (f.has_groups() || pe.minifloat_group_sums())
    ports.push_back(in("in_group_last", 1, "k is the last element of its group"));
  ports.push_back(in("in_a", r * cw, fmt::format("row i: code of A[row0+i][k] at [i*{0} +: {0}]", cw)));
  ports.push_back(in("in_b", c * cw, fmt::format("column j: code of B[col0+j][k] at [j*{0} +: {0}]", cw)));
  if (xw > 0) {
    ports.push_back(in("in_a_exp", r * xw, "row i: exponent code of the group holding A[row0+i][k]"));
    ports.push_back(in("in_b_exp", c * xw, "column j: exponent code of the group holding B[col0+j][k]"));
  }
  for (Port& p : result_ports(pe, r, c)) ports.push_back(p);
  return ports;
}

std::vector<Port> ws_array_ports(const DesignPoint& d, const PeSpec& pe) {
  const auto& f = pe.format;
  const int r = d.rows, c = d.cols, cw = f.code_bits, xw = f.exp_bits;
  const bool groups = f.has_groups();
  std::vector<Port> ports = {
      in("clk", 1, "clock"),
      in("rst", 1, "synchronous reset, active high"),
      in("in_valid", 1, "a step (one row of A for the current chunk) is presented"),
      in("in_first", 1, groups ? "the step's chunk belongs to the tile's first group"
                               : "the step's chunk is the tile's first"),
      in("in_last", 1, groups ? "the step's chunk belongs to the tile's last group"
                              : "the step's chunk is the tile's last"),
  };
  if (groups) {
    ports.push_back(in("in_group_first", 1, "the step's chunk is the first of its group"));
    ports.push_back(in("in_group_last", 1, "the step's chunk is the last of its group"));
  }
  ports.push_back(in("in_a", r * cw,
                     fmt::format("lane i: code of A[row][k0+i] at [i*{0} +: {0}] (k0: the "
                                 "chunk's first element)",
                                 cw)));
  if (xw > 0) {
    ports.push_back(in("in_a_exp", xw, "exponent code of the group of A[row] the chunk is in"));
    ports.push_back(in("in_b_exp", c * xw, "column j: exponent code of the chunk's group of B[col0+j]"));
  }
  ports.push_back(in("in_w_valid", 1, "in_w carries a weight row of the next chunk"));
  ports.push_back(in("in_w_row", std::max(1, ceil_log2(r)), "which weight row i is on in_w"));
  ports.push_back(in("in_w", c * cw,
                     fmt::format("column j: code of B[col0+j][k0+i] of the next chunk at [j*{0} +: {0}]",
                                 cw)));
  for (Port& p : result_ports(pe, r, c)) ports.push_back(p);
  return ports;
}

std::vector<Port> with_regs(std::vector<Port> ports, const std::vector<std::string>& regs) {
  for (Port& p : ports)
    for (const auto& name : regs)
      if (p.name == name) p.is_reg = true;
  return ports;
}

verilog::Block& grid_forwarding(verilog::Block& generate, const std::string& a_lane,
                                const std::string& b_lane) {
  verilog::Block& column = generate.for_("i", "R", "row").for_("j", "C", "column");
  column.localparam_integer("K", "i*C + j");
  verilog::Block& right = column.if_("j + 1 < C", "pass_right");
  right.instance(verilog::Instance("gsqhw_delay_clear", "ctrl_reg")
                     .param("WIDTH", "NC").param("DEPTH", "1")
                     .pin("clk", "clk").pin("rst", "rst")
                     .pin("d", "ctrl_at[K*NC +: NC]").pin("q", "ctrl_at[(K+1)*NC +: NC]"));
  right.instance(verilog::Instance("gsqhw_delay", "a_reg")
                     .param("WIDTH", a_lane).param("DEPTH", "1")
                     .pin("clk", "clk")
                     .pin("d", fmt::format("a_at[K*{0} +: {0}]", a_lane))
                     .pin("q", fmt::format("a_at[(K+1)*{0} +: {0}]", a_lane)));
  if (!b_lane.empty())
    column.if_("i + 1 < R", "pass_down")
        .instance(verilog::Instance("gsqhw_delay", "b_reg")
                      .param("WIDTH", b_lane).param("DEPTH", "1")
                      .pin("clk", "clk")
                      .pin("d", fmt::format("b_at[K*{0} +: {0}]", b_lane))
                      .pin("q", fmt::format("b_at[(K+C)*{0} +: {0}]", b_lane)));
  return column;
}

void result_row_counter(verilog::Block& block, int rows, const std::string& valid) {
  const int rw = std::max(1, ceil_log2(rows));
  const std::string next_row =
      rows == 1 ? vlit(rw, 0)
                : fmt::format("out_row == {} ? {} : out_row + {}", vlit(rw, rows - 1), vlit(rw, 0),
                              vlit(rw, 1));
  block.always_ff()
      .line(fmt::format("if (rst) out_row <= {};", vlit(rw, 0)))
      .line(fmt::format("else if ({}) out_row <= {};", valid, next_row));
}

verilog::Block& column_result_deskew(verilog::Block& column) {
  verilog::Block& direct = column.if_("j == C-1", "direct");
  direct.assign("{out_flags[j*2 +: 2], out_acc[j*AW +: AW]}", "{result_flags, result_acc}");
  direct.assign("out_valid", "result_valid");
  column.else_("deskew")
      .wire("unused_result_valid", 1, "result_valid")
      .instance(verilog::Instance("gsqhw_delay", "deskew_line")
                    .param("WIDTH", "AW+2").param("DEPTH", "C-1-j")
                    .pin("clk", "clk").pin("d", "{result_flags, result_acc}")
                    .pin("q", "{out_flags[j*2 +: 2], out_acc[j*AW +: AW]}"));
  return direct;
}

}  // namespace gsqhw::gen
