// One sibling-design sweep point (synth/sibling_point.h).
#include "synth/sibling_point.h"

#include <fmt/format.h>

#include <chrono>
#include <cmath>

#include "base/errors.h"
#include "numerics/format.h"
#include "synth/flow.h"
#include "synth/sibling_cosim.h"
#include "workloads/lora.h"

namespace gsqhw::synth {
namespace fs = std::filesystem;

namespace {

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

void describe(const SiblingDesign& d, nlohmann::json& result) {
  const bool lota = d.method == SiblingDesign::Method::lota;
  result["family"] = d.family();
  result["variant"] = lota ? "lota-qaf" : "ptq1.61";
  result["format"] = d.str().substr(0, d.str().find('@'));
  result["bits"] = lota ? d.lota.bits : 1;  // the narrowest weight code the datapath takes
  result["level"] = d.level();
  result["rows"] = lota ? 1 : d.rows;
  result["cols"] = 1;
  result["acc"] = "exact integer";
  result["acc_kind"] = "fixed";
  result["pipeline"] = 1;
  result["macs_per_cycle"] = d.macs_per_cycle();
  if (lota) {
    result["lota"] = {{"bits", d.lota.bits}, {"group", d.lota.group}, {"rank", d.lota.rank},
                      {"omega", d.lota.omega}, {"threshold", lota::threshold(d.lota.omega)}, {"seed", d.seed}};
  } else {
    result["ptq161"] = {{"salient_fraction", d.ptq161.salient_fraction}, {"iterations", d.ptq161.iterations},
                        {"rows", d.rows}, {"max_k", d.max_k}};
  }
}

std::vector<fs::path> sibling_traces(const PointRequest& request, const fs::path& cache, nlohmann::json& result) {
  std::vector<fs::path> files;
  if (request.traces.empty()) {
    // Any of the built-in sets carries the same FP32 X and W in its base GEMMs; the INT8 set
    // is one the default sweep has already generated.
    const std::string int8 = parse_format("int8")->spec();
    files = ensure_builtin_tiny_traces(cache / "traces", int8, AccumulatorSpec::parse("fixed32.0"));
    result["trace_set"] = "builtin-tiny";
  } else {
    for (const auto& t : request.traces)
      for (const auto& f : list_traces(t)) files.push_back(f);
    result["trace_set"] = "user";
  }
  return base_gemm_traces(files);
}

// Switching activity of the RTL on the first traces (what workload power is computed from).
struct ActivityRun {
  bool measured = false;
  SwitchingActivity activity;
  int64_t macs = 0, cycles = 0, traces = 0;
  double seconds = 0;
};

// Simulates case c (optionally dumping a VCD and adding its activity to `run`).
SiblingSimResult simulate_with_activity(const SiblingDesign& d, const rtlcheck::RtlBundle& rtl, const SiblingCase& c,
                                        const fs::path& dir, ActivityRun* run) {
  if (!run) return simulate_case(d, rtl, c, dir / c.trace);
  auto start = std::chrono::steady_clock::now();
  const fs::path vcd = dir / (c.trace + ".vcd");
  SiblingSimResult r = simulate_case(d, rtl, c, dir / c.trace, vcd);
  if (r.pass) {
    run->activity.merge(activity_from_testbench_vcd(vcd, rtl.top));
    run->macs += c.macs();
    run->cycles += r.cycles;
    ++run->traces;
    run->measured = true;
  }
  fs::remove(vcd);  // tens of MB each; the activity keeps what power needs
  run->seconds += seconds_since(start);
  return r;
}

// How many of the first traces the activity comes from (0: no workload power).
size_t activity_trace_count(const PointRequest& request, size_t cases) {
  if (request.activity == "none") return 0;
  return std::min<size_t>(cases, static_cast<size_t>(std::max(1, request.activity_traces)));
}

// Co-simulates every case, measuring the activity on the first ones at the same time; returns
// false (and fills the result) when the RTL differs.
bool cosimulate(const SiblingDesign& d, const rtlcheck::RtlBundle& rtl, const std::vector<SiblingCase>& cases,
                size_t activity_traces, const fs::path& dir, ActivityRun& activity, nlohmann::json& result) {
  auto start = std::chrono::steady_clock::now();
  int64_t vectors = 0, macs = 0, merge_vectors = 0;
  std::vector<std::string> mismatches;
  for (size_t i = 0; i < cases.size(); ++i) {
    const SiblingCase& c = cases[i];
    SiblingSimResult r = simulate_with_activity(d, rtl, c, dir, i < activity_traces ? &activity : nullptr);
    vectors += r.vectors;
    macs += c.macs();
    mismatches.insert(mismatches.end(), r.mismatches.begin(), r.mismatches.end());
    if (d.method == SiblingDesign::Method::lota) {
      SiblingSimResult m = simulate_merge(d, c, dir / (c.trace + ".merge"));
      merge_vectors += m.vectors;
      mismatches.insert(mismatches.end(), m.mismatches.begin(), m.mismatches.end());
    }
  }
  result["cosim_seconds"] = seconds_since(start);
  result["cosim_pass"] = mismatches.empty();
  result["cosim_macs"] = macs;
  result["cosim_cycles"] = vectors;
  if (d.method == SiblingDesign::Method::lota) result["cosim_merge_vectors"] = merge_vectors;
  if (mismatches.empty()) return true;
  if (mismatches.size() > 10) mismatches.resize(10);
  result["status"] = "cosim_failed";
  result["error"] = "RTL differs from the golden model: " + mismatches.front();
  result["mismatches"] = mismatches;
  return false;
}

// Workload power: the RTL activity (Icarus, VCD below the DUT) of the first traces annotated
// on the mapped netlist like the "rtl" activity source of evaluate_point. Without a
// co-simulation run to reuse, it simulates those traces itself.
void workload_power(const SiblingDesign& d, const rtlcheck::RtlBundle& rtl, const std::vector<SiblingCase>& cases,
                    size_t activity_traces, ActivityRun run, const PointRequest& request, const FlowResult& flow,
                    const LibrarySet& library, const FlowOptions& flow_options, const fs::path& dir,
                    nlohmann::json& result) {
  if (!run.measured) {
    for (size_t i = 0; i < activity_traces; ++i) {
      SiblingSimResult r = simulate_with_activity(d, rtl, cases[i], dir, &run);
      if (!r.pass) throw MismatchError("RTL simulation for activity failed: " + r.mismatches.front());
    }
  }
  run.activity.design = d.str();
  write_result_json(dir / "activity_rtl.json", run.activity.to_json());
  result["activity_sim_seconds"] = run.seconds;
  result["activity_macs"] = run.macs;
  result["activity_cycles"] = run.cycles;
  ActivityPower power = run_activity_power(flow, library, run.activity, flow_options);
  result["activity_source"] = "rtl";
  if (request.activity == "gate")
    result["activity_note"] = "gate-level activity is not implemented for sibling designs; RTL activity used";
  result["activity_traces"] = run.traces;
  result["nets_annotated"] = power.nets_annotated;
  result["names_unmatched"] = power.names_unmatched;
  result["power_activity_mw"] = power.power.total * 1e3;
  const double energy_j = power.power.total * static_cast<double>(run.activity.cycles) * request.clock_ns * 1e-9;
  result["pj_per_mac"] = run.macs > 0 ? energy_j / static_cast<double>(run.macs) * 1e12 : 0.0;
}

}  // namespace

double sibling_bits_per_weight(const SiblingDesign& design, int64_t rows, int64_t cols) {
  if (design.method == SiblingDesign::Method::lota) {
    const int64_t groups = (cols + design.lota.group - 1) / design.lota.group;
    return design.lota.bits + 32.0 * static_cast<double>(groups) / static_cast<double>(cols);
  }
  ptq161::Ptq161Layer shape;
  shape.rows = rows;
  shape.cols = cols;
  shape.salient.assign(static_cast<size_t>(cols), 0);
  const auto salient = static_cast<int64_t>(std::llround(design.ptq161.salient_fraction * static_cast<double>(cols)));
  for (int64_t c = 0; c < salient; ++c) shape.salient[static_cast<size_t>(c)] = 1;
  return ptq161::bits_per_weight(shape);
}

nlohmann::json evaluate_sibling_point(const PointRequest& request) {
  if (request.out_dir.empty()) throw UsageError("evaluate_point: no output folder");
  const SiblingDesign design = SiblingDesign::parse(request.design);
  nlohmann::json described;
  described["design"] = design.str();
  described["kind"] = "sibling";
  describe(design, described);

  return run_point_stages(request, std::move(described), [&](PointContext& ctx, nlohmann::json& result) {
    const fs::path& out = ctx.out;
    std::string& stage = ctx.stage;

    stage = "generate";
    const rtlcheck::RtlBundle rtl = design.generate();
    rtlcheck::write_bundle(rtl, out / "rtl");
    std::vector<fs::path> verilog;
    for (const auto& f : rtl.files) verilog.push_back(out / "rtl" / f.first);

    stage = "traces";
    const std::vector<fs::path> traces = sibling_traces(request, ctx.cache, result);
    result["traces"] = traces.size();
    nlohmann::json names = nlohmann::json::array(), files = nlohmann::json::array();
    std::vector<SiblingCase> cases;
    TraceError error;
    double storage_bits = 0, weights = 0;
    for (const auto& file : traces) {
      cases.push_back(prepare_case(design, read_trace(file)));
      const SiblingCase& c = cases.back();
      add_error(c, error);
      storage_bits += c.storage_bits;
      weights += static_cast<double>(c.d_out) * c.d_in;
      names.push_back(c.trace);
      files.push_back(fs::absolute(file).string());
      if (design.method == SiblingDesign::Method::lota) {
        result["merge_changed"] = result.value("merge_changed", int64_t{0}) + c.merged.changed;
        result["merge_clipped"] = result.value("merge_clipped", int64_t{0}) + c.merged.clipped;
      } else {
        result["salient_channels"] = result.value("salient_channels", int64_t{0}) + c.layer.salient_count();
      }
    }
    result["trace_names"] = names;
    result["trace_files"] = files;
    result["sqnr_db"] = std::isfinite(error.sqnr_db) ? nlohmann::json(error.sqnr_db) : nlohmann::json(999.0);
    result["nan_outputs"] = error.nan_outputs;
    result["trace_outputs"] = error.outputs;
    result["weights"] = weights;
    result["bits_per_weight"] = storage_bits / weights;
    result["bits_per_element"] = storage_bits / weights;
    result["bits_per_weight_4096"] = sibling_bits_per_weight(design, 4096, 4096);

    const size_t activity_traces = activity_trace_count(request, cases.size());
    ActivityRun activity;
    if (request.cosim) {
      stage = "co-simulation";
      if (!cosimulate(design, rtl, cases, activity_traces, out / "cosim", activity, result))
        return;  // the result says why (status cosim_failed)
    }

    stage = "synthesis";
    const FlowOptions flow_options = point_flow_options(request, out);
    FlowResult flow = run_flow(verilog, rtl.top, ctx.library, flow_options);
    record_flow_figures(flow, design.macs_per_cycle(), result);

    result["activity_source"] = "none";
    if (activity_traces > 0) {
      stage = "activity";
      fs::create_directories(out / "activity");
      workload_power(design, rtl, cases, activity_traces, std::move(activity), request, flow, ctx.library,
                     flow_options, out / "activity", result);
    }
  });
}

}  // namespace gsqhw::synth
