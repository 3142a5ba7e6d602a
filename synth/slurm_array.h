// Command lines run as one Slurm job array and followed to the end: the executor of
// `gsqhw finetune --executor slurm` (one task per fine-tuning run; docs/cluster.md). The sweep
// has its own, richer executor (synth/sweep_slurm.cpp: result files merged as they arrive).
//
// State in `state_dir` (on storage the nodes share): job.json names the job array and its
// tasks, so a controller killed while the job runs follows the same job when started again
// instead of submitting it twice; tasks.json holds each task's final Slurm state.
#pragma once

#include <atomic>
#include <filesystem>
#include <string>
#include <vector>

#include "synth/slurm.h"

namespace gsqhw::synth {

struct ArrayTask {
  std::string name;               // e.g. the fine-tuning run's folder name
  std::vector<std::string> argv;  // what the task runs (argv[0] an absolute path)
  slurm::TaskState final;         // filled in by run_job_array
};

// Submits `tasks` as one job array (or follows the live job an earlier controller left in
// state_dir with the same task names), draws progress on stderr, waits until no task is queued
// or running, and fills in each task's final state (scontrol, sacct or the job-completion log;
// state UNKNOWN when none knows). Returns false when interrupted (the job keeps running).
bool run_job_array(std::vector<ArrayTask>& tasks, const std::filesystem::path& state_dir,
                   const slurm::SubmitOptions& submit, double poll_seconds, bool progress,
                   const std::atomic<bool>* interrupted);

}  // namespace gsqhw::synth
