// The baseline designs: the INT-b MAC PE is simulated with Icarus Verilog against its C++
// reference (intmac_step) on random steps, saturation included; both baselines synthesize.
#include <gtest/gtest.h>

#include <random>
#include <sstream>

#include "base/errors.h"
#include "synth/baseline.h"
#include "synth/flow.h"
#include "base/process.h"
#include "test_util.h"

namespace gsqhw::synth {
namespace {
namespace fs = std::filesystem;
using test::scratch_dir;

TEST(Baseline, ParseAndPrint) {
  Baseline b = Baseline::parse("baseline:intmac,b=6,w=32");
  EXPECT_EQ(b.kind, Baseline::Kind::intmac);
  EXPECT_EQ(b.bits, 6);
  EXPECT_EQ(b.str(), "baseline:intmac,b=6,w=32");
  EXPECT_EQ(Baseline::parse("baseline:bare,w=20,b=4").str(), "baseline:bare,b=4,w=20");
  EXPECT_THROW(Baseline::parse("baseline:fancy,b=4,w=20"), UsageError);
  EXPECT_THROW(Baseline::parse("baseline:bare,b=1,w=20"), UsageError);
  EXPECT_THROW(Baseline::parse("baseline:bare,b=8,w=16"), UsageError);  // w must exceed 2b
  EXPECT_THROW(Baseline::parse("baseline:bare,b=x"), UsageError);
  EXPECT_THROW(Baseline::parse("baseline:bare,q=3"), UsageError);
}

TEST(Baseline, IntArrayParseAndPrint) {
  Baseline a = Baseline::parse("baseline:intarray,b=6,array=8x4");
  EXPECT_EQ(a.kind, Baseline::Kind::intarray);
  EXPECT_EQ(a.rows, 8);
  EXPECT_EQ(a.cols, 4);
  EXPECT_EQ(a.str(), "baseline:intarray,b=6,w=32,f=16,array=8x4");  // default accumulator fixed32.16
  EXPECT_EQ(Baseline::parse("baseline:intarray,array=2x2,f=4,w=20,b=3").str(), "baseline:intarray,b=3,w=20,f=4,array=2x2");
  EXPECT_THROW(Baseline::parse("baseline:intarray,b=9,array=2x2"), UsageError);  // the generator's INT PEs: 2..8
  EXPECT_THROW(Baseline::parse("baseline:intarray,b=6,array=2by2"), UsageError);
  EXPECT_THROW(Baseline::parse("baseline:intarray,b=6,array=0x2"), UsageError);
  EXPECT_THROW(Baseline::parse("baseline:intmac,b=6,array=2x2"), UsageError);  // PE baselines have no shape
  EXPECT_THROW(Baseline::parse("baseline:bare,b=6,f=3"), UsageError);
}

TEST(Baseline, IntArrayIsTheGeneratorsNarrowedIntArray) {
  Baseline a = Baseline::parse("baseline:intarray,b=4,w=20,f=4,array=2x3");
  Baseline::Rtl rtl = a.rtl();
  EXPECT_EQ(rtl.macs_per_cycle, 6);
  ASSERT_FALSE(rtl.files.empty());
  std::string all;
  for (const auto& [name, text] : rtl.files) all += text;
  // 4-bit operands, not INT8's 8: the PE's multiplier inputs are [3:0].
  EXPECT_NE(all.find("[3:0]"), std::string::npos);
  EXPECT_NE(all.find("module " + rtl.top), std::string::npos);
}

TEST(Baseline, IntMacPeMatchesItsReferenceInIcarus) {
  const int bits = 4, width = 9;  // narrow accumulator (range -256..255): saturation happens
  Baseline pe{Baseline::Kind::intmac, bits, width};
  fs::path dir = scratch_dir("baseline_iverilog");
  std::ofstream(dir / "pe.v") << pe.rtl().files.at(0).second;

  // Random steps: tiles of 1..40 steps, idle cycles between some steps.
  std::mt19937 rng(7);
  std::uniform_int_distribution<int> code(-(1 << (bits - 1)), (1 << (bits - 1)) - 1);
  std::ostringstream stimulus;
  std::vector<std::pair<long long, int>> expected;  // (acc, flags) per finished tile
  long long acc = 0;
  bool overflow_sticky = false;
  for (int tile = 0; tile < 60; ++tile) {
    int steps = 1 + static_cast<int>(rng() % 40);
    for (int k = 0; k < steps; ++k) {
      if (rng() % 4 == 0) stimulus << "    in_valid = 0; in_first = 0; in_last = 0; @(posedge clk); #1;\n";
      int a = code(rng), b = code(rng);
      // Every third tile pushes hard one way, so both saturation limits are reached.
      if (tile % 3 == 0) a = -(1 << (bits - 1)), b = tile % 2 ? a : (1 << (bits - 1)) - 1;
      bool first = k == 0, last = k == steps - 1, overflow = false;
      acc = intmac_step(acc, first, a, b, width, &overflow);
      overflow_sticky = (first ? false : overflow_sticky) || overflow;
      stimulus << fmt::format("    in_valid = 1; in_first = {}; in_last = {}; in_a = {}; in_b = {}; @(posedge clk); #1;\n",
                              int{first}, int{last}, a & ((1 << bits) - 1), b & ((1 << bits) - 1));
      if (last) expected.push_back({acc, overflow_sticky ? 1 : 0});
    }
  }
  std::ofstream(dir / "tb.v") << fmt::format(R"(
module tb;
  reg clk = 0, rst = 1, in_valid = 0, in_first = 0, in_last = 0;
  reg [{bm}:0] in_a = 0, in_b = 0;
  wire out_valid, out_row;
  wire signed [{wm}:0] out_acc;
  wire [1:0] out_flags;
  gsqhw_int_mac_pe dut(.clk(clk), .rst(rst), .in_valid(in_valid), .in_first(in_first), .in_last(in_last),
                       .in_a(in_a), .in_b(in_b), .out_valid(out_valid), .out_row(out_row), .out_acc(out_acc),
                       .out_flags(out_flags));
  always #5 clk = ~clk;
  always @(posedge clk) if (out_valid) $display("OUT %0d %0d", out_acc, out_flags);
  initial begin
    @(posedge clk); #1 rst = 0;
{stim}
    in_valid = 0; @(posedge clk); @(posedge clk); $finish;
  end
endmodule
)",
                                             fmt::arg("bm", bits - 1), fmt::arg("wm", width - 1),
                                             fmt::arg("stim", stimulus.str()));
  fs::path iverilog = require_program("iverilog", "iverilog");
  fs::path vvp = require_program("vvp", "iverilog");
  auto build = run_process({iverilog.string(), "-o", "sim", "tb.v", "pe.v"}, dir, dir / "iverilog.log", 120);
  ASSERT_EQ(build.exit_code, 0) << build.output;
  auto run = run_process({vvp.string(), "sim"}, dir, dir / "vvp.log", 120);
  ASSERT_EQ(run.exit_code, 0) << run.output;
  std::istringstream lines(run.output);
  std::string word;
  std::vector<std::pair<long long, int>> actual;
  long long value;
  int flags;
  while (lines >> word)
    if (word == "OUT" && lines >> value >> flags) actual.push_back({value, flags});
  ASSERT_EQ(actual.size(), expected.size());
  int saturated = 0;
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(actual[i], expected[i]) << "tile " << i;
    saturated += expected[i].second;
  }
  EXPECT_GT(saturated, 0) << "the stimulus never exercised saturation";
}

TEST(Baseline, BareMacIsTheSmallerOfTheTwo) {
  LibrarySet library = resolve_library({});
  FlowOptions options;
  double areas[2];
  int i = 0;
  for (auto kind : {Baseline::Kind::bare, Baseline::Kind::intmac}) {
    Baseline b{kind, 6, 32};
    options.work_dir = scratch_dir(fmt::format("baseline_synth_{}", i));
    Baseline::Rtl rtl = b.rtl();
    std::ofstream(options.work_dir / "design.v") << rtl.files.at(0).second;
    FlowResult flow = run_flow({options.work_dir / "design.v"}, rtl.top, library, options);
    areas[i++] = flow.stat.area;
    EXPECT_EQ(flow.stat.cell_types.at("DFFPOSX1") >= 32, true);
  }
  EXPECT_LT(areas[0], areas[1]);
}

}  // namespace
}  // namespace gsqhw::synth
