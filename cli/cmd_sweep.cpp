// `gsqhw sweep`: the bit-width sweep (synth/sweep.h) with resumable SQLite results, CSV/JSON
// exports and the report.
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli/command.h"
#include "base/files.h"
#include "cli/config_file.h"
#include "cli/synthesis_options.h"
#include "gsqhw_version.h"
#include "numerics/design.h"
#include "base/errors.h"
#include "synth/scale.h"
#include "synth/sweep.h"

namespace gsqhw::cli {
namespace {

struct SweepArgs {
  std::vector<std::string> formats;
  std::vector<std::string> designs;
  std::string bits = "3..8";
  std::vector<std::string> arrays = {"2x2"};
  std::string amortisation_array = "none";
  bool no_pe = false;
  bool no_iso = false;
  bool no_baselines = false;
  bool all_iso = false;
  bool array_all = false;
  SynthesisArgs synthesis;
  std::vector<std::string> traces;
  std::string finetune_results;
  bool no_finetune = false;
  synth::SweepFinetuneOptions finetune;
  std::string activity = "none";
  std::string headline_activity = "none";
  int activity_traces = 2;
  int jobs = 2;
  bool retry_errors = false;
  double max_file_mb = 0;
  std::string out = "out/sweep";
  std::string cache;
  bool no_report = false;
  bool quiet = false;
  std::string executor = "local";
  std::string partition, time, mem, attach;
  int max_parallel = 0;
  std::vector<std::string> sbatch_args;
  bool detach = false, collect = false;
  double poll = 5;
  std::string task_cache;
  bool scale = false;
  std::vector<int> scale_sizes = {2, 4, 8, 16, 32, 64};
  std::vector<std::string> scale_only;
  int scale_bits = 0;
  bool scale_fixed_pipe = false;
  std::string scale_energy = "vectorless";
  std::vector<std::string> energy_traces;
  int energy_activity_traces = 2;
  int energy_measure_size = 4;
  bool json = false;
  bool scale_report = false;
};

nlohmann::json summary_json(const synth::SweepSummary& s, const std::filesystem::path& config) {
  return {{"points", s.points},        {"reused", s.reused},         {"evaluated", s.evaluated},
          {"ok", s.ok},                {"failed", s.failed},         {"interrupted", s.interrupted},
          {"detached", s.detached},    {"in_flight", s.in_flight},   {"not_submitted", s.not_submitted},
          {"slurm_jobs", s.slurm_jobs}, {"seconds", s.seconds},      {"db", s.db.string()},
          {"csv", s.csv.string()},     {"json", s.json.string()},    {"report", s.report.string()},
          {"config", config.string()}};
}

// `--attach DIR`: runs the command line the Slurm controller of DIR saved (DIR/slurm/command.json)
// again, in its folder, following its job array (with --collect: one look, no waiting).
[[noreturn]] void reattach(const std::string& dir, bool collect) {
  const std::string path = dir + "/slurm/command.json";
  std::ifstream in(path);
  nlohmann::json saved = in ? nlohmann::json::parse(in, nullptr, false) : nlohmann::json();
  if (!saved.is_object() || !saved.contains("argv") || !saved["argv"].is_array())
    throw UsageError(fmt::format("{} has no Slurm sweep to attach to ({} is missing or unreadable)", dir, path));
  std::vector<std::string> argv;
  for (const auto& a : saved["argv"]) {
    const std::string arg = a.get<std::string>();
    if (arg != "--detach" && arg != "--collect") argv.push_back(arg);  // attaching means following
  }
  if (collect) argv.push_back("--collect");
  if (::chdir(saved.value("cwd", ".").c_str()) != 0)
    throw UsageError(fmt::format("cannot enter {}, the folder the sweep was started in", saved.value("cwd", "")));
  std::vector<char*> args;
  for (auto& a : argv) args.push_back(a.data());
  args.push_back(nullptr);
  ::execv("/proc/self/exe", args.data());
  throw std::runtime_error(fmt::format("cannot run the saved sweep command: {}", std::strerror(errno)));
}

Runner setup(CLI::App& app) {
  auto args = std::make_shared<SweepArgs>();
  auto config = ConfigFile::add_to(app);  // cli/config_file.h: --config sweep.toml
  app.description(
      "Sweep design points through co-simulation, synthesis, timing and power, and write a report.\n"
      "Default grid: GSE-INT b=3..8 (G=32, E=5, fixed32.16 accumulator), FP8 E4M3 and E5M2 (fp32), INT8\n"
      "(fixed32.0), BF16 (fp32) as PEs; the headline pair (b* = the narrowest GSE-INT width as accurate\n"
      "as FP8, from fine-tuning the embedded stories260K model on a real text unless --no-finetune;\n"
      "and FP8 E4M3) also as 2x2 arrays, and GSE-INT b* with an fp32\n"
      "accumulator (iso-accumulator comparison); plain INT-b MAC and bare-MAC baselines (the 1.15x\n"
      "amortisation check at 8x8 with --amortisation-array 8x8); vectorless power (--headline-activity gate\n"
      "adds gate-level activity for the headline PE pair); OSU 0.18um;\n"
      "30 ns clock; the built-in tiny LoRA trace set. Results go to OUT/results.sqlite (committed point by point: an\n"
      "interrupted sweep resumes where it stopped), OUT/results.csv, OUT/results.json, OUT/report.md,\n"
      "OUT/report.html and OUT/plots/.");
  app.add_option("--formats", args->formats,
                 "format specs; 'gse' expands over --bits (default: gse fp8:e4m3 fp8:e5m2 int8 bf16)");
  app.add_option("--designs", args->designs,
                 "explicit design points or baselines (replaces the grid), e.g. gse:b=4@pe baseline:bare,b=4,w=32");
  app.add_option("--bits", args->bits, "GSE-INT element widths: A..B or a,b,c (default 3..8)");
  app.add_option("--array", args->arrays, "array shapes RxC; 'none' for PE level only (default 2x2: a 4x4 array costs minutes per point)");
  app.add_flag("--no-pe", args->no_pe, "skip the PE-level points");
  app.add_flag("--no-iso-acc", args->no_iso, "skip the GSE fp32-accumulator PE points");
  app.add_flag("--no-baselines", args->no_baselines, "skip the INT-b MAC and bare-MAC baselines");
  app.add_flag("--all-iso-acc", args->all_iso, "GSE fp32-accumulator PEs for every width (default: headline width)");
  app.add_option("--amortisation-array", args->amortisation_array,
                 "shape RxC of the 1.15x amortisation check: GSE-INT b* as a shared-column array and the plain "
                 "INT-b arrays (fixed32.0, fixed32.16), area only, e.g. 8x8 (three points of minutes each); default none");
  app.add_flag("--array-all-formats", args->array_all,
               "every format at array level (default: the headline pair GSE-INT b* and FP8 E4M3)");
  add_synthesis_options(app, args->synthesis);
  app.add_option("--finetune-results", args->finetune_results,
                 "results.json of `gsqhw finetune` with fp8 and GSE-INT runs: b* is the smallest GSE-INT width whose "
                 "validation loss is no worse than FP8's (default: the sweep fine-tunes itself, see --no-finetune)");
  app.add_flag("--no-finetune", args->no_finetune,
               "choose b* by trace SQNR instead of fine-tuning (labelled synthetic without --trace). Default: the "
               "sweep fine-tunes the embedded stories260K model on " + std::string(synth::kDefaultFinetuneText) +
                   " in FP32, FP8 and GSE-INT 4..8 (cached and resumable, docs/training.md)");
  app.add_option("--finetune-data", args->finetune.data,
                 "text the sweep fine-tunes on (default " + std::string(synth::kDefaultFinetuneText) + ", Debian " +
                     synth::kDefaultFinetuneTextPackage + ")");
  app.add_option("--finetune-checkpoint", args->finetune.checkpoint,
                 "model the sweep fine-tunes (with --finetune-tokenizer; default: the embedded stories260K)");
  app.add_option("--finetune-tokenizer", args->finetune.tokenizer, "tokenizer of --finetune-checkpoint");
  app.add_option("--finetune-steps", args->finetune.steps, "training steps per fine-tuning run")->capture_default_str();
  app.add_option("--finetune-seeds", args->finetune.seeds, "seeds of the FP8 and GSE-INT runs")->capture_default_str();
  app.add_option("--finetune-fp32-seeds", args->finetune.fp32_seeds,
                 "seeds of the FP32 runs (their spread decides ties)")->capture_default_str();
  app.add_option("--trace", args->traces, "trace files/folders (default: built-in tiny LoRA set in each design's format)");
  app.add_option("--activity", args->activity, "workload power of every point but the headline PE pair from: none (default: vectorless only), rtl (RTL simulation, ports and registers: overstates datapath power, not quoted by the report; a second Verilator build per point), gate (gate-level simulation of the netlist, every net; minutes per point)");
  app.add_option("--headline-activity", args->headline_activity,
                 "workload power of the headline PE pair (GSE-INT b* and FP8 E4M3): none (default: vectorless), gate "
                 "(the only activity source the report quotes; two gate-level Verilator builds, minutes each), rtl, "
                 "or same (as --activity)");
  app.add_option("--activity-traces", args->activity_traces, "traces simulated for activity (default 2)");
  app.add_option("--jobs", args->jobs, "points evaluated in parallel (default 2)");
  app.add_flag("--retry-errors", args->retry_errors, "re-evaluate stored points that ended in an error");
  app.add_option("--max-file-size", args->max_file_mb,
                 "largest file (MB) a point may write (RLIMIT_FSIZE); a point past it fails alone with a "
                 "disk-full error (default: no limit)");
  app.add_option("--out", args->out, "output folder (default out/sweep)");
  app.add_option("--cache", args->cache, "cache folder (default $GSQHW_CACHE or ~/.cache/gsqhw)");
  app.add_flag("--no-report", args->no_report, "do not write the report");
  app.add_flag("--quiet", args->quiet, "no progress bar");
  app.add_option("--executor", args->executor,
                 "where points run: local (worker processes on this machine, default) or slurm (one job array, "
                 "one task per point; --out must be on storage the nodes share; docs/cluster.md)");
  app.add_option("--partition", args->partition, "slurm: the partition (default: the cluster's default)");
  app.add_option("--max-parallel", args->max_parallel, "slurm: at most N tasks of the array at once (default: no limit)");
  app.add_option("--time", args->time, "slurm: time limit per point (sbatch --time, e.g. 2:00:00)");
  app.add_option("--mem", args->mem, "slurm: memory per point (sbatch --mem, e.g. 4G)");
  app.add_option("--sbatch-arg", args->sbatch_args, "slurm: a further sbatch argument (repeatable), e.g. --sbatch-arg=--account=eda")
      ->allow_extra_args(false);
  app.add_flag("--detach", args->detach, "slurm: submit and return; --attach DIR follows the job later");
  app.add_flag("--collect", args->collect,
               "slurm: merge the results that have arrived and record tasks that ended without one; submit "
               "nothing, wait for nothing (the report is written once every point is in)");
  app.add_option("--attach", args->attach,
                 "slurm: follow the sweep in output folder DIR again (runs its saved command; with --collect, "
                 "one look); points already done are never resubmitted");
  app.add_option("--poll", args->poll, "slurm: seconds between looks at the queue (default 5)");
  app.add_option("--task-cache", args->task_cache,
                 "slurm: cache folder the tasks use instead of --cache, e.g. node-local disk (docs/cluster.md)");
  app.add_flag("--scale", args->scale,
               "instead of the grid: the scale sweep (synth/scale.h) of whole n x n arrays composed from their module "
               "kinds (GSE-INT b* shared-column and per-PE, FP8 E4M3/E5M2 fp32, FP8 E4M3 fixed49.18, FP8 E4M3 shared-column fp32 and fixed49.18, INT-b*, BF16) on "
               "the chosen library; resumable rows in OUT/scale.jsonl, report OUT/scale.md (default OUT out/scale). "
               "Takes long (hours for all sizes on three libraries)");
  app.add_option("--scale-sizes", args->scale_sizes, "array sizes n of the scale sweep (default 2 4 8 16 32 64)");
  app.add_option("--scale-only", args->scale_only, "family labels to run, e.g. 'FP8 E4M3 fp32' (default all)");
  app.add_option("--scale-bits", args->scale_bits, "GSE-INT / INT width of the scale sweep (default b*)");
  app.add_option("--energy", args->scale_energy,
                 "--scale: vectorless (default), or gate: also energy per MAC from gate-level activity of each module kind, "
                 "measured on a small array driven by --energy-trace and composed by instance count and duty (own table)")
      ->check(CLI::IsMember({"vectorless", "gate"}));
  app.add_option("--energy-trace", args->energy_traces,
                 "--energy gate: trace folders or files; each family takes the first whose format fits it (real traces from "
                 "`gsqhw trace --checkpoint ...`; default the built-in tiny LoRA set, synthetic)");
  app.add_option("--energy-activity-traces", args->energy_activity_traces,
                 "--energy gate: the first N traces are simulated (default 2)")
      ->check(CLI::PositiveNumber);
  app.add_option("--energy-measure-size", args->energy_measure_size,
                 "--energy gate: the n x n array whose kinds are simulated (default 4: holds every kind of larger arrays)")
      ->check(CLI::Range(2, 8));
  app.add_flag("--scale-fixed-pipe", args->scale_fixed_pipe, "pipe 1 for every design (no search for a depth meeting the clock)");
  app.add_flag("--json", args->json, "print the summary as JSON (progress stays on stderr)");
  app.add_flag("--scale-report", args->scale_report,
               "only (re)write OUT/scale.md, scale.csv and the plots from the rows in OUT/scale.jsonl (every library run into OUT)");
  return [args, config]() -> int {
    config->apply();
    if (!args->attach.empty()) reattach(args->attach, args->collect);
    if (args->scale_report) {
      const std::filesystem::path out = args->out == "out/sweep" ? "out/scale" : args->out;
      if (!std::filesystem::exists(out / "scale.jsonl"))
        throw UsageError(fmt::format("{} has no scale.jsonl (run gsqhw sweep --scale --out {} first)", out.string(), out.string()));
      fmt::print("scale report: {}\n", synth::write_scale_report(out).string());
      return 0;
    }
    if (args->scale) {
      synth::ScaleOptions scale;
      scale.library = library_choice(args->synthesis);
      scale.clock_ns = args->synthesis.clock_ns;
      scale.input_activity = args->synthesis.input_activity;
      scale.sizes = args->scale_sizes;
      scale.only = args->scale_only;
      if (args->scale_bits != 0 && (args->scale_bits < 2 || args->scale_bits > 8))
        throw UsageError("--scale-bits must be within 2..8");
      scale.gse_bits = args->scale_bits;
      scale.choose_pipe = !args->scale_fixed_pipe;
      scale.out_dir = args->out == "out/sweep" ? "out/scale" : args->out;
      scale.cache_dir = args->cache;
      scale.progress = !args->quiet;
      scale.energy = args->scale_energy;
      scale.energy_traces.assign(args->energy_traces.begin(), args->energy_traces.end());
      scale.energy_activity_traces = args->energy_activity_traces;
      scale.energy_measure_size = args->energy_measure_size;
      synth::ScaleSummary s = synth::run_scale_sweep(scale);
      if (args->json) {
        const nlohmann::json j = {{"rows", s.rows},       {"reused", s.reused},   {"composed", s.composed},
                                  {"failed", s.failed},   {"seconds", s.seconds}, {"jsonl", s.jsonl.string()},
                                  {"report", s.report.string()}};
        fmt::print("{}\n", j.dump(2));
        return s.failed > 0 ? 1 : 0;
      }
      fmt::print("scale sweep: {} rows ({} reused, {} composed, {} failed) in {:.1f} s; rows {}, report {}\n", s.rows,
                 s.reused, s.composed, s.failed, s.seconds, s.jsonl.string(), s.report.string());
      return s.failed > 0 ? 1 : 0;
    }
    synth::SweepOptions options;
    options.grid.formats = args->formats;
    options.grid.designs = args->designs;
    options.grid.bits = synth::parse_bit_range(args->bits);
    if (!args->no_pe) options.grid.levels.push_back("pe");
    for (const auto& shape : args->arrays)
      if (shape != "none") options.grid.levels.push_back("array" + shape);
    if (options.grid.levels.empty()) throw UsageError("--no-pe with --array none leaves nothing to sweep");
    options.grid.iso_accumulator = !args->no_iso;
    options.grid.baselines = !args->no_baselines;
    options.grid.all_iso = args->all_iso;
    options.grid.array_all_formats = args->array_all;
    if (args->amortisation_array != "none") {
      DesignPoint::parse("int8@array" + args->amortisation_array);  // UsageError names a bad shape
      options.grid.amortisation_array = args->amortisation_array;
    } else {
      options.grid.amortisation_array.clear();
    }
    options.library = library_choice(args->synthesis);
    options.clock_ns = args->synthesis.clock_ns;
    options.input_activity = args->synthesis.input_activity;
    for (const auto& t : args->traces) options.traces.push_back(t);
    options.finetune_results = args->finetune_results;
    options.finetune = args->finetune;
    options.finetune.enabled = !args->no_finetune;
    if (args->no_finetune && !args->finetune_results.empty())
      throw UsageError("--no-finetune and --finetune-results exclude each other");
    if (args->finetune.steps < 1 || args->finetune.seeds < 1 || args->finetune.fp32_seeds < 1)
      throw UsageError("--finetune-steps, --finetune-seeds and --finetune-fp32-seeds must be at least 1");
    if (args->activity != "gate" && args->activity != "rtl" && args->activity != "none")
      throw UsageError(fmt::format("--activity '{}' is not one of gate, rtl, none", args->activity));
    options.activity = args->activity;
    if (args->headline_activity != "gate" && args->headline_activity != "rtl" &&
        args->headline_activity != "none" && args->headline_activity != "same")
      throw UsageError(fmt::format("--headline-activity '{}' is not one of gate, rtl, none, same",
                                   args->headline_activity));
    options.headline_activity = args->headline_activity == "same" ? "" : args->headline_activity;
    if (args->activity_traces < 1) throw UsageError("--activity-traces must be at least 1");
    options.activity_traces = args->activity_traces;
    options.jobs = args->jobs;
    options.retry_errors = args->retry_errors;
    if (args->max_file_mb < 0) throw UsageError("--max-file-size must not be negative");
    options.max_file_bytes = static_cast<uint64_t>(args->max_file_mb * 1024 * 1024);
    options.out_dir = args->out;
    options.cache_dir = args->cache;
    options.report = !args->no_report;
    options.progress = !args->quiet;
    if (args->executor != "local" && args->executor != "slurm")
      throw UsageError(fmt::format("--executor '{}' is not one of local, slurm", args->executor));
    options.executor = args->executor;
    const bool slurm_options = !args->partition.empty() || args->max_parallel != 0 || !args->time.empty() ||
                               !args->mem.empty() || !args->sbatch_args.empty() || args->detach || args->collect ||
                               !args->task_cache.empty();
    if (slurm_options && options.executor != "slurm")
      throw UsageError("--partition, --max-parallel, --time, --mem, --sbatch-arg, --detach, --collect and "
                       "--task-cache need --executor slurm");
    if (args->max_parallel < 0) throw UsageError("--max-parallel must not be negative");
    if (!(args->poll > 0) || args->poll > 3600) throw UsageError("--poll must be within 0..3600 seconds");
    if (args->detach && args->collect) throw UsageError("--detach and --collect exclude each other");
    options.slurm.submit.partition = args->partition;
    options.slurm.submit.max_parallel = args->max_parallel;
    options.slurm.submit.time = args->time;
    options.slurm.submit.mem = args->mem;
    options.slurm.submit.extra = args->sbatch_args;
    options.slurm.detach = args->detach;
    options.slurm.collect = args->collect;
    options.slurm.poll_seconds = args->poll;
    options.slurm.result_grace_seconds = std::max(3 * args->poll, 2.0);
    options.slurm.task_cache = args->task_cache;

    // The resolved configuration beside the results: `--config OUT/sweep.toml` repeats the run.
    const std::filesystem::path resolved = options.out_dir / "sweep.toml";
    std::filesystem::create_directories(options.out_dir);
    write_file_atomically(resolved, config->resolved(fmt::format(
                                        "gsqhw sweep {}: the resolved options of the run in this "
                                        "folder.\nRepeat it: gsqhw sweep --config {}",
                                        GSQHW_VERSION, resolved.string())));

    synth::SweepSummary summary = synth::run_sweep(options);
    if (args->json) {
      fmt::print("{}\n", summary_json(summary, resolved).dump(2));
      return summary.interrupted ? 130 : 0;
    }
    fmt::print("sweep: resolved options in {}\n", resolved.string());
    fmt::print("sweep: {} points: {} reused from {}, {} evaluated ({} ok, {} failed) in {:.1f} s\n", summary.points,
               summary.reused, summary.db.string(), summary.evaluated, summary.ok, summary.failed, summary.seconds);
    fmt::print("sweep: results {} and {}\n", summary.csv.string(), summary.json.string());
    if (!summary.report.empty()) fmt::print("sweep: report {}\n", summary.report.string());
    if (options.executor == "slurm" && summary.detached) {
      std::string jobs;
      for (const auto& j : summary.slurm_jobs) jobs += (jobs.empty() ? "" : ",") + j;
      fmt::print("sweep: {} points still queued or running in Slurm job {}; `gsqhw sweep --attach {}` follows "
                 "them (--collect: one look); the report is written once every point is in\n",
                 summary.in_flight, jobs.empty() ? "-" : jobs, options.out_dir.string());
      if (summary.not_submitted > 0)
        fmt::print("sweep: {} points have no task yet; run the sweep command (or --attach {}) to submit them\n",
                   summary.not_submitted, options.out_dir.string());
      return summary.interrupted ? 130 : 0;
    }
    if (summary.interrupted) {
      fmt::print(stderr, "sweep: interrupted; finished points are stored, run the same command again to resume\n");
      return 130;
    }
    if (summary.failed > 0)
      fmt::print(stderr, "sweep: {} points failed (marked in the report); --retry-errors re-runs errored ones\n",
                 summary.failed);
    return 0;
  };
}

GSQHW_COMMAND("sweep", "Bit-width sweep: co-simulation, synthesis, timing, power, report (resumable)", setup);

}  // namespace
}  // namespace gsqhw::cli
