// A job array of command lines, submitted and followed (synth/slurm_array.h).
#include "synth/slurm_array.h"

#include <unistd.h>

#include <chrono>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "base/files.h"
#include "synth/sweep_parts.h"

namespace gsqhw::synth {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

std::string shell_quote(const std::string& text) {
  std::string quoted = "'";
  for (char ch : text) quoted += ch == '\'' ? std::string("'\\''") : std::string(1, ch);
  return quoted + "'";
}

std::vector<std::string> names_of(const std::vector<ArrayTask>& tasks) {
  std::vector<std::string> names;
  for (const auto& t : tasks) names.push_back(t.name);
  return names;
}

// The job an earlier controller submitted for the same tasks, when some of its tasks are still
// queued or running; "" otherwise.
std::string live_earlier_job(const fs::path& job_file, const std::vector<std::string>& names) {
  std::ifstream in(job_file);
  json j = in ? json::parse(in, nullptr, false) : json();
  if (!j.is_object() || j.value("names", json::array()) != json(names)) return "";
  const std::string id = j.value("job_id", "");
  if (id.empty()) return "";
  auto live = slurm::live_tasks(id);
  if (!live)
    throw std::runtime_error(fmt::format("squeue does not answer for job {}; not submitting the runs again while "
                                         "the queue cannot be read",
                                         id));
  return live->empty() ? "" : id;
}

}  // namespace

bool run_job_array(std::vector<ArrayTask>& tasks, const fs::path& state_dir, const slurm::SubmitOptions& submit,
                   double poll_seconds, bool progress, const std::atomic<bool>* interrupted) {
  fs::create_directories(state_dir / "logs");
  const fs::path job_file = state_dir / "job.json";
  const std::vector<std::string> names = names_of(tasks);
  std::string job_id = live_earlier_job(job_file, names);
  if (!job_id.empty()) {
    if (progress) std::fprintf(stderr, "slurm: following job array %s submitted earlier\n", job_id.c_str());
  } else {
    std::string script = "#!/bin/sh\n# gsqhw: one command line per array task\ncase \"$SLURM_ARRAY_TASK_ID\" in\n";
    for (size_t i = 0; i < tasks.size(); ++i) {
      std::string line;
      for (const auto& a : tasks[i].argv) line += (line.empty() ? "" : " ") + shell_quote(a);
      script += fmt::format("  {}) exec {} ;;\n", i, line);
    }
    script += "esac\necho \"no command for array task $SLURM_ARRAY_TASK_ID\" >&2\nexit 2\n";
    write_file_atomically(state_dir / "job.sh", script, Durability::synced);
    std::random_device rd;
    const std::string job_name = fmt::format("gsqhw-array-{:08x}", rd());
    job_id = slurm::submit_array(state_dir / "job.sh", static_cast<int>(tasks.size()), job_name, state_dir / "logs",
                                 fs::current_path(), submit);
    write_file_atomically(job_file, json{{"job_id", job_id}, {"job_name", job_name}, {"names", names}}.dump(2) + "\n", Durability::synced);
    if (progress)
      std::fprintf(stderr, "slurm: submitted %zu tasks as job array %s\n", tasks.size(), job_id.c_str());
  }

  Progress bar;
  bar.unit = "tasks";
  bar.total = static_cast<int>(tasks.size());
  auto last_draw = std::chrono::steady_clock::time_point{};
  while (true) {
    auto live = slurm::live_tasks(job_id);
    if (live) {
      int running = 0;
      for (const auto& [index, state] : *live) running += state.state == "RUNNING";
      bar.done = bar.total - static_cast<int>(live->size());
      bar.running_count = running;
      bar.note = live->size() > static_cast<size_t>(running) ? fmt::format("{} queued", live->size() - running) : "";
    } else {
      bar.note = "(squeue not answering)";
    }
    const bool finished = live && live->empty();
    const auto now = std::chrono::steady_clock::now();
    if (progress && (finished || isatty(STDERR_FILENO) || now - last_draw >= std::chrono::seconds(10))) {
      draw_progress(bar, finished);
      last_draw = now;
    }
    if (finished) break;
    if (interrupted && interrupted->load()) return false;
    const auto wake = now + std::chrono::duration<double>(poll_seconds);
    while (std::chrono::steady_clock::now() < wake && !(interrupted && interrupted->load()))
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }

  json states = json::object();
  for (size_t i = 0; i < tasks.size(); ++i) {
    std::optional<slurm::TaskState> state;
    // A state may take a moment to reach scontrol / the completion log after the task leaves.
    for (int attempt = 0; attempt < 10 && !state; ++attempt) {
      state = slurm::final_state(job_id, static_cast<int>(i));
      if (!state) std::this_thread::sleep_for(std::chrono::milliseconds(500));
    }
    tasks[i].final = state ? *state : slurm::TaskState{"UNKNOWN", "", "", "", "none"};
    states[tasks[i].name] = {{"task", fmt::format("{}_{}", job_id, i)},
                             {"state", tasks[i].final.state},
                             {"reason", tasks[i].final.reason},
                             {"exit_code", tasks[i].final.exit_code},
                             {"node", tasks[i].final.node},
                             {"log", (state_dir / "logs" / fmt::format("{}_{}.out", job_id, i)).string()}};
  }
  write_file_atomically(state_dir / "tasks.json", states.dump(2) + "\n", Durability::synced);
  return true;
}

}  // namespace gsqhw::synth
