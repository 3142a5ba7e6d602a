// One point of a sweep, end to end: generate the RTL, measure the format's error on the
// traces, co-simulate (a failing design gets no numbers), synthesize, time, and estimate power
// both vectorless and from the switching activity of a gate-level simulation of the mapped
// netlist on the traces. The result is one flat JSON object (fields in docs/synthesis.md),
// written to <out_dir>/result.json; `gsqhw synth` prints it and `gsqhw sweep` stores it.
#pragma once

#include <filesystem>
#include <functional>
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

// What the stages of a point evaluation work with (run_point_stages).
struct PointContext {
  std::filesystem::path out;    // the request's output folder, absolute
  std::filesystem::path cache;  // the request's cache folder, or default_cache_dir()
  LibrarySet library;           // resolved; its name and hash are in the result
  std::string stage = "setup";  // the stage running now: an error names it
};

// The frame every point evaluation (designs, baselines, sibling designs) runs its stages in.
// `result` already describes the design; this records the clock and status "running", creates
// the output folder, resolves the library (recorded with the tool versions) and calls
// `stages`. An exception becomes status "error" naming ctx.stage (and a full disk when that was
// the cause); ToolMissing is rethrown, since no other point can run without the tools either.
// Stages that stop early set the status themselves, otherwise it becomes "ok". The run time
// and out/result.json are written last.
nlohmann::json run_point_stages(const PointRequest& request, nlohmann::json result,
                                const std::function<void(PointContext& ctx, nlohmann::json& result)>& stages);

// Synthesis options of a point: the request's clock and input activity, work folder out/synth.
struct FlowOptions;
FlowOptions point_flow_options(const PointRequest& request, const std::filesystem::path& out);

}  // namespace gsqhw::synth
