// What `gsqhw lota` and `gsqhw ptq161` share: the options that pick one layer of a model and
// its activations, the RTL/synthesis options, loading that layer, the error measures, and
// synthesizing a generated unit with the sweep's flow.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "gen/lota_rtlcheck.h"
#include "workloads/models.h"

namespace gsqhw::cli {

struct SiblingLayerOptions {
  std::string model = "tiny", checkpoint, proj = "q", out;
  int64_t layer = 0, tokens = 16;
  uint64_t seed = 1;
  bool verify = false, json = false, synth = false;
  double clock_ns = 20.0, input_activity = 0.1;  // the defaults of `gsqhw synth`
};

// --model --checkpoint --layer --proj --tokens --seed.
void add_layer_options(CLI::App& app, SiblingLayerOptions& o, const std::string& tokens_help);
// --out --verify --synth --clock --input-activity --json.
void add_rtl_options(CLI::App& app, SiblingLayerOptions& o, const std::string& out_help,
                     const std::string& synth_help);
// UsageError when --verify or --synth is given without --out.
void require_out_for_rtl_checks(const SiblingLayerOptions& o);

struct LayerData {
  std::string source;  // "synthetic" or the checkpoint path
  ModelShape shape;
  int64_t d_out = 0, d_in = 0;
  std::vector<float> w, x;  // d_out x d_in, tokens x d_in
};
// The layer's base weight (checkpoint or synthetic) and synthetic activations; UsageError for
// a layer or token count out of range.
LayerData load_layer(const SiblingLayerOptions& o);

// Relative Frobenius error ||a - ref|| / ||ref|| (absolute when ref is zero).
double relative_error(const std::vector<float>& a, const std::vector<float>& ref);

// Yosys + OpenSTA on the default library (synth/flow.h, vectorless power): the same flow and
// settings as `gsqhw synth` / the sweep, so the figures sit next to their GSE-INT/FP8 rows.
nlohmann::json synthesize(const rtlcheck::RtlBundle& rtl, const std::filesystem::path& dir,
                          double clock_ns, double input_activity, double macs_per_cycle);
void print_synthesis(const nlohmann::json& s);

}  // namespace gsqhw::cli
