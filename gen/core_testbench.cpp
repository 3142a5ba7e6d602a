// Self-checking Verilog-2005 testbench of a core (gen/core.h, generate_core_testbench).
//
// Sequence: reset; four refused descriptors (M, N, K beyond the capacity: errors 2, 3, 4;
// K = 0: error 1),
// each checked for its error code and for the core staying idle; then one random GEMM whose
// operand words are offered with random bubbles (valid held until taken, as valid/ready
// requires) while the result stream sees random backpressure. Every result word is compared
// with core_golden_output (quantize -> golden_gemm -> dequantize) and `done` must follow the
// last one. A cycle limit turns a hang into a FAIL.
#include <fmt/format.h>

#include <cstring>
#include <fstream>

#include "gen/core.h"
#include "gen/verilog/module.h"
#include "base/errors.h"
#include "base/files.h"
#include "numerics/format.h"

namespace gsqhw {

namespace {

// The core under test with its stimulus registers (reset values set) and output wires.
void core_tb_dut(gen::verilog::Block& body) {
  body.decl({"reg", "clk", "", false, "1'b0", ""});
  body.decl({"reg", "rst", "", false, "1'b1", ""});
  body.decl({"reg", "desc_valid", "", false, "1'b0", ""});
  for (const char* dim : {"desc_m", "desc_n", "desc_k"})
    body.decl({"reg", dim, "[15:0]", false, "16'd0", ""});
  body.decl({"reg", "in_valid", "", false, "1'b0", ""});
  body.decl({"reg", "in_data", "[31:0]", false, "32'd0", ""});
  body.decl({"reg", "out_ready", "", false, "1'b0", ""});
  for (const char* flag : {"desc_ready", "in_ready", "out_valid", "busy", "done"}) body.wire(flag);
  body.wire("out_data", 32);
  body.wire("error", 3);
  body.blank();
  gen::verilog::Instance dut("gsqhw_core", "dut");
  for (const char* port : {"clk", "rst", "desc_valid", "desc_ready", "desc_m", "desc_n", "desc_k",
                           "in_valid", "in_ready", "in_data", "out_valid", "out_ready",
                           "out_data", "busy", "done", "error"})
    dut.pin(port, port);
  body.instance(std::move(dut));
  body.blank();
  body.line("always #5 clk = ~clk;");
}

// Four descriptors the core must refuse (M, N, K beyond the capacity: errors 2, 3, 4; K = 0:
// error 1), then the GEMM's, which it must take.
void core_tb_descriptors(gen::verilog::Block& body, const CoreManifest& cm, int64_t m, int64_t n,
                         int64_t k) {
  body.comment("descriptors: two that must be refused, then the GEMM");
  gen::verilog::Block& offer = body.task("offer_descriptor(input [15:0] m, input [15:0] n, input [15:0] k)");
  offer.line("@(negedge clk);").line("desc_m = m;").line("desc_n = n;").line("desc_k = k;");
  offer.line("desc_valid = 1'b1;").line("@(negedge clk);").line("desc_valid = 1'b0;");
  body.blank();
  gen::verilog::Block& run = body.initial();
  run.line("repeat (3) @(negedge clk);").line("rst = 1'b0;");
  struct Refusal {
    int64_t m, n, k;
    int error;
    std::string what;
  };
  const std::vector<Refusal> refusals = {
      {cm.max_m + 1, 1, 1, 2, fmt::format("M = {} beyond the capacity", cm.max_m + 1)},
      {1, cm.max_n + 1, 1, 3, fmt::format("N = {} beyond the capacity", cm.max_n + 1)},
      {1, 1, cm.max_k + 1, 4, fmt::format("K = {} beyond the capacity", cm.max_k + 1)},
      {1, 1, 0, 1, "K = 0"}};
  for (const Refusal& r : refusals) {
    run.line(fmt::format("offer_descriptor(16'd{}, 16'd{}, 16'd{});", r.m, r.n, r.k));
    gen::verilog::Block& wrong = run.if_(fmt::format("error !== 3'd{} || busy !== 1'b0", r.error));
    wrong.display(fmt::format("FAIL: {}: error %0d busy %0d, want error {}, idle", r.what, r.error),
                  {"error", "busy"});
    wrong.line("failures = failures + 1;");
  }
  run.line(fmt::format("offer_descriptor(16'd{}, 16'd{}, 16'd{});", m, n, k));
  gen::verilog::Block& refused = run.if_("error !== 3'd0 || busy !== 1'b1");
  refused.display("FAIL: the GEMM's descriptor was refused: error %0d busy %0d", {"error", "busy"});
  refused.line("failures = failures + 1;");
  run.line("running = 1'b1;");
}

// The operand stream with random bubbles, the result stream with random backpressure (every
// word checked in order), and the verdict once `done` came or the cycle limit passed.
void core_tb_streams(gen::verilog::Block& body, int64_t n, int64_t m, int64_t k) {
  gen::verilog::Block& step = body.always_ff().if_("running");
  step.line("cycle = cycle + 1;");
  step.line("rng = rng ^ (rng << 13);").line("rng = rng ^ (rng >> 17);").line("rng = rng ^ (rng << 5);");
  step.comment("operand stream: a word stays offered until taken; new words come with bubbles");
  step.line("if (in_valid && in_ready) sent = sent + 1;");
  gen::verilog::Block& offer = step.if_("!in_valid || in_ready");
  offer.if_("sent < WORDS && rng[2:0] != 3'd0").line("in_valid <= 1'b1;").line("in_data <= operands[sent];");
  offer.else_().line("in_valid <= 1'b0;");
  step.comment("result stream: random backpressure, every word checked in order");
  gen::verilog::Block& take = step.if_("out_valid && out_ready");
  gen::verilog::Block& extra = take.if_("received >= RESULTS");
  extra.display("FAIL: an extra result word %h on cycle %0d", {"out_data", "cycle"});
  extra.line("failures = failures + 1;");
  gen::verilog::Block& wrong = take.else_if("out_data !== expected[received]");
  wrong.if_("failures < 10")
      .display("FAIL: result (%0d, %0d) on cycle %0d: expected %h, got %h",
               {fmt::format("received / {}", n), fmt::format("received % {}", n), "cycle",
                "expected[received]", "out_data"});
  wrong.line("failures = failures + 1;");
  take.line("received = received + 1;");
  step.line("out_ready <= rng[5:3] > 3'd2;");
  gen::verilog::Block& done = step.if_("done");
  done.line("saw_done = saw_done + 1;");
  gen::verilog::Block& early = done.if_("received != RESULTS");
  early.display("FAIL: done after %0d of %0d result words", {"received", "RESULTS"});
  early.line("failures = failures + 1;");
  gen::verilog::Block& end = step.if_("saw_done != 0 || cycle > LIMIT");
  gen::verilog::Block& hang = end.if_("saw_done == 0");
  hang.display("FAIL: no done within %0d cycles (%0d of %0d words sent, %0d of %0d results)",
               {"LIMIT", "sent", "WORDS", "received", "RESULTS"});
  hang.line("failures = failures + 1;");
  end.if_("failures == 0")
      .display("PASS: %0d results of a %0d x %0d x %0d GEMM bit-exact, 4 bad descriptors "
               "refused, %0d cycles",
               {"RESULTS", std::to_string(m), std::to_string(n), std::to_string(k), "cycle"});
  end.else_().display("FAIL: %0d failures", {"failures"});
  end.call("$finish");
}

}  // namespace

CoreTestbench generate_core_testbench(const GeneratedDesign& core, uint64_t seed, int64_t m,
                                      int64_t n, int64_t k) {
  CoreManifest cm = CoreManifest::from_json(core.manifest);
  const DesignPoint& d = core.design;
  // Default: two tile rows and two tile columns, one of them partial; K covers a partial group.
  if (m == 0) m = std::min<int64_t>(cm.max_m, cm.rows + (cm.rows + 1) / 2);
  if (n == 0) n = std::min<int64_t>(cm.max_n, cm.cols + 1);
  if (k == 0) k = std::min<int64_t>(cm.max_k, 45);
  if (m < 1 || n < 1 || k < 1 || m > cm.max_m || n > cm.max_n || k > cm.max_k)
    throw UsageError(fmt::format("core testbench: {} x {} x {} does not fit the core's capacity "
                                 "{} x {} x {}",
                                 m, n, k, cm.max_m, cm.max_n, cm.max_k));
  auto format = parse_format(d.format);
  QuantizedTensor probe = format->quantize(nullptr, 0, 0);
  const int group = probe.group_size > 0 ? probe.group_size : 32;
  std::vector<float> a = core_random_operand(m, k, group, seed * 2 + 1, true);
  std::vector<float> b = core_random_operand(n, k, group, seed * 2 + 2, true);
  std::vector<uint32_t> expected = core_golden_output(d, a, b, m, n, k);

  CoreTestbench tb;
  tb.module_name = "tb_" + core.top;
  tb.file_name = tb.module_name + ".v";
  tb.m = m;
  tb.n = n;
  tb.k = k;
  tb.checked_outputs = m * n;

  std::vector<std::string> init;  // the operand and expected words
  int64_t index = 0;
  for (const auto* operand : {&a, &b})
    for (float v : *operand) {
      uint32_t bits;
      std::memcpy(&bits, &v, 4);
      init.push_back(fmt::format("operands[{}] = 32'h{:08x};", index++, bits));
    }
  for (size_t i = 0; i < expected.size(); ++i)
    init.push_back(fmt::format("expected[{}] = 32'h{:08x};", i, expected[i]));
  const int64_t words = (m + n) * k, results = m * n;
  // generous: 2 cycles per word for GSE, doubled for the bubbles, plus the compute and drain
  const int64_t limit = 8 * words + 8 * results + 64 * (m * n * k / (cm.rows * cm.cols) + 64);

  gen::verilog::Module v(tb.module_name);
  v.preamble = fmt::format(
      "// {}: self-checking testbench of gsqhw_core, generated by gsqhw gen --testbench.\n"
      "// design: {}\n"
      "// GEMM {} x {} x {}: {} operand words in with random bubbles, {} result words out with\n"
      "// random backpressure, each compared with the golden model (quantize, golden_gemm, "
      "dequantize).\n"
      "`timescale 1ns/1ps\n",
      tb.module_name, d.str(), m, n, k, words, results);
  gen::verilog::Block& body = v.body;
  body.localparam("WORDS", std::to_string(words));
  body.localparam("RESULTS", std::to_string(results));
  body.localparam("LIMIT", std::to_string(limit));
  body.blank();
  core_tb_dut(body);
  body.blank();
  body.reg_range("operands [0:WORDS-1]", "[31:0]");
  body.reg_range("expected [0:RESULTS-1]", "[31:0]");
  gen::verilog::Block& words_init = body.initial();
  for (const auto& line : init) words_init.line(line);
  body.blank();
  for (const char* counter : {"failures", "sent", "received", "cycle", "saw_done"})
    body.decl({"integer", counter, "", false, "0", ""});
  body.decl({"reg", "running", "", false, "1'b0", ""});
  body.decl({"reg", "rng", "[31:0]", false,
             fmt::format("32'h{:08x}", static_cast<uint32_t>(seed * 2654435761u) | 1u), ""});
  body.blank();
  core_tb_descriptors(body, cm, m, n, k);
  body.blank();
  core_tb_streams(body, n, m, k);
  tb.text = v.str();
  return tb;
}

void write_core_testbench(const CoreTestbench& bench, const std::filesystem::path& dir) {
  std::filesystem::create_directories(dir);
  write_file_atomically(dir / bench.file_name, bench.text);
}

}  // namespace gsqhw
