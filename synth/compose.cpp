// Composition of an array's area, timing and vectorless power from its module kinds
// (synth/compose.h).
#include "synth/compose.h"

#include <algorithm>
#include <chrono>
#include <functional>
#include <fstream>
#include <mutex>
#include <regex>
#include <sstream>
#include <unordered_set>

#include <unistd.h>

#include <fmt/format.h>

#include "gen/generator.h"
#include "numerics/design.h"
#include "base/errors.h"
#include "base/files.h"
#include "synth/baseline.h"
#include "base/process.h"
#include "synth/reports.h"

namespace gsqhw::synth {
namespace fs = std::filesystem;

namespace {

// Atomic write into a folder made on demand (kind and cache folders are created lazily).
void write_file_atomic(const fs::path& path, const std::string& text) {
  fs::create_directories(path.parent_path());
  write_file_atomically(path, text);
}

uint64_t fnv1a(const std::string& text, uint64_t hash = 1469598103934665603ull) {
  for (unsigned char ch : text) hash = (hash ^ ch) * 1099511628211ull;
  return hash;
}

// A module's source without its comment lines: the generator's file header names the whole
// design (array size included), which must not split otherwise identical kinds.
std::string without_comment_lines(const std::string& text) {
  std::string out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    size_t first = line.find_first_not_of(" \t");
    if (first != std::string::npos && line.compare(first, 2, "//") == 0) continue;
    out += line;
    out += '\n';
  }
  return out;
}

// Yosys JSON parameter values are binary strings ("0000...0101").
int64_t parameter_value(const nlohmann::json& value) {
  if (value.is_number_integer()) return value.get<int64_t>();
  std::string bits = value.get<std::string>();
  int64_t v = 0;
  for (char ch : bits) {
    if (ch != '0' && ch != '1') throw std::runtime_error(fmt::format("parameter value '{}' is not binary", bits));
    v = v * 2 + (ch == '1');
  }
  return v;
}

std::string base_module_name(const std::string& type) {
  if (type.rfind("$paramod", 0) != 0) return type;
  size_t slash = type.rfind('\\');
  return slash == std::string::npos ? type : type.substr(slash + 1);
}

bool is_delay_line(const std::string& base) { return base == "gsqhw_delay" || base == "gsqhw_delay_clear"; }

using PortUse = KindPort;

std::string wrapper_verilog(const std::string& base, const std::map<std::string, int64_t>& parameters,
                            const std::vector<PortUse>& ports) {
  std::vector<std::string> port_decls, body, pins;
  for (const auto& p : ports) {
    const int w = static_cast<int>(p.bits.size());
    const std::string range = fmt::format("[{}:0]", w - 1);
    if (p.direction == "input") {
      if (p.bits.find('n') != std::string::npos) port_decls.push_back(fmt::format("  input  wire {} {}", range, p.name));
      std::vector<std::string> parts;
      for (int i = w - 1; i >= 0; --i)
        parts.push_back(p.bits[i] == 'n' ? fmt::format("{}[{}]", p.name, i) : fmt::format("1'b{}", p.bits[i]));
      body.push_back(fmt::format("  wire {} {}__tied = {{{}}};", range, p.name, fmt::join(parts, ", ")));
      pins.push_back(fmt::format(".{}({}__tied)", p.name, p.name));
    } else {
      body.push_back(fmt::format("  wire {} {}__all;", range, p.name));
      pins.push_back(fmt::format(".{}({}__all)", p.name, p.name));
      if (p.bits.find('u') == std::string::npos) continue;
      port_decls.push_back(fmt::format("  output wire {} {}", range, p.name));
      std::string mask;
      for (int i = w - 1; i >= 0; --i) mask += p.bits[i] == 'u' ? '1' : '0';
      body.push_back(fmt::format("  assign {} = {}__all & {}'b{};", p.name, p.name, w, mask));
    }
  }
  std::vector<std::string> params;
  for (const auto& [name, value] : parameters) params.push_back(fmt::format(".{}({})", name, value));
  std::string text = "// One instance kind of a composed array (synth/compose.h): tied inputs and unread outputs as in the array.\n";
  text += fmt::format("module gsqhw_kind (\n{}\n);\n", fmt::join(port_decls, ",\n"));
  for (const auto& line : body) text += line + "\n";
  text += fmt::format("  {}{} u_kind ({});\nendmodule\n", base,
                      params.empty() ? "" : fmt::format(" #({})", fmt::join(params, ", ")), fmt::join(pins, ", "));
  return text;
}

std::string ties_summary(const std::vector<PortUse>& ports) {
  std::vector<std::string> notes;
  for (const auto& p : ports) {
    const auto n = static_cast<long>(p.bits.size());
    if (p.direction == "input") {
      long tied = n - std::count(p.bits.begin(), p.bits.end(), 'n');
      if (tied > 0) notes.push_back(fmt::format("{} {}/{} tied", p.name, tied, n));
    } else {
      long unread = std::count(p.bits.begin(), p.bits.end(), '-');
      if (unread > 0) notes.push_back(fmt::format("{} {}/{} unread", p.name, unread, n));
    }
  }
  return notes.empty() ? "-" : fmt::format("{}", fmt::join(notes, "; "));
}

// Liberty cell areas and which cells hold state, from the (merged) Yosys library file.
struct CellInfo {
  double area = 0;
  bool sequential = false;
};
const std::map<std::string, CellInfo>& liberty_cells(const fs::path& liberty) {
  static std::mutex mutex;
  static std::map<std::string, std::map<std::string, CellInfo>> cache;
  std::lock_guard lock(mutex);
  auto found = cache.find(liberty.string());
  if (found != cache.end()) return found->second;
  static const std::regex area_re(R"(\barea\s*:\s*([-+0-9.eE]+))");
  static const std::regex state_re(R"(\b(ff|latch|ff_bank|latch_bank|statetable)\s*\()");
  std::map<std::string, CellInfo> cells;
  for (const auto& group : split_liberty(read_file(liberty), liberty.string()).cells) {
    std::string name = group.head.substr(group.head.find('(') + 1);
    name = name.substr(0, name.rfind(')'));
    name.erase(std::remove_if(name.begin(), name.end(), [](char c) { return c == '"' || std::isspace(static_cast<unsigned char>(c)); }), name.end());
    CellInfo info;
    std::smatch m;
    if (std::regex_search(group.text, m, area_re)) info.area = std::stod(m[1].str());
    info.sequential = std::regex_search(group.text, state_re);
    cells[name] = info;
  }
  return cache[liberty.string()] = std::move(cells);
}

// The breakdown part of a module's own logic, by the generator's module names (gen/
// accumulator_emit.cpp splits the accumulator along these parts). Registers are counted apart.
std::string part_of_module(const std::string& module) {
  const std::string base = base_module_name(module);
  auto starts = [&](const char* prefix) { return base.rfind(prefix, 0) == 0; };
  if (starts("gsqhw_product")) return "multiplier";
  if (starts("gsqhw_exp_")) return "exponent path";
  if (starts("gsqhw_align_") || starts("gsqhw_addend_")) return "alignment shifter";
  if (starts("gsqhw_add_") || starts("gsqhw_acc_")) return "accumulator adder";
  if (starts("gsqhw_norm_") || starts("gsqhw_sat_")) return "normalisation/rounding";
  return "control";  // a PE's or column unit's own logic: step control, restart and NaN muxes
}

// Splits a hierarchical `stat -liberty` report into its module blocks.
std::map<std::string, YosysStat> stat_blocks(const std::string& text) {
  static const std::regex header(R"(^===\s*(.+?)\s*===\s*$)");
  std::map<std::string, YosysStat> blocks;
  std::vector<std::string> chunks;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (std::regex_match(line, header)) chunks.emplace_back();
    if (!chunks.empty()) chunks.back() += line + "\n";
  }
  for (const auto& block : chunks) {
    if (block.find("design hierarchy") != std::string::npos || block.find("Number of cells") == std::string::npos) continue;
    // A module of submodules only (gsqhw_addend_*) has no area of its own, so stat prints no
    // "Chip area" line for it; its submodules are still counted through it.
    YosysStat stat = parse_yosys_stat(block.find("Chip area") == std::string::npos
                                          ? block + "   Chip area for module 'wrapper': 0\n"
                                          : block);
    std::string name = stat.module;
    if (!name.empty() && name[0] == '\\') name = name.substr(1);
    blocks[name] = stat;
  }
  return blocks;
}

// Adds `multiplicity` x module `name` (and its submodules) to the parts.
void add_module_parts(const std::map<std::string, YosysStat>& blocks, const std::string& name, double multiplicity,
                      const std::map<std::string, CellInfo>& cells, AreaBreakdown& out, int depth = 0) {
  auto found = blocks.find(name);
  if (found == blocks.end() || depth > 16) return;
  double registers = 0, logic = 0;
  for (const auto& [type, count] : found->second.cell_types) {
    if (blocks.count(type)) {
      add_module_parts(blocks, type, multiplicity * count, cells, out, depth + 1);
      continue;
    }
    auto cell = cells.find(type);
    if (cell == cells.end()) continue;
    (cell->second.sequential ? registers : logic) += cell->second.area * count;
  }
  out.parts["registers"] += multiplicity * registers;
  out.parts[part_of_module(name)] += multiplicity * logic;
}

nlohmann::json kind_json(const ModuleKind& k) {
  return {{"module", k.module},       {"parameters", k.parameters}, {"ties", k.ties},
          {"key", k.key},             {"count", k.count},           {"area_um2", k.area_um2},
          {"cells", k.cells},         {"power_mw", k.power_mw},     {"fmax_mhz", k.fmax_mhz},
          {"breakdown", k.breakdown.parts}};
}

void kind_numbers_from_json(const nlohmann::json& j, ModuleKind& k) {
  k.area_um2 = j.at("area_um2").get<double>();
  k.cells = j.at("cells").get<int64_t>();
  k.power_mw = j.at("power_mw").get<double>();
  k.fmax_mhz = j.at("fmax_mhz").get<double>();
  k.breakdown.parts = j.at("breakdown").get<std::map<std::string, double>>();
}

}  // namespace

ProcessResult run_yosys(const fs::path& dir, const std::string& script, double timeout, const std::string& what) {
  fs::path yosys = require_program("yosys", "yosys");
  write_file_atomic(dir / "script.ys", script);
  ProcessResult run = run_process({yosys.string(), "-q", "-s", (dir / "script.ys").string()}, dir, dir / "yosys.log", timeout);
  if (run.timed_out || run.exit_code != 0)
    throw std::runtime_error(fmt::format("yosys ({}) failed{}, log {}:\n{}", what, run.timed_out ? " (timed out)" : "",
                                         (dir / "yosys.log").string(), tail_lines(run.output, 12)));
  return run;
}

std::string read_files_script(const std::vector<fs::path>& files) {
  std::string ys;
  for (const auto& f : files) ys += fmt::format("read_verilog -sv {}\n", fs::absolute(f).string());
  return ys;
}

double AreaBreakdown::total() const {
  double sum = 0;
  for (const auto& [part, area] : parts) sum += area;
  return sum;
}

DesignRtl design_rtl(const std::string& design) {
  DesignRtl rtl;
  rtl.design = design;
  if (Baseline::is_baseline(design)) {
    Baseline baseline = Baseline::parse(design);
    Baseline::Rtl b = baseline.rtl();
    rtl.files = b.files;
    rtl.top = b.top;
    rtl.macs_per_cycle = b.macs_per_cycle;
    return rtl;
  }
  GeneratedDesign generated = generate_design(DesignPoint::parse(design));
  rtl.files = generated.files;
  rtl.top = generated.top;
  rtl.macs_per_cycle = generated.manifest.at("timing").at("macs_per_cycle").get<int64_t>();
  rtl.manifest = generated.manifest;
  return rtl;
}

std::vector<KindInstance> module_kinds(const nlohmann::json& hierarchy, const std::string& top) {
  const auto& modules = hierarchy.at("modules");
  if (!modules.contains(top)) throw std::runtime_error(fmt::format("hierarchy has no module {}", top));
  const auto& tm = modules.at(top);
  // Every net bit something reads: the top's output ports and every cell input.
  std::unordered_set<int64_t> read;
  for (const auto& [name, port] : tm.at("ports").items())
    if (port.at("direction") != "input")
      for (const auto& bit : port.at("bits"))
        if (bit.is_number()) read.insert(bit.get<int64_t>());
  for (const auto& [name, cell] : tm.at("cells").items()) {
    const auto directions = cell.value("port_directions", nlohmann::json::object());
    for (const auto& [port, bits] : cell.at("connections").items()) {
      if (directions.value(port, std::string("input")) == "output") continue;
      for (const auto& bit : bits)
        if (bit.is_number()) read.insert(bit.get<int64_t>());
    }
  }
  std::map<std::string, KindInstance> kinds;  // by signature
  for (const auto& [name, cell] : tm.at("cells").items()) {
    const std::string type = cell.at("type").get<std::string>();
    if (!modules.contains(type)) continue;  // a primitive cell: the top's own logic
    const auto& module = modules.at(type);
    ModuleKind kind;
    kind.module = base_module_name(type);
    const nlohmann::json defaults = module.value("parameter_default_values", nlohmann::json::object());
    for (const auto& [p, value] : defaults.items()) kind.parameters[p] = parameter_value(value);
    int64_t count = 1;
    if (is_delay_line(kind.module) && kind.parameters.count("DEPTH") && kind.parameters["DEPTH"] > 1) {
      count = kind.parameters["DEPTH"];
      kind.parameters["DEPTH"] = 1;
    }
    std::vector<PortUse> ports;
    for (const auto& [pname, port] : module.at("ports").items()) {
      PortUse use{pname, port.at("direction").get<std::string>(), ""};
      const auto& bits = cell.at("connections").at(pname);
      for (const auto& bit : bits) {
        if (use.direction == "input")
          use.bits += bit.is_number() ? 'n' : (bit.get<std::string>() == "1" ? '1' : '0');
        else
          use.bits += bit.is_number() && read.count(bit.get<int64_t>()) ? 'u' : '-';
      }
      if (use.bits.size() != port.at("bits").size())
        throw std::runtime_error(fmt::format("instance {} port {}: connection width differs from the port", name, pname));
      ports.push_back(use);
    }
    std::string signature = kind.module;
    for (const auto& [p, v] : kind.parameters) signature += fmt::format(" {}={}", p, v);
    for (const auto& port : ports) signature += " " + port.name + ":" + port.bits;
    auto [it, inserted] = kinds.try_emplace(signature);
    if (inserted) {
      kind.ties = ties_summary(ports);
      kind.ports = ports;
      it->second.kind = kind;
      it->second.wrapper = wrapper_verilog(kind.module, kind.parameters, ports);
    }
    it->second.kind.count += count;
    it->second.kind.instances.emplace_back(name, count);
  }
  std::vector<KindInstance> out;
  for (auto& [signature, k] : kinds) out.push_back(std::move(k));
  // Largest contributors first (by count), then by name: a stable, readable order.
  std::stable_sort(out.begin(), out.end(), [](const KindInstance& a, const KindInstance& b) {
    return a.kind.module != b.kind.module ? a.kind.module < b.kind.module : a.kind.count > b.kind.count;
  });
  return out;
}

std::map<std::string, double> Composition::area_per_mac_by_part() const {
  std::map<std::string, double> parts;
  const double macs = static_cast<double>(std::max<int64_t>(1, macs_per_cycle));
  auto add_kind = [&](const ModuleKind& k) {
    double total = k.breakdown.total();
    if (k.breakdown.parts.empty() || total <= 0) {
      parts["skew/forwarding/drain"] += k.count * k.area_um2 / macs;
      return;
    }
    // Shares measured in the hierarchical run, applied to the kind's flat area.
    for (const auto& [part, area] : k.breakdown.parts) parts[part] += k.count * k.area_um2 * (area / total) / macs;
  };
  for (const auto& k : kinds) add_kind(k);
  parts["skew/forwarding/drain"] += glue.area_um2 / macs;
  return parts;
}

namespace {

// One design's RTL written to disk and its hierarchy elaborated (submodules black boxes).
struct Elaborated {
  std::vector<fs::path> all_files, submodule_files;
  std::string submodule_sources;  // comments stripped: part of every kind's key
  std::string interfaces;         // every submodule's ports: part of the glue's key
  std::string top_source;
  nlohmann::json hierarchy;
};

Elaborated elaborate(const DesignRtl& rtl, const fs::path& work, const fs::path& cache, double timeout,
                     const std::function<void(const std::string&)>& say) {
  Elaborated e;
  for (const auto& [name, text] : rtl.files) {
    fs::path path = work / "rtl" / name;
    if (!fs::exists(path) || read_file(path) != text) write_file_atomic(path, text);
    e.all_files.push_back(path);
    if (name != rtl.top + ".v") {
      e.submodule_files.push_back(path);
      e.submodule_sources += without_comment_lines(text);
    } else {
      e.top_source = without_comment_lines(text);
    }
  }
  // The hierarchy does not depend on the library, so it is cached by the RTL (a 64x64 array's
  // elaboration takes about a CPU minute). Runs on several libraries may share it at the same
  // moment: each writes its own temporary file and renames it.
  std::string all_sources;
  for (const auto& [name, text] : rtl.files) all_sources += name + "\n" + without_comment_lines(text);
  const fs::path hier_dir = cache / fmt::format("hier-{:016x}", fnv1a(tool_versions().str(), fnv1a(all_sources)));
  if (!fs::exists(hier_dir / "hier.json")) {
    say("elaborating the hierarchy of " + rtl.design);
    const fs::path run_dir = hier_dir / fmt::format("run-{}", ::getpid());
    fs::create_directories(run_dir);
    run_yosys(run_dir,
              read_files_script(e.all_files) +
                  fmt::format("hierarchy -check -top {}\nproc\nopt_clean\nblackbox =* ={} %d\nwrite_json hier.json\n", rtl.top, rtl.top),
              timeout, "hierarchy of " + rtl.design);
    fs::rename(run_dir / "hier.json", hier_dir / "hier.json");
    std::error_code ignored;
    fs::remove_all(run_dir, ignored);
  }
  e.hierarchy = nlohmann::json::parse(read_file(hier_dir / "hier.json"));
  // The glue depends on the top's text and its submodules' interfaces only (FP8 E4M3 and E5M2
  // arrays of one shape share it).
  for (const auto& [name, module] : e.hierarchy.at("modules").items()) {
    if (name == rtl.top) continue;
    e.interfaces += name;
    for (const auto& [pname, port] : module.at("ports").items())
      e.interfaces += fmt::format(" {}:{}:{}", pname, port.at("direction").get<std::string>(), port.at("bits").size());
    e.interfaces += "\n";
  }
  return e;
}

// The top's own logic of `rtl`, synthesized with every submodule a black box (cached like a kind).
ModuleKind synthesize_glue(const DesignRtl& rtl, const Elaborated& e, const fs::path& cache, const std::string& settings,
                           const LibrarySet& library, const FlowOptions& flow_options,
                           const std::function<void(const std::string&)>& say) {
  ModuleKind glue;
  glue.module = rtl.top + " (own logic)";
  glue.count = 1;
  glue.ties = "-";
  glue.key = fmt::format("glue-{:016x}", fnv1a(settings, fnv1a(e.interfaces, fnv1a(e.top_source))));
  const fs::path glue_dir = cache / glue.key;
  if (fs::exists(glue_dir / "kind.json")) {
    kind_numbers_from_json(nlohmann::json::parse(read_file(glue_dir / "kind.json")), glue);
    return glue;
  }
  say("synthesizing the top's own logic of " + rtl.design);
  FlowOptions glue_options = flow_options;
  glue_options.work_dir = glue_dir / "flow";
  glue_options.top_logic_only = true;
  FlowResult flow = run_flow(e.all_files, rtl.top, library, glue_options);
  glue.area_um2 = flow.stat.area;
  glue.cells = flow.stat.cells;
  for (const auto& [type, count] : flow.stat.cell_types)
    if (type.rfind("gsqhw_", 0) == 0 || type.rfind("$paramod", 0) == 0) glue.cells -= count;
  glue.power_mw = flow.power_vectorless.total * 1e3;
  glue.fmax_mhz = flow.fmax_mhz;
  write_file_atomic(glue_dir / "kind.json", kind_json(glue).dump(1));
  return glue;
}

}  // namespace

bool array_shape(const std::string& design, int* rows, int* columns) {
  static const std::regex shape(R"(array=?(\d+)x(\d+))");
  std::smatch m;
  if (!std::regex_search(design, m, shape)) return false;
  *rows = std::stoi(m[1].str());
  *columns = std::stoi(m[2].str());
  return true;
}

std::string with_array_shape(const std::string& design, int rows, int columns) {
  static const std::regex shape(R"(array=?(\d+)x(\d+))");
  std::smatch m;
  if (!std::regex_search(design, m, shape)) return design;
  const auto at = static_cast<size_t>(m.position(1));
  return design.substr(0, at) + fmt::format("{}x{}", rows, columns) + design.substr(at + m.length(1) + 1 + m.length(2));
}

Composition compose_design(const DesignRtl& rtl, const LibrarySet& library, const ComposeOptions& options) {
  auto start = std::chrono::steady_clock::now();
  if (options.work_dir.empty() || options.kind_cache.empty())
    throw UsageError("composition needs a work folder and a kind cache folder");
  const fs::path work = fs::absolute(options.work_dir);
  const fs::path cache = fs::absolute(options.kind_cache);
  Composition c;
  c.design = rtl.design;
  c.top = rtl.top;
  c.library = library.name;
  c.macs_per_cycle = rtl.macs_per_cycle;
  c.clock_ns = options.clock_ns;
  c.input_activity = options.input_activity;

  auto say = [&](const std::string& what) {
    if (options.progress)
      fmt::print(stderr, "[compose {:.0f} s] {}: {}\n",
                 std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(), rtl.design, what);
  };
  // The hierarchy with submodules as black boxes: which instances the top holds, how wired.
  Elaborated elaborated = elaborate(rtl, work, cache, options.timeout_seconds, say);
  std::vector<KindInstance> instances = module_kinds(elaborated.hierarchy, rtl.top);
  elaborated.hierarchy = nullptr;
  const std::vector<fs::path>& submodule_files = elaborated.submodule_files;
  const std::string& submodule_sources = elaborated.submodule_sources;

  const ToolVersions& tools = tool_versions();
  const std::string settings = fmt::format("compose-v1|{}|{}|{:.6g}|{:.6g}|{}", library.hash, tools.str(),
                                           options.clock_ns, options.input_activity, options.breakdown);
  FlowOptions flow_options;
  flow_options.clock_ns = options.clock_ns;
  flow_options.input_activity = options.input_activity;
  flow_options.timeout_seconds = options.timeout_seconds;
  const auto& cells = liberty_cells(library.yosys_file);
  for (auto& instance : instances) {
    ModuleKind& kind = instance.kind;
    kind.key = fmt::format("{:016x}", fnv1a(settings, fnv1a(instance.wrapper, fnv1a(submodule_sources))));
    const fs::path dir = cache / kind.key;
    if (fs::exists(dir / "kind.json")) {
      kind_numbers_from_json(nlohmann::json::parse(read_file(dir / "kind.json")), kind);
      // The parts are re-read from the breakdown run's own report, so a change to how modules
      // map to parts reaches cached kinds without synthesizing them again.
      if (options.breakdown && fs::exists(dir / "breakdown" / "breakdown.txt")) {
        kind.breakdown = AreaBreakdown{};
        add_module_parts(stat_blocks(read_file(dir / "breakdown" / "breakdown.txt")), "gsqhw_kind", 1.0, cells,
                         kind.breakdown);
      }
      c.kinds_cached++;
      c.kinds.push_back(kind);
      continue;
    }
    say(fmt::format("synthesizing kind {} x{} ({})", kind.module, kind.count, kind.ties));
    write_file_atomic(dir / "gsqhw_kind.v", instance.wrapper);
    std::vector<fs::path> files = submodule_files;
    files.push_back(dir / "gsqhw_kind.v");
    flow_options.work_dir = dir / "flow";
    FlowResult flow = run_flow(files, "gsqhw_kind", library, flow_options);
    kind.area_um2 = flow.stat.area;
    kind.cells = flow.stat.cells;
    kind.power_mw = flow.power_vectorless.total * 1e3;
    kind.fmax_mhz = flow.fmax_mhz;
    if (options.breakdown && !is_delay_line(kind.module)) {
      const fs::path bdir = dir / "breakdown";
      fs::create_directories(bdir);
      const std::string lib = library.yosys_file.string();
      run_yosys(bdir,
                read_files_script(files) +
                    fmt::format("hierarchy -check -top gsqhw_kind\n"
                                "setattr -mod -set keep_hierarchy 1 =* =gsqhw_kind %d ={} %d\n"
                                "flatten\nsynth -top gsqhw_kind\ndfflibmap -liberty {}\nabc -liberty {}\nopt_clean\n"
                                "tee -o breakdown.txt stat -liberty {}\n",
                                kind.module, lib, lib, lib),
                options.timeout_seconds, "breakdown of " + kind.module);
      add_module_parts(stat_blocks(read_file(bdir / "breakdown.txt")), "gsqhw_kind", 1.0, cells, kind.breakdown);
    }
    write_file_atomic(dir / "kind.json", kind_json(kind).dump(1));
    c.kinds_synthesized++;
    c.kinds.push_back(kind);
  }

  // The top's own logic. Flat synthesis of it grows faster than its size (Yosys took 15-30
  // minutes for a 32x32 array's at load 20, 37 000 cells); from `glue_columns_from` columns up it
  // is composed too: an array's top holds per column the same logic (the drain OR-bus over the
  // column's PEs and its register; everything that differs by column index, the deskew delays,
  // is a submodule) plus logic that does not depend on the column count (the row encoder of the
  // last column), so glue(R x C) = glue(R x 1) + (C - 1) x (glue(R x 2) - glue(R x 1)).
  // Validated against the flat glue in tests/synth/test_compose.cpp and docs/synthesis.md.
  int rows = 0, columns = 0;
  if (options.glue_columns_from > 0 && array_shape(rtl.design, &rows, &columns) && columns >= options.glue_columns_from) {
    ModuleKind one, two;
    for (int cols : {1, 2}) {
      DesignRtl slice = design_rtl(with_array_shape(rtl.design, rows, cols));
      Elaborated e = elaborate(slice, work / fmt::format("glue-{}x{}", rows, cols), cache, options.timeout_seconds, say);
      (cols == 1 ? one : two) = synthesize_glue(slice, e, cache, settings, library, flow_options, say);
    }
    const double per_column = columns - 1.0;
    c.glue.module = rtl.top + " (own logic)";
    c.glue.count = 1;
    c.glue.ties = fmt::format("composed by columns: {0}x1 + {1} x ({0}x2 - {0}x1)", rows, columns - 1);
    c.glue.key = one.key + "+" + two.key;
    c.glue.area_um2 = one.area_um2 + per_column * (two.area_um2 - one.area_um2);
    c.glue.cells = one.cells + static_cast<int64_t>(per_column) * (two.cells - one.cells);
    c.glue.power_mw = one.power_mw + per_column * (two.power_mw - one.power_mw);
    c.glue.fmax_mhz = std::min(one.fmax_mhz, two.fmax_mhz);
    c.glue_method = "by columns";
  } else {
    c.glue = synthesize_glue(rtl, elaborated, cache, settings, library, flow_options, say);
    c.glue_method = "flat";
  }

  c.area_um2 = c.glue.area_um2;
  c.cells = c.glue.cells;
  c.power_mw = c.glue.power_mw;
  c.fmax_mhz = c.glue.fmax_mhz;
  for (const auto& k : c.kinds) {
    c.area_um2 += k.count * k.area_um2;
    c.cells += k.count * k.cells;
    c.power_mw += k.count * k.power_mw;
    if (k.fmax_mhz > 0) c.fmax_mhz = c.fmax_mhz > 0 ? std::min(c.fmax_mhz, k.fmax_mhz) : k.fmax_mhz;
  }
  c.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return c;
}

nlohmann::json to_json(const Composition& c) {
  nlohmann::json kinds = nlohmann::json::array();
  for (const auto& k : c.kinds) kinds.push_back(kind_json(k));
  return {{"design", c.design},
          {"top", c.top},
          {"library", c.library},
          {"macs_per_cycle", c.macs_per_cycle},
          {"clock_ns", c.clock_ns},
          {"input_activity", c.input_activity},
          {"area_um2", c.area_um2},
          {"cells", c.cells},
          {"power_vectorless_mw", c.power_mw},
          {"fmax_mhz", c.fmax_mhz},
          {"seconds", c.seconds},
          {"glue_method", c.glue_method},
          {"kinds_synthesized", c.kinds_synthesized},
          {"kinds_cached", c.kinds_cached},
          {"glue", kind_json(c.glue)},
          {"kinds", kinds},
          {"area_per_mac_by_part", c.area_per_mac_by_part()}};
}

}  // namespace gsqhw::synth
