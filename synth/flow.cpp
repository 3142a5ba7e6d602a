// Yosys + OpenSTA flow. Scripts are generated per run into the work folder (kept beside their
// logs, so that every number can be reproduced by hand: `yosys -s synth.ys`, `sta sta.tcl`).
#include "synth/flow.h"

#include <algorithm>
#include <chrono>
#include <fstream>
#include <mutex>
#include <sstream>

#include <fmt/format.h>

#include "base/errors.h"
#include "base/files.h"
#include "base/process.h"

namespace gsqhw::synth {
namespace fs = std::filesystem;

namespace {

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// Yosys script arguments. Yosys passes quotes through into file names (tee -o), so paths are
// written bare and a path with white space is refused up front.
std::string ys_quote(const fs::path& path) {
  std::string text = path.string();
  for (char ch : text)
    if (std::isspace(static_cast<unsigned char>(ch)) || ch == ';' || ch == '"')
      throw UsageError(fmt::format("path '{}' contains white space, ';' or '\"', which Yosys scripts cannot carry", text));
  return text;
}

// The part of an OpenSTA script that loads the design and states the constraints.
std::string sta_preamble(const fs::path& netlist, const std::string& top, const LibrarySet& library,
                         double clock_ns) {
  std::string tcl;
  for (const auto& lib : library.sta_files) tcl += fmt::format("read_liberty {}\n", tcl_brace(lib.string()));
  tcl += fmt::format("read_verilog {}\n", tcl_brace(netlist.string()));
  tcl += fmt::format("link_design {}\n", top);
  tcl += "if {[llength [get_ports -quiet clk]] == 0} { puts \"GSQHW_ERROR no clk port\"; exit 3 }\n";
  // The period is given in the library's time unit (OpenSTA's default command unit).
  tcl += fmt::format("create_clock -name clk -period {:.6f} [get_ports clk]\n",
                     clock_ns / library.time_unit_ns);
  tcl += "set gsqhw_data_inputs [delete_from_list [all_inputs] [get_ports clk]]\n";
  tcl += "if {[llength $gsqhw_data_inputs] > 0} { set_input_delay 0 -clock clk $gsqhw_data_inputs }\n";
  tcl += "if {[llength [all_outputs]] > 0} { set_output_delay 0 -clock clk [all_outputs] }\n";
  return tcl;
}

ProcessResult run_tool(const std::vector<std::string>& argv, const fs::path& dir, const std::string& log_name,
                       double timeout, const std::string& what) {
  ProcessResult run = run_process(argv, dir, dir / log_name, timeout);
  if (run.timed_out)
    throw std::runtime_error(fmt::format("{} timed out after {:.0f} s (log: {})", what, timeout,
                                         (dir / log_name).string()));
  if (run.exit_code != 0) {
    std::string message = fmt::format("{} failed (exit {}), log {}:\n{}", what, run.exit_code,
                                      (dir / log_name).string(), tail_lines(run.output, 12));
    // A Verilog the tool rejects is bad input; anything else is a failure of the run.
    if (run.output.find("ERROR") != std::string::npos && what.find("yosys") != std::string::npos)
      throw UsageError(message);
    throw std::runtime_error(message);
  }
  return run;
}

std::string between(const std::string& text, const std::string& begin, const std::string& end) {
  size_t a = text.find(begin);
  size_t b = text.find(end, a == std::string::npos ? 0 : a);
  if (a == std::string::npos || b == std::string::npos) return {};
  return text.substr(a + begin.size(), b - a - begin.size());
}

StaPower run_sta_power(const std::string& tcl, const fs::path& dir, const std::string& name,
                       double timeout, std::string* output = nullptr) {
  fs::path sta = require_program("sta", "opensta");
  write_file_atomically(dir / (name + ".tcl"), tcl);
  ProcessResult run = run_tool({sta.string(), "-no_init", "-no_splash", "-exit", (dir / (name + ".tcl")).string()},
                               dir, name + ".log", timeout, "sta (" + name + ")");
  if (run.output.find("GSQHW_ERROR") != std::string::npos)
    throw UsageError(fmt::format("sta: {}", tail_lines(run.output, 3)));
  if (output) *output = run.output;
  return parse_sta_power(between(run.output, "GSQHW_BEGIN_POWER", "GSQHW_END_POWER"));
}

}  // namespace

std::string tcl_brace(const std::string& name) {
  for (char ch : name)
    if (ch == '{' || ch == '}' || ch == '\\' || ch == '\n')
      throw UsageError(fmt::format("name '{}' contains a character OpenSTA scripts cannot quote", name));
  return "{" + name + "}";
}

const ToolVersions& tool_versions() {
  static std::once_flag once;
  static ToolVersions versions;
  static std::exception_ptr error;
  std::call_once(once, [] {
    try {
      fs::path yosys = require_program("yosys", "yosys");
      fs::path sta = require_program("sta", "opensta");
      fs::path tmp = fs::temp_directory_path();
      auto y = run_process({yosys.string(), "-V"}, tmp, tmp / fmt::format("gsqhw-yosys-v.{}", getpid()), 60);
      auto s = run_process({sta.string(), "-version"}, tmp, tmp / fmt::format("gsqhw-sta-v.{}", getpid()), 60);
      fs::remove(tmp / fmt::format("gsqhw-yosys-v.{}", getpid()));
      fs::remove(tmp / fmt::format("gsqhw-sta-v.{}", getpid()));
      versions.yosys = parse_tool_version(y.output, "Yosys");
      versions.sta = parse_tool_version(s.output, "OpenSTA");
    } catch (...) {
      error = std::current_exception();
    }
  });
  if (error) std::rethrow_exception(error);
  return versions;
}

FlowResult run_flow(const std::vector<fs::path>& verilog_files, const std::string& top,
                    const LibrarySet& library, const FlowOptions& options) {
  if (verilog_files.empty()) throw UsageError("synthesis: no Verilog files");
  if (!(options.clock_ns > 0) || options.clock_ns > 1e6)
    throw UsageError(fmt::format("clock period {} ns must be positive", options.clock_ns));
  if (!(options.input_activity >= 0) || options.input_activity > 2)
    throw UsageError(fmt::format("input activity {} must be within 0..2 transitions per cycle",
                                 options.input_activity));
  for (const auto& f : verilog_files)
    if (!fs::is_regular_file(f)) throw UsageError(fmt::format("Verilog file {} does not exist", f.string()));
  fs::path yosys = require_program("yosys", "yosys");
  require_program("sta", "opensta");

  FlowResult result;
  result.tools = tool_versions();
  result.top = top;
  result.clock_ns = options.clock_ns;
  result.input_activity = options.input_activity;
  fs::path dir = fs::absolute(options.work_dir);
  fs::create_directories(dir);
  result.netlist = dir / (top + "_mapped.v");

  // --- Yosys: generic synthesis, map flip-flops and logic onto the library, report area.
  std::string ys;
  for (const auto& f : verilog_files) ys += fmt::format("read_verilog -sv {}\n", ys_quote(fs::absolute(f)));
  ys += fmt::format("hierarchy -check -top {}\n", top);
  if (options.top_logic_only) ys += fmt::format("blackbox =* ={} %d\n", top);
  ys += fmt::format("synth -flatten -top {}\n", top);
  ys += fmt::format("dfflibmap -liberty {}\n", ys_quote(library.yosys_file));
  ys += fmt::format("abc -liberty {}\n", ys_quote(library.yosys_file));
  ys += "opt_clean\n";
  ys += fmt::format("tee -o {} stat -liberty {}\n", "stat.txt", ys_quote(library.yosys_file));
  // Generated modules are all named gsqhw_* (parameterised: $paramod...): with the black boxes
  // gone, what they drove becomes inputs with the stated vectorless activity.
  if (options.top_logic_only) ys += "delete t:gsqhw_* t:$paramod*\nsetundef -undriven -expose\n";
  // Internal nets get public names: write_verilog would print them as _0123_, and simulators
  // (Verilator) do not trace names that start with an underscore, which would leave most of
  // the netlist without measured activity.
  ys += "rename -enumerate -pattern gsqhw_n% w:*\n";
  ys += fmt::format("write_verilog -noattr -noexpr {}\n", ys_quote(result.netlist));
  write_file_atomically(dir / "synth.ys", ys);
  auto start = std::chrono::steady_clock::now();
  run_tool({yosys.string(), "-q", "-s", (dir / "synth.ys").string()}, dir, "yosys.log",
           options.timeout_seconds, "yosys synthesis of " + top);
  result.yosys_seconds = seconds_since(start);
  result.stat = parse_yosys_stat(read_file_if_present(dir / "stat.txt"));

  // --- OpenSTA: worst setup path, then vectorless power.
  std::string tcl = sta_preamble(result.netlist, top, library, options.clock_ns);
  tcl += "puts GSQHW_BEGIN_CHECKS\nreport_checks -path_delay max -digits 6\nputs GSQHW_END_CHECKS\n";
  tcl += fmt::format("set_power_activity -input -activity {}\n", options.input_activity);
  tcl += "puts GSQHW_BEGIN_POWER\nreport_power -digits 8\nputs GSQHW_END_POWER\n";
  start = std::chrono::steady_clock::now();
  std::string sta_output;
  result.power_vectorless = run_sta_power(tcl, dir, "sta", options.timeout_seconds, &sta_output);
  result.sta_seconds = seconds_since(start);
  std::string checks = between(sta_output, "GSQHW_BEGIN_CHECKS", "GSQHW_END_CHECKS");
  if (checks.find("No paths found") != std::string::npos || checks.find("Startpoint") == std::string::npos)
    throw std::runtime_error(fmt::format("sta found no timing path in {} (log {})", top, (dir / "sta.log").string()));
  result.critical = parse_sta_checks(checks);
  // Library time units -> ns.
  result.critical.arrival *= library.time_unit_ns;
  result.critical.required *= library.time_unit_ns;
  result.critical.slack *= library.time_unit_ns;
  result.critical_path_ns = options.clock_ns - result.critical.slack;
  result.fmax_mhz = result.critical_path_ns > 0 ? 1000.0 / result.critical_path_ns : 0;
  return result;
}

ActivityPower run_activity_power(const FlowResult& flow, const LibrarySet& library,
                                 const SwitchingActivity& activity, const FlowOptions& options) {
  if (activity.cycles <= 0) throw UsageError("switching activity covers no clock cycles");
  fs::path dir = fs::absolute(options.work_dir);
  fs::create_directories(dir);
  std::string tcl = sta_preamble(flow.netlist, flow.top, library, flow.clock_ns);
  // Annotates each matched name: an input port itself, else every pin of its net. OpenSTA
  // 2.0.17 takes a net's user activity from its load pins and ignores the driver's (checked:
  // setting every output pin leaves report_power unchanged, setting the loads changes it), so
  // driver and loads both get it. A gate-level simulation names cell pins <instance>.<pin>,
  // which OpenSTA calls <instance>/<pin>: an output pin stands for its net. (2.0.17's
  // `set_power_activity -pins` is broken, hence the underlying command.)
  tcl += R"tcl(
set gsqhw_annotated 0
set gsqhw_unmatched 0
proc gsqhw_activity {name activity duty} {
  global gsqhw_annotated gsqhw_unmatched
  set port [get_ports -quiet $name]
  if {[llength $port] == 1 && [get_property $port direction] == "input"} {
    sta::set_power_input_port_activity $port $activity $duty
    incr gsqhw_annotated
    return
  }
  set net [get_nets -quiet $name]
  set dot [string last . $name]
  if {[llength $net] != 1 && $dot > 0} {
    set pin [get_pins -quiet "[string range $name 0 [expr {$dot - 1}]]/[string range $name [expr {$dot + 1}] end]"]
    if {[llength $pin] == 1 && [get_property $pin direction] == "output"} { set net [get_nets -quiet -of_objects $pin] }
  }
  if {[llength $net] != 1} { incr gsqhw_unmatched; return }
  set pins [get_pins -quiet -of_objects $net]
  foreach pin $pins { sta::set_power_pin_activity $pin $activity $duty }
  if {[llength $pins] > 0 || [llength $port] == 1} { incr gsqhw_annotated } else { incr gsqhw_unmatched }
}
)tcl";
  tcl += fmt::format("set_power_activity -input -activity {}\n", options.input_activity);
  const double cycles = static_cast<double>(activity.cycles);
  for (const auto& [name, net] : activity.nets) {
    if (name == activity.clock) continue;  // the clock's activity comes from create_clock
    double per_cycle = static_cast<double>(net.toggles) / cycles;
    double duty = std::clamp(net.high_cycles / cycles, 0.0, 1.0);
    tcl += fmt::format("gsqhw_activity {} {:.9g} {:.6f}\n", tcl_brace(name), per_cycle, duty);
  }
  tcl += "puts \"GSQHW_ANNOTATED $gsqhw_annotated $gsqhw_unmatched\"\n";
  tcl += "puts GSQHW_BEGIN_POWER\nreport_power -digits 8\nputs GSQHW_END_POWER\n";
  std::string output;
  ActivityPower result;
  result.power = run_sta_power(tcl, dir, "sta_activity", options.timeout_seconds, &output);
  std::istringstream counts(between(output, "GSQHW_ANNOTATED", "\n"));
  counts >> result.nets_annotated >> result.names_unmatched;
  return result;
}

SwitchingActivity read_activity_file(const fs::path& path) {
  std::ifstream in(path);
  if (!in) throw UsageError(fmt::format("activity file {} cannot be read", path.string()));
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(in);
  } catch (const std::exception& e) {
    throw UsageError(fmt::format("activity file {} is not JSON: {}", path.string(), e.what()));
  }
  return SwitchingActivity::from_json(j);
}

nlohmann::json to_json(const FlowResult& flow) {
  nlohmann::json cells = nlohmann::json::object();
  for (const auto& [type, count] : flow.stat.cell_types) cells[type] = count;
  return {
      {"top", flow.top},
      {"netlist", flow.netlist.string()},
      {"area_um2", flow.stat.area},
      {"cells", flow.stat.cells},
      {"cell_types", cells},
      {"clock_ns", flow.clock_ns},
      {"critical_path_ns", flow.critical_path_ns},
      {"slack_ns", flow.critical.slack},
      {"timing_met", flow.critical.met},
      {"fmax_mhz", flow.fmax_mhz},
      {"critical_startpoint", flow.critical.startpoint},
      {"critical_endpoint", flow.critical.endpoint},
      {"input_activity", flow.input_activity},
      {"power_vectorless_w",
       {{"internal", flow.power_vectorless.internal},
        {"switching", flow.power_vectorless.switching},
        {"leakage", flow.power_vectorless.leakage},
        {"total", flow.power_vectorless.total}}},
      {"yosys_seconds", flow.yosys_seconds},
      {"sta_seconds", flow.sta_seconds},
      {"tools", {{"yosys", flow.tools.yosys}, {"sta", flow.tools.sta}}},
  };
}

}  // namespace gsqhw::synth
