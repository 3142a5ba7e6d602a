// `gsqhw compose`: the area, timing and vectorless power of an array composed from its module
// kinds, each synthesized once (synth/compose.h); with --flat also the flat synthesis of the
// whole array and the composition's error against it.
#include <fmt/format.h>

#include <iostream>
#include <optional>

#include "cli/command.h"
#include "cli/synthesis_options.h"
#include "base/errors.h"
#include "synth/compose.h"
#include "synth/kind_energy.h"
#include "synth/point.h"

namespace gsqhw::cli {
namespace {

struct ComposeArgs {
  std::string design;
  SynthesisArgs synthesis;
  bool flat = false;
  bool no_breakdown = false;
  std::string out = "out/compose";
  std::string cache;
  bool json = false;
  int glue_columns_from = 16;
  std::string energy = "vectorless";
  std::vector<std::string> traces;
  int activity_traces = 2;
};

Runner setup(CLI::App& app) {
  auto args = std::make_shared<ComposeArgs>();
  app.description(
      "Compose an array's area, timing and vectorless power from its module kinds: every distinct\n"
      "submodule instance (module, parameters, tied input bits, unread output bits) is synthesized once,\n"
      "flattened with its tie-offs, and counted; the top's own logic is synthesized with the submodules\n"
      "as black boxes. --flat also synthesizes the whole array flat and prints the error. Synthesis only:\n"
      "the design is not co-simulated here (gsqhw synth does that). Area um^2, power mW (vectorless).");
  app.add_option("--design", args->design, "design, e.g. gse:b=7@array16x16,acc=fixed32.16,align=shared")->required();
  add_synthesis_options(app, args->synthesis);
  app.add_flag("--flat", args->flat, "also synthesize the whole array flat and report the composition error");
  app.add_flag("--no-breakdown", args->no_breakdown, "skip the per-part area breakdown runs");
  app.add_option("--out", args->out, "work folder (default out/compose)");
  app.add_option("--cache", args->cache, "cache folder (default $GSQHW_CACHE or ~/.cache/gsqhw); kinds go to CACHE/kinds");
  app.add_flag("--json", args->json, "print the result as JSON");
  app.add_option("--glue-columns-from", args->glue_columns_from,
                 "from this many columns up, compose the top's own logic from the R x 1 and R x 2 arrays' "
                 "instead of synthesizing it flat; 0: always flat (default 16)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--energy", args->energy,
                 "vectorless (default), or gate: energy per MAC from gate-level activity of each kind, every "
                 "instance replaced by its kind's netlist and simulated on --trace (bit-exact against the golden model)")
      ->check(CLI::IsMember({"vectorless", "gate"}));
  app.add_option("--trace", args->traces, "--energy gate: trace files or folders (default: the built-in tiny LoRA set, synthetic)");
  app.add_option("--activity-traces", args->activity_traces, "--energy gate: the first N traces are simulated (default 2)")
      ->check(CLI::PositiveNumber);
  return [args]() -> int {
    synth::LibrarySet library = synth::resolve_library(library_choice(args->synthesis));
    synth::DesignRtl rtl = synth::design_rtl(args->design);
    synth::ComposeOptions options;
    options.clock_ns = args->synthesis.clock_ns;
    options.input_activity = args->synthesis.input_activity;
    options.work_dir = args->out;
    options.kind_cache = (args->cache.empty() ? synth::default_cache_dir() : std::filesystem::path(args->cache)) / "kinds";
    options.breakdown = !args->no_breakdown;
    options.glue_columns_from = args->glue_columns_from;
    synth::Composition c = synth::compose_design(rtl, library, options);
    nlohmann::json j = synth::to_json(c);
    if (args->flat) {
      synth::FlowOptions flat;
      flat.clock_ns = options.clock_ns;
      flat.input_activity = options.input_activity;
      flat.work_dir = std::filesystem::path(args->out) / "flat";
      std::vector<std::filesystem::path> files;
      for (const auto& [name, text] : rtl.files) files.push_back(std::filesystem::path(args->out) / "rtl" / name);
      synth::FlowResult f = synth::run_flow(files, rtl.top, library, flat);
      j["flat"] = {{"area_um2", f.stat.area},
                   {"cells", f.stat.cells},
                   {"power_vectorless_mw", f.power_vectorless.total * 1e3},
                   {"fmax_mhz", f.fmax_mhz},
                   {"yosys_seconds", f.yosys_seconds}};
      j["error"] = {{"area", c.area_um2 / f.stat.area - 1},
                    {"power", c.power_mw / (f.power_vectorless.total * 1e3) - 1},
                    {"fmax", c.fmax_mhz / f.fmax_mhz - 1}};
    }
    std::optional<synth::GateEnergy> energy;
    if (args->energy == "gate") {
      const std::filesystem::path cache = args->cache.empty() ? synth::default_cache_dir() : std::filesystem::path(args->cache);
      synth::KindEnergyOptions eo;
      std::vector<std::filesystem::path> given(args->traces.begin(), args->traces.end());
      eo.traces = synth::energy_traces(rtl.design, given, cache, eo.trace_source);
      eo.activity_traces = args->activity_traces;
      eo.sim_cache = cache;
      eo.progress = !args->json;
      energy = synth::measure_gate_energy(rtl, c, library, options, eo);
      j["gate_energy"] = synth::to_json(*energy);
    }
    if (args->json) {
      std::cout << j.dump(2) << "\n";
      return 0;
    }
    fmt::print("{} on {} at {} ns: {} kinds ({} synthesized, {} cached), {:.1f} s\n", c.design, c.library, c.clock_ns,
               c.kinds.size(), c.kinds_synthesized, c.kinds_cached, c.seconds);
    fmt::print("{:>8}  {:>12}  {:>9}  {:>9}  {}\n", "count", "um^2 each", "mW each", "fmax MHz", "kind (ties)");
    for (const auto& k : c.kinds)
      fmt::print("{:>8}  {:>12.1f}  {:>9.4f}  {:>9.1f}  {} ({})\n", k.count, k.area_um2, k.power_mw, k.fmax_mhz, k.module, k.ties);
    fmt::print("{:>8}  {:>12.1f}  {:>9.4f}  {:>9.1f}  {} ({})\n", 1, c.glue.area_um2, c.glue.power_mw, c.glue.fmax_mhz, c.glue.module,
               c.glue_method == "flat" ? "synthesized flat" : c.glue.ties);
    fmt::print("composed: area {:.0f} um^2 ({:.1f} per MAC/cycle), {} cells, vectorless power {:.3f} mW, fmax {:.1f} MHz\n",
               c.area_um2, c.area_um2 / c.macs_per_cycle, c.cells, c.power_mw, c.fmax_mhz);
    for (const auto& [part, area] : c.area_per_mac_by_part()) fmt::print("  {:<26} {:>10.1f} um^2 per MAC/cycle\n", part, area);
    if (args->flat)
      fmt::print("flat:     area {:.0f} um^2, {} cells, vectorless power {:.3f} mW, fmax {:.1f} MHz; composition error: "
                 "area {:+.2f}%, power {:+.2f}%, fmax {:+.2f}%\n",
                 j["flat"]["area_um2"].get<double>(), j["flat"]["cells"].get<long>(), j["flat"]["power_vectorless_mw"].get<double>(),
                 j["flat"]["fmax_mhz"].get<double>(), 100 * j["error"]["area"].get<double>(),
                 100 * j["error"]["power"].get<double>(), 100 * j["error"]["fmax"].get<double>());
    if (energy) {
      const synth::GateEnergy& e = *energy;
      fmt::print("gate-level energy per kind ({} traces: {}), {} cycles, {} MACs, PE utilisation {:.3f}:\n", args->activity_traces,
                 e.trace_source, e.cycles, e.macs, e.utilisation);
      fmt::print("{:>8}  {:>9}  {:>9}  {:>9}  {:>6}  {}\n", "count", "mW each", "idle mW", "seq. mW", "duty", "kind (ties)");
      for (const auto& k : e.kinds)
        fmt::print("{:>8}  {:>9.4f}  {:>9.4f}  {:>9.4f}  {:>6}  {} ({})\n", k.count, k.power_mw, k.idle_mw, k.sequential_mw, k.duty,
                   k.module, k.ties);
      fmt::print("{:>8}  {:>9.4f}  {:>9.4f}  {:>9.4f}  {:>6}  {}\n", 1, e.glue.power_mw, e.glue.idle_mw, e.glue.sequential_mw,
                 e.glue.duty, e.glue.module);
      fmt::print("composed gate-level energy: {:.2f} pJ/MAC (gate-level activity, {})\n", e.pj_per_mac, e.trace_source);
    }
    return 0;
  };
}

GSQHW_COMMAND("compose", "Area/timing/power of an array composed from its module kinds", setup);

}  // namespace
}  // namespace gsqhw::cli
