// gsqhw cosim: every GEMM of a trace set through a design (Verilated RTL, the fast cycle model,
// or both in lockstep), each output checked bit for bit against golden_gemm.
#include <fmt/format.h>

#include <cstdio>
#include <iostream>

#include "cli/command.h"
#include "sim/cosim.h"
#include "base/errors.h"
#include "sim/verilator_build.h"
#include "workloads/lora.h"

namespace gsqhw::cli {
namespace {

struct CosimArgs {
  std::string design;
  std::string generated;
  std::vector<std::string> traces;
  std::string engine = "rtl";
  std::string waves, activity, cache;
  std::vector<std::string> netlist;
  std::string liberty;
  int max_mismatches = 10;
  bool json = false;
  bool systemc = false;
  std::string sample;
  uint64_t seed = 1;
  int jobs = 1;
  int64_t max_special = 64;
};

Runner setup_cosim(CLI::App& app) {
  auto args = std::make_shared<CosimArgs>();
  auto* design = app.add_option("--design", args->design,
                                "design point, e.g. \"gse:b=6@array4x4,acc=fixed32.16\" "
                                "(generated on the fly)");
  auto* generated = app.add_option("--generated", args->generated,
                                   "a folder written by `gsqhw gen` (manifest.json, files.f + Verilog)");
  design->excludes(generated);
  generated->excludes(design);
  app.add_option("--trace", args->traces,
                 "trace file or folder of traces (repeatable); default: the built-in tiny LoRA "
                 "trace set quantized with the design's format");
  app.add_option("--engine", args->engine, "rtl (Verilated), fast (cycle model) or lockstep (both)")
      ->check(CLI::IsMember({"rtl", "fast", "lockstep"}));
  app.add_option("--waves", args->waves,
                 "waveform (.vcd or .fst) of a window around the first mismatch (default on a "
                 "mismatch: a .vcd in the temp folder)");
  app.add_option("--activity", args->activity,
                 "write per-net switching activity of the whole run (JSON, sim/activity.h)");
  app.add_option("--netlist", args->netlist,
                 "simulate these Verilog files (gate-level netlist + cell models) instead of the "
                 "generated RTL (repeatable); top and ports are the design's");
  app.add_option("--liberty", args->liberty,
                 "with --netlist: the Liberty library the netlist is mapped to; its cells are "
                 "simulated through Verilog models that Yosys derives from it (cached)");
  app.add_option("--cache", args->cache, "Verilator build cache (default $GSQHW_CACHE or ~/.cache/gsqhw)");
  app.add_option("--max-mismatches", args->max_mismatches, "mismatches to report in detail")
      ->check(CLI::NonNegativeNumber);
  app.add_flag("--json", args->json, "print the result as JSON");
  app.add_flag("--systemc", args->systemc,
               "run the RTL in the SystemC testbench (Verilator --sc) instead of the plain C++ "
               "one: same checks, slower (docs/cosim.md)");

  app.add_option("--sample", args->sample,
                 "sampled-tile co-simulation: the fast model computes every tile, the RTL runs "
                 "N tiles per GEMM (integer) or a FRACTION of them (0.05, 5%, 1.0) at random, "
                 "plus every edge tile and the special-value tiles (docs/cosim.md)");
  app.add_option("--seed", args->seed, "seed of the --sample tile choice (default 1)");
  app.add_option("--jobs", args->jobs,
                 "RTL worker processes: each GEMM's tiles split over N testbenches, results "
                 "merged in tile order (default 1)");
  app.add_option("--max-special-tiles", args->max_special,
                 "with --sample: special-value tiles forced into the sample per case per GEMM "
                 "(default 64)");

  return [args]() -> int {
    if (args->design.empty() && args->generated.empty())
      throw UsageError("give the design: --design SPEC or --generated DIR");
    CosimOptions options;
    options.engine = args->engine == "rtl"    ? CosimOptions::Engine::rtl
                     : args->engine == "fast" ? CosimOptions::Engine::fast
                                              : CosimOptions::Engine::lockstep;
    options.cache_dir = args->cache.empty() ? default_cache_dir() : std::filesystem::path(args->cache);
    if (!args->waves.empty()) options.waves = args->waves;
    if (!args->activity.empty()) options.activity = args->activity;
    for (const auto& f : args->netlist) {
      if (!std::filesystem::exists(f)) throw UsageError(fmt::format("--netlist {} does not exist", f));
      options.netlist_files.push_back(f);
    }
    if (!args->liberty.empty()) {
      if (args->netlist.empty()) throw UsageError("--liberty only makes sense with --netlist");
      options.netlist_files.push_back(cell_models_from_liberty(args->liberty, options.cache_dir));
    }
    options.max_mismatches_reported = args->max_mismatches;
    options.systemc = args->systemc;
    if (!args->sample.empty()) options.sample = parse_sample(args->sample);
    options.seed = args->seed;
    options.jobs = args->jobs;
    options.max_special_tiles = args->max_special;

    CosimDesign d = args->design.empty() ? cosim_design_from_dir(args->generated)
                                         : cosim_design_generate(DesignPoint::parse(args->design));
    std::vector<std::filesystem::path> traces(args->traces.begin(), args->traces.end());
    if (traces.empty()) {
      if (!args->json)
        std::fprintf(stderr, "cosim: no --trace given; using the built-in tiny LoRA traces\n");
      traces = ensure_builtin_tiny_traces(options.cache_dir / "traces", d.design.format,
                                          d.design.acc);
    }
    CosimResult r = run_cosim_traces(d, traces, options);
    if (args->json)
      std::cout << cosim_result_json(r).dump(2) << "\n";
    else
      std::cout << cosim_result_text(r);
    return r.pass ? 0 : 1;
  };
}

GSQHW_COMMAND("cosim",
              "Co-simulate a design (Verilated RTL / fast cycle model / lockstep) on LoRA traces "
              "against the golden model",
              setup_cosim);

}  // namespace
}  // namespace gsqhw::cli
