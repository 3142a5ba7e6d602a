// Energy per MAC from gate-level activity of each module kind (synth/kind_energy.h).
#include "synth/kind_energy.h"

#include <algorithm>
#include <chrono>
#include <cmath>

#include <fmt/format.h>

#include "base/errors.h"
#include "base/files.h"
#include "gen/schedule.h"
#include "numerics/design.h"
#include "sim/cosim.h"
#include "workloads/lora.h"
#include "workloads/trace.h"

namespace gsqhw::synth {
namespace fs = std::filesystem;

namespace {

uint64_t fnv1a(const std::string& text, uint64_t hash = 1469598103934665603ull) {
  for (unsigned char ch : text) hash = (hash ^ ch) * 1099511628211ull;
  return hash;
}

bool is_delay(const std::string& module) { return module == "gsqhw_delay" || module == "gsqhw_delay_clear"; }

// How a kind's data rate scales with the array (kind_energy.h): column units and output deskew
// lines handle one group sum or result per row of their column, everything else one step.
std::string duty_class(const ModuleKind& kind) {
  if (kind.module == "gsqhw_group_acc") return "column";
  for (const auto& [name, depth] : kind.instances)
    if (name.find("deskew") != std::string::npos) return "column";
  return "stream";
}

fs::path kind_netlist(const fs::path& cache, const std::string& key) {
  return cache / key / "flow" / "gsqhw_kind_mapped.v";
}

// The kind's mapped netlist with its module renamed per kind (several kinds in one simulation).
std::string renamed_kind_netlist(const fs::path& cache, const std::string& key) {
  const fs::path path = kind_netlist(cache, key);
  if (!fs::exists(path))
    throw std::runtime_error(fmt::format("the mapped netlist of kind {} is missing ({}): re-run the composition with an empty kind cache", key, path.string()));
  std::string text = read_file(path);
  const std::string from = "module gsqhw_kind(";
  const size_t at = text.find(from);
  if (at == std::string::npos) throw std::runtime_error(fmt::format("{} holds no module gsqhw_kind", path.string()));
  text.replace(at, from.size(), fmt::format("module gsqhw_kind_{}(", key));
  return text;
}

bool kind_has_port(const KindPort& port) {
  return port.direction == "input" ? port.bits.find('n') != std::string::npos : port.bits.find('u') != std::string::npos;
}

// An adapter with the module's own ports around the kind's netlist (which lacks the inputs
// the array ties and the outputs nothing reads), `depth` stages of it for a delay line.
std::string adapter_verilog(const std::string& name, const ModuleKind& kind, int64_t depth) {
  std::vector<std::string> decls, body;
  for (const auto& p : kind.ports)
    decls.push_back(fmt::format("  {} wire [{}:0] {}", p.direction == "input" ? "input " : "output", p.bits.size() - 1, p.name));
  const std::string module = "gsqhw_kind_" + kind.key;
  if (is_delay(kind.module)) {
    int width = 0;
    for (const auto& p : kind.ports)
      if (p.name == "d") width = static_cast<int>(p.bits.size());
    for (int64_t s = 0; s <= depth; ++s) body.push_back(fmt::format("  wire [{}:0] chain{};", width - 1, s));
    body.push_back("  assign chain0 = d;");
    for (int64_t s = 0; s < depth; ++s) {
      std::vector<std::string> pins;
      for (const auto& p : kind.ports) {
        if (!kind_has_port(p)) continue;
        if (p.name == "d") pins.push_back(fmt::format(".d(chain{})", s));
        else if (p.name == "q") pins.push_back(fmt::format(".q(chain{})", s + 1));
        else pins.push_back(fmt::format(".{0}({0})", p.name));
      }
      body.push_back(fmt::format("  {} s{} ({});", module, s, fmt::join(pins, ", ")));
    }
    body.push_back(fmt::format("  assign q = chain{};", depth));
  } else {
    std::vector<std::string> pins;
    for (const auto& p : kind.ports) {
      if (kind_has_port(p)) pins.push_back(fmt::format(".{0}({0})", p.name));
      else if (p.direction != "input") body.push_back(fmt::format("  assign {} = {}'b0;", p.name, p.bits.size()));
    }
    body.push_back(fmt::format("  {} u_kind ({});", module, fmt::join(pins, ", ")));
  }
  std::string text = fmt::format("module {} (\n{}\n);\n", name, fmt::join(decls, ",\n"));
  for (const auto& line : body) text += line + "\n";
  return text + "endmodule\n";
}

// The simulation netlist of the measured array: the top with its own logic mapped onto the
// library and every submodule instance an adapter around its kind's netlist; and the top's own
// logic alone (adapters deleted, what they drove exposed as inputs) for its power.
struct SimNetlist {
  std::vector<fs::path> files;  // top, adapters, kind netlists (cell models added by the caller)
  fs::path glue_netlist;
  // instance prefix (gk_iN) -> (kind index, stage prefixes inside the adapter)
  std::vector<std::vector<std::string>> kind_prefixes;  // per kind: "gk_i3.u_kind." or "gk_i3.s0." ...
};

SimNetlist build_sim_netlist(const DesignRtl& rtl, const Composition& c, const LibrarySet& library,
                             const fs::path& work, const fs::path& cache, double timeout) {
  SimNetlist sim;
  fs::create_directories(work);
  std::vector<fs::path> rtl_files;
  for (const auto& [name, text] : rtl.files) {
    rtl_files.push_back(work / "rtl" / name);
    fs::create_directories(rtl_files.back().parent_path());
    write_file_atomically(rtl_files.back(), text);
  }
  std::string adapters, script = read_files_script(rtl_files);
  std::string renames;
  std::map<std::pair<std::string, int64_t>, std::string> adapter_of;  // (key, depth) -> module
  int instance_number = 0;
  sim.kind_prefixes.resize(c.kinds.size());
  for (size_t k = 0; k < c.kinds.size(); ++k) {
    const ModuleKind& kind = c.kinds[k];
    if (kind.instances.empty() || kind.ports.empty())
      throw std::runtime_error(fmt::format("kind {} carries no instances: composition too old for gate-level energy", kind.key));
    const fs::path netlist = work / fmt::format("kind_{}.v", kind.key);
    write_file_atomically(netlist, renamed_kind_netlist(cache, kind.key));
    sim.files.push_back(netlist);
    for (const auto& [cell, depth] : kind.instances) {
      auto [it, inserted] = adapter_of.try_emplace({kind.key, depth}, fmt::format("gsqhw_inst_{}_{}", kind.key, depth));
      if (inserted) adapters += adapter_verilog(it->second, kind, depth);
      const std::string name = fmt::format("gk_i{}", instance_number++);
      renames += fmt::format("rename {} {}\nchtype -set {} {}\n", cell, name, it->second, name);
      if (is_delay(kind.module)) {
        for (int64_t s = 0; s < depth; ++s) sim.kind_prefixes[k].push_back(fmt::format("{}.s{}.", name, s));
      } else {
        sim.kind_prefixes[k].push_back(name + ".u_kind.");
      }
    }
  }
  const fs::path adapters_file = work / "adapters.v";
  write_file_atomically(adapters_file, adapters);
  const std::string lib = library.yosys_file.string();
  script += fmt::format("read_verilog -lib {}\nhierarchy -check -top {}\ncd {}\n{}cd ..\n", adapters_file.string(), rtl.top,
                        rtl.top, renames);
  script += fmt::format("hierarchy -check -top {0}\nsynth -top {0}\ndfflibmap -liberty {1}\nabc -liberty {1}\nopt_clean\n",
                        rtl.top, lib);
  script += "rename -enumerate -pattern gsqhw_n% w:*\nwrite_verilog -noattr -noexpr sim_top.v\n";
  script += fmt::format("cd {}\ndelete t:gsqhw_inst_*\ncd ..\nsetundef -undriven -expose\nwrite_verilog -noattr -noexpr glue_top.v\n",
                        rtl.top);
  run_yosys(work, script, timeout, "simulation netlist of " + rtl.design);
  sim.files.insert(sim.files.begin(), {work / "sim_top.v", adapters_file});
  sim.glue_netlist = work / "glue_top.v";
  return sim;
}

// The activity of the nets under `prefixes`, re-rooted at the kind and averaged: toggles and
// high time summed over the instances, cycles times their number.
SwitchingActivity kind_activity(const SwitchingActivity& all, const std::vector<std::string>& prefixes) {
  SwitchingActivity out;
  out.top = "gsqhw_kind";
  out.clock = all.clock;
  out.cycles = all.cycles * static_cast<int64_t>(prefixes.size());
  for (const auto& prefix : prefixes) {
    for (auto it = all.nets.lower_bound(prefix); it != all.nets.end() && it->first.compare(0, prefix.size(), prefix) == 0; ++it) {
      NetActivity& net = out.nets[it->first.substr(prefix.size())];
      net.toggles += it->second.toggles;
      net.high_cycles += it->second.high_cycles;
    }
  }
  return out;
}

SwitchingActivity still(SwitchingActivity activity) {
  for (auto& [name, net] : activity.nets) net.toggles = 0;
  return activity;
}

KindPower kind_power(const fs::path& netlist, const std::string& top, const SwitchingActivity& activity,
                     const LibrarySet& library, double clock_ns, const fs::path& work, double timeout) {
  FlowResult flow;
  flow.netlist = netlist;
  flow.top = top;
  flow.clock_ns = clock_ns;
  FlowOptions options;
  options.clock_ns = clock_ns;
  options.timeout_seconds = timeout;
  options.work_dir = work;
  // No input activity of our own: every input port is annotated from the simulation.
  options.input_activity = 0;
  KindPower k;
  ActivityPower measured = run_activity_power(flow, library, activity, options);
  options.work_dir = work / "idle";
  ActivityPower idle = run_activity_power(flow, library, still(activity), options);
  k.power_mw = measured.power.total * 1e3;
  k.sequential_mw = measured.power.sequential * 1e3;
  k.idle_mw = idle.power.total * 1e3;
  k.nets_annotated = measured.nets_annotated;
  k.names_unmatched = measured.names_unmatched;
  return k;
}

nlohmann::json kind_power_json(const KindPower& k) {
  return {{"key", k.key},         {"module", k.module},     {"ties", k.ties},
          {"duty", k.duty},       {"count", k.count},       {"area_um2", k.area_um2},
          {"power_mw", k.power_mw}, {"idle_mw", k.idle_mw}, {"sequential_mw", k.sequential_mw},
          {"nets_annotated", k.nets_annotated}, {"names_unmatched", k.names_unmatched},
          {"area_parts", k.area_parts}};
}

KindPower kind_power_from_json(const nlohmann::json& j) {
  KindPower k;
  k.key = j.at("key");
  k.module = j.at("module");
  k.ties = j.at("ties");
  k.duty = j.at("duty");
  k.count = j.at("count");
  k.area_um2 = j.at("area_um2");
  k.power_mw = j.at("power_mw");
  k.idle_mw = j.at("idle_mw");
  k.sequential_mw = j.at("sequential_mw");
  k.nets_annotated = j.at("nets_annotated");
  k.names_unmatched = j.at("names_unmatched");
  k.area_parts = j.at("area_parts").get<std::map<std::string, double>>();
  return k;
}

// Registers get the kind's flip-flop power; the rest is split over its other parts by area.
void add_parts(std::map<std::string, double>& parts, const KindPower& k, double power_mw, double scale_to_pj) {
  if (k.area_parts.empty() || k.duty == "glue" || is_delay(k.module)) {
    parts["skew/forwarding/drain"] += power_mw * scale_to_pj;
    return;
  }
  const double sequential = k.power_mw > 0 ? power_mw * std::clamp(k.sequential_mw / k.power_mw, 0.0, 1.0) : 0;
  parts["registers"] += sequential * scale_to_pj;
  double other_area = 0;
  for (const auto& [part, area] : k.area_parts)
    if (part != "registers") other_area += area;
  for (const auto& [part, area] : k.area_parts)
    if (part != "registers" && other_area > 0) parts[part] += (power_mw - sequential) * (area / other_area) * scale_to_pj;
}

}  // namespace

GateEnergy measure_gate_energy(const DesignRtl& rtl, const Composition& c, const LibrarySet& library,
                               const ComposeOptions& compose_options, const KindEnergyOptions& options) {
  const auto start = std::chrono::steady_clock::now();
  if (options.traces.empty()) throw UsageError("gate-level energy per kind needs traces");
  int rows = 0, columns = 0;
  if (!array_shape(rtl.design, &rows, &columns))
    throw UsageError(fmt::format("gate-level energy per kind needs an array design, not {}", rtl.design));
  const fs::path cache = fs::absolute(compose_options.kind_cache);
  std::vector<fs::path> traces(options.traces.begin(),
                               options.traces.begin() + std::min<size_t>(options.traces.size(), std::max(1, options.activity_traces)));
  // The measurement is cached by everything it depends on.
  std::string key_text = fmt::format("kind-energy-v1|{}|{}|{}|{:.6g}", rtl.design, library.hash, tool_versions().str(),
                                     compose_options.clock_ns);
  for (const auto& k : c.kinds) key_text += "|" + k.key;
  key_text += "|" + c.glue.key;
  for (const auto& t : traces) key_text += fmt::format("|{:016x}", fnv1a(read_file(t)));
  const fs::path dir = cache / fmt::format("energy-{:016x}", fnv1a(key_text));
  if (fs::exists(dir / "energy.json")) return gate_energy_from_json(nlohmann::json::parse(read_file(dir / "energy.json")));

  auto say = [&](const std::string& what) {
    if (options.progress)
      fmt::print(stderr, "[gate energy {:.0f} s] {}: {}\n",
                 std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(), rtl.design, what);
  };
  say("building the simulation netlist from the kinds' netlists");
  const fs::path work = dir / fmt::format("run-{}", ::getpid());
  SimNetlist sim = build_sim_netlist(rtl, c, library, work, cache, compose_options.timeout_seconds);

  say(fmt::format("gate-level simulation on {} trace(s) (Verilator build of the netlist first)", traces.size()));
  CosimOptions cosim;
  cosim.cache_dir = options.sim_cache;
  cosim.activity = work / "activity.json";
  cosim.netlist_files = sim.files;
  cosim.netlist_files.push_back(ensure_cell_models(library));
  CosimResult run = run_cosim(DesignPoint::parse(rtl.design), traces, cosim);
  if (!run.pass)
    throw MismatchError(fmt::format("gate-level simulation of the composed kinds of {} does not match the golden model: {}",
                                    rtl.design, run.mismatches.empty() ? (run.errors.empty() ? std::string("?") : run.errors.front())
                                                                      : fmt::format("trace {} cycle {}", run.mismatches.front().trace, run.mismatches.front().cycle)));
  const SwitchingActivity activity = read_activity_file(work / "activity.json");

  GateEnergy e;
  e.design = rtl.design;
  e.library = library.name;
  e.trace_source = options.trace_source;
  e.rows = rows;
  e.columns = columns;
  e.clock_ns = compose_options.clock_ns;
  e.cycles = activity.cycles;
  e.macs = run.macs;
  e.utilisation = static_cast<double>(run.macs) / (static_cast<double>(run.cycles) * rows * columns);
  int64_t k_weighted = 0;
  for (const auto& g : run.per_gemm) k_weighted += g.timing.macs * g.timing.k;
  e.k = run.macs > 0 ? (k_weighted + run.macs / 2) / run.macs : 0;
  e.group_size = read_trace_header(traces.front()).a.group_size;

  double energy_pj = 0;
  const double pj_per_mw_cycle = e.clock_ns;  // 1 mW for 1 ns = 1 pJ
  for (size_t i = 0; i < c.kinds.size(); ++i) {
    const ModuleKind& kind = c.kinds[i];
    say(fmt::format("power of kind {} ({}), {} instance(s)", kind.module, kind.ties, sim.kind_prefixes[i].size()));
    KindPower p = kind_power(kind_netlist(cache, kind.key), "gsqhw_kind", kind_activity(activity, sim.kind_prefixes[i]), library,
                             e.clock_ns, work / ("sta-" + kind.key), compose_options.timeout_seconds);
    p.key = kind.key;
    p.module = kind.module;
    p.ties = kind.ties;
    p.duty = duty_class(kind);
    p.count = kind.count;
    p.area_um2 = kind.area_um2;
    p.area_parts = kind.breakdown.parts;
    energy_pj += static_cast<double>(p.count) * p.power_mw * pj_per_mw_cycle * static_cast<double>(e.cycles);
    e.kinds.push_back(p);
  }
  say("power of the top's own logic");
  SwitchingActivity top_nets;
  top_nets.top = rtl.top;
  top_nets.clock = activity.clock;
  top_nets.cycles = activity.cycles;
  for (const auto& [name, net] : activity.nets)
    if (name.rfind("gk_i", 0) != 0) top_nets.nets[name] = net;
  e.glue = kind_power(sim.glue_netlist, rtl.top, top_nets, library, e.clock_ns, work / "sta-glue", compose_options.timeout_seconds);
  e.glue.key = c.glue.key;
  e.glue.module = c.glue.module;
  e.glue.ties = "-";
  e.glue.duty = "glue";
  e.glue.count = 1;
  e.glue.area_um2 = c.glue.area_um2;
  energy_pj += e.glue.power_mw * pj_per_mw_cycle * static_cast<double>(e.cycles);
  e.pj_per_mac = energy_pj / static_cast<double>(std::max<int64_t>(1, e.macs));
  e.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  write_file_atomically(dir / "energy.json", to_json(e).dump(1));
  std::error_code ignored;
  fs::remove_all(work / "rtl", ignored);
  return e;
}

double steady_utilisation(const DesignRtl& rtl, int64_t k, int group_size) {
  if (rtl.manifest.is_null()) throw UsageError(fmt::format("{} has no array manifest (a baseline?)", rtl.design));
  const ArrayManifest array = ArrayManifest::from_json(rtl.manifest);
  int rows = 0, columns = 0;
  if (!array_shape(rtl.design, &rows, &columns)) throw UsageError(fmt::format("{} is not an array", rtl.design));
  const GemmTiming t = gemm_timing(array, 8LL * rows, 8LL * columns, std::max<int64_t>(1, k), group_size);
  return t.pe_utilisation;
}

ScaledEnergy scale_gate_energy(const GateEnergy& m, const Composition& at, double utilisation) {
  int rows = 0, columns = 0;
  if (!array_shape(at.design, &rows, &columns)) throw UsageError(fmt::format("{} is not an array", at.design));
  ScaledEnergy s;
  s.utilisation = utilisation;
  const double u_ratio = utilisation / m.utilisation;
  const double row_ratio = static_cast<double>(rows) / m.rows;
  const double macs_per_cycle = static_cast<double>(rows) * columns * utilisation;
  const double to_pj_per_mac = m.clock_ns / macs_per_cycle;  // mW per array cycle -> pJ per MAC
  double total_mw = 0;
  for (const auto& kind : at.kinds) {
    // The same kind measured (same key), else the measured kind of the same module with the
    // same tie-offs and the closest area (kind keys cover every submodule's text, which changes
    // with the array size; delay lines of one width, a column unit whose ring holds R
    // accumulators), else the same module with the closest area.
    const KindPower* match = nullptr;
    for (const auto& p : m.kinds)
      if (p.key == kind.key) match = &p;
    double area_scale = 1;
    if (match) {
      s.kinds_by_key++;
    } else {
      double best = INFINITY;
      for (const auto& p : m.kinds) {
        if (p.module != kind.module || !(p.area_um2 > 0) || !(kind.area_um2 > 0)) continue;
        const double distance = std::abs(std::log(kind.area_um2 / p.area_um2)) + (p.ties == kind.ties ? 0 : 100);
        if (distance < best) best = distance, match = &p;
      }
      if (!match)
        throw UsageError(fmt::format("kind {} ({}) of {} was not measured on {}: measure on a larger array", kind.module,
                                     kind.ties, at.design, m.design));
      area_scale = kind.area_um2 / match->area_um2;
      s.kinds_by_module++;
    }
    const double duty = match->duty == "column" ? row_ratio * u_ratio : u_ratio;
    const double p = match->idle_mw * area_scale + (match->power_mw - match->idle_mw) * duty;
    total_mw += static_cast<double>(kind.count) * p;
    add_parts(s.pj_per_mac_by_part, *match, static_cast<double>(kind.count) * p, to_pj_per_mac);
  }
  const double glue_area = m.glue.area_um2 > 0 ? at.glue.area_um2 / m.glue.area_um2 : 1;
  const double glue_duty = row_ratio * (static_cast<double>(columns) / m.columns) * u_ratio;
  const double glue_mw = m.glue.idle_mw * glue_area + (m.glue.power_mw - m.glue.idle_mw) * glue_duty;
  total_mw += glue_mw;
  add_parts(s.pj_per_mac_by_part, m.glue, glue_mw, to_pj_per_mac);
  s.pj_per_mac = total_mw * to_pj_per_mac;
  return s;
}

std::vector<fs::path> energy_traces(const std::string& design, const std::vector<fs::path>& given, const fs::path& cache_dir,
                                    std::string& label) {
  if (given.empty()) {
    const DesignPoint point = DesignPoint::parse(design);
    label = "synthetic (built-in tiny LoRA traces)";
    return ensure_builtin_tiny_traces(cache_dir / "traces", point.format, point.acc);
  }
  std::vector<fs::path> traces;
  for (const auto& g : given)
    for (const auto& t : list_traces(g)) traces.push_back(t);
  if (traces.empty()) throw UsageError("--trace names no trace files");
  const nlohmann::json meta = read_trace_header(traces.front()).metadata;
  const std::string activations = meta.value("activations", std::string());
  label = activations.rfind("real", 0) == 0 ? fmt::format("real ({}: {})", traces.front().parent_path().filename().string(), activations)
                                            : fmt::format("synthetic ({})", traces.front().parent_path().filename().string());
  return traces;
}

nlohmann::json to_json(const GateEnergy& e) {
  nlohmann::json kinds = nlohmann::json::array();
  for (const auto& k : e.kinds) kinds.push_back(kind_power_json(k));
  return {{"design", e.design},       {"library", e.library},     {"trace_source", e.trace_source},
          {"rows", e.rows},           {"columns", e.columns},     {"clock_ns", e.clock_ns},
          {"cycles", e.cycles},       {"macs", e.macs},           {"k", e.k},
          {"group_size", e.group_size}, {"utilisation", e.utilisation}, {"kinds", kinds},
          {"glue", kind_power_json(e.glue)}, {"pj_per_mac", e.pj_per_mac}, {"seconds", e.seconds}};
}

GateEnergy gate_energy_from_json(const nlohmann::json& j) {
  try {
    GateEnergy e;
    e.design = j.at("design");
    e.library = j.at("library");
    e.trace_source = j.at("trace_source");
    e.rows = j.at("rows");
    e.columns = j.at("columns");
    e.clock_ns = j.at("clock_ns");
    e.cycles = j.at("cycles");
    e.macs = j.at("macs");
    e.k = j.at("k");
    e.group_size = j.at("group_size");
    e.utilisation = j.at("utilisation");
    for (const auto& k : j.at("kinds")) e.kinds.push_back(kind_power_from_json(k));
    e.glue = kind_power_from_json(j.at("glue"));
    e.pj_per_mac = j.at("pj_per_mac");
    e.seconds = j.at("seconds");
    return e;
  } catch (const nlohmann::json::exception& ex) {
    throw UsageError(fmt::format("gate-level energy JSON: {}", ex.what()));
  }
}

}  // namespace gsqhw::synth
