// The core co-simulation wrapper (gen/cosim_wrapper_emit.h), built with the Verilog writer.
#include "gen/cosim_wrapper_emit.h"

#include <fmt/format.h>

#include "gen/verilog_text.h"

namespace gsqhw::gen {

using verilog::Block;
using verilog::in;
using verilog::out;

std::vector<verilog::Port> core_cosim_wrapper_ports() {
  return {
      in("push_valid").note("append push_data to the operand source FIFO"),
      in("push_data", 32),
      in("desc_push").note("offer this descriptor (held until the core takes it)"),
      in("desc_m_in", 16),
      in("desc_n_in", 16),
      in("desc_k_in", 16),
      in("in_gate").note("the source may offer a new word this cycle"),
      in("out_gate").note("out_ready this cycle"),
      out("record").note("something to record this cycle"),
      out("record_word").note("a result word is taken at the end of this cycle"),
      out("record_data", 32),
      out("record_done").note("the core's done pulse"),
      out("record_desc").note("a descriptor was taken in the previous cycle"),
      out("record_error", 3).note("the core's error code"),
  };
}

namespace {

// The operand source: a FIFO filled by push_valid, offering its head when in_gate allows and
// holding an offered word until the core takes it.
void operand_source(Block& body, int aw) {
  body.reg("source [0:" + std::to_string((int64_t{1} << aw) - 1) + "]", 32);
  body.reg("head, tail", aw + 1);
  body.line(fmt::format("always @(posedge clk) if (push_valid) source[tail[{}:0]] <= push_data;", aw - 1));
  body.blank();
  body.reg("offering", 1, "a word was offered and not taken: it stays offered");
  body.wire("in_ready");
  body.wire("in_valid", 1, "head != tail && (offering || in_gate)");
  Block& ff = body.always_ff();
  ff.if_("rst")
      .line(fmt::format("head <= {};", vlit(aw + 1, 0)))
      .line(fmt::format("tail <= {};", vlit(aw + 1, 0)))
      .line("offering <= 1'b0;");
  ff.else_()
      .line(fmt::format("if (push_valid) tail <= tail + {};", vlit(aw + 1, 1)))
      .line(fmt::format("if (in_valid && in_ready) head <= head + {};", vlit(aw + 1, 1)))
      .line("offering <= in_valid && !in_ready;");
}

// The descriptor, held from desc_push until the core takes it.
void held_descriptor(Block& body) {
  body.reg("desc_valid").reg("desc_m, desc_n, desc_k", 16).wire("desc_ready").reg("desc_taken");
  Block& ff = body.always_ff();
  ff.if_("rst").line("desc_valid <= 1'b0;").line("desc_taken <= 1'b0;");
  Block& run = ff.else_();
  run.line("desc_taken <= desc_valid && desc_ready;");
  run.if_("desc_push")
      .line("desc_valid <= 1'b1;")
      .line("desc_m <= desc_m_in;")
      .line("desc_n <= desc_n_in;")
      .line("desc_k <= desc_k_in;");
  run.else_if("desc_valid && desc_ready").line("desc_valid <= 1'b0;");
}

}  // namespace

std::string core_cosim_wrapper_verilog(const std::string& design, int64_t fifo_words) {
  const int aw = ceil_log2(static_cast<uint64_t>(fifo_words));
  verilog::Module m("gsqhw_core_cosim");
  m.preamble = fmt::format(
      "// gsqhw_core_cosim: co-simulation wrapper of gsqhw_core (sim/core_cosim.h); not part of the\n"
      "// design. It closes the valid/ready loops that the cycle-by-cycle replay harness cannot.\n"
      "// design: {}\n",
      design);
  m.port(in("clk")).port(in("rst")).ports(core_cosim_wrapper_ports());
  Block& body = m.body;
  operand_source(body, aw);
  body.blank();
  held_descriptor(body);
  body.blank();
  body.wire("out_valid, busy, done").wire("error", 3);
  body.instance(verilog::Instance("gsqhw_core", "core")
                    .pin("clk", "clk").pin("rst", "rst")
                    .pin("desc_valid", "desc_valid").pin("desc_ready", "desc_ready")
                    .pin("desc_m", "desc_m").pin("desc_n", "desc_n").pin("desc_k", "desc_k")
                    .pin("in_valid", "in_valid").pin("in_ready", "in_ready")
                    .pin("in_data", fmt::format("source[head[{}:0]]", aw - 1))
                    .pin("out_valid", "out_valid").pin("out_ready", "out_gate")
                    .pin("out_data", "record_data")
                    .pin("busy", "busy").pin("done", "done").pin("error", "error"));
  body.wire("unused_busy", 1, "busy");
  body.assign("record_word", "out_valid && out_gate");
  body.assign("record_done", "done");
  body.assign("record_desc", "desc_taken");
  body.assign("record_error", "error");
  body.assign("record", "record_word || record_done || record_desc");
  return m.str();
}

}  // namespace gsqhw::gen
