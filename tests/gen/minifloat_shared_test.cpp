// The shared-column FP8 arrays (align=shared on fp8:e4m3 / fp6, gen/minifloat_shared_emit.cpp)
// under the real tools: Verilator -Wall lint and Yosys elaboration, the self-checking testbench
// (golden vectors with group sums) under Icarus at every pipeline depth, with groups shorter
// than R, partial groups and short tiles, and once under Verilator; the manifest and the
// refusals.
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <filesystem>

#include "base/errors.h"
#include "gen/generator.h"
#include "gen/testbench.h"
#include "tests/gen/gen_test_tools.h"

namespace gsqhw {
namespace {

namespace fs = std::filesystem;
using namespace gen_test;

void expect_testbench_pass(const std::string& spec, const TestbenchOptions& options = {},
                           bool verilator = false) {
  SCOPED_TRACE(spec);
  GeneratedDesign g = generate_design(DesignPoint::parse(spec));
  GeneratedTestbench tb = generate_testbench(g, options);
  fs::path dir = scratch((verilator ? "fp8s_verilator_" : "fp8s_iverilog_") + g.design.slug());
  write_design(g, dir);
  write_testbench(tb, dir);
  fs::path log = dir / "build.log", sim_log = dir / "run.log";
  if (verilator) {
    ASSERT_EQ(run(fmt::format("verilator --binary -Wno-fatal -Wno-lint -Wno-style -Mdir {} "
                              "--top-module {} {}{}",
                              (dir / "obj").string(), tb.module_name, (dir / tb.file_name).string(),
                              file_list(g, dir)),
                  log),
              0)
        << read_file(log);
    EXPECT_EQ(run((dir / "obj" / ("V" + tb.module_name)).string(), sim_log), 0);
  } else {
    ASSERT_NO_FATAL_FAILURE(compile_in_icarus(g, dir, tb.file_name, dir / "tb.vvp", log));
    EXPECT_EQ(run(fmt::format("vvp -n {}", (dir / "tb.vvp").string()), sim_log), 0);
  }
  const std::string output = read_file(sim_log);
  EXPECT_NE(output.find(fmt::format("PASS: {} results", tb.checked_outputs)), std::string::npos)
      << output;
  EXPECT_EQ(output.find("FAIL"), std::string::npos) << output;
  fs::remove_all(dir);
}

TEST(MinifloatSharedArray, ManifestAndModules) {
  GeneratedDesign g = generate_design(DesignPoint::parse("fp8:e4m3@array4x2,acc=fp32,pipe=2,align=shared"));
  EXPECT_EQ(g.manifest["architecture"], "shared-column");
  EXPECT_EQ(g.manifest["timing"]["group_size"], 32);
  EXPECT_EQ(g.manifest["timing"]["min_steps_per_group"], 4);
  EXPECT_EQ(g.manifest["timing"]["latency"], 2 + 2 + 1);  // C + pipe + 1, as the GSE array
  std::vector<std::string> names;
  for (const auto& [name, text] : g.files) names.push_back(name);
  for (const char* want : {"gsqhw_product.v", "gsqhw_addend_fp32.v", "gsqhw_acc_fp32.v",
                           "gsqhw_pe_gsum.v", "gsqhw_group_acc.v", "gsqhw_array.v"})
    EXPECT_NE(std::find(names.begin(), names.end(), want), names.end()) << want;
  bool group_last_port = false;
  for (const auto& p : g.manifest["ports"]) group_last_port |= p["name"] == "in_group_last";
  EXPECT_TRUE(group_last_port);
  // The 42-bit group sum of 32 E4M3 products (1 + 36 + 5).
  for (const auto& [name, text] : g.files)
    if (name == "gsqhw_pe_gsum.v") EXPECT_NE(text.find("[41:0] group_sum"), std::string::npos) << text;
  // Group sums without align=shared, or on a lone PE, are refused.
  DesignPoint per_pe = DesignPoint::parse("fp8:e4m3@array2x2,acc=fp32");
  per_pe.acc.group = 32;
  EXPECT_THROW(generate_design(per_pe), UsageError);
  EXPECT_THROW(DesignPoint::parse("fp8:e4m3@pe,align=shared"), UsageError);
}

TEST(MinifloatSharedArray, LintCleanInVerilatorAndElaboratesInYosys) {
  if (!have_tool("verilator") || !have_tool("yosys"))
    GTEST_SKIP() << "verilator/yosys not installed (apt-get install verilator yosys)";
  fs::path dir = scratch("fp8s_lint");
  for (const char* spec : {"fp8:e4m3@array1x1,acc=fp32,pipe=1,align=shared",
                           "fp8:e4m3@array2x3,acc=fixed49.18,pipe=2,align=shared",
                           "fp8:e4m3@array4x4,acc=fp32,pipe=3,align=shared,group=16",
                           "fp8:e4m3@array3x2,acc=fixed32.-2,pipe=4,align=shared,group=1",
                           "fp6:e3m2@array2x2,acc=fp32,pipe=2,align=shared",
                           "fp6:e2m3@array2x2,acc=fixed24.6,align=shared,group=64"}) {
    SCOPED_TRACE(spec);
    GeneratedDesign g = generate_design(DesignPoint::parse(spec));
    fs::path out = dir / g.design.slug();
    write_design(g, out);
    expect_lint_clean(g, out);
  }
  fs::remove_all(dir);
}

TEST(MinifloatSharedArray, IcarusTestbenchPassesAtEveryPipelineDepth) {
  if (!have_tool("iverilog") || !have_tool("vvp"))
    GTEST_SKIP() << "Icarus Verilog not installed (apt-get install iverilog)";
  for (int pipe = 1; pipe <= 4; ++pipe) {
    expect_testbench_pass(fmt::format("fp8:e4m3@array4x3,acc=fp32,pipe={},align=shared", pipe));
    expect_testbench_pass(
        fmt::format("fp8:e4m3@array3x2,acc=fixed49.18,pipe={},align=shared,group=8", pipe));
  }
  // Groups shorter than R (G = 2 < R = 5), a saturating accumulator, negative F, K < R.
  expect_testbench_pass("fp8:e4m3@array5x2,acc=fixed20.4,align=shared,group=2");
  expect_testbench_pass("fp8:e4m3@array2x2,acc=fixed16.-3,align=shared,group=5");
  TestbenchOptions short_k;
  short_k.k = 3;
  short_k.tiles = 4;
  expect_testbench_pass("fp8:e4m3@array5x3,acc=fp32,align=shared", short_k);
  expect_testbench_pass("fp6:e2m3@array2x2,acc=fp32,align=shared,group=4");
}

TEST(MinifloatSharedArray, VerilatorRunsTheSameTestbench) {
  if (!have_tool("verilator")) GTEST_SKIP() << "verilator not installed (apt-get install verilator)";
  TestbenchOptions options;
  options.tiles = 2;
  expect_testbench_pass("fp8:e4m3@array2x3,acc=fp32,pipe=2,align=shared", options, true);
}

}  // namespace
}  // namespace gsqhw
