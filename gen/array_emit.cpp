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
#include "gen/verilog_text.h"

namespace gsqhw::gen {
namespace {

std::string delay_module(const DesignPoint& d) {
  return file_header(d, "gsqhw_delay", "a delay line of DEPTH >= 1 register stages for data") +
         R"(module gsqhw_delay #(
  parameter WIDTH = 1,
  parameter DEPTH = 1
) (
  input  wire             clk,
  input  wire [WIDTH-1:0] d,
  output wire [WIDTH-1:0] q
);
  reg [DEPTH*WIDTH-1:0] stages;  // stage s at [s*WIDTH +: WIDTH], the oldest on top
  generate
    if (DEPTH == 1) begin : single
      always @(posedge clk) stages <= d;
    end else begin : chain
      always @(posedge clk) stages <= {stages[(DEPTH-1)*WIDTH-1:0], d};
    end
  endgenerate
  assign q = stages[(DEPTH-1)*WIDTH +: WIDTH];
endmodule
)";
}

std::string delay_clear_module(const DesignPoint& d) {
  return file_header(d, "gsqhw_delay_clear",
                     "a delay line of DEPTH >= 1 register stages for valid/control bits, "
                     "cleared by the synchronous reset") +
         R"(module gsqhw_delay_clear #(
  parameter WIDTH = 1,
  parameter DEPTH = 1
) (
  input  wire             clk,
  input  wire             rst,
  input  wire [WIDTH-1:0] d,
  output wire [WIDTH-1:0] q
);
  reg [DEPTH*WIDTH-1:0] stages;
  generate
    if (DEPTH == 1) begin : single
      always @(posedge clk) stages <= rst ? {WIDTH{1'b0}} : d;
    end else begin : chain
      always @(posedge clk) stages <= rst ? {DEPTH*WIDTH{1'b0}} : {stages[(DEPTH-1)*WIDTH-1:0], d};
    end
  endgenerate
  assign q = stages[(DEPTH-1)*WIDTH +: WIDTH];
endmodule
)";
}

}  // namespace

std::vector<VerilogFile> emit_delay_files(const DesignPoint& d) {
  return {{"gsqhw_delay.v", delay_module(d)}, {"gsqhw_delay_clear.v", delay_clear_module(d)}};
}

std::vector<VerilogFile> emit_array_files(const DesignPoint& d, const PeSpec& pe) {
  const auto& f = pe.format;
  bool groups = f.has_groups();
  int r = d.rows, c = d.cols, cw = f.code_bits, xw = f.exp_bits, aw = pe.acc_width();
  int rw = std::max(1, ceil_log2(r));
  int nc = groups ? 4 : 3;  // controls travelling with A: valid, first, last[, group_last]
  int la = cw + xw;         // A lane: code [+ exponent]
  std::string text = file_header(
      d, "gsqhw_array",
      fmt::format("{} x {} output-stationary systolic array of gsqhw_pe; ports of "
                  "docs/array-protocol.md",
                  r, c));
  text += fmt::format(R"(// Timing: a tile whose in_last step is presented in cycle t has row r of its results on
// out_acc in cycle t + {} + r (pipe {} + C {}). Tiles need at least R = {} steps each.
module gsqhw_array (
{}{})",
                      pe.pipeline + c, pe.pipeline, c, r, os_step_inputs(pe, r, c),
                      array_result_ports(d, pe, true));
  text += fill(R"(  localparam R = ${r};
  localparam C = ${c};
  localparam CW = ${cw};   // element code width
${xw_param}  localparam AW = ${aw};  // accumulator width
  localparam NC = ${nc};   // controls: {${ctrl_names}}
  localparam LA = ${la};   // A lane: ${lane_names}
  localparam LB = ${la};   // B lane: ${lane_names}

  // What each PE(i,j) sees, flattened at index k = i*C + j.
  wire [R*C*NC-1:0] ctrl_at;
  wire [R*C*LA-1:0] a_at;
  wire [R*C*LB-1:0] b_at;
  wire [R*C-1:0]    pe_done;
  wire [R*C*AW-1:0] pe_acc;
  wire [R*C*2-1:0]  pe_flags;
  wire [R*C-1:0]    unused_pe_row;  // every PE is row 0 of itself; the array knows better

  genvar i, j;
  generate
    // --- skew: row i's controls and A lane enter i cycles late, column j's B lane j cycles late
    for (i = 0; i < R; i = i + 1) begin : row_skew
      if (i == 0) begin : direct
        assign ctrl_at[0 +: NC] = {${ctrl_inputs}};
        assign a_at[0 +: LA] = ${a_input0};
      end else begin : delayed
        gsqhw_delay_clear #(.WIDTH(NC), .DEPTH(i)) ctrl_skew (
            .clk(clk), .rst(rst), .d({${ctrl_inputs}}), .q(ctrl_at[i*C*NC +: NC]));
        gsqhw_delay #(.WIDTH(LA), .DEPTH(i)) a_skew (
            .clk(clk), .d(${a_input}), .q(a_at[i*C*LA +: LA]));
      end
    end
    for (j = 0; j < C; j = j + 1) begin : column_skew
      if (j == 0) begin : direct
        assign b_at[0 +: LB] = ${b_input0};
      end else begin : delayed
        gsqhw_delay #(.WIDTH(LB), .DEPTH(j)) b_skew (
            .clk(clk), .d(${b_input}), .q(b_at[j*LB +: LB]));
      end
    end

    // --- the PE grid: A and controls move right, B moves down, one PE per cycle
${forwarding}        gsqhw_pe pe (
            .clk(clk), .rst(rst),
            .in_valid(ctrl_at[K*NC + NC-1]), .in_first(ctrl_at[K*NC + NC-2]),
            .in_last(ctrl_at[K*NC + NC-3]),${group_last_pin}
            .in_a(a_at[K*LA +: CW]), .in_b(b_at[K*LB +: CW]),${exp_pins}
            .out_valid(pe_done[K]), .out_row(unused_pe_row[K]),
            .out_acc(pe_acc[K*AW +: AW]), .out_flags(pe_flags[K*2 +: 2]));
      end
    end

    // --- drain: per column an OR-bus of the (at most one) PE finishing this cycle,
    // registered, then delayed C-1-j cycles so that all columns of a row leave together
    for (j = 0; j < C; j = j + 1) begin : drain
      reg [AW-1:0] finished_acc;
      reg [1:0]    finished_flags;
      reg          finished_any;
      integer r;
      always @* begin
        finished_acc = {AW{1'b0}};
        finished_flags = 2'b00;
        finished_any = 1'b0;
        for (r = 0; r < R; r = r + 1) begin
          if (pe_done[r*C + j]) begin
            finished_acc = finished_acc | pe_acc[(r*C + j)*AW +: AW];
            finished_flags = finished_flags | pe_flags[(r*C + j)*2 +: 2];
            finished_any = 1'b1;
          end
        end
      end
      reg [AW+1:0] bus;
      always @(posedge clk) if (finished_any) bus <= {finished_flags, finished_acc};
      if (j == C-1) begin : direct
        assign {out_flags[j*2 +: 2], out_acc[j*AW +: AW]} = bus;
      end else begin : deskew
        gsqhw_delay #(.WIDTH(AW+2), .DEPTH(C-1-j)) deskew_line (
            .clk(clk), .d(bus), .q({out_flags[j*2 +: 2], out_acc[j*AW +: AW]}));
      end
    end
  endgenerate

  // --- out_valid / out_row come from the last column, whose results need no deskew
  reg [${rw1}:0] finishing_row;
  reg           finishing;
  integer row_index;
  always @* begin
    finishing_row = ${rw_zero};
    finishing = 1'b0;
    for (row_index = 0; row_index < R; row_index = row_index + 1) begin
      if (pe_done[row_index*C + C-1]) begin
        finishing_row = finishing_row | row_index[${rw1}:0];
        finishing = 1'b1;
      end
    end
  end
  always @(posedge clk) begin
    out_valid <= rst ? 1'b0 : finishing;
    out_row <= finishing_row;
  end
endmodule
)",
               {{"r", std::to_string(r)},
                {"c", std::to_string(c)},
                {"cw", std::to_string(cw)},
                {"xw_param", groups ? fmt::format("  localparam XW = {};   // exponent code width\n", xw)
                                    : ""},
                {"aw", std::to_string(aw)},
                {"nc", std::to_string(nc)},
                {"ctrl_names", groups ? "valid, first, last, group_last" : "valid, first, last"},
                {"la", std::to_string(la)},
                {"lane_names", groups ? "{exponent, code}" : "code"},
                {"ctrl_inputs", groups ? "in_valid, in_first, in_last, in_group_last"
                                       : "in_valid, in_first, in_last"},
                {"a_input", groups ? "{in_a_exp[i*XW +: XW], in_a[i*CW +: CW]}" : "in_a[i*CW +: CW]"},
                {"b_input", groups ? "{in_b_exp[j*XW +: XW], in_b[j*CW +: CW]}" : "in_b[j*CW +: CW]"},
                {"a_input0", groups ? "{in_a_exp[0 +: XW], in_a[0 +: CW]}" : "in_a[0 +: CW]"},
                {"b_input0", groups ? "{in_b_exp[0 +: XW], in_b[0 +: CW]}" : "in_b[0 +: CW]"},
                {"group_last_pin", groups ? " .in_group_last(ctrl_at[K*NC + NC-4])," : ""},
                {"exp_pins",
                 groups ? "\n            .in_a_exp(a_at[K*LA + CW +: XW]), .in_b_exp(b_at[K*LB + CW +: XW]),"
                        : ""},
                {"forwarding", grid_forwarding("LA", "LB")},
                {"rw1", std::to_string(rw - 1)},
                {"rw_zero", vlit(rw, 0)}});
  return {{"gsqhw_delay.v", delay_module(d)},
          {"gsqhw_delay_clear.v", delay_clear_module(d)},
          {"gsqhw_array.v", text}};
}

}  // namespace gsqhw::gen
