// gsqhw_core: descriptor in, FP32 operands in, FP32 results out (docs/core.md).
//
//   IDLE --descriptor ok--> LOAD --last code written--> COMPUTE --last result beat--> OUTPUT
//     ^  (refused: error code, stay)                                                     |
//     +-------------------------------- last result word taken --------------------------+
//
// LOAD:    operand words go through gsqhw_quantizer into the code buffers (A rows, then B rows).
// COMPUTE: the output tiles stream into gsqhw_array exactly as the array driver of
//          docs/array-protocol.md does (row-major tiles, max(K, min_steps_per_tile) steps per
//          tile, zero padding lanes and steps); result beats land in the result buffer.
// OUTPUT:  the result buffer is read row-major through gsqhw_dequantizer onto out_data.
// Buffers are behavioural register files (one write port, asynchronous reads); docs/core.md
// says how they map onto SRAM.
#include <fmt/format.h>

#include "gen/core_internal.h"
#include "gen/verilog_text.h"

namespace gsqhw::gen {
namespace {

std::string s(int v) { return std::to_string(v); }

// Address of a code buffer entry: {row, k}.
std::string code_addr(const std::string& row, int row_bits, const std::string& k, int kw) {
  return fmt::format("{{{}[{}:0], {}[{}:0]}}", row, row_bits - 1, k, kw - 1);
}

// Address of an exponent buffer entry: {row, k / G} (just the row when a row is one group).
std::string exp_addr(const CoreParams& p, const std::string& row, int row_bits,
                     const std::string& k) {
  if (p.kw == p.log2g) return fmt::format("{}[{}:0]", row, row_bits - 1);
  return fmt::format("{{{}[{}:0], {}[{}:{}]}}", row, row_bits - 1, k, p.kw - 1, p.log2g);
}

// The per-lane operand reads of the array feed: lane i of A is row row0 + i, lane j of B is
// row col0 + j of B; lanes beyond M / N and steps beyond K read as zero (padding).
std::string lane_reads(const CoreParams& p) {
  std::string text;
  auto lane = [&](char which, int i) {
    const bool is_a = which == 'a';
    const std::string base = is_a ? "row0" : "col0";
    const std::string len = is_a ? "m_len" : "n_len";
    const int bits = is_a ? p.maw : p.naw;
    const std::string row = fmt::format("{}_row_{}", which, i);
    text += fmt::format("  wire [{}:0] {} = {} + {};\n", p.rw - 1, row, base, vlit(p.rw, i));
    text += fmt::format("  wire {}_live_{} = in_k && {} < {};\n", which, i, row, len);
    text += fmt::format("  assign {}_lanes[{} +: {}] = {}_live_{} ? {}_code[{}] : {};\n", which,
                        i * p.cw, p.cw, which, i, which, code_addr(row, bits, "step", p.kw),
                        vlit(p.cw, 0));
    if (p.groups)
      text += fmt::format("  assign {}_exps[{} +: {}] = {}_live_{} ? {}_exp[{}] : {};\n", which,
                          i * p.xw, p.xw, which, i, which, exp_addr(p, row, bits, "step"),
                          vlit(p.xw, 0));
  };
  for (int i = 0; i < p.r; ++i) lane('a', i);
  for (int j = 0; j < p.c; ++j) lane('b', j);
  return text;
}

// Lane o_lane of the result word being output (a mux over the C lanes).
std::string output_lane_mux(const CoreParams& p) {
  std::string acc = "  assign o_acc =", flags = "  assign o_flags =";
  for (int j = p.c - 1; j >= 1; --j) {
    acc += fmt::format("\n      (o_lane == {}) ? o_word[{} +: {}] :", vlit(p.lane_w, j), j * p.aw,
                       p.aw);
    flags += fmt::format("\n      (o_lane == {}) ? o_word[{} +: 2] :", vlit(p.lane_w, j),
                         p.c * p.aw + 2 * j);
  }
  acc += fmt::format(" o_word[0 +: {}];\n", p.aw);
  flags += fmt::format(" o_word[{} +: 2];\n", p.c * p.aw);
  return acc + flags;
}

}  // namespace

VerilogFile emit_core_top(const CoreParams& p) {
  const bool g = p.groups;
  const int dw = kCoreDescriptorWidth;
  const int steps_min = p.min_steps_per_tile;
  std::string group_decls, group_writes, group_feed, group_pins;
  if (g) {
    group_decls = fill(R"(  reg  [${xw1}:0] a_exp [0:${a_exp_depth1}];  // A group exponents, {row, k / G}
  reg  [${xw1}:0] b_exp [0:${b_exp_depth1}];  // B group exponents
)",
                       {{"xw1", s(p.xw - 1)},
                        {"a_exp_depth1", s((1 << (p.maw + p.kw - p.log2g)) - 1)},
                        {"b_exp_depth1", s((1 << (p.naw + p.kw - p.log2g)) - 1)}});
    group_writes = fmt::format(
        "    if (q_valid && !wr_b) a_exp[{}] <= q_exp;\n"
        "    if (q_valid && wr_b) b_exp[{}] <= q_exp;\n",
        exp_addr(p, "wr_row", p.maw, "wr_k"), exp_addr(p, "wr_row", p.naw, "wr_k"));
    group_feed = fmt::format(
        "  // a group ends every G steps and at k = K-1; the padding steps after K form one group\n"
        "  wire group_last_now = in_k ? (step[{}:0] == {} || step == k_len - {}) : step_last;\n",
        p.log2g - 1, vlit(p.log2g, p.g - 1), vlit(p.sw, 1));
    group_pins =
        "      .in_group_last(f_group_last), .in_a_exp(f_a_exp), .in_b_exp(f_b_exp),\n";
  }
  const std::string text =
      file_header(p.design, "gsqhw_core",
                  fmt::format("{} x {} core: quantizer, operand buffers, gsqhw_array, result "
                              "buffer, dequantizer, controller (docs/core.md)",
                              p.r, p.c)) +
      fill(R"(// Capacity: M <= ${max_m}, N <= ${max_n}, K <= ${max_k}. A refused descriptor sets error:
// 1 = M, N or K is 0, 2 = M too large, 3 = N too large, 4 = K too large.
module gsqhw_core (
  input  wire        clk,
  input  wire        rst,
  // descriptor: one GEMM C (M x N) = A (M x K) x B^T (N x K)
  input  wire        desc_valid,
  output wire        desc_ready,
  input  wire [${dw1}:0] desc_m,
  input  wire [${dw1}:0] desc_n,
  input  wire [${dw1}:0] desc_k,
  // operands: FP32 words, A row-major (M rows of K words), then B row-major (N rows of K)
  input  wire        in_valid,
  output wire        in_ready,
  input  wire [31:0] in_data,
  // results: FP32 words of C, row-major
  output wire        out_valid,
  input  wire        out_ready,
  output wire [31:0] out_data,
  output wire        busy,   // a GEMM is in progress (a descriptor was accepted)
  output reg         done,   // one cycle after the last result word was taken
  output reg  [2:0]  error   // why the last descriptor was refused (0: accepted)
);
  localparam [1:0] IDLE = 2'd0, LOAD = 2'd1, COMPUTE = 2'd2, OUTPUT = 2'd3;
  reg [1:0] state;

  // ---- buffers: behavioural register files, one write port, asynchronous reads
  reg  [${cw1}:0] a_code [0:${a_depth1}];  // A element codes, {row, k}
  reg  [${cw1}:0] b_code [0:${b_depth1}];  // B element codes, {row, k}
${group_decls}  reg  [${cword1}:0] c_buf [0:${c_depth1}];  // results, {row, tile column}: C lanes of {flags, acc}

  // ---- descriptor
  reg  [${rw1}:0] m_len, n_len;
  reg  [${sw1}:0] k_len;
  reg  [${sw1}:0] steps_last;  // steps per tile - 1: max(K, ${steps_min}) - 1 (array timing)
  wire [2:0] desc_error =
      (desc_m == ${zero_d} || desc_n == ${zero_d} || desc_k == ${zero_d}) ? 3'd1 :
      (desc_m > ${max_m_d}) ? 3'd2 :
      (desc_n > ${max_n_d}) ? 3'd3 :
      (desc_k > ${max_k_d}) ? 3'd4 : 3'd0;
  assign desc_ready = state == IDLE;
  wire take_desc = desc_valid && desc_ready;

  always @(posedge clk) begin
    if (rst) begin
      error <= 3'd0;
    end else if (take_desc) begin
      error <= desc_error;
      m_len <= desc_m[${rw1}:0];
      n_len <= desc_n[${rw1}:0];
      k_len <= desc_k[${sw1}:0];
      steps_last <= (desc_k > ${steps_min_d}) ? desc_k[${sw1}:0] - ${one_s} : ${steps_min_last};
    end
  end

  // ---- LOAD: operand words -> quantizer -> code buffers
  wire              loading = state == LOAD;
  wire              q_in_ready, q_valid;
  wire [${cw1}:0] q_code;
${q_exp_decl}  gsqhw_quantizer quantizer (
      .clk(clk), .rst(rst), .row_len(k_len),
      .in_valid(in_valid && loading), .in_ready(q_in_ready), .in_data(in_data),
      .q_valid(q_valid), .q_code(q_code)${q_exp_pin});
  assign in_ready = loading && q_in_ready;

  reg              wr_b;    // 0: writing A, 1: writing B
  reg  [${rw1}:0] wr_row;
  reg  [${sw1}:0] wr_k;
  wire [${rw1}:0] wr_rows_last = wr_b ? n_len - ${one_r} : m_len - ${one_r};
  wire             wr_row_end = wr_k == k_len - ${one_s};
  wire             load_done = q_valid && wr_b && wr_row_end && wr_row == wr_rows_last;
  always @(posedge clk) begin
    if (rst || !loading) begin
      wr_b <= 1'b0;
      wr_row <= ${zero_r};
      wr_k <= ${zero_s};
    end else if (q_valid) begin
      wr_k <= wr_row_end ? ${zero_s} : wr_k + ${one_s};
      if (wr_row_end) begin
        wr_row <= (wr_row == wr_rows_last) ? ${zero_r} : wr_row + ${one_r};
        if (wr_row == wr_rows_last) wr_b <= 1'b1;
      end
    end
  end
  always @(posedge clk) begin
    if (q_valid && !wr_b) a_code[${a_wr_addr}] <= q_code;
    if (q_valid && wr_b) b_code[${b_wr_addr}] <= q_code;
${group_writes}  end

  // ---- COMPUTE, feed side: tiles in row-major order, steps k = 0 .. steps_last
  reg  [${sw1}:0] step;
  reg  [${rw1}:0] row0, col0;  // first output row / column of the tile being fed
  reg              fed_all;
  wire             feeding = state == COMPUTE && !fed_all;
  wire             step_last = step == steps_last;
  wire             in_k = step < k_len;  // steps k >= K are zero padding
  wire [${a_lanes1}:0] a_lanes;
  wire [${b_lanes1}:0] b_lanes;
${exp_lane_decls}${lane_reads}${group_feed}
  always @(posedge clk) begin
    if (rst || state != COMPUTE) begin
      step <= ${zero_s};
      row0 <= ${zero_r};
      col0 <= ${zero_r};
      fed_all <= 1'b0;
    end else if (feeding) begin
      step <= step_last ? ${zero_s} : step + ${one_s};
      if (step_last) begin
        if (col0 + ${c_r} < n_len) begin
          col0 <= col0 + ${c_r};
        end else begin
          col0 <= ${zero_r};
          if (row0 + ${r_r} < m_len) row0 <= row0 + ${r_r};
          else fed_all <= 1'b1;
        end
      end
    end
  end

  // the array's inputs are registered: buffer reads settle in the cycle before
  reg              f_valid, f_first, f_last${f_group_last_decl};
  reg  [${a_lanes1}:0] f_a;
  reg  [${b_lanes1}:0] f_b;
${f_exp_decls}  always @(posedge clk) begin
    if (rst) begin
      f_valid <= 1'b0;
      f_first <= 1'b0;
      f_last <= 1'b0;${f_group_last_reset}
    end else begin
      f_valid <= feeding;
      f_first <= feeding && step == ${zero_s};
      f_last <= feeding && step_last;${f_group_last_set}
    end
  end
  always @(posedge clk) begin
    if (feeding) begin
      f_a <= a_lanes;
      f_b <= b_lanes;${f_exp_set}
    end
  end

  wire              arr_valid;
  wire [${orw1}:0] arr_row;
  wire [${acc_all1}:0] arr_acc;
  wire [${flags_all1}:0] arr_flags;
  gsqhw_array array (
      .clk(clk), .rst(rst),
      .in_valid(f_valid), .in_first(f_first), .in_last(f_last),
${group_pins}      .in_a(f_a), .in_b(f_b),
      .out_valid(arr_valid), .out_row(arr_row), .out_acc(arr_acc), .out_flags(arr_flags));

  // ---- COMPUTE, result side: R beats per tile, tiles in the order they were fed
  reg  [${rw1}:0] d_row0, d_col0;
  reg  [${tcw1}:0] d_tile_col;
  reg              drained;
  wire [${maw1}:0] d_row = d_row0[${maw1}:0] + ${arr_row_ext};
  wire             beat = arr_valid && state == COMPUTE;
  always @(posedge clk) begin
    if (rst || state != COMPUTE) begin
      d_row0 <= ${zero_r};
      d_col0 <= ${zero_r};
      d_tile_col <= ${zero_tc};
      drained <= 1'b0;
    end else if (beat && arr_row == ${r_last}) begin
      if (d_col0 + ${c_r} < n_len) begin
        d_col0 <= d_col0 + ${c_r};
        d_tile_col <= d_tile_col + ${one_tc};
      end else begin
        d_col0 <= ${zero_r};
        d_tile_col <= ${zero_tc};
        if (d_row0 + ${r_r} < m_len) d_row0 <= d_row0 + ${r_r};
        else drained <= 1'b1;
      end
    end
  end
  always @(posedge clk) if (beat) c_buf[{d_row, d_tile_col}] <= {arr_flags, arr_acc};

  // ---- OUTPUT: C row-major through the dequantizer
  reg  [${rw1}:0] o_row, o_col;
  reg  [${tcw1}:0] o_tile_col;
  reg  [${lw1}:0] o_lane;
  wire [${cword1}:0] o_word = c_buf[{o_row[${maw1}:0], o_tile_col}];
  wire [${aw1}:0] o_acc;
  wire [1:0]       o_flags;
${lane_mux}  gsqhw_dequantizer dequantizer (.acc(o_acc), .flags(o_flags), .value(out_data));
  assign out_valid = state == OUTPUT;
  wire out_take = out_valid && out_ready;
  wire o_row_end = o_col == n_len - ${one_r};
  wire o_last = o_row_end && o_row == m_len - ${one_r};
  always @(posedge clk) begin
    if (rst || state != OUTPUT) begin
      o_row <= ${zero_r};
      o_col <= ${zero_r};
      o_tile_col <= ${zero_tc};
      o_lane <= ${zero_l};
    end else if (out_take) begin
      if (o_row_end) begin
        o_row <= o_row + ${one_r};
        o_col <= ${zero_r};
        o_tile_col <= ${zero_tc};
        o_lane <= ${zero_l};
      end else begin
        o_col <= o_col + ${one_r};
        if (o_lane == ${c_last}) begin
          o_lane <= ${zero_l};
          o_tile_col <= o_tile_col + ${one_tc};
        end else begin
          o_lane <= o_lane + ${one_l};
        end
      end
    end
  end

  // ---- controller
  always @(posedge clk) begin
    if (rst) begin
      state <= IDLE;
      done <= 1'b0;
    end else begin
      done <= out_take && o_last;
      case (state)
        IDLE:    if (take_desc && desc_error == 3'd0) state <= LOAD;
        LOAD:    if (load_done) state <= COMPUTE;
        COMPUTE: if (drained) state <= OUTPUT;
        default: if (out_take && o_last) state <= IDLE;
      endcase
    end
  end
  assign busy = state != IDLE;
endmodule
)",
           {{"max_m", s(p.max_m)},
            {"max_n", s(p.max_n)},
            {"max_k", s(p.max_k)},
            {"dw1", s(dw - 1)},
            {"cw1", s(p.cw - 1)},
            {"a_depth1", s((1 << (p.maw + p.kw)) - 1)},
            {"b_depth1", s((1 << (p.naw + p.kw)) - 1)},
            {"group_decls", group_decls},
            {"cword1", s(p.c * (p.aw + 2) - 1)},
            {"c_depth1", s((1 << (p.maw + p.tcw)) - 1)},
            {"rw1", s(p.rw - 1)},
            {"sw1", s(p.sw - 1)},
            {"steps_min", s(steps_min)},
            {"zero_d", vlit(dw, 0)},
            {"max_m_d", vlit(dw, p.max_m)},
            {"max_n_d", vlit(dw, p.max_n)},
            {"max_k_d", vlit(dw, p.max_k)},
            {"steps_min_d", vlit(dw, steps_min)},
            {"steps_min_last", vlit(p.sw, steps_min - 1)},
            {"one_s", vlit(p.sw, 1)},
            {"zero_s", vlit(p.sw, 0)},
            {"one_r", vlit(p.rw, 1)},
            {"zero_r", vlit(p.rw, 0)},
            {"q_exp_decl", g ? fmt::format("  wire [{}:0] q_exp;\n", p.xw - 1) : ""},
            {"q_exp_pin", g ? ", .q_exp(q_exp)" : ""},
            {"a_wr_addr", code_addr("wr_row", p.maw, "wr_k", p.kw)},
            {"b_wr_addr", code_addr("wr_row", p.naw, "wr_k", p.kw)},
            {"group_writes", group_writes},
            {"a_lanes1", s(p.r * p.cw - 1)},
            {"b_lanes1", s(p.c * p.cw - 1)},
            {"exp_lane_decls",
             g ? fmt::format("  wire [{}:0] a_exps;\n  wire [{}:0] b_exps;\n", p.r * p.xw - 1,
                             p.c * p.xw - 1)
               : ""},
            {"lane_reads", lane_reads(p)},
            {"group_feed", group_feed},
            {"c_r", vlit(p.rw, p.c)},
            {"r_r", vlit(p.rw, p.r)},
            {"f_group_last_decl", g ? ", f_group_last" : ""},
            {"f_exp_decls",
             g ? fmt::format("  reg  [{}:0] f_a_exp;\n  reg  [{}:0] f_b_exp;\n", p.r * p.xw - 1,
                             p.c * p.xw - 1)
               : ""},
            {"f_group_last_reset", g ? "\n      f_group_last <= 1'b0;" : ""},
            {"f_group_last_set", g ? "\n      f_group_last <= feeding && group_last_now;" : ""},
            {"f_exp_set", g ? "\n      f_a_exp <= a_exps;\n      f_b_exp <= b_exps;" : ""},
            {"group_pins", group_pins},
            {"orw1", s(p.orw - 1)},
            {"acc_all1", s(p.c * p.aw - 1)},
            {"flags_all1", s(p.c * 2 - 1)},
            {"tcw1", s(p.tcw - 1)},
            {"arr_row_ext", p.maw == p.orw ? std::string("arr_row")
                                           : fmt::format("{{{}, arr_row}}", vlit(p.maw - p.orw, 0))},
            {"r_last", vlit(p.orw, p.r - 1)},
            {"zero_tc", vlit(p.tcw, 0)},
            {"one_tc", vlit(p.tcw, 1)},
            {"maw1", s(p.maw - 1)},
            {"lw1", s(p.lane_w - 1)},
            {"aw1", s(p.aw - 1)},
            {"lane_mux", output_lane_mux(p)},
            {"zero_l", vlit(p.lane_w, 0)},
            {"one_l", vlit(p.lane_w, 1)},
            {"c_last", vlit(p.lane_w, p.c - 1)}});
  return {"gsqhw_core.v", text};
}

}  // namespace gsqhw::gen
