// The Yosys + OpenSTA flow end to end on a small hand-written MAC (tests/synth/data/tiny_mac.v),
// checked against a direct run of the two tools written out in this test.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <regex>

#include "base/errors.h"
#include "synth/flow.h"
#include "synth/liberty.h"
#include "base/process.h"
#include "test_util.h"

namespace gsqhw::synth {
namespace {
namespace fs = std::filesystem;
using test::data_dir;
using test::pdk_dir;
using test::read_file;
using test::scratch_dir;

FlowResult run_tiny_mac(const LibrarySet& library, const std::string& name, double clock_ns = 10.0) {
  FlowOptions options;
  options.clock_ns = clock_ns;
  options.work_dir = scratch_dir(name);
  return run_flow({data_dir() / "tiny_mac.v"}, "tiny_mac", library, options);
}

// Runs a command through the shell and returns its stdout (the test's own, independent run).
std::string shell(const std::string& command) {
  std::string output;
  FILE* pipe = popen(command.c_str(), "r");
  if (!pipe) return output;
  char buffer[4096];
  size_t n;
  while ((n = fread(buffer, 1, sizeof buffer, pipe)) > 0) output.append(buffer, n);
  pclose(pipe);
  return output;
}

TEST(Flow, TinyMacOnOsu018MatchesADirectToolRun) {
  LibrarySet library = resolve_library({});
  FlowResult flow = run_tiny_mac(library, "flow_osu018");
  EXPECT_GT(flow.stat.area, 0);
  EXPECT_GT(flow.stat.cells, 0);
  EXPECT_GT(flow.fmax_mhz, 0);
  EXPECT_GT(flow.power_vectorless.total, 0);
  EXPECT_TRUE(flow.critical.met);
  EXPECT_NEAR(flow.critical_path_ns, 10.0 - flow.critical.slack, 1e-9);
  EXPECT_NEAR(flow.fmax_mhz, 1000.0 / flow.critical_path_ns, 1e-9);
  EXPECT_EQ(flow.stat.cell_types.at("DFFPOSX1"), 12);

  // The same steps typed out by hand: Yosys for area, OpenSTA for slack and power.
  fs::path dir = scratch_dir("flow_direct");
  std::string lib = library.yosys_file.string();
  std::string yosys_out = shell(fmt::format(
      "cd {} && yosys -p 'read_verilog {}; synth -flatten -top tiny_mac; dfflibmap -liberty {}; abc -liberty {}; "
      "opt_clean; stat -liberty {}; write_verilog -noattr -noexpr direct.v' 2>&1",
      dir.string(), (data_dir() / "tiny_mac.v").string(), lib, lib, lib));
  std::smatch m;
  ASSERT_TRUE(std::regex_search(yosys_out, m, std::regex(R"(Chip area for module '\\tiny_mac': ([0-9.]+))"))) << yosys_out;
  EXPECT_DOUBLE_EQ(std::stod(m[1].str()), flow.stat.area);

  std::ofstream(dir / "direct.tcl") << fmt::format(
      "read_liberty {0}\nread_verilog {1}/direct.v\nlink_design tiny_mac\n"
      "create_clock -name clk -period 10 [get_ports clk]\n"
      "set_input_delay 0 -clock clk [delete_from_list [all_inputs] [get_ports clk]]\n"
      "set_output_delay 0 -clock clk [all_outputs]\n"
      "report_worst_slack -digits 6\nset_power_activity -input -activity 0.1\nreport_power -digits 8\nexit\n",
      lib, dir.string());
  std::string sta_out = shell(fmt::format("cd {} && sta -no_init -no_splash direct.tcl 2>&1", dir.string()));
  ASSERT_TRUE(std::regex_search(sta_out, m, std::regex(R"(worst slack (-?[0-9.]+))"))) << sta_out;
  EXPECT_NEAR(std::stod(m[1].str()), flow.critical.slack, 1e-6);
  ASSERT_TRUE(std::regex_search(sta_out, m, std::regex(R"(\nTotal\s+\S+\s+\S+\s+\S+\s+(\S+))"))) << sta_out;
  EXPECT_DOUBLE_EQ(std::stod(m[1].str()), flow.power_vectorless.total);
}

TEST(Flow, PowerScalesWithClockAndActivity) {
  LibrarySet library = resolve_library({});
  FlowResult slow = run_tiny_mac(library, "flow_slow", 20.0);
  FlowResult fast = run_tiny_mac(library, "flow_fast", 10.0);
  // Same netlist, so the same area; dynamic power doubles with the clock rate.
  EXPECT_DOUBLE_EQ(slow.stat.area, fast.stat.area);
  EXPECT_NEAR(fast.power_vectorless.switching / slow.power_vectorless.switching, 2.0, 1e-6);
  EXPECT_NEAR(slow.fmax_mhz, fast.fmax_mhz, 1e-6);  // fmax does not depend on the stated clock
}

TEST(Flow, AnnotatedActivityDrivesPower) {
  LibrarySet library = resolve_library({});
  FlowResult flow = run_tiny_mac(library, "flow_activity");
  // Annotate every net of the netlist and every port with one toggle rate.
  std::string netlist = read_file(flow.netlist);
  auto annotate = [&](double rate) {
    SwitchingActivity activity;
    activity.cycles = 1000;
    std::regex wire_re(R"(wire (gsqhw_n\d+);)");  // the flow names internal nets gsqhw_n<i>
    for (std::sregex_iterator it(netlist.begin(), netlist.end(), wire_re), end; it != end; ++it)
      activity.nets[(*it)[1]] = {static_cast<int64_t>(rate * 1000), 500};
    for (int i = 0; i < 4; ++i) {
      activity.nets[fmt::format("in_a[{}]", i)] = {static_cast<int64_t>(rate * 1000), 500};
      activity.nets[fmt::format("in_b[{}]", i)] = {static_cast<int64_t>(rate * 1000), 500};
    }
    for (int i = 0; i < 12; ++i) activity.nets[fmt::format("out_acc[{}]", i)] = {static_cast<int64_t>(rate * 1000), 500};
    activity.nets["no_such_net"] = {3, 1};
    FlowOptions options;
    options.work_dir = scratch_dir("flow_activity_run");
    return run_activity_power(flow, library, activity, options);
  };
  ActivityPower idle = annotate(0.0), busy = annotate(0.5);
  EXPECT_GT(idle.nets_annotated, 100);
  EXPECT_EQ(idle.names_unmatched, 1);
  // No data toggles leaves only the clock tree's and leakage power.
  EXPECT_LT(idle.power.total, flow.power_vectorless.total);
  EXPECT_GT(busy.power.total, flow.power_vectorless.total);
  EXPECT_LT(idle.power.switching, 0.5 * flow.power_vectorless.switching);  // only the clock net switches
}

// Regression: OpenSTA 2.0.17 ignores user activity on a net's driver pin and reads it from the
// load pins. With only internal nets annotated (ports left to the vectorless default), the
// annotation must still move the power, and the gate-level simulation's <instance>.<pin> names
// must find their nets.
TEST(Flow, InternalNetAndCellPinActivityDrivesPower) {
  LibrarySet library = resolve_library({});
  FlowResult flow = run_tiny_mac(library, "flow_activity_internal");
  std::string netlist = read_file(flow.netlist);
  std::vector<std::string> nets, cell_outputs;
  std::regex wire_re(R"(wire (gsqhw_n\d+);)");
  for (std::sregex_iterator it(netlist.begin(), netlist.end(), wire_re), end; it != end; ++it) nets.push_back((*it)[1]);
  // "  INVX1 _12_ (\n    .A(...),\n    .Y(gsqhw_n3)\n  );": instance _12_, output pin Y.
  std::regex cell_re(R"((_\d+_) \((?:\s*\.\w+\([^)]*\),)*\s*\.Y\()");
  for (std::sregex_iterator it(netlist.begin(), netlist.end(), cell_re), end; it != end; ++it)
    cell_outputs.push_back(std::string((*it)[1]) + ".Y");
  ASSERT_GT(nets.size(), 20u);
  ASSERT_GT(cell_outputs.size(), 20u);
  auto annotate = [&](const std::vector<std::string>& names, double rate) {
    SwitchingActivity activity;
    activity.cycles = 1000;
    for (const auto& n : names) activity.nets[n] = {static_cast<int64_t>(rate * 1000), 500};
    FlowOptions options;
    options.work_dir = scratch_dir("flow_activity_internal_run");
    return run_activity_power(flow, library, activity, options);
  };
  for (const auto* names : {&nets, &cell_outputs}) {
    ActivityPower idle = annotate(*names, 0.0), busy = annotate(*names, 1.0);
    EXPECT_EQ(idle.names_unmatched, 0);
    EXPECT_EQ(idle.nets_annotated, static_cast<int>(names->size()));
    EXPECT_GT(busy.power.switching, 1.5 * idle.power.switching) << "the annotation did not reach the power";
  }
}

TEST(Flow, Sky130AndAsap7Smoke) {
  FlowResult sky = run_tiny_mac(resolve_library({"sky130", pdk_dir(), {}}), "flow_sky130");
  EXPECT_GT(sky.stat.area, 0);
  EXPECT_GT(sky.fmax_mhz, 0);
  EXPECT_GT(sky.power_vectorless.total, 0);
  FlowResult asap7 = run_tiny_mac(resolve_library({"asap7", pdk_dir(), {}}), "flow_asap7");
  EXPECT_GT(asap7.stat.area, 0);
  EXPECT_LT(asap7.stat.area, sky.stat.area / 20);  // 7 nm cells are far smaller than 130 nm ones
  // ps library: the flow converts to ns, so a few-hundred-ps path gives fmax in the GHz range.
  EXPECT_GT(asap7.fmax_mhz, 500);
  EXPECT_LT(asap7.critical_path_ns, 5);
  EXPECT_GT(asap7.power_vectorless.total, 0);
}

TEST(Flow, ErrorsAreClear) {
  LibrarySet library = resolve_library({});
  FlowOptions options;
  options.work_dir = scratch_dir("flow_errors");
  EXPECT_THROW(run_flow({data_dir() / "missing.v"}, "tiny_mac", library, options), UsageError);
  // Verilog that does not parse: the tool's complaint comes back as a UsageError.
  std::ofstream(options.work_dir / "broken.v") << "module broken(input a; endmodule\n";
  try {
    run_flow({options.work_dir / "broken.v"}, "broken", library, options);
    FAIL() << "broken Verilog synthesized";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("ERROR"), std::string::npos) << e.what();
  }
  options.clock_ns = -1;
  EXPECT_THROW(run_flow({data_dir() / "tiny_mac.v"}, "tiny_mac", library, options), UsageError);
}

TEST(Flow, MissingToolsAreToolMissingWithAnInstallHint) {
  std::string saved = std::getenv("PATH");
  setenv("PATH", "/nonexistent", 1);
  try {
    require_program("yosys", "yosys");
    setenv("PATH", saved.c_str(), 1);
    FAIL() << "found yosys on an empty PATH";
  } catch (const ToolMissing& e) {
    setenv("PATH", saved.c_str(), 1);
    EXPECT_NE(std::string(e.what()).find("apt-get install yosys"), std::string::npos);
  }
  setenv("PATH", "/nonexistent", 1);
  EXPECT_THROW(require_program("sta", "opensta"), ToolMissing);
  setenv("PATH", saved.c_str(), 1);
}

}  // namespace
}  // namespace gsqhw::synth
