// Switching activity of a simulation run: per-net toggle counts and high time, for power
// analysis (synth/ feeds it to OpenSTA). Computed from the VCD that the Verilated testbench
// streams while it runs (RTL or a gate-level netlist with cell models), so every net that
// Verilator can trace is covered.
//
// JSON schema (what `gsqhw cosim --activity FILE` writes and synth/ reads):
//   {
//     "schema": "gsqhw-activity-1",
//     "design": "<canonical DesignPoint string>",   (set by the caller, may be "")
//     "top": "gsqhw_array",
//     "clock": "clk",                 the clock port; one cycle = one clock period
//     "cycles": 1234,                 simulated clock cycles covered (reset excluded)
//     "nets": {                       one entry per BIT: vectors are split, "acc[3]"
//       "pe_r0_c0.acc[3]": {"toggles": 17, "high_cycles": 402.5},
//       "in_valid": {"toggles": 2, "high_cycles": 1000.0},
//       ...
//     }
//   }
// Net names are hierarchical paths below the top module joined with '.', without the top
// module's own name (top-level ports are plain "in_a[5]"). `toggles` counts 0->1 and 1->0
// transitions (changes from or to x/z are not counted); `high_cycles` is the time the bit was
// 1, in clock periods (the clock itself is high for cycles/2). Toggle rate = toggles / cycles.
#pragma once

#include <cstdint>
#include <istream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>

namespace gsqhw {

struct NetActivity {
  int64_t toggles = 0;
  double high_cycles = 0;
};

struct SwitchingActivity {
  std::string design;
  std::string top;
  std::string clock = "clk";
  int64_t cycles = 0;
  std::map<std::string, NetActivity> nets;

  // Adds another run of the same design (toggles, high time and cycles add up).
  void merge(const SwitchingActivity& other);
  nlohmann::json to_json() const;
  static SwitchingActivity from_json(const nlohmann::json& j);  // throws UsageError
};

// Reads a VCD stream and accumulates activity over the time span [t_begin, t_end) in VCD time
// units (t_end = -1: up to the last timestamp). `clock_period` is the clock period in VCD time
// units; `cycles` of the result is (end - begin) / clock_period. `top` is the top module name:
// scopes above it and the scope itself are stripped from net names; signals outside it (e.g.
// Verilator's duplicate "TOP" ports) are ignored. Malformed VCD -> UsageError.
SwitchingActivity activity_from_vcd(std::istream& vcd, const std::string& top,
                                    int64_t clock_period, int64_t t_begin = 0,
                                    int64_t t_end = -1);

}  // namespace gsqhw
