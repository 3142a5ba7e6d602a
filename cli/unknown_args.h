// When CLI11 rejects a command line, find the word the user most likely mistyped (an unknown
// command or option) and say so with the closest known names, instead of the parser's generic
// message ("The following arguments were not expected", or a missing --design that the
// misspelt option was meant to give).
#pragma once

#include <CLI/CLI.hpp>
#include <optional>
#include <string>
#include <vector>

namespace gsqhw::cli {

// The long and short names of a command's options ("--out", "-o"), help included.
std::vector<std::string> option_names(const CLI::App& command);

// The names of the root's subcommands.
std::vector<std::string> command_names(const CLI::App& root);

// An error line ("gsqhw gen: error: unknown option '--output' (did you mean '--out'?); ...")
// naming the first unknown command or option in `args` (argv without argv[0]), with
// suggestions, or nothing when every command and option name is known.
std::optional<std::string> explain_unknown_arguments(const CLI::App& root,
                                                     const std::vector<std::string>& args);

}  // namespace gsqhw::cli
