// Running the external EDA tools (yosys, sta, gnuplot): locate them on PATH, run them with their
// output captured to a log file, and report failures with the log's tail so that the user sees
// the tool's own complaint.
#pragma once

#include <atomic>
#include <filesystem>
#include <string>
#include <vector>

namespace gsqhw::synth {

// Full path of `program` on PATH, or empty when it is not there.
std::filesystem::path find_program(const std::string& program);

// Like find_program, but throws ToolMissing naming the Debian package that provides it.
std::filesystem::path require_program(const std::string& program, const std::string& debian_package);

struct ProcessResult {
  int exit_code = -1;       // exit status, or 128 + signal number when killed by a signal
  bool timed_out = false;
  std::string output;       // stdout and stderr, interleaved as the tool wrote them
};

// Runs argv[0] (a path or a name looked up on PATH) in `cwd` with stdout+stderr written to
// `log_file` (and returned). A run longer than timeout_seconds is killed (timed_out = true).
// Never throws for a failing tool: the caller decides what a non-zero exit means.
// When `cancel` becomes true the run is killed (exit_code 128 + SIGKILL). The child dies with
// the calling thread (PR_SET_PDEATHSIG), so a killed sweep leaves no orphaned tools behind.
ProcessResult run_process(const std::vector<std::string>& argv, const std::filesystem::path& cwd,
                          const std::filesystem::path& log_file, double timeout_seconds,
                          const std::atomic<bool>* cancel = nullptr);

// The last `max_lines` lines of a tool's output, for error messages.
std::string tail_lines(const std::string& text, int max_lines);

}  // namespace gsqhw::synth
