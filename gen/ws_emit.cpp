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
  const int cw = f.code_bits, pw = pe.product_width();
  const int sw = psum_width(pe);
  std::string text = file_header(
      d, "gsqhw_pe_ws",
      fmt::format("weight-stationary PE: held weight, product, one {} addition into the "
                  "partial sum passing down the column",
                  gse ? "exact integer" : pe.acc.str()));
  text += fill(R"(// A row reaching the PE in cycle t has its partial sum on out_psum in cycle t + ${lag} + 1.
module gsqhw_pe_ws (
  input  wire        clk,
  input  wire        rst,
  input  wire        in_valid,        // a row of A reaches this PE
  input  wire        in_chunk_start,  // ...the first row of a chunk: use the loaded weight from now on
  input  wire        in_restart,      // the partial sum starts from zero (top row only)
  input  wire [${cw1}:0] in_a,
  input  wire        in_w_load,       // in_w is this PE's weight for the next chunk
  input  wire [${cw1}:0] in_w,
  input  wire [${sw1}:0] in_psum,      // from the PE above (top row: the column's bottom PE)
${flags_in}  output reg  [${sw1}:0] out_psum${flags_out}
);
  // --- the weight: the active one multiplies; the loaded one takes over at the next chunk
  reg  [${cw1}:0] w_active;
  reg  [${cw1}:0] w_loaded;
  wire [${cw1}:0] w_now = in_chunk_start ? w_loaded : w_active;
  always @(posedge clk) begin
    if (in_valid & in_chunk_start) w_active <= w_loaded;
    if (in_w_load) w_loaded <= in_w;
  end
  wire x_valid = in_valid;
  wire x_restart = in_restart;
  wire [${cw1}:0] x_a = in_a;
  wire [${cw1}:0] x_w = w_now;
)",
               {{"lag", std::to_string(pipeline_plan(d, pe).psum_lag)},
                {"cw1", std::to_string(cw - 1)},
                {"sw1", std::to_string(sw - 1)},
                {"flags_in", gse ? "" : "  input  wire [1:0]  in_flags,\n"},
                {"flags_out", gse ? "" : ",\n  output reg  [1:0]  out_flags"}});
  const PipelinePlan plan = pipeline_plan(d, pe);
  // cut 2 of gen/pipeline.h: in front of the multiplier here (GSE: in gsqhw_group_acc)
  const bool cut_operands = !gse && plan.prepare_cut;
  if (plan.cuts() == 0)
    text += "  wire unused_rst = rst;  // no pipeline register to clear at this depth\n";
  text += stage_cut("x", "o",
                    {{"valid", 1, false, true},
                     {"restart", 1, false, true},
                     {"a", cw, false, false},
                     {"w", cw, false, false}},
                    cut_operands,
                    cut_operands ? "[cut 0] pipeline register in front of the multiplier"
                                 : "(no register in front of the multiplier at this depth)");

  // --- product
  std::vector<Signal> p_signals = {{"valid", 1, false, true}, {"restart", 1, false, true}};
  text += "\n  // --- product: exact, format specific\n";
  text += "  wire p_valid = o_valid;\n  wire p_restart = o_restart;\n";
  text += product_instance(pe, "o_a", "o_w", p_signals);
  const bool cut_product = plan.product_cut;
  text += stage_cut("p", "m", p_signals, cut_product,
                    cut_product ? "[cut 1] pipeline register after the product"
                                : "(no register after the product at this pipeline depth)");

  if (gse) {
    text += fill(R"(
  // --- the exact integer partial group sum (${sw} bits = 2b + log2 G hold any group's sum)
  wire signed [${sw1}:0] psum_base = m_restart ? ${sw_zero} : $signed(in_psum);
  always @(posedge clk)
    if (m_valid) out_psum <= psum_base + ${product_ext};
endmodule
)",
                 {{"sw", std::to_string(sw)},
                  {"sw1", std::to_string(sw - 1)},
                  {"sw_zero", vlit(sw, 0, true)},
                  {"product_ext", sign_extend("m_product", pw, sw)}});
    return text;
  }

  // --- prepare the addend (as the OS PE does)
  std::vector<Signal> q_signals = {{"valid", 1, false, true}, {"restart", 1, false, true}};
  text += "\n  // --- prepare the addend\n";
  text += "  wire q_valid = m_valid;\n  wire q_restart = m_restart;\n";
  text += prepare_addend_stage(pe, "m", q_signals);
  const bool cut_addend = plan.accumulate_cut;
  text += stage_cut("q", "r", q_signals, cut_addend,
                    cut_addend ? "[cut 2] pipeline register between the prepared addend and the adder"
                               : "(no register before the adder at this pipeline depth)");

  // --- add into the partial sum
  text += "\n  // --- one addition into the partial sum; a chunk's restart begins from zero\n";
  text += accumulate_stage(pe, {.restart = "r_restart",
                                .acc_in = "in_psum",
                                .flags_in = "in_flags",
                                .acc_out = "out_psum",
                                .tile_end_valid = false});
  text += "endmodule\n";
  return text;
}

std::string ws_array_module(const DesignPoint& d, const PeSpec& pe) {
  const bool gse = is_gse(pe);
  const int r = d.rows, c = d.cols, cw = pe.format.code_bits, xw = pe.format.exp_bits;
  const int aw = pe.acc_width(), sw = psum_width(pe), lag = pipeline_plan(d, pe).psum_lag;
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
                  pipeline_plan(d, pe).latency);
  m.ports(with_regs(ws_array_ports(d, pe), {"out_row"}));
  std::string text;
  text += fill(R"(  localparam R = ${r};
  localparam C = ${c};
  localparam CW = ${cw};  // element code width
  localparam RW = ${rw};  // row index width
  localparam SW = ${sw};  // partial sum width (${sw_meaning})
  localparam AW = ${aw};  // accumulator width
  localparam NC = 2;  // controls travelling with the rows: {valid, chunk_start}
  localparam LAG = ${lag};  // cycles from a row reaching a PE to its addition there

  // --- chunk position: steps come in whole chunks of R rows
${chunk_counter}
  // What each PE(i,j) sees, flattened at index k = i*C + j.
  wire [R*C*NC-1:0] ctrl_at;
  wire [R*C*CW-1:0] a_at;
  wire [C-1:0]      restart_top;  // column j's top PE: the partial sums restart (row 0's skew)
  wire [C-1:0]      w_valid_at;   // column j's weight bus (skewed j cycles)
  wire [C*RW-1:0]   w_row_at;
  wire [C*CW-1:0]   w_at;
  wire [R*C*SW-1:0] psum;         // PE(i,j)'s partial sum register
  wire [R*C*SW-1:0] psum_above;   // what enters PE(i,j) from above
${flag_wires}
  genvar i, j;
  generate
    // --- skew at the edges: lane i enters row i i cycles late, column j's weights j cycles late
    for (i = 0; i < R; i = i + 1) begin : row_skew
      if (i == 0) begin : direct
        assign ctrl_at[0 +: NC] = {in_valid, chunk_start};
        assign a_at[0 +: CW] = in_a[0 +: CW];
      end else begin : delayed
        gsqhw_delay_clear #(.WIDTH(NC), .DEPTH(i)) ctrl_skew (
            .clk(clk), .rst(rst), .d({in_valid, chunk_start}), .q(ctrl_at[i*C*NC +: NC]));
        gsqhw_delay #(.WIDTH(CW), .DEPTH(i)) a_skew (
            .clk(clk), .d(in_a[i*CW +: CW]), .q(a_at[i*C*CW +: CW]));
      end
    end
    for (j = 0; j < C; j = j + 1) begin : column_skew
      if (j == 0) begin : direct
        assign restart_top[0] = ${restart};
        assign w_valid_at[0] = in_w_valid;
        assign {w_row_at[0 +: RW], w_at[0 +: CW]} = {in_w_row, in_w[0 +: CW]};
      end else begin : delayed
        gsqhw_delay_clear #(.WIDTH(2), .DEPTH(1)) restart_step (
            .clk(clk), .rst(rst), .d({restart_top[j-1], w_valid_at[j-1]}),
            .q({restart_top[j], w_valid_at[j]}));
        gsqhw_delay #(.WIDTH(RW), .DEPTH(1)) w_row_step (
            .clk(clk), .d(w_row_at[(j-1)*RW +: RW]), .q(w_row_at[j*RW +: RW]));
        gsqhw_delay #(.WIDTH(CW), .DEPTH(j)) w_skew (
            .clk(clk), .d(in_w[j*CW +: CW]), .q(w_at[j*CW +: CW]));
      end
    end

    // --- the PE grid: rows move right; partial sums move down, the bottom feeding the top
${forwarding}        if (i == 0) begin : ring
          assign psum_above[K*SW +: SW] = psum[((R-1)*C + j)*SW +: SW];
${flags_ring}        end else begin : chain
          assign psum_above[K*SW +: SW] = psum[(K-C)*SW +: SW];
${flags_chain}        end
        gsqhw_pe_ws pe (
            .clk(clk), .rst(rst),
            .in_valid(ctrl_at[K*NC + 1]), .in_chunk_start(ctrl_at[K*NC]),
            .in_restart(${pe_restart}), .in_a(a_at[K*CW +: CW]),
            .in_w_load(w_valid_at[j] && {${row_pad}'d0, w_row_at[j*RW +: RW]} == i),
            .in_w(w_at[j*CW +: CW]),
            .in_psum(psum_above[K*SW +: SW]),${pe_flags}
            .out_psum(psum[K*SW +: SW]));
      end
    end
  endgenerate
)",
               {{"r", std::to_string(r)},
                {"c", std::to_string(c)},
                {"cw", std::to_string(cw)},
                {"rw", std::to_string(rw)},
                {"sw", std::to_string(sw)},
                {"sw_meaning", gse ? "exact group sum, 2b + log2 G" : "the accumulator"},
                {"aw", std::to_string(aw)},
                {"lag", std::to_string(lag)},
                {"chunk_counter",
                 r == 1 ? "  wire chunk_start = 1'b1;  // every chunk is one row\n"
                        : fill(R"(  reg  [RW-1:0] chunk_step;
  always @(posedge clk) begin
    if (rst) chunk_step <= ${rw_zero};
    else if (in_valid) chunk_step <= chunk_step == ${last_row} ? ${rw_zero} : chunk_step + ${rw_one};
  end
  wire chunk_start = chunk_step == ${rw_zero};
)",
                               {{"rw_zero", vlit(rw, 0)},
                                {"rw_one", vlit(rw, 1)},
                                {"last_row", vlit(rw, r - 1)}})},
                {"flag_wires", gse ? "" : R"(  wire [R*C*2-1:0]  flags;        // PE(i,j)'s sticky flags (travel with its partial sum)
  wire [R*C*2-1:0]  flags_above;
)"},
                {"restart", gse ? "in_group_first" : "in_first"},
                {"flags_ring",
                 gse ? "" : "          assign flags_above[K*2 +: 2] = flags[((R-1)*C + j)*2 +: 2];\n"},
                {"flags_chain", gse ? "" : "          assign flags_above[K*2 +: 2] = flags[(K-C)*2 +: 2];\n"},
                {"forwarding", grid_forwarding_text("CW", "")},
                {"pe_restart", "i == 0 && restart_top[j]"},
                {"row_pad", std::to_string(32 - rw)},
                {"pe_flags",
                 gse ? "" : "\n            .in_flags(flags_above[K*2 +: 2]), .out_flags(flags[K*2 +: 2]),"}});

  // --- the bottom of each column, then the deskew that lines the columns up (column j is
  // C-1-j cycles ahead of the last one); results leave in complete waves of R rows, in order
  const std::string row_counter = result_row_counter_text(r, gse ? "result_valid" : "out_valid");
  if (gse) {
    text += fill(R"(
  // --- after a group's last chunk the column's sums (rows in order, one per cycle) go to the
  // column's gsqhw_group_acc, with the exponents delayed to meet them
  generate
    for (j = 0; j < C; j = j + 1) begin : unit
      wire [3:0] bottom_ctrl;  // {valid, first, last, group_last} of the row leaving the bottom PE
      wire [${xw1}:0] a_exp_bottom;
      wire [${xw1}:0] b_exp_bottom;
      gsqhw_delay_clear #(.WIDTH(4), .DEPTH(R + j + LAG)) ctrl_to_bottom (
          .clk(clk), .rst(rst), .d({in_valid, in_first, in_last, in_group_last}), .q(bottom_ctrl));
      gsqhw_delay #(.WIDTH(${xw2}), .DEPTH(R + j + LAG)) exps_to_bottom (
          .clk(clk), .d({in_a_exp, in_b_exp[j*${xw} +: ${xw}]}), .q({a_exp_bottom, b_exp_bottom}));
      wire result_valid;
      wire [AW-1:0] result_acc;
      wire [1:0] result_flags;
      gsqhw_group_acc group_acc (
          .clk(clk), .rst(rst), .in_valid(bottom_ctrl[3] & bottom_ctrl[0]),
          .in_first(bottom_ctrl[2]), .in_last(bottom_ctrl[1]),
          .in_sum(psum[((R-1)*C + j)*SW +: SW]), .in_a_exp(a_exp_bottom), .in_b_exp(b_exp_bottom),
          .out_valid(result_valid), .out_acc(result_acc), .out_flags(result_flags));
${deskew}    end
  endgenerate
endmodule
)",
                 {{"xw1", std::to_string(xw - 1)},
                  {"xw", std::to_string(xw)},
                  {"xw2", std::to_string(2 * xw)},
                  {"deskew", column_result_deskew_text(row_counter)}});
  } else {
    text += fill(R"(
  // --- after a tile's last chunk the bottom PE of column j holds row r's result in cycle
  // t_r + R + j + LAG; column C-1's copy of the controls says when
  wire [1:0] bottom_ctrl;  // {valid, last} of the row leaving the bottom of column C-1
  gsqhw_delay_clear #(.WIDTH(2), .DEPTH(R + C - 1 + LAG)) ctrl_to_bottom (
      .clk(clk), .rst(rst), .d({in_valid, in_last}), .q(bottom_ctrl));
  assign out_valid = bottom_ctrl[1] & bottom_ctrl[0];
  generate
    for (j = 0; j < C; j = j + 1) begin : drain
      localparam integer BOTTOM = (R-1)*C + j;
      if (j == C-1) begin : direct
        assign {out_flags[j*2 +: 2], out_acc[j*AW +: AW]} = {flags[BOTTOM*2 +: 2], psum[BOTTOM*SW +: SW]};
${row_counter}      end else begin : deskew
        gsqhw_delay #(.WIDTH(AW+2), .DEPTH(C-1-j)) deskew_line (
            .clk(clk), .d({flags[BOTTOM*2 +: 2], psum[BOTTOM*SW +: SW]}),
            .q({out_flags[j*2 +: 2], out_acc[j*AW +: AW]}));
      end
    end
  endgenerate
endmodule
)",
                 {{"row_counter", row_counter}});
  }
  return module_with_body(std::move(m), text);
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
