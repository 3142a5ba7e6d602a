// One help style for every command: the option column shows the value's type only, and a
// default captured from the bound variable is appended to the description as "(default X)",
// the way hand-written descriptions state defaults that cannot be captured
// ("(default $GSQHW_CACHE or ~/.cache/gsqhw)"). CLI11's own style (`--layer INT=0`) is not used.
#pragma once

#include <CLI/CLI.hpp>
#include <string>

namespace gsqhw::cli {

class HelpFormatter : public CLI::Formatter {
 public:
  std::string make_option_opts(const CLI::Option* opt) const override;
  std::string make_option_desc(const CLI::Option* opt) const override;
};

// The default an option's help shows ("" for none): the captured default of a value option
// whose description does not already state one; flags and empty defaults show nothing.
std::string help_default(const CLI::Option& opt);

}  // namespace gsqhw::cli
