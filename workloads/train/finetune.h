// LoRA fine-tuning runs: one run per run spec (run_spec.h) plus the FP32 baseline, each
// resumable, with training and validation losses, per-GEMM accumulator under/overflow counts,
// adapters saved in PEFT's layout, and the iso-accuracy verdict across formats.
//
// Layout of the output folder:
//   runs/<run>/state.safetensors   LoRA masters + AdamW moments + history (JSON metadata),
//                                  written atomically every --save-every steps and at the end
//   runs/<run>/adapter/            adapter_model.safetensors + adapter_config.json (PEFT names)
//   losses.csv                     run,seed,step,split,loss,perplexity,loss_scale
//   results.json                   settings, per-run summary, GEMM counters, verdict
//   summary.md                     the final table
// A killed run restarts from its last saved step; batches and stochastic-rounding seeds are
// functions of (seed, step), so the resumed run computes exactly what the uninterrupted one would.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "workloads/train/llama.h"
#include "workloads/train/run_spec.h"

namespace gsqhw::train {

struct FinetuneOptions {
  std::filesystem::path checkpoint, tokenizer, data, out;
  std::vector<std::string> formats;  // run specs; "fp32" is added first when missing
  std::string acc = "natural";  // or fixedW.F / fp32 (run_spec.h)
  std::string storage = "nf4:block=64";
  std::string targets = "q,v";
  int64_t rank = 8;
  double alpha = 16;
  int64_t steps = 50, batch = 8, seq = 64;
  double lr = 1e-3, weight_decay = 0;
  uint64_t seed = 1;
  int64_t fp32_seeds = 1;  // FP32 runs with seeds seed, seed+1, ...: their spread decides ties
  // Every run spec (not only FP32) runs with seeds seed .. seed+seeds-1; verdicts compare the
  // mean over seeds, and each format's own spread is reported. FP32 runs max(fp32_seeds, seeds).
  int64_t seeds = 1;
  // The bits x rank grid (`--grid bits=4..8,rank=2,4,8,16`, parse_grid): GSE-INT b=B runs at
  // every rank, and every --formats spec at every grid rank; empty: no grid.
  std::string grid;
  int64_t eval_every = 10, eval_windows = 16, save_every = 10;
  double val_fraction = 0.1;
  std::string loss_scale = "1";  // "1" (off), a fixed power of two, or "dynamic"
  // "adamw" (LoRA masters, the paper's setting) or "tsignsgd[:n=4,g=64,omega=W,fraction=F]":
  // LoTA-QAF's ternary adapters on the targets, trained with t-SignSGD (lota_train.h)
  std::string optimizer = "adamw";
  bool quantize_attention = false;  // attention score/value products through the engine too
  int threads = 0;
  int64_t stop_after = 0;  // > 0: stop (as if killed) after this many steps in this invocation (tests)
  // Run only the run whose folder name (runs/<name>) this is, and write no summary files: one
  // task of a Slurm job array (`gsqhw finetune --executor slurm`, docs/cluster.md).
  std::string only_run;
  // Train nothing: summarize the saved states (results.json, losses.csv, summary.md); runs not
  // at --steps stay incomplete. The Slurm controller's first and last step.
  bool no_training = false;
};

// A parsed --grid: GSE-INT widths and LoRA ranks (either may be empty: that axis stays at
// --formats / --rank).
struct GridSpec {
  std::vector<int> bits;
  std::vector<int64_t> ranks;
};
// "bits=4..8,rank=2,4,8,16" (keys bits and rank, in any order; a value list runs on until the next
// KEY=; bits as A..B or a list within 2..8). Throws UsageError naming the bad part.
GridSpec parse_grid(const std::string& text);

// One run spec at one rank, over its seeds: the unit verdicts and the memory/loss plot use.
struct RunGroup {
  std::string label;  // run label plus " r=R" when R is not --rank
  std::string run;    // run spec as given
  int64_t rank = 0;
  std::vector<double> val_losses;  // final validation loss per complete seed
  double mean = 0, spread = 0;     // over seeds (spread = max - min; 0 for one seed)
  double memory_bytes = 0;         // per step, `gsqhw memory`'s model (workloads/memory_model.h)
  bool pareto = false;             // on the frontier of (memory, mean validation loss)
};

// Marks the groups no other group beats in both memory and mean validation loss (one of them
// strictly): the Pareto frontier of the grid plot.
void mark_pareto(std::vector<RunGroup>& groups);

struct RunSummary {
  std::string label, dir;
  uint64_t seed = 0;
  int64_t steps = 0;
  double final_val_loss = 0, final_train_loss = 0;
  double tokens_per_s = 0;
  int64_t skipped_steps = 0;
  nlohmann::json counters;  // per GEMM kind
  bool complete = false;
};

struct FinetuneResult {
  std::vector<RunSummary> runs;
  std::vector<RunGroup> groups;  // per run spec and rank, in run order
  nlohmann::json json;      // what results.json holds
  std::string table;        // the final table (markdown)
  bool complete = false;    // every run reached --steps
};

// Progress callback: (run index, run count, run label, step done, steps, last train loss).
using Progress = std::function<void(size_t, size_t, const std::string&, int64_t, int64_t, double)>;

// Runs (or resumes) every run. Throws UsageError for bad options or input (exit 2), and
// TrainingDiverged (a UsageError) when a loss turns NaN/Inf: it names the step and the first
// GEMM with a non-finite output, after saving the last good state.
FinetuneResult finetune(const FinetuneOptions& options, const Progress& progress = {});

// The folder names (runs/<name>) of the runs `options` asks for, in run order; UsageError for
// bad run specs.
std::vector<std::string> finetune_run_names(const FinetuneOptions& options);

// The adapter of a fine-tuning run as it was after `step` steps: runs/<run>/states/step-N
// (every saved step is kept), or for step 0 the run's seeded initialisation. `run_dir` is
// OUT/runs/<run> or its adapter/ folder. `source` says in words where it came from, `settings`
// are the run's settings. Throws UsageError when the folder is no run, or the step was not saved
// (the message lists the saved steps).
struct RunStateAdapters {
  LoraWeights lora;
  int64_t step = 0;
  nlohmann::json settings;
  std::string source;
};
RunStateAdapters load_run_state_adapters(const std::filesystem::path& run_dir, int64_t step,
                                         const LlamaConfig& model);

// The iso-accuracy choice from a results.json: the smallest GSE-INT width b whose final
// validation loss (mean over its seeds) is no worse than the FP8 run's mean (ties within the FP32
// seed-to-seed spread); runs at --rank only (grid ranks are not compared).
// {"b_star": b or null, "fp8_val_loss", "fp8_spread", "fp8_seeds", "spread",
//  "candidates": [{"b", "val_loss", "spread", "seeds"}], "source": "..."}.
nlohmann::json iso_accuracy(const nlohmann::json& results);

}  // namespace gsqhw::train
