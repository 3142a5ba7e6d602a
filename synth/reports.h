// Parsers for the text reports of Yosys `stat -liberty` and OpenSTA `report_checks` /
// `report_power`. They accept the tools' real output (captured samples are under
// tests/synth/data/) and throw std::runtime_error naming what was missing, never guess.
#pragma once

#include <map>
#include <string>

namespace gsqhw::synth {

struct YosysStat {
  std::string module;               // the module the numbers belong to
  double area = 0;                  // "Chip area for module": library area units (um^2)
  long cells = 0;                   // "Number of cells"
  std::map<std::string, long> cell_types;  // per library cell
};
// The last module block of a `stat` report (the top after -flatten).
YosysStat parse_yosys_stat(const std::string& text);

struct StaPath {
  std::string startpoint, endpoint;
  double arrival = 0;   // data arrival time (library/user time units)
  double required = 0;  // data required time
  double slack = 0;     // required - arrival; negative means violated
  bool met = true;
};
// The first path of `report_checks -path_delay max`.
StaPath parse_sta_checks(const std::string& text);

struct StaPower {
  double internal = 0, switching = 0, leakage = 0, total = 0;  // Watts
  double sequential = 0;  // the "Sequential" group's total (flip-flops and latches), Watts
};
// The "Total" row of `report_power` (OpenSTA prints Watts), and the "Sequential" group's total.
StaPower parse_sta_power(const std::string& text);

// "Yosys 0.23 (git sha1 7ce5011c24b)" from `yosys -V`; "OpenSTA 2.0.17" from `sta -version`
// (which prints only "2.0.17": a bare version is prefixed with tool_name).
std::string parse_tool_version(const std::string& text, const std::string& tool_name);

}  // namespace gsqhw::synth
