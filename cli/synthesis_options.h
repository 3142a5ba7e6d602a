// The options that choose the synthesis library and constraints, shared by `gsqhw synth` and
// `gsqhw sweep` so that both spell, default and check them the same way.
#pragma once

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

#include "synth/liberty.h"

namespace gsqhw::cli {

struct SynthesisArgs {
  std::vector<std::string> liberty;
  std::string pdk, pdk_dir;
  double clock_ns = 30.0;
  double input_activity = 0.1;  // vectorless: transitions per cycle at each data input
};

// --liberty, --pdk, --pdk-dir, --clock, --input-activity.
void add_synthesis_options(CLI::App& app, SynthesisArgs& args);

// The library the options name. Throws UsageError for --pdk without --pdk-dir.
synth::LibraryChoice library_choice(const SynthesisArgs& args);

}  // namespace gsqhw::cli
