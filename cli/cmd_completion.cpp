// `gsqhw completion bash`: prints a bash completion script generated from the command
// definitions (cli/completion.h).
#include <iostream>

#include "cli/command.h"
#include "cli/completion.h"

namespace gsqhw::cli {
namespace {

Runner setup(CLI::App& app) {
  auto shell = std::make_shared<std::string>();
  app.add_option("shell", *shell, "the shell (bash)")->required()->check(CLI::IsMember({"bash"}));
  app.footer("Use: source <(gsqhw completion bash), or save the output as "
             "~/.local/share/bash-completion/completions/gsqhw");
  return [&app, shell]() -> int {  // shell is kept alive: CLI11 writes it while parsing
    std::cout << bash_completion(*app.get_parent());
    return 0;
  };
}

GSQHW_COMMAND("completion", "Print a shell completion script: gsqhw completion bash", setup);

}  // namespace
}  // namespace gsqhw::cli
