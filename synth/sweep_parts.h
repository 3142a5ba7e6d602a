// The pieces of a sweep (synth/sweep.h) its executors share: the plan (designs, keys), the
// worker command line of one point and its evaluation, the progress line, and the lock that
// keeps a second controller off an output folder. The local executor lives in sweep.cpp, the
// Slurm executor in sweep_slurm.cpp.
#pragma once

#include <atomic>
#include <chrono>
#include <filesystem>
#include <mutex>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "synth/liberty.h"
#include "synth/sweep.h"

namespace gsqhw::synth {

// What a sweep evaluates: one entry per design, in evaluation order.
struct SweepPlan {
  LibrarySet library;
  std::string tools;     // tool_versions().str(), part of every key
  std::string settings;  // the sweep's settings string, part of every key
  int headline_bits = 0;
  nlohmann::json iso_accuracy;  // which data decided headline_bits (goes into the sweep's arguments)
  std::vector<std::string> designs, activities, point_settings, keys, folders;
};

// Resolves the library and tools, picks the headline width and lists the points.
SweepPlan plan_sweep(const SweepOptions& options);

// Whether the sweep chooses b* by fine-tuning itself (the default; minutes when not cached).
bool sweep_fine_tunes(const SweepOptions& options);

// The same in two halves, so that points can run while the fine-tuning does: first the points
// whose design and settings are the same whatever width the fine-tuning chooses (every
// fine-tuned width planned as b*, the keys they all share; headline_bits 0, the trace-SQNR
// choice in iso_accuracy), then, after the fine-tuning, the whole plan for its b*.
SweepPlan plan_points_before_b_star(const SweepOptions& options);
SweepPlan finish_plan_after_finetuning(const SweepOptions& options, SweepPlan early, const FinetuneStatus& status,
                                       const std::atomic<bool>* cancel);

// The `gsqhw synth` command line that evaluates point `i` of the plan into out_dir/points/...
std::vector<std::string> worker_argv(const SweepOptions& options, const SweepPlan& plan, size_t i);

// Runs a worker command line (its result.json lands in `dir`) and returns the point's result
// object; a worker that dies or leaves no result gives {"status": "error", "error": ...}.
nlohmann::json evaluate_with_worker(const std::vector<std::string>& argv, const std::string& design,
                                    const std::filesystem::path& dir, uint64_t max_file_bytes,
                                    const std::atomic<bool>* cancel);

// The progress line both executors draw: a bar, done/total, running, failed, elapsed, ETA.
struct Progress {
  std::mutex mutex;
  int total = 0, done = 0, failed = 0, running_count = -1;  // running_count < 0: running.size()
  std::vector<std::string> running;
  std::string last, note;
  std::string unit = "points";  // what is counted: "points", "runs"
  std::chrono::steady_clock::time_point start = std::chrono::steady_clock::now();
};
void draw_progress(Progress& progress, bool final_line);

// An exclusive lock on out_dir/sweep.lock for the lifetime of the object (flock: released by
// the kernel when the holder dies, even by SIGKILL). UsageError naming the holder (pid, host)
// when another controller has it.
class SweepLock {
 public:
  explicit SweepLock(const std::filesystem::path& out_dir);
  ~SweepLock();
  SweepLock(const SweepLock&) = delete;
  SweepLock& operator=(const SweepLock&) = delete;

 private:
  int fd_ = -1;
};

// The Slurm executor (sweep_slurm.cpp): evaluates the points of `needed` (indices into the
// plan) as one Slurm job array, following tasks a killed controller left running; merges
// results into `db` and counts them in `summary`.
class ResultsDb;
void run_slurm_executor(const SweepOptions& options, const SweepPlan& plan, ResultsDb& db,
                        const std::vector<size_t>& needed, SweepSummary& summary,
                        const std::atomic<bool>& interrupted);

}  // namespace gsqhw::synth
