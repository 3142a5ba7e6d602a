// The sweep's iso-accuracy from fine-tuning (issue #13): by default `gsqhw sweep` fine-tunes a
// real model (the embedded stories260K, workloads/train/embedded_model.h) on a real text (Debian
// fortunes-min's literature quotations) in FP32 (several seeds, for the tie spread), FP8 (E4M3
// forward, E5M2 gradients) and GSE-INT b for every swept width >= 4, and b* is the smallest
// width whose validation loss is no worse than FP8's. The runs live in a cache folder keyed by
// every input (model, tokenizer and text content, settings): a later sweep reuses them, and a
// killed one resumes them at their last saved step.
#pragma once

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <vector>

namespace gsqhw::synth {

// The text the default fine-tuning reads, and the Debian package that ships it.
inline constexpr const char* kDefaultFinetuneText = "/usr/share/games/fortunes/literature";
inline constexpr const char* kDefaultFinetuneTextPackage = "fortunes-min";

struct SweepFinetuneOptions {
  bool enabled = true;  // false: --no-finetune (b* from trace SQNR, labelled synthetic)
  std::filesystem::path checkpoint, tokenizer;  // empty: the embedded stories260K
  std::filesystem::path data;                   // empty: kDefaultFinetuneText
  // 40 steps of 8 x 64 tokens: long enough for the widths to separate (GSE-INT4 +0.35, GSE-INT5
  // +0.09, GSE-INT6 within the spread of FP8 on fortunes' literature, docs/training.md), short
  // enough for the sweep's budget (about 1.5 CPU-minutes in all).
  int64_t steps = 40, batch = 8, seq = 64;
  int64_t seeds = 2;        // every format's seeds (FP8 and GSE-INT compare means)
  int64_t fp32_seeds = 3;   // FP32 seeds: their spread decides ties
  int64_t eval_windows = 32;  // validation windows of seq tokens
  int64_t rank = 8;
  double alpha = 16, lr = 3e-3;
  std::string targets = "q,v";
  std::string loss_scale = "dynamic";
  int threads = 0;
  // Runs trained at the same time (each run is one thread; results do not depend on it).
  int parallel_runs = 2;
};

// The GSE-INT widths the sweep fine-tunes among `bits` (>= 4, ascending): b* is one of them.
std::vector<int> finetune_widths(const std::vector<int>& bits);

// Where the fine-tuning's status lines go: empty: stderr, each on its own line.
using FinetuneStatus = std::function<void(const std::string&)>;

// Thrown out of sweep_finetune_iso_accuracy when `cancel` was set (Ctrl-C); the runs keep what
// they saved (every 5 steps) and a later sweep resumes them.
struct FinetuneInterrupted : std::runtime_error {
  FinetuneInterrupted() : std::runtime_error("fine-tuning interrupted") {}
};

// Runs (or reuses, or resumes) the fine-tuning for `bits` (widths < 4 are not fine-tuned) under
// cache_dir/finetune/<key>/ and returns the iso-accuracy record the sweep and its report use:
// train::iso_accuracy's fields plus "source": "fine-tuning", "run_by": "sweep", "file" (its
// results.json), "model", "text", "steps", "seconds" (training time), "reused". When no width
// reaches FP8, "b_star" is the widest fine-tuned one and "note" says so. Throws UsageError (exit
// 2) when the text or model is missing or unreadable, naming the package or option to fix it.
// With `progress`, status lines every 10 s go to `status` (or stderr). A set `cancel` stops the
// runs at their next step (FinetuneInterrupted).
nlohmann::json sweep_finetune_iso_accuracy(const SweepFinetuneOptions& options, const std::vector<int>& bits,
                                           const std::filesystem::path& cache_dir, bool progress,
                                           const FinetuneStatus& status = {},
                                           const std::atomic<bool>* cancel = nullptr);

// Real traces for the trace-SQNR choice beside b*: the eight LoRA GEMMs of all seven projections
// of layer 2 of the same model, with X and dY recorded from an FP32 step on the first validation
// window (64 tokens) of the same text (workloads/train/capture.h). dY is the gradient of the mean
// loss times 4096, the loss scale the fine-tuning runs start with, as the hardware sees it; the
// label says so. Written once to cache_dir/finetune-traces/<key>/. `label` describes them.
std::vector<std::filesystem::path> sweep_real_traces(const SweepFinetuneOptions& options,
                                                     const std::filesystem::path& cache_dir, std::string& label);

}  // namespace gsqhw::synth
