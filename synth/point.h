// One point of a sweep, end to end: generate the RTL, measure the format's error on the
// traces, co-simulate (a failing design gets no numbers), synthesize, time, and estimate power
// both vectorless and from the switching activity of a gate-level simulation of the mapped
// netlist on the traces. The result is one flat JSON object (fields in docs/synthesis.md),
// written to <out_dir>/result.json; `gsqhw synth` prints it and `gsqhw sweep` stores it.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "synth/liberty.h"

namespace gsqhw::synth {

struct PointRequest {
  std::string design;             // a DesignPoint, baseline (synth/baseline.h) or sibling (synth/sibling_design.h) string
  LibraryChoice library;
  double clock_ns = 30.0;
  double input_activity = 0.1;    // vectorless: transitions per cycle at each data input
  // Traces: files/folders; empty = the built-in tiny LoRA trace set in the design's format.
  std::vector<std::filesystem::path> traces;
  bool cosim = true;              // co-simulate the RTL on the traces before synthesis
  // Workload power: "gate" (gate-level simulation of the mapped netlist, every net annotated),
  // "rtl" (RTL simulation: ports and surviving register names annotated), "none".
  std::string activity = "gate";
  int activity_traces = 2;        // how many traces (the first, by name) the activity run uses
  std::filesystem::path out_dir;  // per-point folder: rtl/, synth/, logs, result.json
  std::filesystem::path cache_dir;  // traces and Verilator builds; empty = default cache
};

// Never throws for a failing point: errors become {"status": "error", "error": "..."} (a
// failing co-simulation: "cosim_failed"). UsageError for a malformed request is thrown.
nlohmann::json evaluate_point(const PointRequest& request);

// The trace error of a format + accumulator on traces: SQNR in dB of the dequantized GEMM
// outputs against the unquantized FP32 products (NaN outputs are counted, not summed).
struct TraceError {
  double sqnr_db = 0;
  double signal = 0, noise = 0;  // sums of squares
  int64_t outputs = 0, nan_outputs = 0;
};
TraceError trace_error(const std::string& format_spec, const std::string& acc_spec,
                       const std::vector<std::filesystem::path>& trace_files);

// Pieces of a point evaluation shared with the sibling designs (synth/sibling_point.h):
// writes `j` to path via a temporary name; records the run time and writes
// out_dir/result.json (a failed write turns the result into an error); records a flow's area,
// timing and vectorless power.
void write_result_json(const std::filesystem::path& path, const nlohmann::json& j);
void finish_result(nlohmann::json& result, double seconds, const std::filesystem::path& out_dir);
struct FlowResult;
void record_flow_figures(const FlowResult& flow, int64_t macs_per_cycle, nlohmann::json& result);

// Default cache folder: $GSQHW_CACHE or ~/.cache/gsqhw.
std::filesystem::path default_cache_dir();

}  // namespace gsqhw::synth
