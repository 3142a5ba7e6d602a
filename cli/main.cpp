// gsqhw: the command-line skin over the gsqhw libraries. Commands register themselves
// (cli/command.h); this file only parses, dispatches and maps errors to exit codes.
#include <algorithm>
#include <cstdio>
#include <exception>

#include "cli/command.h"
#include "cli/help_format.h"
#include "cli/unknown_args.h"
#include "gsqhw_version.h"
#include "base/errors.h"

namespace gsqhw::cli {
std::vector<CommandEntry>& command_registry() {
  static std::vector<CommandEntry> registry;
  return registry;
}
}  // namespace gsqhw::cli

int main(int argc, char** argv) {
  using namespace gsqhw;
  CLI::App app{"gsqhw " GSQHW_VERSION
               ": RTL generator, golden model, co-simulator and synthesis sweeps for "
               "low-precision (GSE-INT, FP8, ...) training accelerators"};
  app.name("gsqhw");
  app.set_version_flag("-V,--version", GSQHW_VERSION);
  app.require_subcommand(1);
  app.footer(
      "`gsqhw help COMMAND` (or `gsqhw COMMAND --help`) documents a command's options; "
      "`gsqhw completion bash` prints a bash completion script.\nExit codes: 0 ok, 1 failure or "
      "mismatch, 2 bad usage, bad input or a missing tool.");
  // Every command inherits these: one help layout (cli/help_format.h), and defaults captured
  // from the bound variables so that help shows them the same way everywhere.
  app.formatter(std::make_shared<cli::HelpFormatter>());
  app.option_defaults()->always_capture_default();

  auto& registry = cli::command_registry();
  std::sort(registry.begin(), registry.end(),
            [](const auto& a, const auto& b) { return a.name < b.name; });
  cli::Runner selected;
  std::vector<std::pair<CLI::App*, cli::Runner>> runners;
  for (auto& entry : registry) {
    CLI::App* sub = app.add_subcommand(entry.name, entry.summary);
    runners.emplace_back(sub, entry.setup(*sub));
  }

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    // A misspelt command or option is the likeliest cause; name it and the closest names.
    if (auto why = cli::explain_unknown_arguments(app, std::vector<std::string>(argv + 1, argv + argc))) {
      std::fprintf(stderr, "%s\n", why->c_str());
      return 2;
    }
    app.exit(e);
    return 2;
  }

  for (auto& [sub, runner] : runners) {
    if (!sub->parsed()) continue;
    try {
      return runner();
    } catch (const UsageError& e) {
      std::fprintf(stderr, "gsqhw %s: error: %s\n", sub->get_name().c_str(), e.what());
      return 2;
    } catch (const ToolMissing& e) {
      std::fprintf(stderr, "gsqhw %s: missing tool: %s\n", sub->get_name().c_str(), e.what());
      return 2;
    } catch (const MismatchError& e) {
      std::fprintf(stderr, "gsqhw %s: MISMATCH: %s\n", sub->get_name().c_str(), e.what());
      return 1;
    } catch (const std::exception& e) {
      std::fprintf(stderr, "gsqhw %s: failed: %s\n", sub->get_name().c_str(), e.what());
      return 1;
    }
  }
  return 2;
}
