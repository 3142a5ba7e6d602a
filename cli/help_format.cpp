// Help layout (cli/help_format.h).
#include "cli/help_format.h"

namespace gsqhw::cli {

std::string help_default(const CLI::Option& opt) {
  if (opt.get_expected_min() == 0 || opt.get_type_size() == 0) return "";  // a flag
  std::string value = opt.get_default_str();
  if (value.empty() || value == "[]" || value == "\"\"") return "";
  if (opt.get_description().find("default") != std::string::npos) return "";
  return value;
}

std::string HelpFormatter::make_option_opts(const CLI::Option* opt) const {
  // CLI::Formatter::make_option_opts without the "=default" after the type.
  std::string out;
  if (!opt->get_option_text().empty()) return " " + opt->get_option_text();
  if (opt->get_type_size() != 0) {
    if (!opt->get_type_name().empty()) out += " " + get_label(opt->get_type_name());
    if (opt->get_expected_max() == CLI::detail::expected_max_vector_size)
      out += " ...";
    else if (opt->get_expected_min() > 1)
      out += " x " + std::to_string(opt->get_expected());
    if (opt->get_required()) out += " " + get_label("REQUIRED");
  }
  if (!opt->get_envname().empty()) out += " (" + get_label("Env") + ":" + opt->get_envname() + ")";
  if (!opt->get_needs().empty()) {
    out += " " + get_label("Needs") + ":";
    for (const CLI::Option* other : opt->get_needs()) out += " " + other->get_name();
  }
  if (!opt->get_excludes().empty()) {
    out += " " + get_label("Excludes") + ":";
    for (const CLI::Option* other : opt->get_excludes()) out += " " + other->get_name();
  }
  return out;
}

std::string HelpFormatter::make_option_desc(const CLI::Option* opt) const {
  std::string text = opt->get_description();
  if (std::string value = help_default(*opt); !value.empty()) text += " (default " + value + ")";
  return text;
}

}  // namespace gsqhw::cli
