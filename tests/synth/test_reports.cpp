// Report parsers on captured real tool output (tests/synth/data/, made by this flow on
// tiny_mac.v with Yosys 0.23 and OpenSTA 2.0.17).
#include <gtest/gtest.h>

#include "synth/reports.h"
#include "test_util.h"

namespace gsqhw::synth {
namespace {
using test::data_dir;
using test::read_file;

TEST(YosysStat, Osu018) {
  YosysStat stat = parse_yosys_stat(read_file(data_dir() / "yosys_stat_osu018.txt"));
  EXPECT_EQ(stat.module, "tiny_mac");
  EXPECT_DOUBLE_EQ(stat.area, 6395.0);
  EXPECT_EQ(stat.cells, 166);
  EXPECT_EQ(stat.cell_types.at("DFFPOSX1"), 12);  // the 12-bit accumulator
  EXPECT_EQ(stat.cell_types.at("XNOR2X1"), 27);
  long sum = 0;
  for (const auto& [type, count] : stat.cell_types) sum += count;
  EXPECT_EQ(sum, stat.cells);  // every cell is in the per-type list
}

TEST(YosysStat, Asap7AndSky130) {
  YosysStat asap7 = parse_yosys_stat(read_file(data_dir() / "yosys_stat_asap7.txt"));
  EXPECT_NEAR(asap7.area, 15.73182, 1e-9);
  EXPECT_EQ(asap7.cells, 147);
  YosysStat sky = parse_yosys_stat(read_file(data_dir() / "yosys_stat_sky130.txt"));
  EXPECT_NEAR(sky.area, 1189.8912, 1e-9);
  EXPECT_EQ(sky.cells, 134);
}

TEST(YosysStat, RejectsReportsWithoutArea) {
  // stat without -liberty prints no chip area: that must be an error, not area 0.
  std::string no_area = "=== top ===\n\n   Number of wires: 3\n   Number of cells: 2\n     $_AND_ 2\n";
  EXPECT_THROW(parse_yosys_stat(no_area), std::runtime_error);
  EXPECT_THROW(parse_yosys_stat("ERROR: Module `top' not found!\n"), std::runtime_error);
}

TEST(StaChecks, MetPathInNanoseconds) {
  StaPath path = parse_sta_checks(read_file(data_dir() / "sta_osu018.log"));
  EXPECT_EQ(path.startpoint, "in_b[3] (input port clocked by clk)");
  EXPECT_EQ(path.endpoint, "_319_ (rising edge-triggered flip-flop clocked by clk)");
  EXPECT_NEAR(path.arrival, 2.936099, 1e-9);
  EXPECT_NEAR(path.slack, 6.879765, 1e-9);
  EXPECT_TRUE(path.met);
  EXPECT_NEAR(path.required - path.arrival, path.slack, 1e-6);
}

TEST(StaChecks, ViolatedPath) {
  StaPath path = parse_sta_checks(read_file(data_dir() / "sta_osu018_violated.log"));
  EXPECT_FALSE(path.met);
  EXPECT_NEAR(path.slack, -1.120236, 1e-9);
}

TEST(StaChecks, PicosecondLibrary) {
  // ASAP7 times are in ps; the parser returns library units (the flow converts).
  StaPath path = parse_sta_checks(read_file(data_dir() / "sta_asap7.log"));
  EXPECT_NEAR(path.arrival, 789.634766, 1e-6);
  EXPECT_NEAR(path.slack, 9179.419922, 1e-6);
}

TEST(StaChecks, NoPathIsAnError) {
  EXPECT_THROW(parse_sta_checks("No paths found.\n"), std::runtime_error);
}

TEST(StaPower, TotalRow) {
  StaPower p = parse_sta_power(read_file(data_dir() / "sta_osu018.log"));
  EXPECT_NEAR(p.total, 5.85050322e-04, 1e-15);
  EXPECT_NEAR(p.internal + p.switching + p.leakage, p.total, 1e-10);  // printed to 9 digits
  EXPECT_NEAR(p.sequential, 3.03018285e-04, 1e-15);                    // the flip-flops' group
  StaPower a = parse_sta_power(read_file(data_dir() / "sta_asap7.log"));
  EXPECT_NEAR(a.leakage, 4.50717607e-07, 1e-16);
  EXPECT_THROW(parse_sta_power("Group Internal\n"), std::runtime_error);
}

TEST(ToolVersion, BothTools) {
  EXPECT_EQ(parse_tool_version("Yosys 0.23 (git sha1 7ce5011c24b)\n", "Yosys"), "Yosys 0.23 (git sha1 7ce5011c24b)");
  EXPECT_EQ(parse_tool_version("2.0.17\n", "OpenSTA"), "OpenSTA 2.0.17");
  EXPECT_THROW(parse_tool_version("command not found", "OpenSTA"), std::runtime_error);
}

}  // namespace
}  // namespace gsqhw::synth
