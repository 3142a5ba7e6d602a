// Self-registering CLI commands (the Yosys pattern): each cli/cmd_*.cpp file defines one
// command whose options and help text live beside its code, and registers itself with
// GSQHW_COMMAND. main.cpp knows no command by name.
//
// A command's setup function adds its options to the CLI11 subcommand and returns the function
// that runs it. The runner returns the process exit code:
//   0 ok, 1 failure/mismatch, 2 bad usage or input.
// Throwing UsageError / ToolMissing also gives 2, MismatchError and other exceptions give 1.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <string>
#include <vector>

namespace gsqhw::cli {

using Runner = std::function<int()>;
using Setup = std::function<Runner(CLI::App& subcommand)>;

struct CommandEntry {
  std::string name;
  std::string summary;
  Setup setup;
};

std::vector<CommandEntry>& command_registry();

struct CommandRegistrar {
  CommandRegistrar(std::string name, std::string summary, Setup setup) {
    command_registry().push_back({std::move(name), std::move(summary), std::move(setup)});
  }
};

}  // namespace gsqhw::cli

#define GSQHW_CONCAT_INNER(a, b) a##b
#define GSQHW_CONCAT(a, b) GSQHW_CONCAT_INNER(a, b)
// Usage at namespace scope: GSQHW_COMMAND("formats", "List the number formats", setup_fn);
#define GSQHW_COMMAND(name, summary, setup) \
  static ::gsqhw::cli::CommandRegistrar GSQHW_CONCAT(gsqhw_command_, __LINE__)(name, summary, setup)
