// A thin client of the Slurm command-line tools (sbatch, squeue, scontrol, sacct), as the
// sweep's Slurm executor (synth/sweep_slurm.h) uses them: submit one job array, list its live
// tasks, and find the final state of a task that has left the queue.
//
// Where final states come from, in this order:
//  1. `scontrol show job J_I`: slurmctld keeps an ended job for MinJobAge seconds (300 by
//     default); it gives the state, the reason and the exit code.
//  2. `sacct`: on a cluster with accounting (slurmdbd), the state of every job ever run, with
//     reason, exit code and node. Without slurmdbd it answers "accounting storage is disabled".
//  3. the job-completion log (JobCompType=jobcomp/filetxt, its JobCompLoc named by
//     `scontrol show config`): one line per ended job with state and exit code, kept forever.
// The commands read SLURM_CONF from the environment like any Slurm client.
#pragma once

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace gsqhw::synth::slurm {

// Resources of each task of a job array.
struct SubmitOptions {
  std::string partition;              // empty: the cluster's default partition
  int max_parallel = 0;               // at most this many tasks at once (%N); 0: no limit
  std::string time;                   // time limit per task (sbatch --time), empty: partition default
  std::string mem;                    // memory per task (sbatch --mem), empty: cluster default
  std::vector<std::string> extra;     // further sbatch arguments, passed as given
};

// What Slurm says about one array task.
struct TaskState {
  std::string state;      // PENDING, RUNNING, COMPLETED, FAILED, CANCELLED, TIMEOUT, NODE_FAIL, ...
  std::string reason;     // Slurm's reason field ("None" when it has none)
  std::string exit_code;  // "code:signal"
  std::string node;       // the node it ran on, when known
  std::string source;     // which command answered: squeue, scontrol, sacct, jobcomp
};

// True for the states a task leaves the queue in.
bool is_final_state(const std::string& state);

// Throws ToolMissing (naming the Debian package slurm-client) when sbatch is not on PATH.
void require_slurm_client();

// Submits `script` as an array of `count` tasks (indices 0..count-1) named `job_name`, each
// task's output in log_dir/%A_%a.out, working folder `cwd`; returns the job id. Throws
// std::runtime_error with sbatch's own message when it refuses.
std::string submit_array(const std::filesystem::path& script, int count, const std::string& job_name,
                         const std::filesystem::path& log_dir, const std::filesystem::path& cwd,
                         const SubmitOptions& options);

// The tasks of array job `job_id` still in the queue (pending or running), by array index.
// nullopt when squeue did not answer (slurmctld unreachable): the caller waits and asks again.
// A job slurmctld no longer knows has no live tasks (an empty map).
std::optional<std::map<int, TaskState>> live_tasks(const std::string& job_id);

// The final state of task `index` of `job_id` from scontrol, sacct or the job-completion log;
// nullopt when none of them knows it (yet).
std::optional<TaskState> final_state(const std::string& job_id, int index);

// The id of a job in the queue with this name, or "" (finds a job submitted by a controller
// that was killed before it could record the id).
std::string find_job_by_name(const std::string& job_name);

// "key=value key=value ..." (scontrol -o, the job-completion log) as a map.
std::map<std::string, std::string> parse_key_values(const std::string& line);

}  // namespace gsqhw::synth::slurm
