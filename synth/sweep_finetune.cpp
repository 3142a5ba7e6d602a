// b* from a fine-tuning run the sweep starts itself (synth/sweep_finetune.h).
#include "synth/sweep_finetune.h"

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <mutex>
#include <thread>

#include "base/errors.h"
#include "workloads/checkpoint.h"
#include "workloads/lora.h"
#include "workloads/trace.h"
#include "workloads/train/capture.h"
#include "workloads/train/embedded_model.h"
#include "workloads/train/finetune.h"

namespace gsqhw::synth {
namespace fs = std::filesystem;

namespace {

// Everything the runs' results depend on; its hash names the cache folder.
nlohmann::json finetune_inputs(const train::FinetuneOptions& o) {
  return {{"checkpoint", train::file_content_hash(o.checkpoint)},
          {"tokenizer", train::file_content_hash(o.tokenizer)},
          {"data", train::file_content_hash(o.data)},
          {"searched", "fp8 then gse:b=B in ascending B"},
          {"steps", o.steps},
          {"batch", o.batch},
          {"seq", o.seq},
          {"seeds", o.seeds},
          {"fp32_seeds", o.fp32_seeds},
          {"eval_windows", o.eval_windows},
          {"eval_every", o.eval_every},
          {"rank", o.rank},
          {"alpha", o.alpha},
          {"lr", o.lr},
          {"targets", o.targets},
          {"storage", o.storage},
          {"acc", o.acc},
          {"loss_scale", o.loss_scale},
          {"seed", o.seed},
          {"engine", 1}};  // bump when the training engine's numbers change
}

std::string hash_hex(const std::string& s) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : s) h = (h ^ c) * 0x100000001b3ull;
  return fmt::format("{:016x}", h);
}

// The model and text of the fine-tuning: the given ones, or the embedded model and fortunes-min's
// text; UsageError naming the package or option when the text is missing.
struct Inputs {
  fs::path checkpoint, tokenizer, data;
};
Inputs resolve_inputs(const SweepFinetuneOptions& options, const fs::path& cache_dir) {
  Inputs in;
  if (options.checkpoint.empty() != options.tokenizer.empty())
    throw UsageError("--finetune-checkpoint and --finetune-tokenizer go together (default: the embedded stories260K)");
  if (options.checkpoint.empty()) {
    const train::EmbeddedModel m = train::embedded_model(cache_dir / "models");
    in.checkpoint = m.checkpoint;
    in.tokenizer = m.tokenizer;
  } else {
    in.checkpoint = options.checkpoint;
    in.tokenizer = options.tokenizer;
  }
  in.data = options.data.empty() ? fs::path(kDefaultFinetuneText) : options.data;
  if (!fs::is_regular_file(in.data)) {
    if (options.data.empty())
      throw UsageError(fmt::format(
          "the sweep fine-tunes on {} to choose b*, and it is missing: install the Debian package {} "
          "(apt-get install {}; scripts/setup.sh does), or give --finetune-data FILE (any UTF-8 text), "
          "--finetune-results FILE, or --no-finetune (b* from the SQNR of synthetic traces)",
          kDefaultFinetuneText, kDefaultFinetuneTextPackage, kDefaultFinetuneTextPackage));
    throw UsageError(fmt::format("--finetune-data {}: no such file", in.data.string()));
  }
  return in;
}

// The runs of `o`, `parallel` at a time, each its own train::finetune call on one run (as a
// Slurm task of `gsqhw finetune` runs it; runs are deterministic whatever runs beside them),
// then one call that trains nothing and summarizes them all. The runs of a search round are
// independent, and a single run is one thread: on two cores this halves the fine-tuning's wall
// time (and on a loaded machine gets it a fairer share).
train::FinetuneResult finetune_in_parallel(const train::FinetuneOptions& o, int parallel, const train::Progress& report) {
  const std::vector<std::string> names = train::finetune_run_names(o);
  std::atomic<size_t> next{0};
  std::mutex mutex;
  std::exception_ptr error;
  auto work = [&] {
    for (size_t i; (i = next.fetch_add(1)) < names.size();) {
      {
        std::lock_guard lock(mutex);
        if (error) return;
      }
      train::FinetuneOptions one = o;
      one.only_run = names[i];
      try {
        train::finetune(one, report);
      } catch (...) {
        std::lock_guard lock(mutex);
        if (!error) error = std::current_exception();
        return;
      }
    }
  };
  std::vector<std::thread> threads;
  for (size_t t = 0; t < std::min<size_t>(std::max(1, parallel), names.size()); ++t) threads.emplace_back(work);
  for (auto& t : threads) t.join();
  if (error) std::rethrow_exception(error);
  train::FinetuneOptions summary = o;
  summary.no_training = true;
  return train::finetune(summary);
}

}  // namespace

std::vector<fs::path> sweep_real_traces(const SweepFinetuneOptions& options, const fs::path& cache_dir,
                                        std::string& label) {
  const Inputs in = resolve_inputs(options, cache_dir);
  constexpr int64_t kLayer = 2, kTokens = 64;
  constexpr double kLossScale = 4096;
  const auto checkpoint = open_checkpoint(in.checkpoint);
  const int64_t layer = std::min<int64_t>(kLayer, checkpoint->shape().n_layers - 1);
  const nlohmann::json key = {{"checkpoint", train::file_content_hash(in.checkpoint)},
                              {"tokenizer", train::file_content_hash(in.tokenizer)},
                              {"data", train::file_content_hash(in.data)},
                              {"layer", layer},
                              {"tokens", kTokens},
                              {"loss_scale", kLossScale},
                              {"version", 1}};
  const fs::path dir = cache_dir / "finetune-traces" / hash_hex(key.dump());
  label = fmt::format("real ({} on {}: layer {}, all 7 projections, {} tokens, dY x {:.0f} loss scale)",
                      options.checkpoint.empty() ? "stories260K" : in.checkpoint.filename().string(),
                      in.data.filename().string(), layer, kTokens, kLossScale);
  if (!fs::exists(dir / "complete")) {
    LoraTraceRequest req;
    req.model = checkpoint->shape();
    req.checkpoint = checkpoint.get();
    req.layer = layer;
    req.tokens = kTokens;
    req.acc = AccumulatorSpec::parse("fixed32.16");
    const fs::path tmp = dir.string() + ".partial";
    fs::remove_all(tmp);
    for (Proj p : all_projections()) {
      train::CaptureRequest cr;
      cr.tokenizer = in.tokenizer;
      cr.data = in.data;
      cr.layer = layer;
      cr.proj = p;
      cr.tokens = kTokens;
      cr.storage = req.formats.storage;
      RealOperands real = train::capture_operands(*checkpoint, cr, req.rank, req.alpha);
      for (float& g : real.dy) g = static_cast<float>(g * kLossScale);
      real.dy_source += fmt::format(", times the loss scale {:.0f}", kLossScale);
      req.proj = p;
      req.real = &real;
      req.validate();
      generate_lora_traces(req, tmp);
    }
    std::ofstream(tmp / "complete") << key.dump(2) << "\n";
    fs::remove_all(dir);
    fs::rename(tmp, dir);
  }
  return list_traces(dir);
}

std::vector<int> finetune_widths(const std::vector<int>& bits) {
  std::vector<int> widths;
  for (int b : bits)
    if (b >= 4 && std::find(widths.begin(), widths.end(), b) == widths.end()) widths.push_back(b);
  std::sort(widths.begin(), widths.end());
  return widths;
}

nlohmann::json sweep_finetune_iso_accuracy(const SweepFinetuneOptions& options, const std::vector<int>& bits,
                                           const fs::path& cache_dir, bool progress, const FinetuneStatus& status,
                                           const std::atomic<bool>* cancel) {
  const std::vector<int> widths = finetune_widths(bits);
  if (widths.empty())
    throw UsageError("the sweep fine-tunes GSE-INT widths 4..8 to choose b*, and --bits has none of them; widen "
                     "--bits or give --no-finetune (b* from trace SQNR)");

  train::FinetuneOptions o;
  const Inputs in = resolve_inputs(options, cache_dir);
  o.checkpoint = in.checkpoint;
  o.tokenizer = in.tokenizer;
  o.data = in.data;
  o.formats = {"fp8"};
  o.steps = options.steps;
  o.batch = options.batch;
  o.seq = options.seq;
  o.seeds = options.seeds;
  o.fp32_seeds = options.fp32_seeds;
  o.eval_windows = options.eval_windows;
  o.eval_every = std::max<int64_t>(1, options.steps);
  o.save_every = 5;
  o.rank = options.rank;
  o.alpha = options.alpha;
  o.lr = options.lr;
  o.targets = options.targets;
  o.loss_scale = options.loss_scale;
  o.threads = options.threads;
  const nlohmann::json inputs = finetune_inputs(o);
  o.out = cache_dir / "finetune" / hash_hex(inputs.dump());

  // Widths in ascending order, each added to the same folder, until one is no worse than FP8:
  // that one is b*, and wider ones cannot change the choice. Runs already complete there (an
  // earlier sweep's) are reused as they are; a killed one resumes at its last saved step.
  fs::create_directories(o.out);
  std::ofstream(o.out / "inputs.json") << inputs.dump(2) << "\n";
  if (progress)
    std::fprintf(stderr,
                 "sweep: choosing b* by fine-tuning %s on %s: FP32 x%lld seeds, FP8 and GSE-INT %d, %d, ... (ascending "
                 "until one is as good as FP8) x%lld seeds, %lld steps of %lld x %lld tokens each (in %s; resumable)\n",
                 o.checkpoint.filename().c_str(), o.data.c_str(),
                 static_cast<long long>(std::max(o.fp32_seeds, o.seeds)), widths.front(),
                 widths.size() > 1 ? widths[1] : widths.front(), static_cast<long long>(o.seeds),
                 static_cast<long long>(o.steps), static_cast<long long>(o.batch), static_cast<long long>(o.seq),
                 o.out.c_str());
  const auto start = std::chrono::steady_clock::now();
  auto last = start - std::chrono::hours(1);
  bool trained = false;
  std::map<size_t, int64_t> first_step;  // per run index: the step it started this call at
  std::mutex report_mutex;  // the runs report from several threads
  auto report = [&](size_t run, size_t runs, const std::string& label, int64_t step, int64_t steps, double) {
    if (cancel && cancel->load()) throw FinetuneInterrupted();
    std::lock_guard lock(report_mutex);
    if (!first_step.count(run)) first_step[run] = step;
    if (step > first_step[run]) trained = true;
    const auto now = std::chrono::steady_clock::now();
    if (!progress || step == first_step[run]) return;
    if (status) {
      status(fmt::format("fine-tuning run {}/{} {} step {}/{}", run + 1, runs, label, step, steps));
      return;
    }
    if (now - last < std::chrono::seconds(10) && step != steps) return;
    last = now;
    std::fprintf(stderr, "sweep: fine-tuning run %zu/%zu %-24.24s step %lld/%lld  elapsed %.0fs\n", run + 1, runs,
                 label.c_str(), static_cast<long long>(step), static_cast<long long>(steps),
                 std::chrono::duration<double>(now - start).count());
  };
  nlohmann::json results;
  std::vector<int> searched;
  for (int b : widths) {
    o.formats.push_back(fmt::format("gse:b={}", b));
    searched.push_back(b);
    first_step.clear();
    const train::FinetuneResult r = finetune_in_parallel(o, options.parallel_runs, report);
    if (!r.complete)
      throw UsageError("the sweep's fine-tuning stopped before its last step; run the sweep again to resume it");
    results = r.json;
    if (train::iso_accuracy(results)["b_star"].is_number_integer()) break;
  }
  const bool reused = !trained;
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  nlohmann::json iso = train::iso_accuracy(results);
  iso["source"] = "fine-tuning";
  iso["run_by"] = "sweep";
  iso["file"] = (o.out / "results.json").string();
  iso["model"] = options.checkpoint.empty() ? std::string("stories260K (embedded, llama2.c tinyllamas)")
                                            : options.checkpoint.string();
  iso["text"] = o.data.string();
  iso["steps"] = o.steps;
  iso["tokens_per_step"] = o.batch * o.seq;
  iso["seeds"] = o.seeds;
  iso["reused"] = reused;
  iso["seconds"] = seconds;
  iso["searched"] = searched;
  double train_seconds = 0;  // the runs' own training time, also when reused
  for (const auto& run : results.value("runs", nlohmann::json::array()))
    if (run.value("tokens_per_s", 0.0) > 0)
      train_seconds += static_cast<double>(run.value("steps", 0) * o.batch * o.seq) / run["tokens_per_s"].get<double>();
  iso["train_seconds"] = train_seconds;
  if (iso["b_star"].is_null()) {
    iso["b_star"] = widths.back();
    iso["note"] = fmt::format("No GSE-INT width reached FP8's validation loss within the FP32 spread; the widest "
                              "fine-tuned width, {}, is compared", widths.back());
  } else if (searched.size() < widths.size()) {
    iso["note"] = fmt::format("Widths above b* = {} were not fine-tuned: they cannot change the choice",
                              iso["b_star"].get<int>());
  }
  return iso;
}

}  // namespace gsqhw::synth
