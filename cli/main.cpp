// gsqhw: the command-line skin over the gsqhw libraries. Commands register themselves
// (cli/command.h); this file only parses, dispatches and maps errors to exit codes.
#include <algorithm>
#include <cstdio>
#include <exception>

#include "cli/command.h"
#include "gsqhw_version.h"
#include "sim/errors.h"

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
  app.set_version_flag("--version", GSQHW_VERSION);
  app.require_subcommand(1);

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
