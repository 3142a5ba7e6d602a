// The core generator (gen/core.h): refusals, manifest, lint (Verilator -Wall, Yosys check) over
// a grid of core points, and the self-checking core testbench under Icarus Verilog and
// Verilator (bad descriptors refused, every result word equal to the golden model's).
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <filesystem>

#include "gen/core.h"
#include "gen/generator.h"
#include "base/errors.h"
#include "sim/verilator_build.h"
#include "tests/gen/gen_test_tools.h"

namespace gsqhw {
namespace {

namespace fs = std::filesystem;

using namespace gen_test;

TEST(CoreGenerator, RefusesWhatTheQuantizerCannotDo) {
  for (const char* bad : {"int8:per=channel@core2x2,acc=fixed32.0",
                          "gse:b=6,round=stochastic@core2x2", "nf4@core2x2",
                          "fp8:e4m3,block=32@core2x2,acc=fp32", "gse:b=6@core2x2,flow=ws"}) {
    SCOPED_TRACE(bad);
    EXPECT_THROW(generate_design(DesignPoint::parse(bad)), UsageError);
  }
  EXPECT_THROW(generate_design(DesignPoint::parse("gse:b=6@core2x2,align=shared")), UsageError);
  CoreCapacity odd_k;
  odd_k.max_k = 100;
  EXPECT_THROW(generate_core(DesignPoint::parse("gse:b=6@core2x2"), odd_k), UsageError);
  CoreCapacity small_k;
  small_k.max_k = 16;  // below G = 32
  EXPECT_THROW(generate_core(DesignPoint::parse("gse:b=6@core2x2"), small_k), UsageError);
}

TEST(CoreGenerator, ManifestCarriesTheArrayTimingAndTheCapacity) {
  DesignPoint core_point = DesignPoint::parse("gse:b=6@core4x4,acc=fixed32.16,pipe=2");
  GeneratedDesign core = generate_design(core_point);
  DesignPoint array_point = core_point;
  array_point.level = DesignPoint::Level::array;
  GeneratedDesign array = generate_design(array_point);
  EXPECT_EQ(core.top, "gsqhw_core");
  EXPECT_EQ(core.manifest["level"], "core");
  EXPECT_EQ(core.manifest["timing"], array.manifest["timing"]);
  EXPECT_EQ(core.manifest["core"]["capacity"]["max_m"], 16);
  EXPECT_EQ(core.manifest["core"]["capacity"]["max_n"], 16);
  EXPECT_EQ(core.manifest["core"]["capacity"]["max_k"], 256);
  // the array's files are reused unchanged, the core's own come after them
  for (size_t i = 0; i < array.files.size(); ++i) EXPECT_EQ(core.files[i], array.files[i]);
  EXPECT_EQ(core.files.back().first, "gsqhw_core.v");
  CoreManifest cm = CoreManifest::from_json(core.manifest);
  EXPECT_EQ(cm.max_m, 16);
  EXPECT_EQ(cm.rows, 4);
}

TEST(CoreGenerator, LintCleanInVerilatorAndElaboratesInYosys) {
  if (!have_tool("verilator") || !have_tool("yosys"))
    GTEST_SKIP() << "verilator/yosys not installed (apt-get install verilator yosys)";
  fs::path dir = scratch("lint");
  int index = 0;
  for (const char* spec : {"gse:b=6,g=32,e=5@core4x4,acc=fixed32.16",
                           "fp8:e4m3@core2x2,acc=fp32,pipe=2",
                           "gse:b=4,g=8,e=8,scale=ceil,round=rna,range=full@core2x3,acc=fixed24.20,pipe=3",
                           "gse:b=2,g=4,e=4,round=trunc@core1x1,acc=fixed64.-3",
                           "fp8:e5m2,sat=nonsat@core3x2,acc=fixed32.16",
                           "bf16@core2x2,acc=fp32", "fp16@core1x4,acc=fixed40.30,pipe=4"}) {
    SCOPED_TRACE(spec);
    GeneratedDesign g = generate_design(DesignPoint::parse(spec));
    fs::path out = dir / std::to_string(index++);
    write_design(g, out);
    ASSERT_EQ(g.top, "gsqhw_core");
    expect_lint_clean(g, out);
  }
}

// The generated testbench: two refused descriptors, then a random GEMM with bubbles and
// backpressure, every word checked against the golden model.
void expect_testbench_passes_in_icarus(const std::string& spec, uint64_t seed,
                                       const CoreCapacity& capacity = {}) {
  SCOPED_TRACE(spec);
  GeneratedDesign g = generate_core(DesignPoint::parse(spec), capacity);
  CoreTestbench tb = generate_core_testbench(g, seed);
  fs::path out = scratch(fmt::format("tb{}", seed));
  write_design(g, out);
  write_core_testbench(tb, out);
  fs::path log = out / "iverilog.log";
  ASSERT_NO_FATAL_FAILURE(compile_in_icarus(g, out, tb.file_name, out / "tb", log));
  ASSERT_EQ(run(fmt::format("vvp -n {}", (out / "tb").string()), log), 0) << read_file(log);
  std::string text = read_file(log);
  EXPECT_NE(text.find(fmt::format("PASS: {} results", tb.checked_outputs)), std::string::npos)
      << text;
  EXPECT_EQ(text.find("FAIL"), std::string::npos) << text;
}

TEST(CoreTestbench, PassesInIcarusForGseAndFp8) {
  if (!have_tool("iverilog")) GTEST_SKIP() << "iverilog not installed (apt-get install iverilog)";
  expect_testbench_passes_in_icarus("gse:b=6@core2x2,acc=fixed32.16", 1);
  expect_testbench_passes_in_icarus("fp8:e4m3@core2x2,acc=fp32", 2);
  // small buffers: K capacity = G (a row is one group), 3 x 2 tiles, R != C
  CoreCapacity small;
  small.tile_rows = 3;
  small.tile_cols = 2;
  small.max_k = 8;
  expect_testbench_passes_in_icarus("gse:b=5,g=8,e=6@core1x3,acc=fixed20.12", 5, small);
}

TEST(CoreTestbench, PassesInVerilator) {
  if (!have_tool("verilator")) GTEST_SKIP() << "verilator not installed (apt-get install verilator)";
  GeneratedDesign g = generate_design(DesignPoint::parse("gse:b=6@core2x2,acc=fixed32.16"));
  CoreTestbench tb = generate_core_testbench(g, 3, 3, 3, 40);
  // The Verilator build (tens of seconds) is cached by the text it is built from.
  std::string key_text = verilator_version() + tb.text;
  for (const auto& [name, text] : g.files) key_text += name + text;
  fs::path out = fs::path(GSQHW_TEST_BINARY_DIR) / "cosim-test-cache" /
                 ("core-tb-" + sha1_hex(key_text));
  fs::path binary = out / "obj" / ("V" + tb.module_name);
  fs::path log = scratch("tb_verilator") / "verilator.log";
  if (!fs::exists(binary)) {
    write_design(g, out);
    write_core_testbench(tb, out);
    ASSERT_EQ(run(fmt::format("verilator --binary -Wno-fatal -Wno-lint -Wno-style -Mdir {} "
                              "--top-module {} {}{}",
                              (out / "obj").string(), tb.module_name,
                              (out / tb.file_name).string(), file_list(g, out)),
                  log),
              0)
        << read_file(log);
  }
  ASSERT_EQ(run(binary.string(), log), 0) << read_file(log);
  EXPECT_NE(read_file(log).find("PASS: 9 results"), std::string::npos) << read_file(log);
}

TEST(CoreTestbench, CatchesAFaultInTheDequantizer) {
  if (!have_tool("iverilog")) GTEST_SKIP() << "iverilog not installed (apt-get install iverilog)";
  GeneratedDesign g = generate_design(DesignPoint::parse("gse:b=6@core2x2,acc=fixed32.16"));
  CoreTestbench tb = generate_core_testbench(g, 4);
  // one line of the generated Verilog edited: the dequantizer truncates instead of rounding
  bool edited = false;
  for (auto& [name, text] : g.files) {
    if (name != "gsqhw_dequantizer.v") continue;
    const std::string line = "round_bit && (sticky || kept[0])";
    auto at = text.find(line);
    ASSERT_NE(at, std::string::npos);
    text.replace(at, line.size(), "1'b0");
    edited = true;
  }
  ASSERT_TRUE(edited);
  fs::path out = scratch("tb_fault");
  write_design(g, out);
  write_core_testbench(tb, out);
  fs::path log = out / "iverilog.log";
  ASSERT_NO_FATAL_FAILURE(compile_in_icarus(g, out, tb.file_name, out / "tb", log));
  run(fmt::format("vvp -n {}", (out / "tb").string()), log);
  std::string text = read_file(log);
  EXPECT_NE(text.find("FAIL: result ("), std::string::npos) << text;
  EXPECT_EQ(text.find("PASS"), std::string::npos) << text;
}

TEST(CoreCli, GenWritesACoreWithItsTestbench) {
  fs::path dir = scratch("cli");
  fs::path log = dir / "log";
  EXPECT_EQ(run(fmt::format("{} gen --design 'gse:b=6@core4x4' --out {} --testbench --json",
                            GSQHW_CLI, (dir / "d").string()),
                log),
            0)
      << read_file(log);
  EXPECT_TRUE(fs::exists(dir / "d" / "gsqhw_core.v"));
  EXPECT_TRUE(fs::exists(dir / "d" / "tb_gsqhw_core.v"));
  auto summary = nlohmann::json::parse(read_file(log));
  EXPECT_EQ(summary["top"], "gsqhw_core");
  EXPECT_GT(summary["testbench"]["results"].get<int>(), 0);
  // capacities from the command line
  EXPECT_EQ(run(fmt::format("{} gen --design 'fp8:e4m3@core2x2,acc=fp32' --core-tile-rows 3 "
                            "--core-tile-cols 2 --core-max-k 64 --out {} --json",
                            GSQHW_CLI, (dir / "cap").string()),
                log),
            0)
      << read_file(log);
  auto capacity = nlohmann::json::parse(read_file(log))["core"]["capacity"];
  EXPECT_EQ(capacity["max_m"], 6);
  EXPECT_EQ(capacity["max_n"], 4);
  EXPECT_EQ(capacity["max_k"], 64);
  EXPECT_EQ(run(fmt::format("{} gen --design 'fp8:e4m3@core2x2,acc=fp32' --core-max-k 100 --out {}",
                            GSQHW_CLI, (dir / "bad").string()),
                log),
            2)
      << read_file(log);
  EXPECT_EQ(run(fmt::format("{} gen --design 'int8@core2x2,acc=fixed32.0' --out {}", GSQHW_CLI,
                            (dir / "bad").string()),
                log),
            2)
      << read_file(log);
  EXPECT_NE(read_file(log).find("int8"), std::string::npos) << read_file(log);
}

}  // namespace
}  // namespace gsqhw
