// Pieces of gsqhw_array that the output-stationary (gen/array_emit.cpp), shared-column
// (gen/shared_emit.cpp) and weight-stationary (gen/ws_emit.cpp) arrays have in common: the
// forwarding registers between neighbouring PEs, the row counter of the results and the deskew
// of a column unit's results. The text is indented for its place inside the array's generate
// blocks.
#include <fmt/format.h>

#include "gen/emit.h"
#include "gen/verilog_text.h"

namespace gsqhw::gen {

std::string os_step_inputs(const PeSpec& pe, int rows, int cols) {
  const int cw = pe.format.code_bits, xw = pe.format.exp_bits;
  const bool groups = pe.format.has_groups();
  std::string text = R"(  input  wire        clk,
  input  wire        rst,
  input  wire        in_valid,
  input  wire        in_first,
  input  wire        in_last,
)";
  if (groups) text += "  input  wire        in_group_last,\n";
  text += fmt::format("  input  wire [{}:0] in_a,\n  input  wire [{}:0] in_b,\n", rows * cw - 1,
                      cols * cw - 1);
  if (groups)
    text += fmt::format("  input  wire [{}:0] in_a_exp,\n  input  wire [{}:0] in_b_exp,\n",
                        rows * xw - 1, cols * xw - 1);
  return text;
}

std::string array_result_ports(const DesignPoint& d, const PeSpec& pe, bool out_valid_is_reg) {
  const int rw = std::max(1, ceil_log2(d.rows));
  return fmt::format(R"(  output {}        out_valid,
  output reg  [{}:0] out_row,
  output wire [{}:0] out_acc,
  output wire [{}:0] out_flags
);
)",
                     out_valid_is_reg ? "reg " : "wire", rw - 1, d.cols * pe.acc_width() - 1,
                     d.cols * 2 - 1);
}

std::string grid_forwarding(const std::string& a_lane, const std::string& b_lane) {
  std::string text = fill(R"(    for (i = 0; i < R; i = i + 1) begin : row
      for (j = 0; j < C; j = j + 1) begin : column
        localparam integer K = i*C + j;
        if (j + 1 < C) begin : pass_right
          gsqhw_delay_clear #(.WIDTH(NC), .DEPTH(1)) ctrl_reg (
              .clk(clk), .rst(rst), .d(ctrl_at[K*NC +: NC]), .q(ctrl_at[(K+1)*NC +: NC]));
          gsqhw_delay #(.WIDTH(${la}), .DEPTH(1)) a_reg (
              .clk(clk), .d(a_at[K*${la} +: ${la}]), .q(a_at[(K+1)*${la} +: ${la}]));
        end
)",
                          {{"la", a_lane}});
  if (b_lane.empty()) return text;
  return text + fill(R"(        if (i + 1 < R) begin : pass_down
          gsqhw_delay #(.WIDTH(${lb}), .DEPTH(1)) b_reg (
              .clk(clk), .d(b_at[K*${lb} +: ${lb}]), .q(b_at[(K+C)*${lb} +: ${lb}]));
        end
)",
                     {{"lb", b_lane}});
}

std::string result_row_counter(int rows, const std::string& valid) {
  const int rw = std::max(1, ceil_log2(rows));
  const std::string next_row =
      rows == 1 ? vlit(rw, 0)
                : fmt::format("out_row == {} ? {} : out_row + {}", vlit(rw, rows - 1), vlit(rw, 0),
                              vlit(rw, 1));
  return fill(R"(        always @(posedge clk) begin
          if (rst) out_row <= ${rw_zero};
          else if (${valid}) out_row <= ${next_row};
        end
)",
              {{"rw_zero", vlit(rw, 0)}, {"valid", valid}, {"next_row", next_row}});
}

std::string column_result_deskew(const std::string& row_counter) {
  return fill(R"(      if (j == C-1) begin : direct
        assign {out_flags[j*2 +: 2], out_acc[j*AW +: AW]} = {result_flags, result_acc};
        assign out_valid = result_valid;
${row_counter}      end else begin : deskew
        wire unused_result_valid = result_valid;
        gsqhw_delay #(.WIDTH(AW+2), .DEPTH(C-1-j)) deskew_line (
            .clk(clk), .d({result_flags, result_acc}), .q({out_flags[j*2 +: 2], out_acc[j*AW +: AW]}));
      end
)",
              {{"row_counter", row_counter}});
}

}  // namespace gsqhw::gen
