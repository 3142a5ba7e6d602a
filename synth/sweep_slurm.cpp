// The Slurm executor of the sweep (synth/sweep.h, docs/cluster.md): the controller submits the
// points as one job array, each task evaluates one point on a node, and the controller merges
// the tasks' result files into the results database as they arrive.
//
// Files under OUT/slurm/ (OUT must be on storage the nodes share):
//   submissions/NNNN.json  what one job array evaluates: task i -> point (design, key, worker
//                          command line), and the controller's tool versions the tasks check
//   submissions/NNNN.sh    its batch script (`gsqhw sweep-task` for $SLURM_ARRAY_TASK_ID)
//   submissions/NNNN.job   the job id sbatch returned
//   results/<hash>.json    one per point, written by its task through a temporary name + rename
//   logs/<job>_<task>.out  each task's output
//   command.json           the controller's command line, for `gsqhw sweep --attach OUT`
// The controller keeps nothing in memory that these files and squeue do not hold: a restarted
// controller (after Ctrl-C, --detach or SIGKILL) rebuilds its view from them, merges results
// that arrived meanwhile, and never resubmits a point whose task is still queued or running.
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <random>
#include <sstream>
#include <thread>

#include <fmt/format.h>

#include "base/errors.h"
#include "base/files.h"
#include "sim/verilator_build.h"
#include "synth/flow.h"
#include "synth/results_db.h"
#include "synth/slurm.h"
#include "synth/sweep.h"
#include "synth/sweep_parts.h"

namespace gsqhw::synth {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

std::string now_utc() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buffer[32];
  std::strftime(buffer, sizeof buffer, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buffer;
}

std::string host_name() {
  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  return host;
}

// The versions of the tools whose output goes into a result: a node with other versions would
// give numbers that are not comparable with the rest of the sweep.
json tool_set() {
  const ToolVersions& tools = tool_versions();
  return {{"yosys", tools.yosys}, {"sta", tools.sta}, {"verilator", verilator_version()}};
}

std::string key_hash(const std::string& key) {
  uint64_t hash = 1469598103934665603ull;
  for (unsigned char ch : key) hash = (hash ^ ch) * 1099511628211ull;
  return fmt::format("{:016x}", hash);
}

std::string shell_quote(const std::string& text) {
  std::string quoted = "'";
  for (char ch : text) quoted += ch == '\'' ? std::string("'\\''") : std::string(1, ch);
  return quoted + "'";
}

struct Paths {
  fs::path root, submissions, results, logs;
  explicit Paths(const fs::path& out_dir)
      : root(fs::absolute(out_dir) / "slurm"), submissions(root / "submissions"), results(root / "results"),
        logs(root / "logs") {
    for (const auto& dir : {submissions, results, logs}) fs::create_directories(dir);
  }
  fs::path result_file(const std::string& key) const { return results / (key_hash(key) + ".json"); }
};

// A task's result file: the point's result object and where it was computed.
struct ResultFile {
  std::string key, status, finished_at, task, node;
  json result;
};

std::optional<ResultFile> read_result_file(const fs::path& path) {
  if (!fs::exists(path)) return std::nullopt;
  json j = json::parse(read_file_if_present(path), nullptr, false);
  if (!j.is_object() || !j.contains("key") || !j.contains("result")) return std::nullopt;
  return ResultFile{j.value("key", ""), j.value("status", "error"), j.value("finished_at", ""),
                    j.value("task", ""), j.value("node", ""), j["result"]};
}

// One task of a job array: "job_index", as squeue and scontrol name it.
struct TaskRef {
  std::string job_id;
  int index = 0;
  std::string name() const { return fmt::format("{}_{}", job_id, index); }
};

struct Submission {
  int seq = 0;
  std::string job_name, job_id;
  std::vector<std::string> keys;  // array index -> point key
};

// Every earlier submission of this output folder, oldest first. A submission without a
// recorded job id (the controller died between sbatch and writing it) is looked up in the
// queue by its job name.
std::vector<Submission> load_submissions(const Paths& paths) {
  std::vector<Submission> subs;
  for (const auto& entry : fs::directory_iterator(paths.submissions)) {
    if (entry.path().extension() != ".json") continue;
    json j = json::parse(read_file_if_present(entry.path()), nullptr, false);
    if (!j.is_object()) continue;
    Submission s;
    s.seq = j.value("seq", 0);
    s.job_name = j.value("job_name", "");
    for (const auto& p : j["points"]) s.keys.push_back(p.value("key", ""));
    fs::path job_file = entry.path();
    job_file.replace_extension(".job");
    if (fs::exists(job_file)) {
      std::stringstream(read_file_if_present(job_file)) >> s.job_id;
    } else if (!s.job_name.empty()) {
      s.job_id = slurm::find_job_by_name(s.job_name);
      if (!s.job_id.empty()) write_file_atomically(job_file, s.job_id + "\n", Durability::synced);
    }
    subs.push_back(std::move(s));
  }
  std::sort(subs.begin(), subs.end(), [](const auto& a, const auto& b) { return a.seq < b.seq; });
  return subs;
}

// The controller's command line and folder, so that `gsqhw sweep --attach OUT` can run it again.
void save_command(const Paths& paths) {
  std::string raw = read_file_if_present("/proc/self/cmdline");
  json argv = json::array();
  for (size_t start = 0; start < raw.size();) {
    size_t end = raw.find('\0', start);
    if (end == std::string::npos) end = raw.size();
    argv.push_back(raw.substr(start, end - start));
    start = end + 1;
  }
  write_file_atomically(paths.root / "command.json",
                     json{{"cwd", fs::current_path().string()}, {"argv", argv}}.dump(2) + "\n", Durability::synced);
}

class SlurmController {
 public:
  SlurmController(const SweepOptions& options, const SweepPlan& plan, ResultsDb& db, SweepSummary& summary,
                  const std::atomic<bool>& interrupted)
      : options_(options), plan_(plan), db_(db), summary_(summary), interrupted_(interrupted),
        paths_(options.out_dir) {
    for (size_t i = 0; i < plan.keys.size(); ++i) index_of_key_[plan.keys[i]] = i;
  }

  void run(const std::vector<size_t>& needed_at_start) {
    if (!options_.slurm.collect) save_command(paths_);
    const std::vector<Submission> subs = load_submissions(paths_);
    next_seq_ = subs.empty() ? 1 : subs.back().seq + 1;
    std::map<size_t, TaskRef> latest;  // point -> its task in the newest submission holding it
    for (const auto& s : subs)
      for (size_t k = 0; k < s.keys.size(); ++k)
        if (auto it = index_of_key_.find(s.keys[k]); it != index_of_key_.end() && !s.job_id.empty())
          latest[it->second] = TaskRef{s.job_id, static_cast<int>(k)};

    std::vector<size_t> pending;
    for (size_t i : needed_at_start) {
      // A result that arrived while no controller was watching: stored now; run again only
      // when it is an error and --retry-errors asks for that.
      if (merge_result_file(i)) {
        auto row = db_.find(plan_.keys[i]);
        if (row && row->status == "error" && options_.retry_errors) pending.push_back(i);
        continue;
      }
      // Tasks still queued or running are followed, not resubmitted.
      auto it = latest.find(i);
      if (it == latest.end()) {
        pending.push_back(i);
        continue;
      }
      const TaskRef& task = it->second;
      auto live = live_tasks_of(task.job_id);
      if (!live)
        throw std::runtime_error(fmt::format("squeue does not answer for job {}; nothing is resubmitted while "
                                             "the queue cannot be read (is slurmctld up, SLURM_CONF right?)",
                                             task.job_id));
      auto row = db_.find(plan_.keys[i]);
      bool recorded = row && row->status == "error" && row->result.value("slurm_task", "") == task.name();
      if (live->count(task.index) || !recorded) track(i, task);  // live, or ended and not yet recorded
      else pending.push_back(i);                                 // its failure is recorded: --retry-errors
    }

    if (!pending.empty() && !options_.slurm.collect) submit(pending);
    else if (!pending.empty()) not_submitted_ = static_cast<int>(pending.size());

    progress_.total = static_cast<int>(tracked_.size());
    if (options_.slurm.detach) {
      summary_.detached = true;
      summary_.in_flight = static_cast<int>(tracked_.size());
      summary_.not_submitted = not_submitted_;
      return;
    }
    follow();
  }

 private:
  struct Tracked {
    size_t point;
    TaskRef task;
    bool resolved = false;
    std::optional<std::chrono::steady_clock::time_point> gone_since;  // left the queue without a result
  };

  void track(size_t i, const TaskRef& task) {
    tracked_.push_back(Tracked{i, task, false, std::nullopt});
    if (std::find(summary_.slurm_jobs.begin(), summary_.slurm_jobs.end(), task.job_id) == summary_.slurm_jobs.end())
      summary_.slurm_jobs.push_back(task.job_id);
  }

  std::optional<std::map<int, slurm::TaskState>> live_tasks_of(const std::string& job_id) {
    auto it = live_cache_.find(job_id);
    if (it != live_cache_.end()) return it->second;
    auto live = slurm::live_tasks(job_id);
    if (live) live_cache_[job_id] = *live;
    return live;
  }

  // Stores point i's result file unless the results database already holds exactly that
  // result (the file stays: merging it again is a no-op, so a crash between the two steps
  // neither loses nor duplicates anything). True when the file exists.
  bool merge_result_file(size_t i) {
    auto file = read_result_file(paths_.result_file(plan_.keys[i]));
    if (!file || file->key != plan_.keys[i]) return false;
    auto row = db_.find(plan_.keys[i]);
    if (!row || row->finished_at != file->finished_at || row->status != file->status) {
      db_.put(ResultRow{plan_.keys[i], plan_.designs[i], plan_.library.hash, plan_.tools, plan_.point_settings[i],
                        file->status, file->result, file->finished_at});
      count(i, file->status);
    }
    return true;
  }

  void count(size_t i, const std::string& status) {
    summary_.evaluated++;
    if (status == "ok") summary_.ok++;
    else summary_.failed++;
    progress_.last = fmt::format("{} {}", plan_.designs[i].substr(0, 60), status);
  }

  // A task that left the queue without a result: its Slurm state and reason become the point's
  // error row (re-run by --retry-errors).
  void record_task_failure(size_t i, const TaskRef& task, const std::optional<slurm::TaskState>& state) {
    json result = {{"design", plan_.designs[i]}, {"status", "error"}, {"slurm_task", task.name()}};
    std::string what;
    if (state) {
      result["slurm_state"] = state->state;
      result["slurm_reason"] = state->reason;
      result["slurm_exit_code"] = state->exit_code;
      result["slurm_node"] = state->node;
      result["slurm_state_from"] = state->source;
      what = fmt::format("ended {} (reason {}, exit code {}, node {}; from {})", state->state,
                         state->reason.empty() ? "not recorded" : state->reason,
                         state->exit_code.empty() ? "?" : state->exit_code, state->node.empty() ? "?" : state->node,
                         state->source);
      if (state->state == "COMPLETED")
        what += "; it wrote no result file here: is the output folder on storage the nodes share?";
    } else {
      result["slurm_state"] = "UNKNOWN";
      what = "left the queue and neither scontrol, sacct nor a job-completion log knows how it ended";
    }
    result["error"] = fmt::format("Slurm task {} {} without a result (log: {}); --retry-errors re-runs it",
                                  task.name(), what, (paths_.logs / (task.name() + ".out")).string());
    db_.put(ResultRow{plan_.keys[i], plan_.designs[i], plan_.library.hash, plan_.tools, plan_.point_settings[i],
                      "error", result, now_utc()});
    count(i, "error");
  }

  void submit(const std::vector<size_t>& pending) {
    const int seq = next_seq_;
    std::random_device rd;
    const std::string job_name = fmt::format("gsqhw-sweep-{}-{:08x}", seq, rd());
    json points = json::array();
    for (size_t i : pending) {
      fs::remove(paths_.result_file(plan_.keys[i]));  // an older result of a point run again
      points.push_back({{"key", plan_.keys[i]},
                        {"design", plan_.designs[i]},
                        {"folder", (fs::absolute(options_.out_dir) / "points" / plan_.folders[i]).string()},
                        {"argv", worker_argv(options_, plan_, i)},
                        {"result_file", paths_.result_file(plan_.keys[i]).string()}});
    }
    const fs::path base = paths_.submissions / fmt::format("{:04}", seq);
    json submission = {{"seq", seq},          {"job_name", job_name},  {"controller", host_name()},
                       {"tools", tool_set()}, {"max_file_bytes", options_.max_file_bytes},
                       {"points", points}};
    write_file_atomically(fs::path(base).replace_extension(".json"), submission.dump(2) + "\n", Durability::synced);
    const fs::path script = fs::path(base).replace_extension(".sh");
    write_file_atomically(script, fmt::format("#!/bin/sh\n"
                                           "# gsqhw sweep submission {}: array task N evaluates point N of {}\n"
                                           "exec {} sweep-task --submission {} --index \"$SLURM_ARRAY_TASK_ID\"\n",
                                           seq, fs::path(base).replace_extension(".json").string(),
                                           shell_quote(options_.worker.string()),
                                           shell_quote(fs::path(base).replace_extension(".json").string())), Durability::synced);
    const std::string job_id =
        slurm::submit_array(script, static_cast<int>(pending.size()), job_name, paths_.logs,
                            fs::absolute(options_.out_dir), options_.slurm.submit);
    write_file_atomically(fs::path(base).replace_extension(".job"), job_id + "\n", Durability::synced);
    if (options_.progress)
      std::fprintf(stderr, "sweep: submitted %zu points as Slurm job array %s (%s)\n", pending.size(), job_id.c_str(),
                   job_name.c_str());
    for (size_t k = 0; k < pending.size(); ++k) track(pending[k], TaskRef{job_id, static_cast<int>(k)});
    ++next_seq_;
  }

  // One look at every unresolved task: merge results, record tasks gone without one.
  void poll(double grace_seconds) {
    live_cache_.clear();
    int running = 0, queued = 0;
    bool queue_answered = true;
    for (auto& t : tracked_) {
      if (t.resolved) continue;
      if (merge_result_file(t.point)) {
        t.resolved = true;
        continue;
      }
      auto live = live_tasks_of(t.task.job_id);
      if (!live) {
        queue_answered = false;
        continue;  // slurmctld unreachable: decide nothing until it answers
      }
      auto it = live->find(t.task.index);
      if (it != live->end()) {
        if (it->second.state == "RUNNING") ++running;
        else ++queued;
        t.gone_since.reset();
        continue;
      }
      const auto now = std::chrono::steady_clock::now();
      if (!t.gone_since) t.gone_since = now;
      if (std::chrono::duration<double>(now - *t.gone_since).count() < grace_seconds) continue;
      // The result may have appeared between the two looks above.
      if (merge_result_file(t.point)) {
        t.resolved = true;
        continue;
      }
      auto state = slurm::final_state(t.task.job_id, t.task.index);
      // Give a state that no source knows yet a few more looks before calling it unknown.
      if (!state && std::chrono::duration<double>(now - *t.gone_since).count() < 4 * grace_seconds + 1) continue;
      record_task_failure(t.point, t.task, state);
      t.resolved = true;
    }
    std::lock_guard lock(progress_.mutex);
    progress_.done = static_cast<int>(std::count_if(tracked_.begin(), tracked_.end(), [](auto& t) { return t.resolved; }));
    progress_.failed = summary_.failed;
    progress_.running_count = running;
    progress_.note = !queue_answered ? "(squeue not answering)" : queued > 0 ? fmt::format("{} queued", queued) : "";
  }

  void follow() {
    const bool collect = options_.slurm.collect;
    while (true) {
      poll(collect ? 0.0 : options_.slurm.result_grace_seconds);
      bool all_resolved = std::all_of(tracked_.begin(), tracked_.end(), [](auto& t) { return t.resolved; });
      const bool last = all_resolved || collect;
      // On a terminal the line redraws every poll; in a log, one line per 10 s is plenty.
      const auto now = std::chrono::steady_clock::now();
      if (options_.progress && !tracked_.empty() &&
          (last || isatty(STDERR_FILENO) || now - last_draw_ >= std::chrono::seconds(10))) {
        draw_progress(progress_, last);
        last_draw_ = now;
      }
      if (all_resolved || collect || interrupted_.load()) break;
      const auto wake = std::chrono::steady_clock::now() + std::chrono::duration<double>(options_.slurm.poll_seconds);
      while (std::chrono::steady_clock::now() < wake && !interrupted_.load())
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    if (options_.progress && interrupted_.load() && !tracked_.empty()) draw_progress(progress_, true);
    summary_.in_flight = static_cast<int>(std::count_if(tracked_.begin(), tracked_.end(), [](auto& t) { return !t.resolved; }));
    summary_.not_submitted = not_submitted_;
    summary_.detached = summary_.in_flight > 0 || not_submitted_ > 0;
  }

  const SweepOptions& options_;
  const SweepPlan& plan_;
  ResultsDb& db_;
  SweepSummary& summary_;
  const std::atomic<bool>& interrupted_;
  Paths paths_;
  std::map<std::string, size_t> index_of_key_;
  std::map<std::string, std::map<int, slurm::TaskState>> live_cache_;
  std::vector<Tracked> tracked_;
  Progress progress_;
  int next_seq_ = 1;
  std::chrono::steady_clock::time_point last_draw_{};
  int not_submitted_ = 0;
};

}  // namespace

void run_slurm_executor(const SweepOptions& options, const SweepPlan& plan, ResultsDb& db,
                        const std::vector<size_t>& needed, SweepSummary& summary, const std::atomic<bool>& interrupted) {
  SlurmController(options, plan, db, summary, interrupted).run(needed);
}

int run_sweep_task(const fs::path& submission_path, int index) {
  json submission = json::parse(read_file_if_present(submission_path), nullptr, false);
  if (!submission.is_object() || !submission.contains("points"))
    throw UsageError(fmt::format("{} is not a gsqhw sweep submission file", submission_path.string()));
  const json& points = submission["points"];
  if (index < 0 || index >= static_cast<int>(points.size()))
    throw UsageError(fmt::format("task index {} is outside 0..{} of {}", index, points.size() - 1,
                                 submission_path.string()));
  const json& point = points[static_cast<size_t>(index)];
  const std::string design = point.value("design", "");
  const char* array_job = std::getenv("SLURM_ARRAY_JOB_ID");
  const std::string task = array_job ? fmt::format("{}_{}", array_job, index) : fmt::format("local_{}", index);
  const std::string node = host_name();

  json result;
  int exit_code = 0;
  // The node's tools must be the controller's: a result from other tool versions would be
  // filed under the controller's key and compared with numbers it cannot be compared with.
  std::string mismatch;
  try {
    json mine = tool_set();
    const json& theirs = submission["tools"];
    for (const char* tool : {"yosys", "sta", "verilator"})
      if (mine.value(tool, "") != theirs.value(tool, ""))
        mismatch += fmt::format("{}{} is '{}' here but '{}' on the controller ({})", mismatch.empty() ? "" : "; ",
                                tool, mine.value(tool, ""), theirs.value(tool, ""),
                                submission.value("controller", "?"));
  } catch (const ToolMissing& e) {
    mismatch = e.what();
  }
  if (!mismatch.empty()) {
    result = {{"design", design}, {"status", "error"}, {"slurm_task", task}, {"slurm_node", node},
              {"error", fmt::format("node {} cannot evaluate this point: {}. Results would not be comparable; "
                                    "install the controller's tool versions on every node (docs/cluster.md), "
                                    "then re-run with --retry-errors", node, mismatch)}};
    exit_code = 3;
  } else {
    std::vector<std::string> argv = point["argv"].get<std::vector<std::string>>();
    result = evaluate_with_worker(argv, design, point.value("folder", ""), submission.value("max_file_bytes", uint64_t{0}),
                                  nullptr);
  }
  const std::string status = result.value("status", "error");
  json file = {{"key", point.value("key", "")}, {"status", status}, {"finished_at", now_utc()},
               {"task", task},                  {"node", node},     {"result", result}};
  write_file_atomically(point.value("result_file", ""), file.dump(1) + "\n", Durability::synced);
  std::printf("gsqhw sweep-task %s on %s: %s %s\n", task.c_str(), node.c_str(), design.c_str(), status.c_str());
  if (!mismatch.empty()) std::fprintf(stderr, "gsqhw sweep-task: %s\n", result.value("error", "").c_str());
  return exit_code;
}

}  // namespace gsqhw::synth
