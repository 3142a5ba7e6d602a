// Switching activity from VCD (sim/activity.h): exact toggle and high-time counts.
#include <gtest/gtest.h>

#include <sstream>

#include "sim/activity.h"
#include "base/errors.h"

namespace gsqhw {
namespace {

// A 4-cycle run (period 10) of a top "dut" with a 1-bit clock, a 2-bit bus, an alias of the
// bus inside a child scope, and a signal outside the top (ignored).
const char* kVcd = R"($timescale 1ps $end
$scope module TOP $end
$var wire 1 ! clk $end
$scope module dut $end
$var wire 1 ! clk $end
$var wire 2 " bus [1:0] $end
$scope module child $end
$var wire 2 " mirror [1:0] $end
$var wire 3 # offs [4:2] $end
$upscope $end
$upscope $end
$upscope $end
$enddefinitions $end
#0
$dumpvars
0!
b00 "
bx #
$end
#5
1!
b01 "
#10
0!
#15
1!
b10 "
b101 #
#20
0!
#25
1!
b11 "
#30
0!
#35
1!
#40
0!
)";

TEST(Activity, CountsTogglesAndHighTimePerBit) {
  std::istringstream in(kVcd);
  SwitchingActivity a = activity_from_vcd(in, "dut", 10, 0, 40);
  EXPECT_EQ(a.cycles, 4);
  EXPECT_EQ(a.top, "dut");
  // clk: rises at 5, 15, 25, 35 and falls at 10, 20, 30, 40 (the fall at 40 is outside [0,40)).
  EXPECT_EQ(a.nets.at("clk").toggles, 7);
  EXPECT_DOUBLE_EQ(a.nets.at("clk").high_cycles, 2.0);
  // bus[0]: 0 -> 1 @5 -> 0 @15 -> 1 @25 (high 5..15 and 25..40: 25 time units).
  EXPECT_EQ(a.nets.at("bus[0]").toggles, 3);
  EXPECT_DOUBLE_EQ(a.nets.at("bus[0]").high_cycles, 2.5);
  // bus[1]: 0 -> 1 @15, stays (high 15..40).
  EXPECT_EQ(a.nets.at("bus[1]").toggles, 1);
  EXPECT_DOUBLE_EQ(a.nets.at("bus[1]").high_cycles, 2.5);
  // The alias in the child scope gets the same activity under its own name.
  EXPECT_EQ(a.nets.at("child.mirror[0]").toggles, 3);
  EXPECT_EQ(a.nets.at("child.mirror[1]").toggles, 1);
  // x -> value is not a toggle; declared range [4:2] names bits 2..4.
  EXPECT_EQ(a.nets.at("child.offs[2]").toggles, 0);
  EXPECT_DOUBLE_EQ(a.nets.at("child.offs[2]").high_cycles, 2.5);
  EXPECT_DOUBLE_EQ(a.nets.at("child.offs[3]").high_cycles, 0);
  EXPECT_DOUBLE_EQ(a.nets.at("child.offs[4]").high_cycles, 2.5);
  // Nothing from outside the top scope (TOP.clk is the same code, named inside dut).
  for (const auto& [name, net] : a.nets) EXPECT_EQ(name.find("TOP"), std::string::npos) << name;
}

TEST(Activity, WindowExcludesEarlierChanges) {
  std::istringstream in(kVcd);
  SwitchingActivity a = activity_from_vcd(in, "dut", 10, 20, 40);
  EXPECT_EQ(a.cycles, 2);
  EXPECT_EQ(a.nets.at("bus[0]").toggles, 1);            // the rise at 25
  EXPECT_DOUBLE_EQ(a.nets.at("bus[0]").high_cycles, 1.5);  // 25..40
  EXPECT_DOUBLE_EQ(a.nets.at("bus[1]").high_cycles, 2.0);  // high all of 20..40
}

TEST(Activity, JsonRoundTripAndMerge) {
  std::istringstream in(kVcd);
  SwitchingActivity a = activity_from_vcd(in, "dut", 10, 0, 40);
  a.design = "x";
  SwitchingActivity b = SwitchingActivity::from_json(a.to_json());
  EXPECT_EQ(b.to_json(), a.to_json());
  b.merge(a);
  EXPECT_EQ(b.cycles, 8);
  EXPECT_EQ(b.nets.at("bus[0]").toggles, 6);
  EXPECT_DOUBLE_EQ(b.nets.at("bus[0]").high_cycles, 5.0);
}

TEST(Activity, MalformedVcdIsUsageError) {
  std::istringstream no_end("$scope module dut $end\n$var wire 1 ! a $end\n");
  EXPECT_THROW(activity_from_vcd(no_end, "dut", 10), UsageError);
  std::istringstream junk("$enddefinitions $end\n#0\n?!\n");
  EXPECT_THROW(activity_from_vcd(junk, "dut", 10), UsageError);
  EXPECT_THROW(SwitchingActivity::from_json(nlohmann::json{{"schema", "other"}}), UsageError);
}

}  // namespace
}  // namespace gsqhw
