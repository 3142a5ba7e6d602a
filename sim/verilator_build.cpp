// Verilator build cache and process utilities (sim/verilator_build.h).
#include "sim/verilator_build.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/uuid/detail/sha1.hpp>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <random>
#include <sstream>

#include "gsqhw_version.h"
#include "base/errors.h"

namespace fs = std::filesystem;

namespace gsqhw {

// ---- processes -------------------------------------------------------------------------------

std::optional<fs::path> find_program(const std::string& name) {
  if (name.find('/') != std::string::npos)
    return ::access(name.c_str(), X_OK) == 0 ? std::optional<fs::path>(name) : std::nullopt;
  const char* path = std::getenv("PATH");
  std::stringstream dirs(path ? path : "/usr/bin:/bin");
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    if (dir.empty()) continue;
    fs::path candidate = fs::path(dir) / name;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return std::nullopt;
}

namespace {

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

std::vector<char*> to_argv(const std::vector<std::string>& argv) {
  std::vector<char*> out;
  for (const auto& a : argv) out.push_back(const_cast<char*>(a.c_str()));
  out.push_back(nullptr);
  return out;
}

// In the child after fork(): only async-signal-safe calls until exec.
[[noreturn]] void exec_child(std::vector<char*>& args) {
  ::execvp(args[0], args.data());
  const char msg[] = "gsqhw: exec failed\n";
  (void)!::write(2, msg, sizeof msg - 1);
  ::_exit(127);
}

}  // namespace

int run_logged(const std::vector<std::string>& argv, const fs::path& log, const fs::path& cwd) {
  int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) throw std::runtime_error(fmt::format("cannot write log {}", log.string()));
  auto args = to_argv(argv);
  pid_t pid = ::fork();
  if (pid < 0) {
    ::close(fd);
    throw std::runtime_error("fork failed");
  }
  if (pid == 0) {
    if (!cwd.empty() && ::chdir(cwd.c_str()) != 0) ::_exit(127);
    ::dup2(fd, 1);
    ::dup2(fd, 2);
    int devnull = ::open("/dev/null", O_RDONLY);
    if (devnull >= 0) ::dup2(devnull, 0);
    exec_child(args);
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
  auto args = to_argv(argv);
  pid_ = ::fork();
  if (pid_ < 0) {
    close_all();
    throw std::runtime_error("fork failed");
  }
  if (pid_ == 0) {
    ::dup2(pipe_stdout ? out_fds[1] : err, 1);
    ::dup2(err, 2);
    if (pipe_stdin) {
      ::dup2(in_fds[1], 0);
    } else {
      int devnull = ::open("/dev/null", O_RDONLY);
      if (devnull >= 0) ::dup2(devnull, 0);
    }
    exec_child(args);
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

// ---- hashing ---------------------------------------------------------------------------------

std::string sha1_hex(const std::string& data) {
  boost::uuids::detail::sha1 sha;
  sha.process_bytes(data.data(), data.size());
  boost::uuids::detail::sha1::digest_type digest;
  sha.get_digest(digest);
  std::string hex;
  for (unsigned word : digest) hex += fmt::format("{:08x}", word);
  return hex;
}

// ---- Verilator -------------------------------------------------------------------------------

fs::path default_cache_dir() {
  if (const char* env = std::getenv("GSQHW_CACHE"); env && *env) return env;
  if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg && *xdg)
    return fs::path(xdg) / "gsqhw";
  if (const char* home = std::getenv("HOME"); home && *home)
    return fs::path(home) / ".cache" / "gsqhw";
  return fs::temp_directory_path() / "gsqhw-cache";
}

namespace {

constexpr const char* kInstallHint =
    "install it with `apt-get install verilator libsystemc-dev g++ make` (scripts/setup.sh does)";

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(fmt::format("cannot read {}", path.string()));
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

void write_file(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
  if (!out) throw std::runtime_error(fmt::format("cannot write {}", path.string()));
}

// The testbench source: sim/harness/tb_main.cpp (or tb_sc_main.cpp) of the source tree this
// binary was built from.
std::string harness_source(bool systemc) {
  fs::path path = fs::path(GSQHW_SOURCE_DIR) / "sim" / "harness" /
                  (systemc ? "tb_sc_main.cpp" : "tb_main.cpp");
  if (!fs::exists(path))
    throw std::runtime_error(fmt::format(
        "the co-simulation testbench source {} is missing (gsqhw locates it through the source "
        "tree it was built from)",
        path.string()));
  return read_file(path);
}

// gsqhw_ports.h: the design-specific part of the testbench.
std::string ports_header(const VerilatorBuildSpec& spec) {
  std::string inputs, outputs;
  bool has_valid = false;
  for (const auto& port : spec.ports) {
    if (port.width < 1 || port.width > 4096)
      throw UsageError(fmt::format("port {} has unsupported width {}", port.name, port.width));
    std::string entry = fmt::format(" X({}, {})", port.name, port.width);
    (port.input ? inputs : outputs) += entry;
    if (!port.input && port.name == spec.valid_port) has_valid = true;
  }
  if (!has_valid)
    throw UsageError(fmt::format("design top {} has no output port {}", spec.top, spec.valid_port));
  return fmt::format(
      "// Generated by gsqhw (sim/verilator_build.cpp): the ports of {}.\n"
      "#pragma once\n#include \"V{}.h\"\nusing GsqhwTop = V{};\n"
      "#define GSQHW_INPUTS(X){}\n#define GSQHW_OUTPUTS(X){}\n#define GSQHW_VALID {}\n"
      "#define GSQHW_TRACE_FST {}\n#define GSQHW_TRACE {}\n",
      spec.top, spec.top, spec.top, inputs, outputs, spec.valid_port, spec.fst ? 1 : 0,
      spec.fast ? 0 : 1);
}

std::vector<std::string> verilator_flags(const VerilatorBuildSpec& spec) {
  // --x-assign/--x-initial fast as recommended for speed; warnings do not stop the build
  // (generated and gate-level code trips style lints that say nothing about function).
  std::vector<std::string> flags = {spec.systemc ? "--sc" : "--cc", "--exe", "--build", "-j", "2",
                                    "--top-module", spec.top, "--x-assign", "fast",
                                    "--x-initial", "fast"};
  if (spec.fast) {
    // The fast build: Verilator's make compiles the model with OPT_FAST, its runtime with
    // OPT_GLOBAL and the testbench with CFLAGS (default -Os for the first two); -O3 for all,
    // tuned for this machine's CPU (the cache key includes the flags; a cache shared with
    // another CPU type would need the key to name it too).
    flags.insert(flags.end(), {"-MAKEFLAGS", "OPT_FAST=-O3", "-MAKEFLAGS", "OPT_GLOBAL=-O3",
                               "-CFLAGS", "-O3", "-CFLAGS", "-march=native"});
    if (spec.threads > 1) flags.insert(flags.end(), {"--threads", std::to_string(spec.threads)});
  } else if (!spec.systemc) {
    // -Os (Verilator's default) keeps compile time low; the traced build is for waves/activity.
    flags.insert(flags.end(), {spec.fst ? "--trace-fst" : "--trace", "--trace-structs",
                               // Yosys netlists name most nets _123_: without this Verilator
                               // would not trace them.
                               "--trace-underscore"});
  }
  flags.insert(flags.end(), {"-Wno-fatal", "-Wno-lint", "-Wno-style", "-Wno-MULTIDRIVEN",
                             "-Wno-UNOPTFLAT", "-CFLAGS", "-I..", "-o", "tb"});
  return flags;
}

// An exclusive flock() held for the lifetime of the object.
class FileLock {
 public:
  explicit FileLock(const fs::path& path) {
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ < 0) throw std::runtime_error(fmt::format("cannot open lock {}", path.string()));
    while (::flock(fd_, LOCK_EX) != 0) {
      if (errno != EINTR) throw std::runtime_error(fmt::format("cannot lock {}", path.string()));
    }
  }
  ~FileLock() { ::close(fd_); }
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;

 private:
  int fd_ = -1;
};

// The first lines of a build log that report errors, for the exception message.
std::string first_errors(const fs::path& log) {
  std::ifstream in(log);
  std::string line, out;
  int kept = 0;
  while (std::getline(in, line) && kept < 12) {
    if (line.find("%Error") != std::string::npos || line.find("error:") != std::string::npos) {
      out += "\n  " + line;
      ++kept;
    }
  }
  return out.empty() ? "\n  (no error lines; see the log)" : out;
}

std::string unique_suffix() {
  std::random_device rd;
  return fmt::format("{}-{:08x}", ::getpid(), rd());
}

}  // namespace

std::string verilator_version() {
  if (!find_program("verilator"))
    throw ToolMissing(fmt::format("verilator is not on PATH; {}", kInstallHint));
  fs::path tmp = fs::temp_directory_path() / fmt::format("gsqhw-vv-{}.txt", unique_suffix());
  int rc = run_logged({"verilator", "--version"}, tmp);
  std::string text;
  try {
    text = read_file(tmp);
  } catch (...) {
  }
  fs::remove(tmp);
  if (rc != 0) throw ToolMissing(fmt::format("`verilator --version` failed; {}", kInstallHint));
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  return text;
}

void require_verilator_toolchain() {
  verilator_version();
  for (const char* tool : {"make", "g++"}) {
    if (!find_program(tool))
      throw ToolMissing(fmt::format("{} is not on PATH (needed to compile Verilated models); {}",
                                    tool, kInstallHint));
  }
}

VerilatedModel build_verilated_model(const VerilatorBuildSpec& spec, const fs::path& cache_dir) {
  require_verilator_toolchain();
  if (spec.sources.empty()) throw UsageError("no Verilog sources to build");
  if (spec.fast && spec.systemc)
    throw UsageError("the fast Verilator build is the plain C++ testbench (drop systemc)");
  if (spec.threads < 1 || spec.threads > 64)
    throw UsageError(fmt::format("Verilator threads {} outside 1..64", spec.threads));
  const std::string harness = harness_source(spec.systemc);
  const std::string ports = ports_header(spec);
  const auto flags = verilator_flags(spec);

  std::string key_text = std::string("gsqhw-verilator-cache-v1\n") +
                         (spec.systemc ? "systemc\n" : "") + verilator_version() + "\n" + harness +
                         "\n" + ports + "\n";
  for (const auto& f : flags) key_text += f + " ";
  for (const auto& [name, text] : spec.sources)
    key_text += fmt::format("\nFILE {} {}\n{}", name, text.size(), text);
  VerilatedModel model;
  model.key = sha1_hex(key_text);

  fs::path root = cache_dir / "verilator";
  fs::create_directories(root);
  model.dir = root / model.key;
  model.executable = model.dir / "tb";
  FileLock lock(root / (model.key + ".lock"));
  if (fs::exists(model.dir / "ready")) {
    model.cache_hit = true;
    return model;
  }

  auto started = std::chrono::steady_clock::now();
  fs::path tmp = root / (model.key + ".tmp-" + unique_suffix());
  fs::remove_all(tmp);
  fs::create_directories(tmp / "obj");
  std::vector<std::string> argv = {"verilator"};
  argv.insert(argv.end(), flags.begin(), flags.end());
  for (const auto& [name, text] : spec.sources) {
    write_file(tmp / name, text);
    argv.push_back((tmp / name).string());
  }
  write_file(tmp / "gsqhw_ports.h", ports);
  write_file(tmp / "tb_main.cpp", harness);
  write_file(tmp / "label.txt", spec.label + "\n" + spec.top + "\n");
  argv.push_back((tmp / "tb_main.cpp").string());
  argv.push_back("-Mdir");
  argv.push_back((tmp / "obj").string());

  // ccache, when present, makes rebuilds of the Verilator runtime and unchanged models cheap.
  if (find_program("ccache")) ::setenv("OBJCACHE", "ccache", 0);
  if (spec.systemc) {
    // Debian's libsystemc-dev: headers in /usr/include, library on the default search path.
    ::setenv("SYSTEMC_INCLUDE", "/usr/include", 0);
    ::setenv("SYSTEMC_LIBDIR", "/usr/lib/x86_64-linux-gnu", 0);
  }
  fs::path log = tmp / "build.log";
  int rc = run_logged(argv, log, tmp);
  if (rc != 0 || !fs::exists(tmp / "obj" / "tb")) {
    fs::path kept = root / (model.key + ".failed");
    fs::remove_all(kept);
    fs::rename(tmp, kept);
    throw UsageError(fmt::format("Verilator could not build design top {} ({}):{}\n  full log: {}",
                                 spec.top, spec.label, first_errors(kept / "build.log"),
                                 (kept / "build.log").string()));
  }
  fs::rename(tmp / "obj" / "tb", tmp / "tb");
  fs::remove_all(tmp / "obj");  // objects are large and ccache keeps what is worth keeping
  write_file(tmp / "ready", "");
  fs::remove_all(model.dir);
  fs::rename(tmp, model.dir);
  model.build_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  return model;
}

fs::path cell_models_from_liberty(const fs::path& liberty, const fs::path& cache_dir) {
  if (!fs::exists(liberty))
    throw UsageError(fmt::format("liberty file {} does not exist", liberty.string()));
  if (!find_program("yosys"))
    throw ToolMissing("yosys is not on PATH (needed to turn liberty cells into Verilog models); "
                      "install it with `apt-get install yosys`");
  const std::string key = sha1_hex("gsqhw-cellmodels-v1\n" + read_file(liberty));
  fs::path dir = cache_dir / "cellmodels";
  fs::create_directories(dir);
  fs::path out = dir / (key + ".v");
  FileLock lock(dir / (key + ".lock"));
  if (fs::exists(out)) return out;
  fs::path tmp = dir / (key + ".tmp-" + unique_suffix() + ".v");
  fs::path log = dir / (key + ".log");
  fs::remove(log);
  int rc = run_logged({"yosys", "-q", "-p",
                       fmt::format("read_liberty {}; write_verilog -noattr {}", liberty.string(),
                                   tmp.string())},
                      log);
  if (rc != 0 || !fs::exists(tmp))
    throw UsageError(fmt::format("yosys could not read liberty {}: see {}", liberty.string(),
                                 log.string()));
  fs::rename(tmp, out);
  return out;
}

}  // namespace gsqhw
