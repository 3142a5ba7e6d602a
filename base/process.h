// Running external programs (yosys, sta, gnuplot, verilator, the Verilated testbenches, sbatch):
// locate them on PATH, run them with fork/exec (no shell, so file names with spaces or quotes
// are safe) and their output captured to a log file, and report failures with the log's tail
// so that the user sees the tool's own complaint. The one process runner of the code base.
#pragma once

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <string>
#include <sys/types.h>
#include <vector>

namespace gsqhw {

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

// Runs argv (no shell; argv[0] looked up on PATH) in `cwd` (empty: the current folder), stdout
// and stderr appended to `log`, stdin from /dev/null, and waits for it without a time limit.
// Returns the exit status (128 + signal when killed). For the Verilator builds and testbench
// runs, whose logs collect several steps.
int run_logged(const std::vector<std::string>& argv, const std::filesystem::path& log,
               const std::filesystem::path& cwd = {});

// A running child. stderr goes to `stderr_file`; stdout is a pipe (read it with stdout_fd)
// unless `pipe_stdout` is false (then it joins stderr_file); with `pipe_stdin` the child's
// stdin is a stream we feed with write_stdin() and end with close_stdin(). Call wait() at the
// end.
class ChildProcess {
 public:
  ChildProcess(const std::vector<std::string>& argv, const std::filesystem::path& stderr_file,
               bool pipe_stdin = false, bool pipe_stdout = true);
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;
  int stdout_fd() const { return stdout_fd_; }
  // Writes all of `data` to the child's stdin; false when the child has closed it (exited).
  // Never raises SIGPIPE.
  bool write_stdin(const void* data, size_t bytes);
  void close_stdin();
  void kill();  // SIGKILL (a writer blocked in write_stdin then returns false); wait() still due
  int wait();  // closes stdin/stdout, returns the exit status (128 + signal when killed)

 private:
  pid_t pid_ = -1;
  int stdout_fd_ = -1;
  int stdin_fd_ = -1;
};

// The last `max_lines` lines of a tool's output, for error messages.
std::string tail_lines(const std::string& text, int max_lines);

}  // namespace gsqhw
