// Running the external EDA tools (yosys, sta, gnuplot): locate them on PATH, run them with their
// output captured to a log file, and report failures with the log's tail so that the user sees
// the tool's own complaint.
#pragma once

#include <atomic>
#include <cstdint>
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
// `max_file_bytes` > 0 caps every file the child (and its children) write (RLIMIT_FSIZE, with
// SIGXFSZ ignored so that an oversized write fails with EFBIG instead of killing the tool).
ProcessResult run_process(const std::vector<std::string>& argv, const std::filesystem::path& cwd,
                          const std::filesystem::path& log_file, double timeout_seconds,
                          const std::atomic<bool>* cancel = nullptr, uint64_t max_file_bytes = 0);

// Why a failed step that wrote under `dir` may have failed for lack of space, or "" when
// nothing points to it: the file system is (nearly) full, or a file there reached the file-size
// limit (RLIMIT_FSIZE: `file_limit`, or this process's own when 0), or such a limit was in force
// at all (tools also write temporary files elsewhere). Call it only after a failure: it turns a
// tool's terse "failed" into a message that names the likely cause.
std::string disk_full_cause(const std::filesystem::path& dir, uint64_t file_limit = 0);

// True when an error message says a write failed for lack of space: an errno text (ENOSPC,
// EFBIG, EDQUOT) or one of the phrases disk_full_cause and the results file use.
bool mentions_full_disk(const std::string& message);

// The last `max_lines` lines of a tool's output, for error messages.
std::string tail_lines(const std::string& text, int max_lines);

}  // namespace gsqhw::synth
