// Report parsing: line-oriented, anchored on the labels the tools print.
#include "synth/reports.h"

#include <regex>
#include <sstream>
#include <stdexcept>
#include <vector>

#include <fmt/format.h>

namespace gsqhw::synth {
namespace {

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::stringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    lines.push_back(line);
  }
  return lines;
}

double to_double(const std::string& s, const char* what) {
  try {
    size_t used = 0;
    double value = std::stod(s, &used);
    return value;
  } catch (const std::exception&) {
    throw std::runtime_error(fmt::format("report parse: {} '{}' is not a number", what, s));
  }
}

}  // namespace

YosysStat parse_yosys_stat(const std::string& text) {
  static const std::regex module_re(R"(^===\s*(\S+)\s*===\s*$)");
  static const std::regex cells_re(R"(^\s*Number of cells:\s*(\d+)\s*$)");
  static const std::regex cell_type_re(R"(^\s+(\S+)\s+(\d+)\s*$)");
  static const std::regex area_re(R"(^\s*Chip area for (?:top )?module '?\\?([^':]*)'?:\s*([-+0-9.eE]+)\s*$)");
  auto lines = lines_of(text);
  // Find the last module block that reports a chip area.
  int last_header = -1;
  for (int i = 0; i < static_cast<int>(lines.size()); ++i)
    if (std::regex_match(lines[i], module_re)) last_header = i;
  if (last_header < 0) throw std::runtime_error("yosys stat report: no '=== module ===' block");

  YosysStat stat;
  std::smatch m;
  std::regex_match(lines[last_header], m, module_re);
  stat.module = m[1].str();
  bool have_cells = false, have_area = false, in_cell_list = false;
  for (size_t i = last_header + 1; i < lines.size(); ++i) {
    const std::string& line = lines[i];
    if (std::regex_match(line, m, cells_re)) {
      stat.cells = std::stol(m[1].str());
      have_cells = in_cell_list = true;
      continue;
    }
    if (in_cell_list) {
      if (std::regex_match(line, m, cell_type_re)) {
        stat.cell_types[m[1].str()] = std::stol(m[2].str());
        continue;
      }
      in_cell_list = false;
    }
    if (std::regex_match(line, m, area_re)) {
      stat.area = to_double(m[2].str(), "chip area");
      have_area = true;
    }
  }
  if (!have_cells) throw std::runtime_error("yosys stat report: no 'Number of cells' line");
  if (!have_area)
    throw std::runtime_error(
        "yosys stat report: no 'Chip area' line (was stat run with -liberty?)");
  return stat;
}

StaPath parse_sta_checks(const std::string& text) {
  static const std::regex start_re(R"(^\s*Startpoint:\s*(.*?)\s*$)");
  static const std::regex end_re(R"(^\s*Endpoint:\s*(.*?)\s*$)");
  static const std::regex arrival_re(R"(^\s*([-+0-9.eE]+)\s+data arrival time\s*$)");
  static const std::regex required_re(R"(^\s*([-+0-9.eE]+)\s+data required time\s*$)");
  static const std::regex slack_re(R"(^\s*([-+0-9.eE]+)\s+slack \((MET|VIOLATED)\)\s*$)");
  StaPath path;
  bool have_start = false, have_arrival = false, have_required = false, have_slack = false;
  std::smatch m;
  for (const auto& line : lines_of(text)) {
    if (!have_start && std::regex_match(line, m, start_re)) {
      path.startpoint = m[1].str();
      have_start = true;
    } else if (have_start && path.endpoint.empty() && std::regex_match(line, m, end_re)) {
      path.endpoint = m[1].str();
    } else if (have_start && !have_arrival && std::regex_match(line, m, arrival_re)) {
      path.arrival = to_double(m[1].str(), "data arrival time");
      have_arrival = true;
    } else if (have_start && !have_required && std::regex_match(line, m, required_re)) {
      path.required = to_double(m[1].str(), "data required time");
      have_required = true;
    } else if (have_start && std::regex_match(line, m, slack_re)) {
      path.slack = to_double(m[1].str(), "slack");
      path.met = m[2].str() == "MET";
      have_slack = true;
      break;
    }
  }
  if (!have_start)
    throw std::runtime_error("sta report_checks: no path (no 'Startpoint:'; is the design constrained?)");
  if (!have_arrival || !have_required || !have_slack)
    throw std::runtime_error(
        "sta report_checks: path without data arrival/required time or slack line");
  return path;
}

StaPower parse_sta_power(const std::string& text) {
  static const std::regex total_re(
      R"(^\s*Total\s+([-+0-9.eE]+)\s+([-+0-9.eE]+)\s+([-+0-9.eE]+)\s+([-+0-9.eE]+)\s+[0-9.]+%\s*$)");
  static const std::regex sequential_re(
      R"(^\s*Sequential\s+[-+0-9.eE]+\s+[-+0-9.eE]+\s+[-+0-9.eE]+\s+([-+0-9.eE]+)\s+[0-9.]+%\s*$)");
  std::smatch m;
  double sequential = 0;
  for (const auto& line : lines_of(text)) {
    if (std::regex_match(line, m, sequential_re)) sequential = to_double(m[1].str(), "sequential power");
    if (std::regex_match(line, m, total_re)) {
      StaPower power;
      power.sequential = sequential;
      power.internal = to_double(m[1].str(), "internal power");
      power.switching = to_double(m[2].str(), "switching power");
      power.leakage = to_double(m[3].str(), "leakage power");
      power.total = to_double(m[4].str(), "total power");
      return power;
    }
  }
  throw std::runtime_error("sta report_power: no 'Total' row");
}

std::string parse_tool_version(const std::string& text, const std::string& tool_name) {
  static const std::regex version_re(R"((Yosys\s+[0-9][^\r\n]*|OpenSTA\s+[0-9][0-9.]*))");
  static const std::regex bare_re(R"(^\s*([0-9]+\.[0-9][0-9.]*)\s*$)");
  std::smatch m;
  if (std::regex_match(text, m, bare_re)) return tool_name + " " + m[1].str();
  if (std::regex_search(text, m, version_re)) {
    std::string v = m[1].str();
    while (!v.empty() && std::isspace(static_cast<unsigned char>(v.back()))) v.pop_back();
    return v;
  }
  throw std::runtime_error(fmt::format("cannot read a tool version from '{}'", text.substr(0, 80)));
}

}  // namespace gsqhw::synth
