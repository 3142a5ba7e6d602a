// One sweep point end to end (synth/point.h).
#include "synth/point.h"

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <fstream>

#include <fmt/format.h>

#include "gen/generator.h"
#include "sim/cosim.h"
#include "numerics/design.h"
#include "base/errors.h"
#include "numerics/format.h"
#include "numerics/gemm.h"
#include "synth/baseline.h"
#include "synth/flow.h"
#include "synth/sibling_point.h"
#include "base/files.h"
#include "base/process.h"
#include "workloads/lora.h"
#include "workloads/trace.h"

namespace gsqhw::synth {
namespace fs = std::filesystem;

namespace {

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// What the report groups and compares by: family ("gse", "fp8", ...), element bits, variant.
void describe_design(const DesignPoint& design, nlohmann::json& result) {
  auto format = parse_format(design.format);
  result["family"] = format->family();
  result["bits"] = format->element_bits();
  result["bits_per_element"] = format->bits_per_element();
  result["format"] = design.format;
  result["variant"] = format->variant();
  result["level"] = design.level == DesignPoint::Level::pe ? "pe" : design.level == DesignPoint::Level::array ? "array" : "core";
  result["rows"] = design.rows;
  result["cols"] = design.cols;
  result["acc"] = design.acc.str();
  result["acc_kind"] = design.acc.kind == AccumulatorSpec::Kind::fixed ? "fixed" : "fp32";
  result["pipeline"] = design.pipeline;
  // GSE arrays: per-group hardware in every PE, or shared by each column (align=shared).
  if (design.level != DesignPoint::Level::pe && format->family() == "gse")
    result["architecture"] = design.str().find("align=shared") != std::string::npos ? "shared-column" : "per-PE";
}

void describe_baseline(const Baseline& baseline, nlohmann::json& result) {
  const bool array = baseline.kind == Baseline::Kind::intarray;
  result["family"] = "baseline";
  result["variant"] = baseline.kind == Baseline::Kind::bare ? "bare-mac" : array ? "int-array" : "int-mac";
  result["bits"] = baseline.bits;
  result["bits_per_element"] = baseline.bits;
  result["format"] = fmt::format("int{}", baseline.bits);
  result["level"] = array ? "array" : "pe";
  result["rows"] = baseline.rows;
  result["cols"] = baseline.cols;
  result["acc"] = fmt::format("fixed{}.{}", baseline.acc_width, baseline.acc_frac);
  result["acc_kind"] = "fixed";
  result["pipeline"] = 1;
  result["macs_per_cycle"] = baseline.rows * baseline.cols;
}

// Power figures of a flow result into the flat result object.
void record_flow(const FlowResult& flow, int64_t macs_per_cycle, nlohmann::json& result) {
  result["top"] = flow.top;
  result["area_um2"] = flow.stat.area;
  result["cells"] = flow.stat.cells;
  result["clock_ns"] = flow.clock_ns;
  result["critical_path_ns"] = flow.critical_path_ns;
  result["slack_ns"] = flow.critical.slack;
  result["timing_met"] = flow.critical.met;
  result["fmax_mhz"] = flow.fmax_mhz;
  result["critical_path"] = flow.critical.startpoint + " -> " + flow.critical.endpoint;
  result["input_activity"] = flow.input_activity;
  result["power_mw"] = flow.power_vectorless.total * 1e3;
  result["power_internal_mw"] = flow.power_vectorless.internal * 1e3;
  result["power_switching_mw"] = flow.power_vectorless.switching * 1e3;
  result["power_leakage_mw"] = flow.power_vectorless.leakage * 1e3;
  // Vectorless energy per MAC assumes every PE does a MAC every cycle.
  result["pj_per_mac_vectorless"] =
      flow.power_vectorless.total * flow.clock_ns * 1e-9 / static_cast<double>(macs_per_cycle) * 1e12;
  result["netlist"] = flow.netlist.string();
  result["yosys_seconds"] = flow.yosys_seconds;
  result["sta_seconds"] = flow.sta_seconds;
}

std::string first_mismatch(const CosimResult& cosim) {
  if (!cosim.mismatches.empty()) {
    const Mismatch& m = cosim.mismatches.front();
    return fmt::format("trace {} output ({}, {}) PE ({}, {}) cycle {}: expected acc {} flags {}, got acc {} flags {}",
                       m.trace, m.gemm_row, m.gemm_col, m.pe_row, m.pe_col, m.cycle, m.expected_acc,
                       m.expected_flags, m.actual_acc, m.actual_flags);
  }
  if (!cosim.errors.empty()) return cosim.errors.front();
  return "co-simulation failed without a reported mismatch";
}

}  // namespace

void write_result_json(const fs::path& path, const nlohmann::json& j) { write_file_atomically(path, j.dump(2) + "\n"); }
void finish_result(nlohmann::json& result, double seconds, const fs::path& out_dir) {
  result["seconds"] = seconds;
  try {
    write_file_atomically(out_dir / "result.json", result.dump(2) + "\n");
  } catch (const std::exception& e) {
    result["status"] = "error";
    result["error"] = fmt::format("{}; and result.json could not be written: {}",
                                  result.value("error", std::string("ok")), e.what());
  }
}
void record_flow_figures(const FlowResult& flow, int64_t macs_per_cycle, nlohmann::json& result) {
  record_flow(flow, macs_per_cycle, result);
}

fs::path default_cache_dir() {
  if (const char* cache = std::getenv("GSQHW_CACHE"); cache && *cache) return cache;
  if (const char* home = std::getenv("HOME"); home && *home) return fs::path(home) / ".cache/gsqhw";
  return fs::temp_directory_path() / "gsqhw-cache";
}

TraceError trace_error(const std::string& format_spec, const std::string& acc_spec,
                       const std::vector<fs::path>& trace_files) {
  auto format = parse_format(format_spec);
  AccumulatorSpec acc = AccumulatorSpec::parse(acc_spec);
  TraceError error;
  for (const auto& file : trace_files) {
    Trace trace = read_trace(file);
    // Use the trace's own golden output when it was made with this format and accumulator;
    // otherwise quantize the FP32 originals with the design's format and recompute.
    GemmResult golden;
    if (trace.a.format_spec == format->spec() && trace.b.format_spec == format->spec() && trace.acc == acc) {
      golden = trace.golden;
    } else {
      if (trace.a_fp32.empty() || trace.b_fp32.empty())
        throw UsageError(fmt::format("trace {} has no FP32 originals to requantize", file.string()));
      QuantizedTensor a = format->quantize(trace.a_fp32.data(), trace.m(), trace.k());
      QuantizedTensor b = format->quantize(trace.b_fp32.data(), trace.n(), trace.k());
      golden = golden_gemm(a, b, acc);
    }
    std::vector<double> reference(static_cast<size_t>(trace.m() * trace.n()));
    if (trace.reference_fp32.size() == reference.size()) {
      for (size_t i = 0; i < reference.size(); ++i) reference[i] = trace.reference_fp32[i];
    } else {
      for (int64_t m = 0; m < trace.m(); ++m)
        for (int64_t n = 0; n < trace.n(); ++n) {
          double sum = 0;
          for (int64_t k = 0; k < trace.k(); ++k)
            sum += static_cast<double>(trace.a_fp32[m * trace.k() + k]) * trace.b_fp32[n * trace.k() + k];
          reference[m * trace.n() + n] = sum;
        }
    }
    for (size_t i = 0; i < reference.size(); ++i) {
      ++error.outputs;
      double out = golden.out[i];
      if (!std::isfinite(out)) {
        ++error.nan_outputs;
        continue;
      }
      error.signal += reference[i] * reference[i];
      error.noise += (out - reference[i]) * (out - reference[i]);
    }
  }
  error.sqnr_db = error.noise > 0 ? 10 * std::log10(error.signal / error.noise) : INFINITY;
  return error;
}

FlowOptions point_flow_options(const PointRequest& request, const fs::path& out) {
  FlowOptions options;
  options.clock_ns = request.clock_ns;
  options.input_activity = request.input_activity;
  options.work_dir = out / "synth";
  return options;
}

nlohmann::json run_point_stages(const PointRequest& request, nlohmann::json result,
                                const std::function<void(PointContext& ctx, nlohmann::json& result)>& stages) {
  result["clock_ns"] = request.clock_ns;
  result["status"] = "running";
  PointContext ctx;
  ctx.out = fs::absolute(request.out_dir);
  ctx.cache = request.cache_dir.empty() ? default_cache_dir() : request.cache_dir;
  const auto start = std::chrono::steady_clock::now();
  try {
    fs::create_directories(ctx.out);
    ctx.stage = "liberty";
    ctx.library = resolve_library(request.library);
    result["liberty"] = ctx.library.name;
    result["liberty_hash"] = ctx.library.hash;
    result["tools"] = tool_versions().str();
    stages(ctx, result);
    if (result["status"] == "running") result["status"] = "ok";
  } catch (const ToolMissing&) {
    throw;  // the whole sweep cannot proceed without its tools
  } catch (const std::exception& e) {
    result["status"] = "error";
    result["error"] = fmt::format("{}: {}", ctx.stage, e.what());
    // A tool that ran out of disk often says only "failed": name the cause when it is that.
    if (std::string cause = disk_full_cause(ctx.out); !cause.empty())
      result["error"] = fmt::format("{}: {} [{}]", ctx.stage, cause, e.what());
    else if (mentions_full_disk(e.what()))
      result["error"] = fmt::format("{}: disk full (a write failed): {}", ctx.stage, e.what());
  }
  finish_result(result, seconds_since(start), ctx.out);
  return result;
}

nlohmann::json evaluate_point(const PointRequest& request) {
  if (request.out_dir.empty()) throw UsageError("evaluate_point: no output folder");
  if (request.activity != "gate" && request.activity != "rtl" && request.activity != "none")
    throw UsageError(fmt::format("activity source '{}' is not one of gate, rtl, none", request.activity));
  if (SiblingDesign::is_sibling(request.design)) return evaluate_sibling_point(request);
  const bool is_baseline = Baseline::is_baseline(request.design);
  std::optional<DesignPoint> design;
  std::optional<Baseline> baseline;
  if (is_baseline) baseline = Baseline::parse(request.design);
  else design = DesignPoint::parse(request.design);

  nlohmann::json described;
  described["design"] = is_baseline ? baseline->str() : design->str();
  described["kind"] = is_baseline ? "baseline" : "design";
  if (is_baseline) describe_baseline(*baseline, described);
  else describe_design(*design, described);

  return run_point_stages(request, std::move(described), [&](PointContext& ctx, nlohmann::json& result) {
    const fs::path& out = ctx.out;
    const fs::path& cache = ctx.cache;
    const LibrarySet& library = ctx.library;
    std::string& stage = ctx.stage;

    // --- RTL
    stage = "generate";
    std::vector<fs::path> verilog;
    std::string top;
    int64_t macs_per_cycle = 1;
    if (is_baseline) {
      // Baselines are references for area and power only: no golden model of their own to
      // co-simulate against (the INT-b MAC PE has its Icarus test in tests/synth).
      Baseline::Rtl rtl = baseline->rtl();
      fs::create_directories(out / "rtl");
      for (const auto& [name, text] : rtl.files) {
        verilog.push_back(out / "rtl" / name);
        write_file_atomically(verilog.back(), text);
      }
      top = rtl.top;
      macs_per_cycle = rtl.macs_per_cycle;
    } else {
      GeneratedDesign generated = generate_design(*design);
      write_design(generated, out / "rtl");
      for (const auto& [name, text] : generated.files) verilog.push_back(out / "rtl" / name);
      top = generated.top;
      macs_per_cycle = generated.manifest.at("timing").at("macs_per_cycle").get<int64_t>();
    }
    result["macs_per_cycle"] = macs_per_cycle;

    // --- traces, their error, co-simulation
    std::vector<fs::path> traces;
    if (!is_baseline) {
      stage = "traces";
      if (request.traces.empty()) {
        traces = ensure_builtin_tiny_traces(cache / "traces", design->format, design->acc);
        result["trace_set"] = "builtin-tiny";
      } else {
        for (const auto& t : request.traces)
          for (const auto& f : list_traces(t)) traces.push_back(f);
        result["trace_set"] = "user";
      }
      if (traces.empty()) throw UsageError("no trace files found");
      result["traces"] = traces.size();
      stage = "trace error";
      TraceError error = trace_error(design->format, design->acc.str(), traces);
      result["sqnr_db"] = std::isfinite(error.sqnr_db) ? nlohmann::json(error.sqnr_db) : nlohmann::json(999.0);
      result["nan_outputs"] = error.nan_outputs;
      result["trace_outputs"] = error.outputs;

      if (request.cosim) {
        stage = "co-simulation";
        CosimOptions options;
        options.cache_dir = cache;
        auto start = std::chrono::steady_clock::now();
        CosimResult cosim = run_cosim(*design, traces, options);
        result["cosim_seconds"] = seconds_since(start);
        result["cosim_build_seconds"] = cosim.build_seconds;
        result["cosim_engine_seconds"] = cosim.engine_seconds;
        result["cosim_pass"] = cosim.pass;
        result["cosim_macs"] = cosim.macs;
        result["cosim_cycles"] = cosim.cycles;
        if (!cosim.pass) {
          result["status"] = "cosim_failed";
          result["error"] = "RTL differs from the golden model: " + first_mismatch(cosim);
          return;
        }
      }
    }

    // --- synthesis, timing, vectorless power
    stage = "synthesis";
    const FlowOptions flow_options = point_flow_options(request, out);
    FlowResult flow = run_flow(verilog, top, library, flow_options);
    record_flow(flow, macs_per_cycle, result);

    // --- workload power from simulated switching activity
    result["activity_source"] = "none";
    if (!is_baseline && request.activity != "none") {
      stage = "activity";
      std::vector<fs::path> activity_traces(
          traces.begin(), traces.begin() + std::min<size_t>(traces.size(), std::max(1, request.activity_traces)));
      fs::path activity_file = out / (request.activity == "gate" ? "activity_gate.json" : "activity_rtl.json");
      CosimResult activity_run;
      auto start = std::chrono::steady_clock::now();
      {
        // A separate run on the first traces: the RTL build is a cache hit, the gate-level
        // build is new (the mapped netlist with the library's cell models).
        CosimOptions options;
        options.cache_dir = cache;
        options.activity = activity_file;
        if (request.activity == "gate") options.netlist_files = {flow.netlist, ensure_cell_models(library)};
        activity_run = run_cosim(*design, activity_traces, options);
        // The gate-level run doubles as an equivalence check of the mapped netlist.
        if (!activity_run.pass)
          throw MismatchError(fmt::format("{}-level simulation for activity failed: {}", request.activity,
                                          first_mismatch(activity_run)));
        result["activity_build_seconds"] = activity_run.build_seconds;
        result["activity_engine_seconds"] = activity_run.engine_seconds;
        result["activity_macs"] = activity_run.macs;
        result["activity_cycles"] = activity_run.cycles;
      }
      result["activity_sim_seconds"] = seconds_since(start);
      SwitchingActivity activity = read_activity_file(activity_file);
      ActivityPower power = run_activity_power(flow, library, activity, flow_options);
      result["activity_source"] = request.activity;
      result["activity_traces"] = activity_traces.size();
      result["nets_annotated"] = power.nets_annotated;
      result["names_unmatched"] = power.names_unmatched;
      result["power_activity_mw"] = power.power.total * 1e3;
      // Energy over the simulated window divided by the MACs done in it.
      double macs = result["activity_macs"].get<double>();
      double energy_j = power.power.total * static_cast<double>(activity.cycles) * request.clock_ns * 1e-9;
      result["pj_per_mac"] = macs > 0 ? energy_j / macs * 1e12 : 0.0;
    }
  });
}

}  // namespace gsqhw::synth
