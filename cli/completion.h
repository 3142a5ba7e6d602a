// Shell completion generated from the command definitions (the CLI11 apps every cli/cmd_*.cpp
// registers), so it cannot fall behind the commands.
#pragma once

#include <CLI/CLI.hpp>
#include <string>

namespace gsqhw::cli {

// A bash script defining _gsqhw and `complete -F _gsqhw gsqhw`: command names, each command's
// options, the choices of options that have a fixed set (CLI::IsMember), file names elsewhere.
std::string bash_completion(const CLI::App& root);

}  // namespace gsqhw::cli
