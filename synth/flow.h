// The synthesis, timing and power flow for one design: Yosys maps the Verilog onto a Liberty
// library, OpenSTA times the netlist at a stated clock and estimates power, either vectorless
// (a stated toggle rate at every primary input, propagated through the logic by OpenSTA) or
// from switching activity measured in simulation (per-net toggle counts).
//
// Constraints (docs/synthesis.md): one clock on port `clk` at the stated period; every other
// input arrives 0 ns after the clock edge and every output is required 0 ns before the next
// one (set_input_delay 0 / set_output_delay 0); no wire parasitics beyond the library's
// default wire-load model; outputs drive no extra load. fmax = 1 / (period - worst slack).
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "sim/activity.h"
#include "synth/liberty.h"
#include "synth/reports.h"

namespace gsqhw::synth {

struct ToolVersions {
  std::string yosys, sta;
  std::string str() const { return yosys + "; " + sta; }
};
// Runs `yosys -V` and `sta -version` (once per process). Throws ToolMissing when absent.
const ToolVersions& tool_versions();

struct FlowOptions {
  double clock_ns = 10.0;
  // Vectorless power: transitions per clock cycle at every primary input except the clock
  // (OpenSTA `set_power_activity -input -activity`); OpenSTA propagates it through the logic.
  double input_activity = 0.1;
  std::filesystem::path work_dir;  // scripts, logs, netlist land here
  double timeout_seconds = 1800;
  // Synthesize only the top module's own logic (synth/compose.h, "glue"): every other module
  // is a black box (no area); after `stat` their instances are deleted and the nets they drove
  // become inputs, so timing and vectorless power cover the top's own cells only.
  bool top_logic_only = false;
};

struct FlowResult {
  std::string top;
  std::filesystem::path netlist;  // mapped Verilog netlist
  YosysStat stat;
  StaPath critical;                // the worst setup path (times in ns)
  double clock_ns = 0;
  double critical_path_ns = 0;     // clock period minus worst slack
  double fmax_mhz = 0;
  StaPower power_vectorless;       // Watts, at clock_ns and input_activity
  double input_activity = 0;
  double yosys_seconds = 0, sta_seconds = 0;
  ToolVersions tools;
};

// Synthesizes `verilog_files` (top module `top`) and runs timing + vectorless power.
// Throws ToolMissing (no yosys/sta), UsageError (the Verilog does not synthesize: the message
// carries the tool's complaint), std::runtime_error for other tool failures.
FlowResult run_flow(const std::vector<std::filesystem::path>& verilog_files, const std::string& top,
                    const LibrarySet& library, const FlowOptions& options);

struct ActivityPower {
  StaPower power;                 // Watts at the flow's clock
  int64_t nets_annotated = 0;     // nets/ports whose activity came from the simulation
  int64_t names_unmatched = 0;    // simulation names with no netlist net or port
};
// Power of an already mapped netlist with the measured activity (sim/activity.h: toggles and
// high time per net bit over `cycles` clock cycles) annotated on every matched net's driver pin
// and input port; unannotated nets get OpenSTA's propagated activity. Net names are those of
// the netlist (gate-level simulation) or of top-level ports; names that match nothing are
// counted and reported, not fatal (RTL-level names of internal nets mostly vanish in mapping).
ActivityPower run_activity_power(const FlowResult& flow, const LibrarySet& library,
                                 const SwitchingActivity& activity, const FlowOptions& options);

// Reads an activity file of sim/activity.h (what co-simulation writes); UsageError if malformed.
SwitchingActivity read_activity_file(const std::filesystem::path& path);

nlohmann::json to_json(const FlowResult& flow);

// Tcl-safe brace quoting of a net/port name (bus bits contain [ ]).
std::string tcl_brace(const std::string& name);

}  // namespace gsqhw::synth
