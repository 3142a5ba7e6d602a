// Helpers shared by the tests/gen executables: the external tools (Verilator, Yosys, Icarus
// Verilog), scratch folders and the checks every generated design goes through the same way.
#pragma once

#include <gtest/gtest.h>

#include <fmt/format.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <sys/wait.h>
#include <unistd.h>

#include "gen/generator.h"

namespace gsqhw::gen_test {

namespace fs = std::filesystem;

inline bool have_tool(const std::string& tool) {
  return std::system(fmt::format("command -v {} >/dev/null 2>&1", tool).c_str()) == 0;
}

inline std::string read_file(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Runs a shell command, returns its exit status; output goes to `log`.
inline int run(const std::string& command, const fs::path& log) {
  int status = std::system(fmt::format("{} >{} 2>&1", command, log.string()).c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// An empty folder of its own below the temp directory (the process id keeps parallel test
// processes apart).
inline fs::path scratch(const std::string& name) {
  fs::path dir = fs::temp_directory_path() / fmt::format("gsqhw_gen_test_{}_{}", getpid(), name);
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

// The design's files as written to `dir`, each preceded by a space (for a tool's command line).
inline std::string file_list(const GeneratedDesign& g, const fs::path& dir) {
  std::string files;
  for (const auto& [name, text] : g.files) files += " " + (dir / name).string();
  return files;
}

// The design written to `dir` is lint clean under `verilator --lint-only -Wall` and elaborates
// under Yosys (hierarchy -check, proc, check -assert); a failure prints the tool's log.
inline void expect_lint_clean(const GeneratedDesign& g, const fs::path& dir) {
  const std::string files = file_list(g, dir);
  const fs::path lint_log = dir / "verilator.log", yosys_log = dir / "yosys.log";
  EXPECT_EQ(run(fmt::format("verilator --lint-only -Wall --top-module {}{}", g.top, files),
                lint_log),
            0)
      << read_file(lint_log);
  EXPECT_EQ(run(fmt::format("yosys -q -p 'read_verilog{}; hierarchy -check -top {}; proc; "
                            "check -assert'",
                            files, g.top),
                yosys_log),
            0)
      << read_file(yosys_log);
}

// Compiles the testbench `tb_file` with the design written to `dir` under Icarus Verilog into
// `binary` (run it with `vvp -n`); a failed compile is fatal and prints the compiler's log.
inline void compile_in_icarus(const GeneratedDesign& g, const fs::path& dir,
                              const std::string& tb_file, const fs::path& binary,
                              const fs::path& log) {
  ASSERT_EQ(run(fmt::format("iverilog -g2005 -o {} {}{}", binary.string(), (dir / tb_file).string(),
                            file_list(g, dir)),
                log),
            0)
      << read_file(log);
}

}  // namespace gsqhw::gen_test
