// Runs external programs with fork/exec: no shell, so file names with spaces or quotes are safe.
// Every runner (run_process, run_logged, ChildProcess) starts its child through spawn() below.
#include "base/process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <sstream>
#include <thread>

#include <fmt/format.h>

#include "base/errors.h"
#include "base/files.h"

namespace gsqhw {
namespace fs = std::filesystem;

namespace {

// How a child is set up between fork and exec. File descriptors < 0 mean: stdin from
// /dev/null, stdout/stderr left as ours.
struct ChildSetup {
  int stdin_fd = -1;
  int stdout_fd = -1;
  int stderr_fd = -1;
  const fs::path* cwd = nullptr;   // nullptr or empty: stay in ours
  bool own_process_group = false;  // a timeout kill of the group takes grandchildren too
  bool die_with_parent = false;    // PR_SET_PDEATHSIG: no orphaned tools after a killed sweep
  uint64_t max_file_bytes = 0;     // > 0: RLIMIT_FSIZE for the child and its children
};

// In the child after fork(): only async-signal-safe calls until exec.
[[noreturn]] void exec_child(char* const* args, const ChildSetup& setup) {
  if (setup.own_process_group) ::setpgid(0, 0);
  if (setup.die_with_parent) ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (setup.max_file_bytes > 0) {
    struct rlimit limit = {static_cast<rlim_t>(setup.max_file_bytes), static_cast<rlim_t>(setup.max_file_bytes)};
    ::setrlimit(RLIMIT_FSIZE, &limit);
    ::signal(SIGXFSZ, SIG_IGN);  // inherited through exec: writes fail with EFBIG instead
  }
  if (setup.cwd && !setup.cwd->empty() && ::chdir(setup.cwd->c_str()) != 0) {
    const char msg[] = "gsqhw: cannot enter the working folder\n";
    (void)!::write(setup.stderr_fd >= 0 ? setup.stderr_fd : 2, msg, sizeof msg - 1);
    ::_exit(126);
  }
  int in = setup.stdin_fd >= 0 ? setup.stdin_fd : ::open("/dev/null", O_RDONLY);
  if (in >= 0) ::dup2(in, 0);
  if (setup.stdout_fd >= 0) ::dup2(setup.stdout_fd, 1);
  if (setup.stderr_fd >= 0) ::dup2(setup.stderr_fd, 2);
  ::execvp(args[0], args);
  const char msg[] = "gsqhw: exec failed\n";
  (void)!::write(2, msg, sizeof msg - 1);
  ::_exit(127);
}

// Forks and execs argv with `setup`; returns the child's pid (throws when fork fails).
pid_t spawn(const std::vector<std::string>& argv, const ChildSetup& setup) {
  if (argv.empty()) throw UsageError("cannot run an empty command");
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error(fmt::format("fork failed: {}", std::strerror(errno)));
  if (pid == 0) exec_child(args.data(), setup);
  return pid;
}

// Exit status of a waited child: its exit code, or 128 + signal.
int decode_status(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return 255;
}

int wait_child(pid_t pid) {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return 255;
  }
  return decode_status(status);
}

}  // namespace

fs::path find_program(const std::string& program) {
  if (program.find('/') != std::string::npos)
    return access(program.c_str(), X_OK) == 0 ? fs::path(program) : fs::path();
  const char* path_env = std::getenv("PATH");
  std::string path = path_env ? path_env : "/usr/bin:/bin";
  std::stringstream dirs(path);
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    if (dir.empty()) continue;
    fs::path candidate = fs::path(dir) / program;
    if (access(candidate.c_str(), X_OK) == 0 && !fs::is_directory(candidate)) return candidate;
  }
  return {};
}

fs::path require_program(const std::string& program, const std::string& debian_package) {
  fs::path found = find_program(program);
  if (found.empty())
    throw ToolMissing(fmt::format(
        "'{}' is not on PATH; install it with `apt-get install {}` (Debian/Ubuntu) or run "
        "scripts/setup.sh",
        program, debian_package));
  return found;
}

ProcessResult run_process(const std::vector<std::string>& argv, const fs::path& cwd,
                          const fs::path& log_file, double timeout_seconds,
                          const std::atomic<bool>* cancel, uint64_t max_file_bytes) {
  ProcessResult result;
  if (argv.empty()) throw UsageError("run_process: empty command");
  int log_fd = ::open(log_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (log_fd < 0)
    throw std::runtime_error(fmt::format("cannot write the tool log {}: {}", log_file.string(),
                                         std::strerror(errno)));
  pid_t pid = -1;
  try {
    pid = spawn(argv, {.stdout_fd = log_fd, .stderr_fd = log_fd, .cwd = &cwd, .own_process_group = true,
                       .die_with_parent = true, .max_file_bytes = max_file_bytes});
  } catch (...) {
    ::close(log_fd);
    throw;
  }
  ::close(log_fd);

  auto start = std::chrono::steady_clock::now();
  int status = 0;
  while (true) {
    pid_t done = waitpid(pid, &status, WNOHANG);
    if (done == pid) break;
    if (done < 0 && errno != EINTR) break;
    double elapsed =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (elapsed > timeout_seconds || (cancel && cancel->load())) {
      kill(-pid, SIGKILL);
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      result.timed_out = elapsed > timeout_seconds;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(elapsed < 1 ? 2 : 20));
  }
  if (WIFEXITED(status)) result.exit_code = WEXITSTATUS(status);
  else if (WIFSIGNALED(status)) result.exit_code = 128 + WTERMSIG(status);
  result.output = read_file_if_present(log_file);
  return result;
}

int run_logged(const std::vector<std::string>& argv, const fs::path& log, const fs::path& cwd) {
  int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) throw std::runtime_error(fmt::format("cannot write log {}", log.string()));
  pid_t pid = -1;
  try {
    pid = spawn(argv, {.stdout_fd = fd, .stderr_fd = fd, .cwd = &cwd});
  } catch (...) {
    ::close(fd);
    throw;
  }
  ::close(fd);
  return wait_child(pid);
}

ChildProcess::ChildProcess(const std::vector<std::string>& argv, const fs::path& stderr_file,
                           bool pipe_stdin, bool pipe_stdout) {
  int err = ::open(stderr_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (err < 0) throw std::runtime_error(fmt::format("cannot write {}", stderr_file.string()));
  int out_fds[2] = {-1, -1}, in_fds[2] = {-1, -1};
  auto close_all = [&] {
    for (int fd : {err, out_fds[0], out_fds[1], in_fds[0], in_fds[1]})
      if (fd >= 0) ::close(fd);
  };
  if (pipe_stdout && ::pipe2(out_fds, O_CLOEXEC) != 0) {
    close_all();
    throw std::runtime_error("pipe failed");
  }
  // A socket rather than a pipe: send(MSG_NOSIGNAL) reports a child that exited early as an
  // error instead of killing us with SIGPIPE.
  if (pipe_stdin && ::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, in_fds) != 0) {
    close_all();
    throw std::runtime_error("socketpair failed");
  }
  try {
    pid_ = spawn(argv, {.stdin_fd = pipe_stdin ? in_fds[1] : -1,
                        .stdout_fd = pipe_stdout ? out_fds[1] : err,
                        .stderr_fd = err});
  } catch (...) {
    close_all();
    throw;
  }
  ::close(err);
  if (pipe_stdout) {
    ::close(out_fds[1]);
    stdout_fd_ = out_fds[0];
  }
  if (pipe_stdin) {
    ::close(in_fds[1]);
    ::shutdown(in_fds[0], SHUT_RD);
    stdin_fd_ = in_fds[0];
  }
}

bool ChildProcess::write_stdin(const void* data, size_t bytes) {
  const char* p = static_cast<const char*>(data);
  while (bytes > 0 && stdin_fd_ >= 0) {
    ssize_t n = ::send(stdin_fd_, p, bytes, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    p += n;
    bytes -= static_cast<size_t>(n);
  }
  return bytes == 0;
}

void ChildProcess::close_stdin() {
  if (stdin_fd_ >= 0) {
    ::close(stdin_fd_);
    stdin_fd_ = -1;
  }
}

void ChildProcess::kill() {
  if (pid_ > 0) ::kill(pid_, SIGKILL);
}

int ChildProcess::wait() {
  close_stdin();
  if (stdout_fd_ >= 0) {
    ::close(stdout_fd_);
    stdout_fd_ = -1;
  }
  if (pid_ < 0) return 255;
  int status = wait_child(pid_);
  pid_ = -1;
  return status;
}

ChildProcess::~ChildProcess() {
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    wait();
  }
  close_stdin();
  if (stdout_fd_ >= 0) ::close(stdout_fd_);
}

std::string disk_full_cause(const fs::path& dir, uint64_t file_limit) {
  if (file_limit == 0) {
    struct rlimit own {};
    if (getrlimit(RLIMIT_FSIZE, &own) == 0 && own.rlim_cur != RLIM_INFINITY) file_limit = own.rlim_cur;
  }
  struct statvfs fs_info {};
  if (statvfs(dir.c_str(), &fs_info) == 0) {
    const uint64_t free_bytes = static_cast<uint64_t>(fs_info.f_bavail) * fs_info.f_frsize;
    if (free_bytes < (uint64_t{1} << 20))
      return fmt::format("the disk is full: {} bytes free on the file system holding {} (ENOSPC)", free_bytes,
                         dir.string());
  }
  if (file_limit > 0) {
    // A file at the limit names the culprit; tools' temporary files elsewhere may have been
    // the ones refused, so a failure under a limit is reported as likely that too.
    std::error_code ec;
    for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::recursive_directory_iterator();
         it.increment(ec)) {
      std::error_code size_ec;
      if (it->is_regular_file(size_ec) && it->file_size(size_ec) >= file_limit && !size_ec)
        return fmt::format("{} reached the file-size limit of {} bytes (EFBIG: write refused, as on a full disk)",
                           it->path().string(), file_limit);
    }
    return fmt::format("a file-size limit of {} bytes (RLIMIT_FSIZE, --max-file-size) was in force: most likely a "
                       "tool's write was refused (EFBIG), as on a full disk",
                       file_limit);
  }
  return "";
}

bool mentions_full_disk(const std::string& message) {
  for (int code : {ENOSPC, EFBIG, EDQUOT})
    if (message.find(std::strerror(code)) != std::string::npos) return true;
  for (const char* phrase : {"disk full", "disk is full", "file-size limit"})
    if (message.find(phrase) != std::string::npos) return true;
  return false;
}

std::string tail_lines(const std::string& text, int max_lines) {
  // Walk back over max_lines line breaks (plus the one ending the text, if any).
  size_t pos = text.size();
  for (int lines = 0; lines <= max_lines; ++lines) {
    if (pos == 0) return text;
    pos = text.rfind('\n', pos - 1);
    if (pos == std::string::npos) return text;
  }
  return text.substr(pos + 1);
}

}  // namespace gsqhw
