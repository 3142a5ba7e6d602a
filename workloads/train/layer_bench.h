// Speed benchmark of the training engine on one decoder layer: a LLaMA-shaped layer (e.g.
// LLaMA-7B's d = 4096, hidden 11008, 32 heads) with synthetic random weights, forward and
// backward over `tokens` tokens through each run's engine (FP32 BLAS, emulated BF16 or QCD with
// the golden GEMM), timed, with the peak memory of each run.
//
// Each run is measured in a child process of its own (fork), so that its peak resident set
// (getrusage ru_maxrss of the child, reported by wait4) belongs to that run alone and the runs
// sit side by side in one invocation. The model is one decoder layer plus an embedding and
// classifier over a small synthetic vocabulary (`vocab`, default 256: a negligible share of
// the work), batch 1 x `tokens`.
#pragma once

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "workloads/models.h"

namespace gsqhw::train {

struct LayerBenchOptions {
  ModelShape shape;          // n_layers is forced to 1, vocab_size to `vocab`
  int64_t tokens = 512;      // one sequence of this many tokens
  int64_t vocab = 256;
  std::string targets = "q,v";
  int64_t rank = 8;
  double alpha = 16;
  std::string storage = "nf4:block=64";  // how the frozen base weights are stored
  std::string acc = "natural";
  int64_t steps = 2;         // training steps timed one by one (the first one also quantizes
                             // the frozen weights for the QCD engine, once per run)
  int threads = 1;           // golden GEMM threads
  uint64_t seed = 1;
};

// "llama-7b" (any built-in model name) or "dim=D,hidden=H,heads=N[,kv_heads=K]".
// Throws UsageError for an unknown name or a bad shape.
ModelShape parse_bench_shape(const std::string& text);

// One run's figures: {"run", "engine", "setup_seconds", "setup_peak_rss_mib", "step_seconds":
// [...] (wall), "step_cpu_seconds": [...] (the process's CPU time, what a loaded machine
// distorts least), "linear_macs_per_step", "loss"}; bench_layer adds "peak_rss_mib" and
// "cpu_seconds" (the child's whole CPU time).
nlohmann::json bench_layer_run(const LayerBenchOptions& options, const std::string& run_spec);

// Runs every spec in a child process of its own and returns the list of their JSON figures.
// Throws UsageError for bad options (checked before any child starts) and std::runtime_error
// when a child fails.
// `done` (optional) sees each run's figures as soon as it has finished.
std::vector<nlohmann::json> bench_layer(const LayerBenchOptions& options, const std::vector<std::string>& run_specs,
                                        const std::function<void(const nlohmann::json&)>& done = {});

}  // namespace gsqhw::train
