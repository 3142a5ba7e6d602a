// Slurm command-line client (synth/slurm.h).
#include "synth/slurm.h"

#include <unistd.h>

#include <atomic>
#include <fstream>
#include <sstream>

#include <fmt/format.h>

#include "base/errors.h"
#include "base/process.h"

namespace gsqhw::synth::slurm {
namespace fs = std::filesystem;

namespace {

struct Output {
  int exit_code = -1;
  std::string text;
};

// Runs a Slurm client command (no shell) and returns its exit code and output.
Output run(const std::vector<std::string>& argv, double timeout_seconds = 60) {
  static std::atomic<unsigned> counter{0};
  fs::path log = fs::temp_directory_path() / fmt::format("gsqhw-slurm-{}-{}.log", ::getpid(), counter++);
  ProcessResult r = run_process(argv, fs::current_path(), log, timeout_seconds);
  std::error_code ignored;
  fs::remove(log, ignored);
  return {r.timed_out ? -1 : r.exit_code, r.output};
}

std::string trim(const std::string& s) {
  size_t a = s.find_first_not_of(" \t\r\n"), b = s.find_last_not_of(" \t\r\n");
  return a == std::string::npos ? "" : s.substr(a, b - a + 1);
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> parts;
  std::string part;
  std::stringstream in(s);
  while (std::getline(in, part, sep)) parts.push_back(part);
  if (!s.empty() && s.back() == sep) parts.emplace_back();
  return parts;
}

std::optional<TaskState> from_scontrol(const std::string& job_id, int index) {
  Output out = run({"scontrol", "-o", "show", "job", fmt::format("{}_{}", job_id, index)});
  if (out.exit_code != 0) return std::nullopt;
  std::stringstream lines(out.text);
  std::string line;
  while (std::getline(lines, line)) {
    auto kv = parse_key_values(line);
    if (kv["ArrayJobId"] != job_id || kv["ArrayTaskId"] != std::to_string(index)) continue;
    if (!is_final_state(kv["JobState"])) return std::nullopt;
    return TaskState{kv["JobState"], kv["Reason"], kv["ExitCode"], kv["NodeList"], "scontrol"};
  }
  return std::nullopt;
}

std::optional<TaskState> from_sacct(const std::string& job_id, int index) {
  if (find_program("sacct").empty()) return std::nullopt;
  // Without slurmdbd: "Slurm accounting storage is disabled" (exit 1) - nothing to learn here.
  Output out = run({"sacct", "-n", "-P", "-X", "-j", fmt::format("{}_{}", job_id, index), "-o",
                    "JobID,State,Reason,ExitCode,NodeList"});
  if (out.exit_code != 0) return std::nullopt;
  std::stringstream lines(out.text);
  std::string line;
  while (std::getline(lines, line)) {
    auto f = split(trim(line), '|');
    if (f.size() < 5 || f[0] != fmt::format("{}_{}", job_id, index)) continue;
    std::string state = f[1].substr(0, f[1].find(' '));  // "CANCELLED by 0" -> CANCELLED
    if (!is_final_state(state)) return std::nullopt;
    return TaskState{state, f[2], f[3], f[4], "sacct"};
  }
  return std::nullopt;
}

// JobCompLoc of a jobcomp/filetxt cluster, or empty.
fs::path jobcomp_log() {
  Output out = run({"scontrol", "show", "config"});
  if (out.exit_code != 0) return {};
  std::string type, location;
  std::stringstream lines(out.text);
  std::string line;
  while (std::getline(lines, line)) {
    auto eq = line.find('=');
    if (eq == std::string::npos) continue;
    std::string key = trim(line.substr(0, eq)), value = trim(line.substr(eq + 1));
    if (key == "JobCompType") type = value;
    if (key == "JobCompLoc") location = value;
  }
  return type == "jobcomp/filetxt" ? fs::path(location) : fs::path();
}

std::optional<TaskState> from_jobcomp(const std::string& job_id, int index) {
  fs::path log = jobcomp_log();
  if (log.empty()) return std::nullopt;
  std::ifstream in(log);
  std::string line;
  std::optional<TaskState> found;
  while (std::getline(in, line)) {
    if (line.find("ArrayJobId=" + job_id + " ") == std::string::npos) continue;
    auto kv = parse_key_values(line);
    if (kv["ArrayJobId"] == job_id && kv["ArrayTaskId"] == std::to_string(index))
      // The last line wins: a requeued task has one line per run.
      found = TaskState{kv["JobState"], "", kv["ExitCode"], kv["NodeList"], "jobcomp"};
  }
  return found;
}

}  // namespace

bool is_final_state(const std::string& state) {
  static const char* finals[] = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY",
                                 "PREEMPTED", "BOOT_FAIL", "DEADLINE", "REVOKED", "SPECIAL_EXIT"};
  for (const char* f : finals)
    if (state == f) return true;
  return false;
}

void require_slurm_client() {
  for (const char* program : {"sbatch", "squeue", "scontrol"}) require_program(program, "slurm-client");
}

std::map<std::string, std::string> parse_key_values(const std::string& line) {
  std::map<std::string, std::string> kv;
  std::stringstream in(line);
  std::string token;
  while (in >> token) {
    auto eq = token.find('=');
    if (eq != std::string::npos) kv[token.substr(0, eq)] = token.substr(eq + 1);
  }
  return kv;
}

std::string submit_array(const fs::path& script, int count, const std::string& job_name, const fs::path& log_dir,
                         const fs::path& cwd, const SubmitOptions& options) {
  if (count < 1) throw std::invalid_argument("submit_array: no tasks");
  std::string array = count == 1 ? "0" : fmt::format("0-{}", count - 1);
  if (options.max_parallel > 0) array += fmt::format("%{}", options.max_parallel);
  std::vector<std::string> argv = {"sbatch", "--parsable", "--array=" + array, "--job-name=" + job_name,
                                   "--output=" + (log_dir / "%A_%a.out").string(), "--chdir=" + cwd.string()};
  if (!options.partition.empty()) argv.push_back("--partition=" + options.partition);
  if (!options.time.empty()) argv.push_back("--time=" + options.time);
  if (!options.mem.empty()) argv.push_back("--mem=" + options.mem);
  argv.insert(argv.end(), options.extra.begin(), options.extra.end());
  argv.push_back(script.string());
  Output out = run(argv, 120);
  // --parsable prints "jobid" or "jobid;cluster".
  std::string id = trim(out.text);
  if (auto nl = id.rfind('\n'); nl != std::string::npos) id = id.substr(nl + 1);
  id = id.substr(0, id.find(';'));
  if (out.exit_code != 0 || id.empty() || id.find_first_not_of("0123456789") != std::string::npos)
    throw std::runtime_error(fmt::format("sbatch refused the job array (exit {}): {}\n(is a Slurm cluster reachable "
                                         "from here - SLURM_CONF, munge - and the partition right? docs/cluster.md)",
                                         out.exit_code, tail_lines(out.text, 6)));
  return id;
}

std::optional<std::map<int, TaskState>> live_tasks(const std::string& job_id) {
  // -r lists every pending task of an array on its own line; %F array job id, %K task index.
  Output out = run({"squeue", "-h", "-r", "-j", job_id, "-o", "%F|%K|%T|%r|%N"});
  std::map<int, TaskState> tasks;
  if (out.exit_code != 0) {
    // A job slurmctld has forgotten (older than MinJobAge) is not an error: nothing is live.
    if (out.text.find("Invalid job id") != std::string::npos) return tasks;
    return std::nullopt;
  }
  std::stringstream lines(out.text);
  std::string line;
  while (std::getline(lines, line)) {
    auto f = split(trim(line), '|');
    if (f.size() < 5 || f[0] != job_id) continue;
    try {
      tasks[std::stoi(f[1])] = TaskState{f[2], f[3], "", f[4], "squeue"};
    } catch (const std::exception&) {
      // "0-3%2": a range squeue did not expand; its tasks have not started, nothing to track yet.
    }
  }
  return tasks;
}

std::optional<TaskState> final_state(const std::string& job_id, int index) {
  if (auto s = from_scontrol(job_id, index)) return s;
  if (auto s = from_sacct(job_id, index)) return s;
  return from_jobcomp(job_id, index);
}

std::string find_job_by_name(const std::string& job_name) {
  Output out = run({"squeue", "-h", "--name=" + job_name, "-o", "%F"});
  if (out.exit_code != 0) return "";
  std::stringstream lines(out.text);
  std::string line;
  while (std::getline(lines, line))
    if (!trim(line).empty()) return trim(line);
  return "";
}

}  // namespace gsqhw::synth::slurm
