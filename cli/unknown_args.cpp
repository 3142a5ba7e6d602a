// Unknown command / option diagnosis (cli/unknown_args.h).
#include "cli/unknown_args.h"

#include <fmt/format.h>

#include "cli/suggest.h"

namespace gsqhw::cli {

std::vector<std::string> option_names(const CLI::App& command) {
  std::vector<std::string> names;
  for (const CLI::Option* opt : command.get_options()) {
    for (const auto& l : opt->get_lnames()) names.push_back("--" + l);
    for (const auto& s : opt->get_snames()) names.push_back("-" + s);
  }
  return names;
}

std::vector<std::string> command_names(const CLI::App& root) {
  std::vector<std::string> names;
  for (const CLI::App* sub : root.get_subcommands([](const CLI::App*) { return true; }))
    names.push_back(sub->get_name());
  return names;
}

namespace {

bool is_number(const std::string& s) {
  if (s.size() < 2 || s[0] != '-') return false;
  char* end = nullptr;
  std::strtod(s.c_str(), &end);
  return end && *end == '\0';
}

// The option a token names, e.g. "--out" for "--out=dir", or nothing if it is not an option.
std::optional<std::string> option_token(const std::string& token) {
  if (token.size() < 2 || token[0] != '-' || token == "--" || is_number(token)) return std::nullopt;
  if (token[1] == '-') return token.substr(0, token.find('='));
  return token.substr(0, 2);  // -x, -xVALUE
}

}  // namespace

std::optional<std::string> explain_unknown_arguments(const CLI::App& root,
                                                     const std::vector<std::string>& args) {
  size_t i = 0;
  for (; i < args.size(); ++i) {  // options of gsqhw itself take no values
    auto name = option_token(args[i]);
    if (!name) break;
    if (!root.get_option_no_throw(*name))
      return fmt::format("gsqhw: error: unknown option '{}'{}; options of a command go after its "
                         "name (`gsqhw help` lists the commands)",
                         *name, did_you_mean(*name, option_names(root)));
  }
  if (i == args.size()) return std::nullopt;
  const CLI::App* command = nullptr;
  for (const CLI::App* sub : root.get_subcommands([](const CLI::App*) { return true; }))
    if (sub->check_name(args[i])) command = sub;
  if (!command)
    return fmt::format("gsqhw: error: unknown command '{}'{}; `gsqhw help` lists the commands", args[i],
                       did_you_mean(args[i], command_names(root)));

  // The command's own options. A token after an option that takes values is one of them.
  bool value_expected = false;
  for (++i; i < args.size(); ++i) {
    const std::string& token = args[i];
    if (token == "--") break;
    auto name = option_token(token);
    if (!name) {
      value_expected = false;  // a value, or a positional argument: the parser judges those
      continue;
    }
    const CLI::Option* opt = command->get_option_no_throw(*name);
    if (!opt) {
      if (value_expected && token[1] != '-') continue;  // "-x" as a value, e.g. a negative
      return fmt::format("gsqhw {}: error: unknown option '{}'{}; `gsqhw {} --help` lists the options",
                         command->get_name(), *name, did_you_mean(*name, option_names(*command)),
                         command->get_name());
    }
    value_expected = opt->get_type_size() != 0 && token.find('=') == std::string::npos;
  }
  return std::nullopt;
}

}  // namespace gsqhw::cli
