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
void lane_reads(verilog::Block& body, const CoreParams& p) {
  auto lane = [&](char which, int i) {
    const bool is_a = which == 'a';
    const std::string base = is_a ? "row0" : "col0";
    const std::string len = is_a ? "m_len" : "n_len";
    const int bits = is_a ? p.maw : p.naw;
    const std::string row = fmt::format("{}_row_{}", which, i);
    const std::string live = fmt::format("{}_live_{}", which, i);
    body.wire(row, p.rw, fmt::format("{} + {}", base, vlit(p.rw, i)));
    body.wire(live, 1, fmt::format("in_k && {} < {}", row, len));
    body.assign(fmt::format("{}_lanes[{} +: {}]", which, i * p.cw, p.cw),
                fmt::format("{} ? {}_code[{}] : {}", live, which, code_addr(row, bits, "step", p.kw),
                            vlit(p.cw, 0)));
    if (p.groups)
      body.assign(fmt::format("{}_exps[{} +: {}]", which, i * p.xw, p.xw),
                  fmt::format("{} ? {}_exp[{}] : {}", live, which, exp_addr(p, row, bits, "step"),
                              vlit(p.xw, 0)));
  };
  for (int i = 0; i < p.r; ++i) lane('a', i);
  for (int j = 0; j < p.c; ++j) lane('b', j);
}

// Lane o_lane of the result word being output (a mux over the C lanes).
void output_lane_mux(verilog::Block& body, const CoreParams& p) {
  std::string acc = "assign o_acc =", flags = "assign o_flags =";
  for (int j = p.c - 1; j >= 1; --j) {
    acc += fmt::format("\n    (o_lane == {}) ? o_word[{} +: {}] :", vlit(p.lane_w, j), j * p.aw,
                       p.aw);
    flags += fmt::format("\n    (o_lane == {}) ? o_word[{} +: 2] :", vlit(p.lane_w, j),
                         p.c * p.aw + 2 * j);
  }
  body.lines(acc + fmt::format(" o_word[0 +: {}];", p.aw));
  body.lines(flags + fmt::format(" o_word[{} +: 2];", p.c * p.aw));
}

using verilog::Block;
using verilog::in;
using verilog::Instance;
using verilog::out;

// The core's ports (docs/core.md): descriptor, FP32 operand words in, FP32 result words out.
std::vector<verilog::Port> core_ports() {
  const int dw = kCoreDescriptorWidth;
  return {
      in("clk"),
      in("rst"),
      in("desc_valid").note("descriptor: one GEMM C (M x N) = A (M x K) x B^T (N x K)"),
      out("desc_ready"),
      in("desc_m", dw),
      in("desc_n", dw),
      in("desc_k", dw),
      in("in_valid").note("operands: FP32 words, A row-major (M rows of K), then B (N rows)"),
      out("in_ready"),
      in("in_data", 32),
      out("out_valid").note("results: FP32 words of C, row-major"),
      in("out_ready"),
      out("out_data", 32),
      out("busy").note("a GEMM is in progress (a descriptor was accepted)"),
      out("done").as_reg().note("one cycle after the last result word was taken"),
      out("error", 3).as_reg().note("why the last descriptor was refused (0: accepted)"),
  };
}

// Behavioural register files: one write port, asynchronous reads.
void buffers(Block& body, const CoreParams& p) {
  body.comment("---- buffers: behavioural register files, one write port, asynchronous reads");
  auto memory = [&](const std::string& name, int width, int addr_bits, const std::string& what) {
    body.reg(fmt::format("{} [0:{}]", name, (1 << addr_bits) - 1), width, what);
  };
  memory("a_code", p.cw, p.maw + p.kw, "A element codes, {row, k}");
  memory("b_code", p.cw, p.naw + p.kw, "B element codes, {row, k}");
  if (p.groups) {
    memory("a_exp", p.xw, p.maw + p.kw - p.log2g, "A group exponents, {row, k / G}");
    memory("b_exp", p.xw, p.naw + p.kw - p.log2g, "B group exponents");
  }
  memory("c_buf", p.c * (p.aw + 2), p.maw + p.tcw,
         "results, {row, tile column}: C lanes of {flags, acc}");
}

// The descriptor registers and the refusal check.
void descriptor(Block& body, const CoreParams& p) {
  const int dw = kCoreDescriptorWidth, steps_min = p.min_steps_per_tile;
  body.comment("---- descriptor");
  body.reg("m_len, n_len", p.rw).reg("k_len", p.sw);
  body.reg("steps_last", p.sw,
           fmt::format("steps per tile - 1: max(K, {}) - 1 (array timing)", steps_min));
  body.lines(fmt::format("wire [2:0] desc_error =\n"
                         "    (desc_m == {0} || desc_n == {0} || desc_k == {0}) ? 3'd1 :\n"
                         "    (desc_m > {1}) ? 3'd2 :\n"
                         "    (desc_n > {2}) ? 3'd3 :\n"
                         "    (desc_k > {3}) ? 3'd4 : 3'd0;",
                         vlit(dw, 0), vlit(dw, p.max_m), vlit(dw, p.max_n), vlit(dw, p.max_k)));
  body.assign("desc_ready", "state == IDLE");
  body.wire("take_desc", 1, "desc_valid && desc_ready");
  body.blank();
  Block& ff = body.always_ff();
  ff.if_("rst").line("error <= 3'd0;");
  ff.else_if("take_desc")
      .line("error <= desc_error;")
      .line(fmt::format("m_len <= desc_m[{}:0];", p.rw - 1))
      .line(fmt::format("n_len <= desc_n[{}:0];", p.rw - 1))
      .line(fmt::format("k_len <= desc_k[{}:0];", p.sw - 1))
      .line(fmt::format("steps_last <= (desc_k > {}) ? desc_k[{}:0] - {} : {};",
                        vlit(dw, steps_min), p.sw - 1, vlit(p.sw, 1),
                        vlit(p.sw, steps_min - 1)));
}

// LOAD: operand words through gsqhw_quantizer into the code (and exponent) buffers.
void load_side(Block& body, const CoreParams& p) {
  const std::string zero_r = vlit(p.rw, 0), one_r = vlit(p.rw, 1);
  const std::string zero_s = vlit(p.sw, 0), one_s = vlit(p.sw, 1);
  body.comment("---- LOAD: operand words -> quantizer -> code buffers");
  body.wire("loading", 1, "state == LOAD");
  body.wire("q_in_ready, q_valid");
  body.wire("q_code", p.cw);
  if (p.groups) body.wire("q_exp", p.xw);
  Instance quantizer("gsqhw_quantizer", "quantizer");
  quantizer.pin("clk", "clk").pin("rst", "rst").pin("row_len", "k_len");
  quantizer.pin("in_valid", "in_valid && loading").pin("in_ready", "q_in_ready");
  quantizer.pin("in_data", "in_data").pin("q_valid", "q_valid").pin("q_code", "q_code");
  if (p.groups) quantizer.pin("q_exp", "q_exp");
  body.instance(quantizer);
  body.assign("in_ready", "loading && q_in_ready");
  body.blank();
  body.reg("wr_b", 1, "0: writing A, 1: writing B").reg("wr_row", p.rw).reg("wr_k", p.sw);
  body.wire("wr_rows_last", p.rw, fmt::format("wr_b ? n_len - {0} : m_len - {0}", one_r));
  body.wire("wr_row_end", 1, fmt::format("wr_k == k_len - {}", one_s));
  body.wire("load_done", 1, "q_valid && wr_b && wr_row_end && wr_row == wr_rows_last");
  Block& count = body.always_ff();
  count.if_("rst || !loading")
      .line("wr_b <= 1'b0;")
      .line(fmt::format("wr_row <= {};", zero_r))
      .line(fmt::format("wr_k <= {};", zero_s));
  Block& step = count.else_if("q_valid");
  step.line(fmt::format("wr_k <= wr_row_end ? {} : wr_k + {};", zero_s, one_s));
  step.if_("wr_row_end")
      .line(fmt::format("wr_row <= (wr_row == wr_rows_last) ? {} : wr_row + {};", zero_r, one_r))
      .line("if (wr_row == wr_rows_last) wr_b <= 1'b1;");
  Block& write = body.always_ff();
  write.line(fmt::format("if (q_valid && !wr_b) a_code[{}] <= q_code;",
                         code_addr("wr_row", p.maw, "wr_k", p.kw)));
  write.line(fmt::format("if (q_valid && wr_b) b_code[{}] <= q_code;",
                         code_addr("wr_row", p.naw, "wr_k", p.kw)));
  if (p.groups) {
    write.line(fmt::format("if (q_valid && !wr_b) a_exp[{}] <= q_exp;",
                           exp_addr(p, "wr_row", p.maw, "wr_k")));
    write.line(fmt::format("if (q_valid && wr_b) b_exp[{}] <= q_exp;",
                           exp_addr(p, "wr_row", p.naw, "wr_k")));
  }
}

// Steps through the output tiles in row-major order, k = 0 .. steps_last per tile; `prefix`
// names the tile's first row/column registers, `advance` the condition to move on and `last`
// the flag raised after the last tile.
void tile_walk(Block& block, const CoreParams& p, const std::string& row0,
               const std::string& col0, const std::string& tile_col, const std::string& last) {
  const std::string c_r = vlit(p.rw, p.c), r_r = vlit(p.rw, p.r), zero_r = vlit(p.rw, 0);
  Block& next_col = block.if_(fmt::format("{} + {} < n_len", col0, c_r));
  next_col.line(fmt::format("{0} <= {0} + {1};", col0, c_r));
  if (!tile_col.empty()) next_col.line(fmt::format("{0} <= {0} + {1};", tile_col, vlit(p.tcw, 1)));
  Block& next_row = block.else_();
  next_row.line(fmt::format("{} <= {};", col0, zero_r));
  if (!tile_col.empty()) next_row.line(fmt::format("{} <= {};", tile_col, vlit(p.tcw, 0)));
  next_row.line(fmt::format("if ({0} + {1} < m_len) {0} <= {0} + {1};", row0, r_r));
  next_row.line(fmt::format("else {} <= 1'b1;", last));
}

// COMPUTE, feed side: the tiles' operand lanes, registered onto the array's inputs.
void feed_side(Block& body, const CoreParams& p) {
  const bool g = p.groups;
  const std::string zero_s = vlit(p.sw, 0), zero_r = vlit(p.rw, 0);
  body.comment("---- COMPUTE, feed side: tiles in row-major order, steps k = 0 .. steps_last");
  body.reg("step", p.sw);
  body.reg("row0, col0", p.rw, "first output row / column of the tile being fed");
  body.reg("fed_all");
  body.wire("feeding", 1, "state == COMPUTE && !fed_all");
  body.wire("step_last", 1, "step == steps_last");
  body.wire("in_k", 1, "step < k_len", "steps k >= K are zero padding");
  body.wire("a_lanes", p.r * p.cw).wire("b_lanes", p.c * p.cw);
  if (g) body.wire("a_exps", p.r * p.xw).wire("b_exps", p.c * p.xw);
  lane_reads(body, p);
  if (g) {
    body.comment("a group ends every G steps and at k = K-1; the padding steps after K form one group");
    body.wire("group_last_now", 1,
              fmt::format("in_k ? (step[{}:0] == {} || step == k_len - {}) : step_last",
                          p.log2g - 1, vlit(p.log2g, p.g - 1), vlit(p.sw, 1)));
  }
  body.blank();
  Block& walk = body.always_ff();
  walk.if_("rst || state != COMPUTE")
      .line(fmt::format("step <= {};", zero_s))
      .line(fmt::format("row0 <= {};", zero_r))
      .line(fmt::format("col0 <= {};", zero_r))
      .line("fed_all <= 1'b0;");
  Block& feed = walk.else_if("feeding");
  feed.line(fmt::format("step <= step_last ? {} : step + {};", zero_s, vlit(p.sw, 1)));
  tile_walk(feed.if_("step_last"), p, "row0", "col0", "", "fed_all");

  body.blank();
  body.comment("the array's inputs are registered: buffer reads settle in the cycle before");
  body.reg(g ? "f_valid, f_first, f_last, f_group_last" : "f_valid, f_first, f_last");
  body.reg("f_a", p.r * p.cw).reg("f_b", p.c * p.cw);
  if (g) body.reg("f_a_exp", p.r * p.xw).reg("f_b_exp", p.c * p.xw);
  Block& controls = body.always_ff();
  Block& reset = controls.if_("rst");
  reset.line("f_valid <= 1'b0;").line("f_first <= 1'b0;").line("f_last <= 1'b0;");
  if (g) reset.line("f_group_last <= 1'b0;");
  Block& set = controls.else_();
  set.line("f_valid <= feeding;")
      .line(fmt::format("f_first <= feeding && step == {};", zero_s))
      .line("f_last <= feeding && step_last;");
  if (g) set.line("f_group_last <= feeding && group_last_now;");
  Block& data = body.always_ff().if_("feeding");
  data.line("f_a <= a_lanes;").line("f_b <= b_lanes;");
  if (g) data.line("f_a_exp <= a_exps;").line("f_b_exp <= b_exps;");
}

// gsqhw_array on the registered feed.
void array_instance(Block& body, const CoreParams& p) {
  body.wire("arr_valid").wire("arr_row", p.orw);
  body.wire("arr_acc", p.c * p.aw).wire("arr_flags", p.c * 2);
  Instance array("gsqhw_array", "array");
  array.pin("clk", "clk").pin("rst", "rst");
  array.pin("in_valid", "f_valid").pin("in_first", "f_first").pin("in_last", "f_last");
  if (p.groups)
    array.pin("in_group_last", "f_group_last").pin("in_a_exp", "f_a_exp").pin("in_b_exp", "f_b_exp");
  array.pin("in_a", "f_a").pin("in_b", "f_b");
  array.pin("out_valid", "arr_valid").pin("out_row", "arr_row");
  array.pin("out_acc", "arr_acc").pin("out_flags", "arr_flags");
  body.instance(array);
}

// COMPUTE, result side: the array's beats into the result buffer.
void result_side(Block& body, const CoreParams& p) {
  const std::string zero_r = vlit(p.rw, 0), zero_tc = vlit(p.tcw, 0);
  body.comment("---- COMPUTE, result side: R beats per tile, tiles in the order they were fed");
  body.reg("d_row0, d_col0", p.rw).reg("d_tile_col", p.tcw).reg("drained");
  body.wire("d_row", p.maw,
            fmt::format("d_row0[{}:0] + {}", p.maw - 1,
                        p.maw == p.orw ? std::string("arr_row")
                                       : verilog::cat({vlit(p.maw - p.orw, 0), "arr_row"})));
  body.wire("beat", 1, "arr_valid && state == COMPUTE");
  Block& walk = body.always_ff();
  walk.if_("rst || state != COMPUTE")
      .line(fmt::format("d_row0 <= {};", zero_r))
      .line(fmt::format("d_col0 <= {};", zero_r))
      .line(fmt::format("d_tile_col <= {};", zero_tc))
      .line("drained <= 1'b0;");
  tile_walk(walk.else_if(fmt::format("beat && arr_row == {}", vlit(p.orw, p.r - 1))), p, "d_row0",
            "d_col0", "d_tile_col", "drained");
  body.line("always @(posedge clk) if (beat) c_buf[{d_row, d_tile_col}] <= {arr_flags, arr_acc};");
}

// OUTPUT: C row-major, lane by lane, through gsqhw_dequantizer.
void output_side(Block& body, const CoreParams& p) {
  const std::string zero_r = vlit(p.rw, 0), one_r = vlit(p.rw, 1);
  const std::string zero_tc = vlit(p.tcw, 0), zero_l = vlit(p.lane_w, 0);
  body.comment("---- OUTPUT: C row-major through the dequantizer");
  body.reg("o_row, o_col", p.rw).reg("o_tile_col", p.tcw).reg("o_lane", p.lane_w);
  body.wire("o_word", p.c * (p.aw + 2), fmt::format("c_buf[{{o_row[{}:0], o_tile_col}}]", p.maw - 1));
  body.wire("o_acc", p.aw).wire("o_flags", 2);
  output_lane_mux(body, p);
  body.instance(Instance("gsqhw_dequantizer", "dequantizer")
                    .pin("acc", "o_acc").pin("flags", "o_flags").pin("value", "out_data"));
  body.assign("out_valid", "state == OUTPUT");
  body.wire("out_take", 1, "out_valid && out_ready");
  body.wire("o_row_end", 1, fmt::format("o_col == n_len - {}", one_r));
  body.wire("o_last", 1, fmt::format("o_row_end && o_row == m_len - {}", one_r));
  Block& walk = body.always_ff();
  Block& reset = walk.if_("rst || state != OUTPUT");
  reset.line(fmt::format("o_row <= {};", zero_r)).line(fmt::format("o_col <= {};", zero_r));
  reset.line(fmt::format("o_tile_col <= {};", zero_tc)).line(fmt::format("o_lane <= {};", zero_l));
  Block& take = walk.else_if("out_take");
  Block& row_end = take.if_("o_row_end");
  row_end.line(fmt::format("o_row <= o_row + {};", one_r)).line(fmt::format("o_col <= {};", zero_r));
  row_end.line(fmt::format("o_tile_col <= {};", zero_tc)).line(fmt::format("o_lane <= {};", zero_l));
  Block& next = take.else_();
  next.line(fmt::format("o_col <= o_col + {};", one_r));
  next.if_(fmt::format("o_lane == {}", vlit(p.lane_w, p.c - 1)))
      .line(fmt::format("o_lane <= {};", zero_l))
      .line(fmt::format("o_tile_col <= o_tile_col + {};", vlit(p.tcw, 1)));
  next.else_().line(fmt::format("o_lane <= o_lane + {};", vlit(p.lane_w, 1)));
}

// The controller: IDLE -> LOAD -> COMPUTE -> OUTPUT -> IDLE.
void controller(Block& body) {
  body.comment("---- controller");
  Block& ff = body.always_ff();
  ff.if_("rst").line("state <= IDLE;").line("done <= 1'b0;");
  ff.else_().line("done <= out_take && o_last;").lines(R"(case (state)
  IDLE:    if (take_desc && desc_error == 3'd0) state <= LOAD;
  LOAD:    if (load_done) state <= COMPUTE;
  COMPUTE: if (drained) state <= OUTPUT;
  default: if (out_take && o_last) state <= IDLE;
endcase)");
  body.assign("busy", "state != IDLE");
}

}  // namespace

VerilogFile emit_core_top(const CoreParams& p) {
  verilog::Module m("gsqhw_core");
  m.preamble =
      file_header(p.design, "gsqhw_core",
                  fmt::format("{} x {} core: quantizer, operand buffers, gsqhw_array, result "
                              "buffer, dequantizer, controller (docs/core.md)",
                              p.r, p.c)) +
      fmt::format("// Capacity: M <= {}, N <= {}, K <= {}. A refused descriptor sets error:\n"
                  "// 1 = M, N or K is 0, 2 = M too large, 3 = N too large, 4 = K too large.\n",
                  p.max_m, p.max_n, p.max_k);
  m.ports(core_ports());
  Block& body = m.body;
  body.line("localparam [1:0] IDLE = 2'd0, LOAD = 2'd1, COMPUTE = 2'd2, OUTPUT = 2'd3;");
  body.reg("state", 2);
  for (auto part : {buffers, descriptor, load_side, feed_side}) {
    body.blank();
    part(body, p);
  }
  body.blank();
  array_instance(body, p);
  for (auto part : {result_side, output_side}) {
    body.blank();
    part(body, p);
  }
  body.blank();
  controller(body);
  return {"gsqhw_core.v", m.str()};
}

}  // namespace gsqhw::gen
