// TOML config files for commands (cli/config_file.h).
#include "cli/config_file.h"

#include <fmt/format.h>

#include <fstream>
#include <sstream>
#include <unistd.h>
#include <toml++/toml.h>

#include "cli/suggest.h"
#include "base/errors.h"

namespace gsqhw::cli {
namespace {

bool is_flag(const CLI::Option& opt) { return opt.get_type_size() == 0 || opt.get_expected_max() == 0; }

bool is_repeatable(const CLI::Option& opt) {
  return opt.get_items_expected_max() > 1 || opt.get_multi_option_policy() == CLI::MultiOptionPolicy::TakeAll;
}

// The options a config file may set: named, long-named, not --help or --config itself.
bool configurable(const CLI::App& command, const CLI::Option& opt) {
  return opt.nonpositional() && !opt.get_lnames().empty() && opt.get_configurable() &&
         &opt != command.get_help_ptr() && opt.get_lnames().front() != "config";
}

std::string type_name(const toml::node& node) {
  std::ostringstream s;
  s << node.type();
  return s.str();
}

// A TOML scalar as the string the option would get on the command line.
std::string scalar_text(const toml::node& node, const std::string& where) {
  if (auto s = node.as_string()) return s->get();
  if (auto i = node.as_integer()) return std::to_string(i->get());
  if (auto f = node.as_floating_point()) return fmt::format("{}", f->get());
  if (auto b = node.as_boolean()) return b->get() ? "true" : "false";
  throw UsageError(fmt::format("{}: a {} is not a value an option takes", where, type_name(node)));
}

}  // namespace

std::shared_ptr<ConfigFile> ConfigFile::add_to(CLI::App& command) {
  std::shared_ptr<ConfigFile> config(new ConfigFile(command));
  command.add_option("--config", config->path_,
                     fmt::format("TOML file of options: keys are the long option names without "
                                 "'--' (jobs = 4, formats = [\"gse\", \"fp8:e4m3\"], no-report = "
                                 "true); options given on the command line win"))
      ->check(CLI::ExistingFile);
  return config;
}

void ConfigFile::apply() {
  if (path_.empty()) return;
  toml::table file;
  try {
    file = toml::parse_file(path_);
  } catch (const toml::parse_error& e) {
    const auto& at = e.source().begin;
    throw UsageError(fmt::format("{}:{}:{}: TOML syntax error: {}", path_, at.line, at.column,
                                 e.description()));
  }
  std::vector<std::string> known;
  for (const CLI::Option* opt : command_.get_options())
    if (configurable(command_, *opt)) known.push_back(opt->get_lnames().front());

  for (const auto& [key_view, node] : file) {
    std::string key(key_view.str());
    const std::string where =
        fmt::format("{}:{}: key '{}'", path_, node.source().begin.line, key);
    if (node.is_table())
      throw UsageError(fmt::format("{}: tables are not used; write the options as top-level keys", where));
    std::string name = key;
    std::replace(name.begin(), name.end(), '_', '-');
    CLI::Option* opt = command_.get_option_no_throw("--" + name);
    if (!opt || !configurable(command_, *opt))
      throw UsageError(fmt::format("{} is not an option of `gsqhw {}`{}", where, command_.get_name(),
                                   did_you_mean(name, known)));
    if (opt->count() > 0) continue;  // given on the command line: that wins

    std::vector<std::string> values;
    if (auto array = node.as_array()) {
      if (!is_repeatable(*opt))
        throw UsageError(fmt::format("{} takes one value, not an array", where));
      for (const auto& element : *array) values.push_back(scalar_text(element, where));
    } else {
      values.push_back(scalar_text(node, where));
    }
    if (values.empty()) continue;  // [] leaves the default, as leaving the key out does
    if (is_flag(*opt) && !node.is_boolean())
      throw UsageError(fmt::format("{} is a flag: write {} = true or false", where, key));
    try {
      opt->add_result(values);
      opt->run_callback();
    } catch (const CLI::ParseError& e) {
      throw UsageError(fmt::format("{}: {}", where, e.what()));
    }
  }
}

std::string ConfigFile::resolved(const std::string& header) const {
  toml::table table;
  for (const CLI::Option* opt : command_.get_options()) {
    if (!configurable(command_, *opt)) continue;
    const std::string key = opt->get_lnames().front();
    if (is_flag(*opt)) {
      table.insert(key, opt->count() > 0 ? opt->as<bool>() : opt->get_default_str() == "true");
      continue;
    }
    std::vector<std::string> values;
    if (opt->count() > 0)
      values = opt->results();
    else if (const std::string d = opt->get_default_str(); !d.empty() && d != "[]")
      values = opt->as<std::vector<std::string>>();  // CLI11 splits "[a,b]" defaults
    const std::string type = opt->get_type_name();
    auto typed = [&](const std::string& text, auto&& insert) {
      try {
        size_t used = 0;
        if (type.rfind("INT", 0) == 0 || type.rfind("UINT", 0) == 0) {
          const long long v = std::stoll(text, &used);
          if (used == text.size()) return insert(static_cast<int64_t>(v));
        } else if (type.rfind("FLOAT", 0) == 0) {
          const double v = std::stod(text, &used);
          if (used == text.size()) return insert(v);
        }
      } catch (const std::exception&) {
      }
      insert(text);
    };
    if (is_repeatable(*opt)) {
      toml::array array;
      for (const auto& v : values) typed(v, [&](auto x) { array.push_back(x); });
      table.insert(key, std::move(array));
    } else if (!values.empty()) {
      typed(values.back(), [&](auto x) { table.insert(key, x); });
    }
  }
  std::ostringstream out;
  std::istringstream lines(header);
  for (std::string line; std::getline(lines, line);) out << "# " << line << "\n";
  out << table << "\n";
  return out.str();
}


}  // namespace gsqhw::cli
