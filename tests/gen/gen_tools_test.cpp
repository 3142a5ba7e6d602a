// The generated Verilog under the real tools: Verilator lint (-Wall) and Yosys elaboration over
// a grid of designs, the self-checking testbenches (golden vectors) under Icarus Verilog and
// Verilator, the checked-in reference cores in rtl/, and the CLI's exit codes.
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "gen/generator.h"
#include "gen/testbench.h"
#include "base/errors.h"
#include "tests/gen/gen_test_tools.h"

namespace gsqhw {
namespace {

namespace fs = std::filesystem;

using namespace gen_test;

// The representative grid: every PE family x accumulator kind x level, pipeline depths spread
// over the grid so that each depth meets every family.
std::vector<std::string> lint_grid() {
  const std::vector<std::string> formats = {
      "gse:b=6,g=32,e=5", "gse:b=3,g=8,e=4", "gse:b=8,g=256,e=8,range=full", "fp8:e4m3",
      "fp8:e5m2", "bf16", "fp16", "int8:per=channel"};
  const std::vector<std::string> accs = {"fixed32.16", "fp32"};
  const std::vector<std::string> levels = {"pe", "array1x1", "array2x3", "array4x4"};
  std::vector<std::string> grid;
  int index = 0;
  for (const auto& f : formats)
    for (const auto& a : accs)
      for (const auto& l : levels)
        grid.push_back(fmt::format("{}@{},acc={},pipe={}", f, l, a, 1 + (index++ % 4)));
  return grid;
}

TEST(GeneratedVerilog, LintCleanInVerilatorAndElaboratesInYosys) {
  if (!have_tool("verilator") || !have_tool("yosys"))
    GTEST_SKIP() << "verilator/yosys not installed (apt-get install verilator yosys)";
  fs::path dir = scratch("lint");
  int checked = 0;
  for (const auto& spec : lint_grid()) {
    SCOPED_TRACE(spec);
    GeneratedDesign g = generate_design(DesignPoint::parse(spec));
    fs::path out = dir / g.design.slug();
    write_design(g, out);
    expect_lint_clean(g, out);
    ++checked;
  }
  // The shared-column GSE arrays and the weight-stationary arrays.
  for (const char* spec : {"gse:b=6@array4x4,acc=fixed32.16,pipe=1,flow=ws",
                           "gse:b=3,g=8,e=4@array1x1,acc=fp32,pipe=4,flow=ws",
                           "gse:b=8,g=256,e=8,range=full@array2x3,acc=fp32,pipe=3,flow=ws",
                           "fp8:e4m3@array2x3,acc=fp32,pipe=2,flow=ws",
                           "fp8:e5m2@array3x2,acc=fixed32.16,pipe=4,flow=ws",
                           "bf16@array1x1,acc=fp32,pipe=3,flow=ws",
                           "fp16@array4x4,acc=fixed32.16,pipe=1,flow=ws",
                           "int8:per=channel@array4x4,acc=fixed32.0,pipe=2,flow=ws",
                           "int8:per=channel@array1x2,acc=fp32,pipe=1,flow=ws",
                           "gse:b=6@array1x1,acc=fixed32.16,pipe=1,align=shared",
                           "gse:b=6@array2x3,acc=fp32,pipe=2,align=shared",
                           "gse:b=3,g=8,e=4@array4x4,acc=fixed32.16,pipe=3,align=shared",
                           "gse:b=8,g=256,e=8,range=full@array4x4,acc=fp32,pipe=4,align=shared"}) {
    SCOPED_TRACE(spec);
    GeneratedDesign g = generate_design(DesignPoint::parse(spec));
    fs::path out = dir / ("variant_" + g.design.slug());
    write_design(g, out);
    expect_lint_clean(g, out);
    ++checked;
  }
  EXPECT_EQ(checked, 77);
  fs::remove_all(dir);
}

// The shape limits of issue #4 (R, C from 1 to 64): a column and a row of 64 PEs in both
// dataflows, and one full 64 x 64 array (the shared-column GSE array; about 1.5 min of lint and
// elaboration on the 2-core machine, so only one).
TEST(GeneratedVerilog, ShapeLimitsLintCleanAndElaborate) {
  if (!have_tool("verilator") || !have_tool("yosys"))
    GTEST_SKIP() << "verilator/yosys not installed (apt-get install verilator yosys)";
  fs::path dir = scratch("lint_limits");
  for (const char* spec : {"gse:b=6@array64x1,acc=fixed32.16", "fp8:e4m3@array1x64,acc=fp32",
                           "int8:per=channel@array64x1,acc=fixed32.0,flow=ws", "bf16@array1x64,acc=fp32,flow=ws",
                           "gse:b=6@array64x64,acc=fixed32.16,align=shared"}) {
    SCOPED_TRACE(spec);
    GeneratedDesign g = generate_design(DesignPoint::parse(spec));
    fs::path out = dir / g.design.slug();
    write_design(g, out);
    expect_lint_clean(g, out);
  }
  EXPECT_THROW(DesignPoint::parse("gse:b=6@array65x1"), UsageError);
  EXPECT_THROW(DesignPoint::parse("gse:b=6@array1x65"), UsageError);
  fs::remove_all(dir);
}

// Generates the testbench, compiles it with Icarus and checks that it prints PASS.
void expect_icarus_pass(const std::string& spec, const TestbenchOptions& options = {},
                        const GeneratorOptions& gen_options = {}) {
  SCOPED_TRACE(spec);
  GeneratedDesign g = generate_design(DesignPoint::parse(spec), gen_options);
  GeneratedTestbench tb = generate_testbench(g, options);
  fs::path dir = scratch("iverilog_" + g.design.slug());
  write_design(g, dir);
  write_testbench(tb, dir);
  fs::path log = dir / "iverilog.log";
  ASSERT_NO_FATAL_FAILURE(compile_in_icarus(g, dir, tb.file_name, dir / "tb.vvp", log));
  fs::path sim_log = dir / "vvp.log";
  EXPECT_EQ(run(fmt::format("vvp -n {}", (dir / "tb.vvp").string()), sim_log), 0);
  std::string output = read_file(sim_log);
  EXPECT_NE(output.find(fmt::format("PASS: {} results", tb.checked_outputs)), std::string::npos)
      << output;
  EXPECT_EQ(output.find("FAIL"), std::string::npos) << output;
  fs::remove_all(dir);
}

TEST(GeneratedVerilog, IcarusTestbenchPassesForEveryFamilyAndAccumulator) {
  if (!have_tool("iverilog") || !have_tool("vvp"))
    GTEST_SKIP() << "Icarus Verilog not installed (apt-get install iverilog)";
  for (const char* format : {"gse:b=6,g=32,e=5", "gse:b=4,g=8,e=4,range=full", "fp8:e4m3",
                             "fp8:e5m2", "bf16", "fp16", "int8:per=tensor"})
    for (const char* acc : {"fixed32.16", "fp32"})
      for (const char* level : {"pe", "array2x3"})
        expect_icarus_pass(fmt::format("{}@{},acc={}", format, level, acc));
}

TEST(GeneratedVerilog, IcarusTestbenchPassesAtEveryPipelineDepth) {
  if (!have_tool("iverilog")) GTEST_SKIP() << "Icarus Verilog not installed (apt-get install iverilog)";
  for (int pipe = 1; pipe <= 4; ++pipe) {
    expect_icarus_pass(fmt::format("gse:b=5,g=4,e=4@array3x2,acc=fixed24.8,pipe={}", pipe));
    expect_icarus_pass(fmt::format("bf16@array2x2,acc=fp32,pipe={}", pipe));
  }
}

TEST(GeneratedVerilog, IcarusTestbenchCoversSaturationAndShortTiles) {
  if (!have_tool("iverilog")) GTEST_SKIP() << "Icarus Verilog not installed (apt-get install iverilog)";
  // A narrow accumulator saturates often (sticky overflow); K < R pads every tile.
  expect_icarus_pass("gse:b=6,g=4,e=5@array4x2,acc=fixed14.10");
  TestbenchOptions short_k;
  short_k.k = 2;
  short_k.tiles = 4;
  expect_icarus_pass("gse:b=6,g=4,e=5@array4x2,acc=fixed32.16", short_k);
  expect_icarus_pass("fp8:e4m3@array4x2,acc=fixed12.6", short_k);
  // Negative F: right shifts with floor.
  expect_icarus_pass("int8:per=channel@array2x2,acc=fixed16.-4");
  GeneratorOptions int4;
  int4.int_bits = 4;
  expect_icarus_pass("int8:per=tensor@array2x3,acc=fixed16.2", {}, int4);
}

TEST(GeneratedVerilog, IcarusTestbenchPassesForSharedColumnGseArrays) {
  if (!have_tool("iverilog")) GTEST_SKIP() << "Icarus Verilog not installed (apt-get install iverilog)";
  for (int pipe = 1; pipe <= 4; ++pipe) {
    expect_icarus_pass(
        fmt::format("gse:b=6,g=32,e=5@array4x4,acc=fixed32.16,pipe={},align=shared", pipe));
    expect_icarus_pass(fmt::format("gse:b=5,g=4,e=4@array3x2,acc=fp32,pipe={},align=shared", pipe));
  }
  // Groups shorter than R (G = 4 < R = 6) and K < R: padded groups and tiles.
  expect_icarus_pass("gse:b=6,g=4,e=5@array6x2,acc=fixed16.8,align=shared");
  TestbenchOptions short_k;
  short_k.k = 3;
  short_k.tiles = 4;
  expect_icarus_pass("gse:b=6,g=8,e=5@array5x3,acc=fp32,align=shared", short_k);
  expect_icarus_pass("gse:b=4,g=8,e=4@array1x1,acc=fixed20.4,align=shared", short_k);
}

TEST(GeneratedVerilog, IcarusTestbenchPassesForWeightStationaryArrays) {
  if (!have_tool("iverilog")) GTEST_SKIP() << "Icarus Verilog not installed (apt-get install iverilog)";
  for (const char* format : {"gse:b=6,g=8,e=5", "fp8:e4m3", "int8:per=tensor", "bf16"})
    for (const char* acc : {"fixed32.16", "fp32"})
      expect_icarus_pass(fmt::format("{}@array3x2,acc={},flow=ws", format, acc));
  for (int pipe = 1; pipe <= 4; ++pipe) {
    expect_icarus_pass(fmt::format("gse:b=5,g=4,e=4@array2x3,acc=fixed24.8,flow=ws,pipe={}", pipe));
    expect_icarus_pass(fmt::format("fp8:e5m2@array2x2,acc=fp32,flow=ws,pipe={}", pipe));
  }
  // G = 4 < R = 6 (every group padded to a chunk), 1x1, K < R, and a saturating accumulator.
  expect_icarus_pass("gse:b=6,g=4,e=5@array6x2,acc=fixed16.8,flow=ws");
  expect_icarus_pass("int8:per=channel@array1x1,acc=fixed24.0,flow=ws,pipe=2");
  TestbenchOptions short_k;
  short_k.k = 3;
  short_k.tiles = 4;
  expect_icarus_pass("gse:b=6,g=8,e=5@array5x3,acc=fp32,flow=ws", short_k);
  expect_icarus_pass("fp16@array4x2,acc=fixed12.6,flow=ws", short_k);
}

TEST(GeneratedVerilog, VerilatorRunsTheSameTestbench) {
  if (!have_tool("verilator")) GTEST_SKIP() << "verilator not installed (apt-get install verilator)";
  for (const char* spec :
       {"gse:b=6@array2x2,acc=fp32,pipe=2", "fp8:e4m3@array2x3,acc=fp32,flow=ws"}) {
    SCOPED_TRACE(spec);
    GeneratedDesign g = generate_design(DesignPoint::parse(spec));
    TestbenchOptions options;
    options.tiles = 2;
    GeneratedTestbench tb = generate_testbench(g, options);
    fs::path dir = scratch("verilator");
    write_design(g, dir);
    write_testbench(tb, dir);
    fs::path log = dir / "build.log";
    ASSERT_EQ(run(fmt::format("verilator --binary -Wno-fatal -Wno-lint -Wno-style -Mdir {} "
                              "--top-module {} {}{}",
                              (dir / "obj").string(), tb.module_name, (dir / tb.file_name).string(),
                              file_list(g, dir)),
                  log),
              0)
        << read_file(log);
    fs::path sim_log = dir / "run.log";
    EXPECT_EQ(run((dir / "obj" / ("V" + tb.module_name)).string(), sim_log), 0);
    EXPECT_NE(read_file(sim_log).find("PASS"), std::string::npos) << read_file(sim_log);
    fs::remove_all(dir);
  }
}

TEST(ReferenceCores, CheckedInRtlMatchesTheGenerator) {
  fs::path rtl = fs::path(GSQHW_TEST_SOURCE_DIR) / "rtl";
  ASSERT_TRUE(fs::exists(rtl / "designs.txt")) << "rtl/designs.txt lists the reference designs";
  std::ifstream list(rtl / "designs.txt");
  std::string line;
  int designs = 0;
  while (std::getline(list, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream fields(line);
    std::string folder, spec, option;
    fields >> folder >> spec;
    // Every choice is in the design string; no generator options.
    ASSERT_FALSE(fields >> option) << "rtl/designs.txt: unexpected option " << option;
    SCOPED_TRACE(spec);
    GeneratedDesign g = generate_design(DesignPoint::parse(spec));
    for (const auto& [name, text] : g.files)
      EXPECT_EQ(read_file(rtl / folder / name), text)
          << "rtl/" << folder << "/" << name << " is stale: run rtl/regen.sh";
    EXPECT_EQ(nlohmann::json::parse(read_file(rtl / folder / "manifest.json")), g.manifest);
    EXPECT_EQ(read_file(rtl / folder / "files.f"), file_list(g)) << "rtl/" << folder << "/files.f";
    ++designs;
  }
  EXPECT_GE(designs, 5);
}

TEST(Cli, GenWritesTheDesignAndRefusesImpossibleOnes) {
  fs::path dir = scratch("cli");
  fs::path log = dir / "log";
  EXPECT_EQ(run(fmt::format("{} gen --design 'fp8:e5m2@array2x2,acc=fp32' --out {} --testbench --json",
                            GSQHW_CLI, (dir / "d").string()),
                log),
            0)
      << read_file(log);
  EXPECT_TRUE(fs::exists(dir / "d" / "manifest.json"));
  EXPECT_TRUE(fs::exists(dir / "d" / "gsqhw_array.v"));
  EXPECT_TRUE(fs::exists(dir / "d" / "tb_gsqhw_array.v"));
  auto summary = nlohmann::json::parse(read_file(log));
  EXPECT_EQ(summary["top"], "gsqhw_array");
  EXPECT_EQ(summary["testbench"]["results"], 16);
  for (const char* bad : {"gse:b=6@array0x4", "gse:b=6@array4x65", "gse:b=8,g=256@pe,acc=fixed16.0",
                          "nf4@pe", "gse:b=6@pe,pipe=9"}) {
    EXPECT_EQ(run(fmt::format("{} gen --design '{}' --out {}", GSQHW_CLI, bad, (dir / "bad").string()),
                  log),
              2)
        << bad << ": " << read_file(log);
    EXPECT_NE(read_file(log).find("error"), std::string::npos) << read_file(log);
  }
  fs::remove_all(dir);
}

}  // namespace
}  // namespace gsqhw
