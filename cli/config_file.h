// `--config FILE.toml` for a command: a TOML file whose keys are the command's long option names
// without the dashes (`jobs = 4`, `formats = ["gse", "fp8:e4m3"]`, `no-report = true`; `_`
// may stand for `-`). Precedence: the command line, then the file, then the built-in defaults.
// The values go through the same CLI11 options as flags do (same conversions, same checks), so
// the file's keys cannot drift from the flags.
//
// Parser: toml++ (Debian libtomlplusplus-dev), a complete TOML 1.0 parser with line:column
// errors. CLI11 2.1's own config reader is not used: it is line-based (a quoted value holding
// '#' or ',' is cut or split) and in CLI11 2.1 it only reads a config option of the top-level
// app, not of a subcommand.
#pragma once

#include <CLI/CLI.hpp>
#include <filesystem>
#include <memory>
#include <string>

namespace gsqhw::cli {

class ConfigFile {
 public:
  // Adds `--config FILE` to `command`; keep the result and call apply() in the runner.
  static std::shared_ptr<ConfigFile> add_to(CLI::App& command);

  // Fills the options the command line left out from the file, if --config was given. Throws
  // UsageError naming the file and the problem: TOML syntax (line:column), an unknown key (with
  // the closest option names), a value the option does not take.
  void apply();

  // Every option's effective value (command line, file or default) as a TOML document that
  // `--config` reads back to repeat the run exactly; `header` becomes leading comment lines.
  std::string resolved(const std::string& header) const;

  // The --config value ("" when not given).
  const std::string& path() const { return path_; }

 private:
  explicit ConfigFile(CLI::App& command) : command_(command) {}
  CLI::App& command_;
  std::string path_;
};


}  // namespace gsqhw::cli
