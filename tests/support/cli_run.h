// Running the built CLI (GSQHW_CLI) or a shell command line from a test, with its output
// captured: the one helper the CLI tests of every area share.
#pragma once

#include <sys/wait.h>

#include <cstdio>
#include <string>

namespace gsqhw::test {

struct CliRun {
  int exit_code = -1;  // -1 when the shell could not be started or the command was killed
  std::string out;     // stdout, and stderr unless dropped
};

// Runs `command_line` with /bin/sh and captures what it writes to stdout.
inline CliRun run_shell(const std::string& command_line) {
  CliRun r;
  FILE* pipe = ::popen(command_line.c_str(), "r");
  if (!pipe) return r;
  char buffer[4096];
  size_t n;
  while ((n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0) r.out.append(buffer, n);
  const int status = ::pclose(pipe);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

// Whether a CLI run's stderr joins its captured output or is thrown away (for commands whose
// stdout is parsed, e.g. --json, while progress goes to stderr).
enum class Stderr { captured, dropped };

// Runs `gsqhw ARGS` (the built binary; ARGS as a shell would split them).
inline CliRun run_cli(const std::string& args, Stderr stderr_mode = Stderr::captured) {
  return run_shell(std::string(GSQHW_CLI) + " " + args + (stderr_mode == Stderr::captured ? " 2>&1" : " 2>/dev/null"));
}

}  // namespace gsqhw::test
