// Runs external tools with fork/exec: no shell, so file names with spaces or quotes are safe.
#include "base/process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#include <fmt/format.h>

#include "base/errors.h"

namespace gsqhw::synth {
namespace fs = std::filesystem;

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
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);

  pid_t pid = fork();
  if (pid < 0) {
    ::close(log_fd);
    throw std::runtime_error(fmt::format("fork failed: {}", std::strerror(errno)));
  }
  if (pid == 0) {
    // Child: its own process group, so that a timeout kill takes any grandchildren too.
    setpgid(0, 0);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (max_file_bytes > 0) {
      struct rlimit limit = {static_cast<rlim_t>(max_file_bytes), static_cast<rlim_t>(max_file_bytes)};
      setrlimit(RLIMIT_FSIZE, &limit);
      signal(SIGXFSZ, SIG_IGN);  // inherited through exec: writes fail with EFBIG instead
    }
    if (chdir(cwd.c_str()) != 0) _exit(126);
    int null_fd = ::open("/dev/null", O_RDONLY);
    dup2(null_fd, 0);
    dup2(log_fd, 1);
    dup2(log_fd, 2);
    execvp(args[0], args.data());
    _exit(127);
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

  std::ifstream in(log_file, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  result.output = text.str();
  return result;
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

}  // namespace gsqhw::synth
