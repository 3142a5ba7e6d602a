// `gsqhw synth`: one design point through generation, co-simulation, synthesis, timing and
// power (synth/point.h). Also the worker that `gsqhw sweep` runs for each point.
#include <fmt/format.h>

#include <iostream>

#include "cli/command.h"
#include "cli/synthesis_options.h"
#include "numerics/design.h"
#include "base/errors.h"
#include "synth/baseline.h"
#include "synth/liberty.h"
#include "synth/point.h"
#include "synth/sibling_design.h"

namespace gsqhw::cli {
namespace {

struct SynthArgs {
  std::string design;
  SynthesisArgs synthesis;
  std::vector<std::string> traces;
  bool no_cosim = false;
  std::string activity = "gate";
  int activity_traces = 2;
  std::string out;
  std::string cache;
  bool json = false;
};

std::string number(const nlohmann::json& j, const char* key, const char* format_spec) {
  if (!j.contains(key) || !j[key].is_number()) return "-";
  return fmt::format(fmt::runtime(format_spec), j[key].get<double>());
}

Runner setup(CLI::App& app) {
  auto args = std::make_shared<SynthArgs>();
  app.description(
      "Evaluate one design point: generate its RTL, measure the format's trace error (SQNR),\n"
      "co-simulate it against the golden model (a failing design gets no numbers), synthesize\n"
      "with Yosys onto a Liberty library, time it with OpenSTA (fmax = 1/(period - worst slack),\n"
      "inputs/outputs constrained at 0 ns from the clock), and report power vectorless (a stated\n"
      "toggle rate at every data input) and from the gate-level simulation's switching activity.\n"
      "Also accepts baseline designs: baseline:bare,b=B,w=W (bare multiplier+adder+register) and\n"
      "baseline:intmac,b=B,w=W (plain INT-b MAC PE), and the sibling methods\n"
      "lota:n=4,g=64,r=8,omega=2@pe and ptq161:salient=0.2@array8x1 (docs/siblings.md). Units: area um^2 (library units), power mW,\n"
      "energy pJ per MAC.");
  app.add_option("--design", args->design, "design point, e.g. gse:b=6@pe or fp8:e4m3@array4x4,acc=fp32")->required();
  add_synthesis_options(app, args->synthesis);
  app.add_option("--trace", args->traces, "trace files or folders (default: the built-in tiny LoRA set)");
  app.add_flag("--no-cosim", args->no_cosim, "skip the RTL co-simulation (numbers are then unverified)");
  app.add_option("--activity", args->activity, "workload power from: gate (default), rtl, none");
  app.add_option("--activity-traces", args->activity_traces, "traces simulated for activity (default 2)");
  app.add_option("--out", args->out, "output folder (default out/synth/<design slug>)");
  app.add_option("--cache", args->cache, "cache folder (default $GSQHW_CACHE or ~/.cache/gsqhw)");
  app.add_flag("--json", args->json, "print the result as JSON");
  return [args]() -> int {
    synth::PointRequest request;
    request.design = args->design;
    request.library = library_choice(args->synthesis);
    request.clock_ns = args->synthesis.clock_ns;
    request.input_activity = args->synthesis.input_activity;
    for (const auto& t : args->traces) request.traces.push_back(t);
    request.cosim = !args->no_cosim;
    request.activity = args->activity;
    if (args->activity_traces < 1) throw UsageError("--activity-traces must be at least 1");
    request.activity_traces = args->activity_traces;
    request.cache_dir = args->cache;
    std::string slug = synth::Baseline::is_baseline(args->design)    ? synth::Baseline::parse(args->design).str()
                       : synth::SiblingDesign::is_sibling(args->design) ? synth::SiblingDesign::parse(args->design).slug()
                                                                        : DesignPoint::parse(args->design).slug();
    for (char& ch : slug)
      if (ch == ':' || ch == ',' || ch == '=') ch = '_';
    request.out_dir = args->out.empty() ? std::filesystem::path("out/synth") / slug : std::filesystem::path(args->out);

    // A bad library is bad input (exit 2), not a failed point: resolve it before anything runs.
    synth::resolve_library(request.library);
    nlohmann::json result = synth::evaluate_point(request);
    if (args->json) {
      std::cout << result.dump(2) << "\n";
    } else {
      fmt::print("design      {}\n", result.value("design", ""));
      fmt::print("status      {}\n", result.value("status", ""));
      if (result.contains("error")) fmt::print("error       {}\n", result["error"].get<std::string>());
      fmt::print("liberty     {} ({})\n", result.value("liberty", "-"), result.value("liberty_hash", "-"));
      fmt::print("area        {} um^2, {} cells\n", number(result, "area_um2", "{:.1f}"), number(result, "cells", "{:.0f}"));
      fmt::print("timing      clock {} ns, critical path {} ns, fmax {} MHz{}\n", number(result, "clock_ns", "{:g}"),
                 number(result, "critical_path_ns", "{:.3f}"), number(result, "fmax_mhz", "{:.1f}"),
                 result.value("timing_met", true) ? "" : "  (TIMING VIOLATED at this clock)");
      fmt::print("power       {} mW vectorless (input activity {}), {} pJ/MAC at full rate\n",
                 number(result, "power_mw", "{:.4f}"), number(result, "input_activity", "{:g}"),
                 number(result, "pj_per_mac_vectorless", "{:.4f}"));
      if (result.value("activity_source", "none") != "none")
        fmt::print("workload    {} mW from {}-level activity ({} nets annotated), {} pJ/MAC\n",
                   number(result, "power_activity_mw", "{:.4f}"), result["activity_source"].get<std::string>(),
                   number(result, "nets_annotated", "{:.0f}"), number(result, "pj_per_mac", "{:.4f}"));
      if (result.value("activity_source", "none") == "rtl")
        // OpenSTA propagates the RTL ports' and registers' activity through the arithmetic
        // between them on its own; for an FP8 PE that overstated power 3.5x (docs/synthesis.md).
        fmt::print("            (RTL-level activity annotates only ports and registers and can overstate power "
                   "several times; use --activity gate for a workload figure to quote)\n");
      if (result.contains("sqnr_db"))
        fmt::print("trace SQNR  {} dB over {} traces; co-simulation {}\n", number(result, "sqnr_db", "{:.2f}"),
                   number(result, "traces", "{:.0f}"),
                   result.contains("cosim_pass") ? (result["cosim_pass"].get<bool>() ? "passed" : "FAILED") : "skipped");
      fmt::print("details     {}/result.json\n", request.out_dir.string());
    }
    return result.value("status", "") == "ok" ? 0 : 1;
  };
}

GSQHW_COMMAND("synth", "Synthesize one design point: area, timing, power (Yosys + OpenSTA)", setup);

}  // namespace
}  // namespace gsqhw::cli
