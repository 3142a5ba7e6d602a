// Self-checking testbench generation (gen/testbench.h).
#include "gen/testbench.h"

#include <fmt/format.h>

#include <algorithm>
#include <fstream>
#include <random>

#include "gen/pe_spec.h"
#include "gen/verilog/module.h"
#include "gen/verilog_text.h"
#include "gen/schedule.h"
#include "base/errors.h"
#include "base/files.h"
#include "numerics/gemm.h"

namespace gsqhw {
namespace {

using gen::OperandFamily;

// Collects fields most-significant first and prints them as one Verilog hex literal.
class BitWord {
 public:
  void put(uint64_t value, int width) {
    for (int bit = width - 1; bit >= 0; --bit) bits_.push_back(bit < 64 && ((value >> bit) & 1));
  }
  int width() const { return static_cast<int>(bits_.size()); }
  std::string hex() const {
    std::string digits;
    int n = width();
    int lead = n % 4 == 0 ? 4 : n % 4;
    int pos = 0, group = lead;
    while (pos < n) {
      int v = 0;
      for (int i = 0; i < group; ++i) v = v * 2 + (bits_[pos + i] ? 1 : 0);
      digits += "0123456789abcdef"[v];
      pos += group;
      group = 4;
    }
    return fmt::format("{}'h{}", n, digits);
  }

 private:
  std::vector<bool> bits_;
};

uint64_t mask(int width) { return width >= 64 ? ~uint64_t{0} : (uint64_t{1} << width) - 1; }

int32_t random_minifloat(const gen::OperandFormat& f, std::mt19937_64& rng) {
  std::uniform_int_distribution<int> percent(0, 99);
  int total = f.code_bits;
  uint32_t sign = static_cast<uint32_t>(rng() & 1) << (total - 1);
  uint32_t man = static_cast<uint32_t>(rng() & mask(f.mf_man_bits));
  int roll = percent(rng);
  uint32_t exp;
  if (roll < 80) {  // ordinary values near 1
    std::uniform_int_distribution<int> near(std::max(1, f.mf_bias - 3), f.mf_bias + 3);
    exp = static_cast<uint32_t>(near(rng));
  } else if (roll < 92) {  // anything, subnormals and specials included
    return static_cast<int32_t>(rng() & mask(total));
  } else if (roll < 96) {  // subnormal or zero
    exp = 0;
  } else {  // the largest exponent field: max normal (E4M3), Inf or NaN (IEEE-like)
    exp = static_cast<uint32_t>(mask(f.mf_exp_bits));
  }
  return static_cast<int32_t>(sign | (exp << f.mf_man_bits) | man);
}

}  // namespace

void random_operands(const GeneratedDesign& design, int m, int n, int k, uint64_t seed,
                     QuantizedTensor& a, QuantizedTensor& b) {
  gen::OperandFormat f = gen::decode_operand_format(design.design.format);
  int int_bits = design.manifest.value("int_bits", f.int_bits);
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int> percent(0, 99);
  auto fill_tensor = [&](QuantizedTensor& t, int rows) {
    t = QuantizedTensor{};
    t.format_spec = design.design.format;
    t.rows = rows;
    t.cols = k;
    t.codes.resize(static_cast<size_t>(rows) * k);
    switch (f.family) {
      case OperandFamily::gse: {
        int hi = (1 << (f.gse_b - 1)) - 1, lo = f.gse_full_range ? -hi - 1 : -hi;
        std::uniform_int_distribution<int> element(lo, hi);
        for (auto& c : t.codes) c = element(rng);
        t.group_size = f.gse_g;
        int max_code = (1 << f.gse_e) - 2, bias = f.gse_bias();
        std::uniform_int_distribution<int> near(std::max(0, bias - 2), std::min(max_code, bias + 2));
        std::uniform_int_distribution<int> any(0, max_code);
        t.group_exponents.resize(static_cast<size_t>(rows) * t.groups_per_row());
        for (auto& e : t.group_exponents) {
          int roll = percent(rng);
          e = roll < 2 ? max_code + 1 : roll < 7 ? any(rng) : near(rng);  // NaN, extreme, usual
        }
        break;
      }
      case OperandFamily::minifloat:
        for (auto& c : t.codes) c = random_minifloat(f, rng);
        break;
      case OperandFamily::integer: {
        int hi = (1 << (int_bits - 1)) - 1;
        std::uniform_int_distribution<int> element(-hi, hi);
        for (auto& c : t.codes) c = element(rng);
        bool per_tensor = design.design.format.find("per=tensor") != std::string::npos;
        t.scales.assign(per_tensor ? 1 : rows, 1.0f);
        break;
      }
    }
  };
  fill_tensor(a, m);
  fill_tensor(b, n);
}

namespace {

// The parts of a testbench's text that the GEMM decides.
struct TbText {
  std::string header;                                       // `timescale and comment lines
  std::vector<std::pair<std::string, std::string>> params;  // localparams
  std::vector<std::string> stimulus;                        // one assignment per cycle
  std::vector<std::string> expected;                        // one beat per line
};

// Every out_valid beat against the expected one: row and cycle, then each column's
// accumulator and flags; at END_CYCLE the verdict.
void check_beats(gen::verilog::Block& body, int row_width) {
  gen::verilog::Block& ff = body.always_ff().if_("!rst");
  gen::verilog::Block& beat = ff.if_("out_valid");
  gen::verilog::Block& extra = beat.if_("beat >= BEATS");
  extra.line("failed_beats = failed_beats + 1;");
  extra.display("FAIL: unexpected out_valid beat in cycle %0d", {"cycle"});
  gen::verilog::Block& check = beat.else_();
  const std::string expected_row = fmt::format("expected[beat][OUT_W-1 -: {}]", row_width);
  gen::verilog::Block& late =
      check.if_(fmt::format("cycle != expected_cycle[beat] || out_row !== {}", expected_row));
  late.line("failed_beats = failed_beats + 1;");
  late.if_("failed_beats <= 10")
      .display("FAIL: beat %0d: row %0d in cycle %0d, expected row %0d in cycle %0d",
               {"beat", "out_row", "cycle", expected_row, "expected_cycle[beat]"});
  gen::verilog::Block& wrong =
      check.for_("j", "C").if_(
          "out_acc[j*AW +: AW] !== expected[beat][j*AW +: AW] || "
          "out_flags[j*2 +: 2] !== expected[beat][C*AW + j*2 +: 2]");
  wrong.line("failed_results = failed_results + 1;");
  wrong.if_("failed_results <= 10")
      .display("FAIL: beat %0d column %0d: acc %h flags %b, expected acc %h flags %b",
               {"beat", "j", "out_acc[j*AW +: AW]", "out_flags[j*2 +: 2]",
                "expected[beat][j*AW +: AW]", "expected[beat][C*AW + j*2 +: 2]"});
  check.line("beat = beat + 1;");
  gen::verilog::Block& end = ff.if_("cycle == END_CYCLE");
  end.line("if (beat < BEATS) failed_beats = failed_beats + (BEATS - beat);");
  end.if_("failed_results == 0 && failed_beats == 0")
      .display("PASS: %0d results in %0d beats bit-exact, timing as the manifest says",
               {"BEATS * C", "BEATS"});
  end.else_().display("FAIL: %0d of %0d results differ, %0d of %0d beats missing/late/wrong row",
                      {"failed_results", "BEATS * C", "failed_beats", "BEATS"});
  end.call("$finish");
  ff.line("cycle <= cycle + 1;");
}

std::string testbench_verilog(const std::string& name, const std::string& top,
                              const std::vector<const PortSpec*>& inputs, int row_width,
                              const TbText& text) {
  gen::verilog::Module m(name);
  m.preamble = text.header;
  gen::verilog::Block& b = m.body;
  for (const auto& [param, value] : text.params) b.localparam(param, value);
  b.blank();
  b.reg("clk").reg("rst");
  b.reg_range("stimulus [0:STEPS-1]", "[IN_W-1:0]");
  b.reg_range("expected [0:BEATS-1]", "[OUT_W-1:0]");
  for (const char* var : {"expected_cycle [0:BEATS-1]", "cycle", "beat", "failed_results",
                          "failed_beats", "j"})
    b.integer(var);
  b.blank();
  b.wire_range("drive", "[IN_W-1:0]");
  b.assign("drive", "(!rst && cycle < STEPS) ? stimulus[cycle] : {IN_W{1'b0}}");
  std::vector<std::string> fields;
  gen::verilog::Instance dut(top, "dut");
  dut.pin("clk", "clk").pin("rst", "rst");
  for (const PortSpec* port : inputs) {
    b.wire(port->name, port->width);
    fields.push_back(port->name);
    dut.pin(port->name, port->name);
  }
  b.assign(gen::verilog::cat(fields), "drive");
  b.blank();
  b.wire("out_valid");
  b.wire("out_row", row_width);
  b.wire_range("out_acc", "[C*AW-1:0]");
  b.wire_range("out_flags", "[C*2-1:0]");
  dut.pin("out_valid", "out_valid").pin("out_row", "out_row").pin("out_acc", "out_acc");
  dut.pin("out_flags", "out_flags");
  b.instance(std::move(dut));
  b.blank();
  gen::verilog::Block& clock = b.initial();
  clock.line("clk = 1'b0;").line("forever #5 clk = ~clk;");
  b.blank();
  gen::verilog::Block& init = b.initial();
  for (const auto& line : text.stimulus) init.line(line);
  for (const auto& line : text.expected) init.line(line);
  for (const char* line : {"rst = 1'b1;", "cycle = 0;", "beat = 0;", "failed_results = 0;",
                           "failed_beats = 0;", "repeat (3) @(posedge clk);", "rst <= 1'b0;"})
    init.line(line);
  b.blank();
  check_beats(b, row_width);
  return m.str();
}

}  // namespace

GeneratedTestbench generate_testbench(const GeneratedDesign& design,
                                      const TestbenchOptions& options) {
  const nlohmann::json& man = design.manifest;
  gen::OperandFormat f = gen::decode_operand_format(design.design.format);
  const int rows = man["rows"], cols = man["cols"];
  const int aw = man["widths"]["acc"];
  const int latency = man["timing"]["latency"];
  const bool groups = f.has_groups();
  if (options.tiles < 1 || options.tiles > 64)
    throw UsageError(fmt::format("testbench tiles = {} is outside 1..64", options.tiles));
  if (options.k < 0) throw UsageError("testbench K must not be negative");

  GeneratedTestbench tb;
  tb.module_name = "tb_" + design.top;
  tb.file_name = tb.module_name + ".v";
  int tiles_n = options.tiles >= 2 ? 2 : 1;
  int tiles_m = (options.tiles + tiles_n - 1) / tiles_n;
  tb.m = tiles_m * rows;
  tb.n = tiles_n * cols;
  // GSE groups, or a minifloat shared-column array's group sums: two whole groups and a
  // partial one.
  int group = groups ? f.gse_g : design.design.acc.group;
  tb.k = options.k > 0 ? options.k : group > 0 ? 2 * group + group / 2 + 1 : 2 * rows + 3;
  const ArrayManifest array = ArrayManifest::from_json(man);
  const int tiles = tiles_m * tiles_n;

  QuantizedTensor a, b;
  random_operands(design, tb.m, tb.n, tb.k, options.seed, a, b);
  GemmResult golden = golden_gemm(a, b, design.design.acc, 1);
  tb.checked_outputs = tb.m * tb.n;
  const GemmTiming timing = gemm_timing(array, tb.m, tb.n, tb.k, groups ? group : 0);
  const int steps = static_cast<int>(timing.steps_per_tile);

  // --- stimulus: the co-simulation driver's values (gen/schedule.h drive_gemm), one word
  // per cycle holding every input port in manifest order, the first port in the top bits
  int record_words = 0;
  const std::vector<int> offsets = stimulus_layout(array, &record_words);
  std::vector<const PortSpec*> inputs;
  for (const auto& port : array.ports)
    if (port.input) inputs.push_back(&port);
  const int64_t stimulus_cycles = array.weight_preload + timing.tiles * timing.steps_per_tile;
  TbText text;
  int in_width = 0;
  drive_gemm(array, a, b, stimulus_cycles, [&](int64_t cycle, const std::vector<uint64_t>& record) {
    BitWord w;
    for (size_t p = 0; p < inputs.size(); ++p)
      for (int bit = inputs[p]->width - 1; bit >= 0; --bit)
        w.put((record[static_cast<size_t>(offsets[p] + bit / 64)] >> (bit % 64)) & 1, 1);
    in_width = w.width();
    text.stimulus.push_back(fmt::format("stimulus[{}] = {};", cycle, w.hex()));
  });

  // --- expected beats: {out_row, out_flags, out_acc} and their cycles
  const int row_width = std::max(1, gen::ceil_log2(rows));
  int out_width = 0, beats = 0;
  int64_t last_cycle = 0;
  for (int tile = 0; tile < tiles; ++tile) {
    int row0 = (tile / tiles_n) * rows, col0 = (tile % tiles_n) * cols;
    for (int r = 0; r < rows; ++r) {
      BitWord w;
      w.put(static_cast<uint64_t>(r), row_width);
      for (int j = cols - 1; j >= 0; --j) w.put(golden.flags[(row0 + r) * tb.n + col0 + j], 2);
      for (int j = cols - 1; j >= 0; --j)
        w.put(static_cast<uint64_t>(golden.acc_raw[(row0 + r) * tb.n + col0 + j]) & mask(aw), aw);
      out_width = w.width();
      int64_t cycle = beat_cycle(array, timing.steps_per_tile, tile, r);
      last_cycle = std::max(last_cycle, cycle);
      text.expected.push_back(fmt::format("expected[{}] = {}; expected_cycle[{}] = {};", beats,
                                          w.hex(), beats, cycle));
      ++beats;
    }
  }
  tb.expected_cycles = last_cycle + 1;

  text.header = fmt::format(
      "`timescale 1ns/1ps\n"
      "// {}: self-checking testbench for {}.\n"
      "// Generated by gsqhw gen --testbench; do not edit by hand.\n"
      "// design: {}\n"
      "// GEMM {} x {} x {} (random codes, seed {}) in {} tiles of {} steps, back to back\n"
      "// ({} weight preload cycles first);\n"
      "// every out_valid beat is checked against golden_gemm: row, accumulators, flags and its "
      "cycle\n"
      "// (manifest timing: latency {}). Prints PASS or FAIL with counts.\n",
      tb.module_name, design.top, design.design.str(), tb.m, tb.n, tb.k, options.seed, tiles,
      steps, array.weight_preload, latency);
  text.params = {{"STEPS", std::to_string(stimulus_cycles)}, {"BEATS", std::to_string(beats)},
                 {"IN_W", std::to_string(in_width)},       {"OUT_W", std::to_string(out_width)},
                 {"C", std::to_string(cols)},              {"AW", std::to_string(aw)},
                 {"LAST_CYCLE", std::to_string(last_cycle)},
                 {"END_CYCLE", std::to_string(last_cycle + 8)}};
  tb.text = testbench_verilog(tb.module_name, design.top, inputs, row_width, text);
  return tb;
}

void write_testbench(const GeneratedTestbench& bench, const std::filesystem::path& dir) {
  std::filesystem::create_directories(dir);
  write_file_atomically(dir / bench.file_name, bench.text);
}

}  // namespace gsqhw
