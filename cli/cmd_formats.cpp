// `gsqhw formats`: lists the registered number formats (numerics/format.h registry).
#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "cli/command.h"
#include "numerics/format.h"

namespace {

gsqhw::cli::Runner setup_formats(CLI::App& app) {
  auto json = std::make_shared<bool>(false);
  app.add_flag("--json", *json, "Print a JSON array of {family, syntax, description, example}");
  app.footer(
      "Every format is named by a spec string; short forms fill in defaults and the canonical "
      "form prints every parameter, e.g. gse:b=6 is gse:b=6,g=32,e=5,scale=floor,round=rne,"
      "range=symmetric. Semantics: docs/formats.md and docs/numerics.md.");
  return [json]() {
    const auto& formats = gsqhw::registered_formats();
    if (*json) {
      nlohmann::json list = nlohmann::json::array();
      for (const auto& f : formats)
        list.push_back({{"family", f.family},
                        {"syntax", f.syntax},
                        {"description", f.description},
                        {"example", f.example}});
      fmt::print("{}\n", list.dump(2));
      return 0;
    }
    for (const auto& f : formats) {
      fmt::print("{}\n  syntax:  {}\n  about:   {}\n  example: {}\n\n", f.family, f.syntax,
                 f.description, f.example);
    }
    return 0;
  };
}

}  // namespace

GSQHW_COMMAND("formats", "List the number formats and their spec syntax", setup_formats);
