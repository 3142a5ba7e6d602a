// The scale sweep (`gsqhw sweep --scale`): whole R x R arrays from 2x2 to 64x64 for GSE-INT
// (per-PE and shared-column, fixed32.16), FP8 E4M3/E5M2 (fp32 and, the fair baseline, a wide
// fixed-point accumulator), plain INT-b and BF16, composed from their module kinds
// (synth/compose.h) on one library per run. Per design the pipeline depth is the smallest that
// meets the stated clock (composition at 4x4, pipe 1..4), so the comparison is at equal
// throughput; area and energy are given per MAC and per MAC/s. Power is vectorless (a stated
// toggle rate at every module input, OpenSTA propagation): gate-level activity of a 64x64
// array is out of this machine's reach, and the report says so next to every energy figure.
//
// Rows go to OUT/scale.jsonl, one line per (library, clock, design, size), appended the moment
// a composition finishes; a re-run skips what is there (resumable, nothing lost when killed).
// `write_scale_report` turns every row of the file (all libraries run into the same folder)
// into OUT/scale.md, OUT/scale.csv and one plot per library.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "synth/liberty.h"

namespace gsqhw::synth {

struct ScaleFamily {
  std::string label;      // "GSE-INT7 shared-column", "FP8 E4M3 fp32", ...
  std::string role;       // "gse", "gse-pe", "fp8", "fp8-fixed", "int", "bf16"
  std::string pattern;    // the design string with {n} (array size) and {pipe} placeholders
  bool pipelined = true;  // false: the design takes no pipe (baseline:intarray)
  std::string design(int n, int pipe) const;
};

// The default families for GSE-INT width b.
std::vector<ScaleFamily> scale_families(int gse_bits);

struct ScaleOptions {
  LibraryChoice library;
  double clock_ns = 30.0;
  double input_activity = 0.1;
  std::vector<int> sizes = {2, 4, 8, 16, 32, 64};
  int gse_bits = 0;            // 0: b* (headline_gse_bits on the built-in traces)
  std::vector<std::string> only;  // family labels to run (empty: all)
  bool choose_pipe = true;     // smallest pipe 1..4 meeting the clock (at 4x4)
  std::filesystem::path out_dir = "out/scale";
  std::filesystem::path cache_dir;  // empty: default cache (kinds under CACHE/kinds)
  bool progress = true;
  // "vectorless" (default), or "gate": also energy per MAC from gate-level activity of each
  // module kind (synth/kind_energy.h), measured once per family on an `energy_measure_size`
  // array driven by the first `energy_activity_traces` traces of the first `energy_traces`
  // folder whose format fits the family (else the built-in tiny LoRA set, labelled synthetic),
  // and composed by instance count and duty at every size. Stored as rows of their own
  // (kind "gate"), reported in a table of their own: never mixed with vectorless figures.
  std::string energy = "vectorless";
  std::vector<std::filesystem::path> energy_traces;
  int energy_activity_traces = 2;
  int energy_measure_size = 4;
};

struct ScaleSummary {
  int rows = 0, reused = 0, composed = 0, failed = 0;
  double seconds = 0;
  std::filesystem::path jsonl, report;
};

ScaleSummary run_scale_sweep(const ScaleOptions& options);

// Reads OUT/scale.jsonl and writes OUT/scale.md, OUT/scale.csv, OUT/plots/scale_<library>.png|svg.
std::filesystem::path write_scale_report(const std::filesystem::path& out_dir);

// The table-based analytic model of the report (45 nm per-operation figures, Horowitz ISSCC
// 2014): energy pJ and area um^2 of one MAC of each modelled design. Exposed for tests.
struct AnalyticMac {
  std::string design, model;
  double pj = 0, um2 = 0;
  double multiplier_um2 = 0, accumulate_um2 = 0;  // the two parts such a model has (um2 = their sum)
  double multiplier_pj = 0, accumulate_pj = 0;    // likewise for energy (pj = their sum)
};
std::vector<AnalyticMac> analytic_macs(int gse_bits, int group_size, int rows);

}  // namespace gsqhw::synth
