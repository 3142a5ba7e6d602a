// Synthesis library and constraint options (cli/synthesis_options.h).
#include "cli/synthesis_options.h"

#include <fmt/format.h>

#include "base/errors.h"

namespace gsqhw::cli {

void add_synthesis_options(CLI::App& app, SynthesisArgs& args) {
  app.add_option("--liberty", args.liberty, "Liberty file(s) (.lib or .lib.gz); default OSU 0.18um");
  app.add_option("--pdk", args.pdk, "named library: sky130 or asap7 (needs --pdk-dir)");
  app.add_option("--pdk-dir", args.pdk_dir, "folder holding the PDK's .lib.gz files");
  app.add_option("--clock", args.clock_ns, "clock period in ns (default 30: every default design meets it at 180 nm)");
  app.add_option("--input-activity", args.input_activity,
                 "vectorless power: transitions per cycle at each data input (default 0.1)");
}

synth::LibraryChoice library_choice(const SynthesisArgs& args) {
  if (!args.pdk.empty() && args.pdk_dir.empty())
    throw UsageError(fmt::format("--pdk {} needs --pdk-dir DIR", args.pdk));
  synth::LibraryChoice library;
  library.pdk = args.pdk;
  library.pdk_dir = args.pdk_dir;
  for (const auto& f : args.liberty) library.files.push_back(f);
  return library;
}

}  // namespace gsqhw::cli
