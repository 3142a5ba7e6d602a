// The sweep report: Markdown + HTML with the results table (each figure also as a ratio to
// FP8 E4M3 at the same level), gnuplot plots (PNG and SVG), the headline GSE-INT vs FP8
// comparison next to the paper's 5x power / 11x area, and the GSE-INT PE area against a plain
// INT-b MAC PE and a bare multiplier+adder+register.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace gsqhw::synth {

// Writes report.md, report.html and plots/ into out_dir from the most recent sweep stored in
// `db`; returns the path of report.md. Plots need gnuplot: without it the report says so
// (and how to install it) instead of failing.
std::filesystem::path write_report(const std::filesystem::path& db, const std::filesystem::path& out_dir);
// The same from several results files (e.g. one sweep per library, or a gate-level PE sweep
// and an RTL-activity array sweep): their latest sweeps are combined; with more than one
// library the report opens with the headline on each library side by side, and the tables
// and plots below are those of the first file's library.
std::filesystem::path write_report(const std::vector<std::filesystem::path>& dbs, const std::filesystem::path& out_dir);

// The headline comparison, computed from result objects (exposed for tests).
struct Headline {
  bool found = false;          // a GSE-INT b at least as accurate as FP8 E4M3 exists
  std::string explanation;     // why not, when !found
  int bits = 0;                // the smallest such b
  double gse_sqnr_db = 0, fp8_sqnr_db = 0;
  // Where the figures hold, from GSE-INT b*'s PE point: its accumulator, the library, the
  // clock, and the traces the SQNR figures are over ("builtin-tiny" or "user", and how many).
  std::string gse_acc, library;
  double clock_ns = 0;
  std::string trace_set;
  int traces = 0;
  // Natural accumulators (GSE fixed, FP8 fp32), same level and clock (equal throughput).
  std::string natural_level;
  double natural_power_ratio = 0, natural_area_ratio = 0, natural_energy_ratio = 0;
  std::string natural_power_source;  // "gate-level activity" or "vectorless" (RTL activity is not quoted)
  // Natural accumulators at PE level (also when an array level exists).
  double pe_power_ratio = 0, pe_area_ratio = 0;
  bool pe_available = false;
  std::string pe_power_source;
  // Equal accumulator kind (both fp32), PE level.
  double iso_power_ratio = 0, iso_area_ratio = 0;
  bool iso_available = false;
  std::string iso_power_source;
};
// `forced_bits` > 0: b* was decided elsewhere (by fine-tuning runs, `gsqhw sweep
// --finetune-results`); the headline compares that width instead of the SQNR choice.
Headline compute_headline(const std::vector<nlohmann::json>& results, int forced_bits = 0);

}  // namespace gsqhw::synth
