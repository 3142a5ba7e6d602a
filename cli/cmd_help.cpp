// `gsqhw help [COMMAND]`: the help of gsqhw or of one command (same text as --help).
#include <fmt/format.h>

#include <iostream>

#include "cli/command.h"
#include "cli/suggest.h"
#include "cli/unknown_args.h"
#include "base/errors.h"

namespace gsqhw::cli {
namespace {

Runner setup(CLI::App& app) {
  auto command = std::make_shared<std::string>();
  app.add_option("command", *command, "the command to describe (default: list the commands)");
  return [&app, command]() -> int {
    // The formatter directly: App::help() would describe the command being run (`help`).
    const CLI::App& root = *app.get_parent();
    if (command->empty()) {
      std::cout << root.get_formatter()->make_help(&root, root.get_name(), CLI::AppFormatMode::Normal);
      return 0;
    }
    for (const CLI::App* sub : root.get_subcommands([](const CLI::App*) { return true; }))
      if (sub->get_name() == *command) {
        std::cout << sub->get_formatter()->make_help(sub, root.get_name() + " " + sub->get_name(),
                                                     CLI::AppFormatMode::Normal);
        return 0;
      }
    throw UsageError(fmt::format("unknown command '{}'{}; `gsqhw help` lists the commands", *command,
                                 did_you_mean(*command, command_names(root))));
  };
}

GSQHW_COMMAND("help", "Show the help of gsqhw or of one command: gsqhw help COMMAND", setup);

}  // namespace
}  // namespace gsqhw::cli
