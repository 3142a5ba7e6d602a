// The one-table comparison of issue #7: GSE-INT (the narrowest width as accurate as FP8 E4M3),
// FP8 E4M3, INT8, LoTA-QAF merged INT4 and PTQ1.61 from one sweep - same flow, library and
// clock - with area, power, pJ/MAC, bits per weight and the quantization error on the same
// traces (the LoRA layer's base GEMMs the sibling points ran on; synth/sibling_cosim.h).
// synth/report.cpp puts the table into report.md/.html; write_comparison_files() exports it as
// comparison.csv and comparison.json beside the report.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace gsqhw::synth {

struct SiblingComparison {
  std::string title;
  std::vector<std::string> paragraphs;  // before the table (Markdown inline syntax)
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;  // formatted cells
  nlohmann::json records = nlohmann::json::array();  // the same rows as numbers, for CSV/JSON
  std::vector<std::string> notes;       // after the table
};

// Builds the table from a sweep's result objects. The trace error of the GSE-INT, FP8 and INT8
// rows is recomputed (golden model only, synth::trace_error) on the trace files the sibling
// points used, when those files are still there; otherwise the row's own sweep SQNR is shown
// and a note says so. Rows whose point is missing or failed say so instead of numbers.
SiblingComparison sibling_comparison(const std::vector<nlohmann::json>& results);

// comparison.csv and comparison.json in out_dir, from `comparison.records`.
void write_comparison_files(const SiblingComparison& comparison, const std::filesystem::path& out_dir);

}  // namespace gsqhw::synth
