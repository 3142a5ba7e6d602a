// Energy per MAC from gate-level activity of each module kind (synth/kind_energy.h) against
// the flat gate-level energy of the same array on the same trace, on a small INT8 2x2 array.
// The 2x2 GSE-INT7 and FP8 figures on real traces are in docs/synthesis.md ("Gate-level energy
// per module kind").
//
// Everything expensive is cached in the build tree: kind synthesis and the flat point in a
// folder named by the sources that decide the figures; the Verilator builds of the two
// gate-level netlists (the slow part: 5-10 minutes each at load 30) in one folder shared by
// all of them, since a build is keyed by its Verilog text, testbench and flags already
// (sim/verilator_build.h). So the suite pays for the builds once per build tree, for the rest
// once per edit of those sources (a few minutes), and then checks in seconds.
#include <gtest/gtest.h>

#include <cmath>

#include <nlohmann/json.hpp>

#include "base/errors.h"
#include "base/files.h"
#include "numerics/design.h"
#include "synth/compose.h"
#include "synth/kind_energy.h"
#include "synth/point.h"
#include "test_util.h"
#include "workloads/lora.h"

namespace gsqhw::synth {
namespace {
namespace fs = std::filesystem;

uint64_t fnv1a(const std::string& text, uint64_t hash = 1469598103934665603ull) {
  for (unsigned char ch : text) hash = (hash ^ ch) * 1099511628211ull;
  return hash;
}

fs::path energy_cache() {
  uint64_t hash = fnv1a("kind-energy-test-cache-v1");
  for (const char* source : {"synth/flow.cpp", "synth/compose.cpp", "synth/kind_energy.cpp", "synth/liberty.cpp",
                             "synth/point.cpp", "sim/activity.cpp", "sim/harness/tb_main.cpp"})
    hash = fnv1a(test::read_file(fs::path(GSQHW_TEST_SOURCE_DIR) / source), hash);
  return fs::path(GSQHW_TEST_BINARY_DIR) / "kind-energy-test-cache" / fmt::format("{:016x}", hash);
}

// Verilator builds (and the built-in traces), content-keyed: shared across source edits.
fs::path verilator_cache() { return fs::path(GSQHW_TEST_BINARY_DIR) / "kind-energy-test-cache" / "shared"; }

// The flat array's gate-level energy per MAC on `trace` (gsqhw synth --activity gate), cached.
double flat_gate_pj_per_mac(const std::string& design, const fs::path& trace) {
  const fs::path cached = energy_cache() / "flat.json";
  if (!fs::exists(cached)) {
    PointRequest request;
    request.design = design;
    request.traces = {trace};
    request.activity = "gate";
    request.activity_traces = 1;
    request.out_dir = energy_cache() / "flat";
    request.cache_dir = verilator_cache();
    nlohmann::json result = evaluate_point(request);
    EXPECT_EQ(result.value("status", ""), "ok") << result.dump(1);
    write_file_atomically(cached, result.dump(1));
  }
  return nlohmann::json::parse(test::read_file(cached)).at("pj_per_mac").get<double>();
}

TEST(KindEnergy, ComposedGateLevelEnergyMatchesTheFlatArrayOnTheSameTrace) {
  const std::string design = "int8@array2x2,acc=fixed16.0";
  const LibrarySet library = resolve_library({});
  const fs::path cache = energy_cache();
  const DesignPoint point = DesignPoint::parse(design);
  const fs::path trace = ensure_builtin_tiny_traces(verilator_cache() / "traces", point.format, point.acc).front();

  const DesignRtl rtl = design_rtl(point.str());
  ComposeOptions options;
  options.clock_ns = 30;
  options.work_dir = test::scratch_dir("kind-energy") / "compose";
  options.kind_cache = cache / "kinds";
  const Composition c = compose_design(rtl, library, options);
  KindEnergyOptions eo;
  eo.traces = energy_traces(point.str(), {trace}, verilator_cache(), eo.trace_source);
  eo.activity_traces = 1;
  eo.sim_cache = verilator_cache();
  const GateEnergy e = measure_gate_energy(rtl, c, library, options, eo);

  // The built-in traces are synthetic, and the label says so.
  EXPECT_EQ(e.trace_source.rfind("synthetic", 0), 0u) << e.trace_source;
  EXPECT_GT(e.macs, 0);
  EXPECT_GT(e.cycles, 0);
  EXPECT_EQ(e.kinds.size(), c.kinds.size());
  for (const auto& k : e.kinds) {
    EXPECT_GT(k.power_mw, 0) << k.module << " " << k.ties;
    // Held still, a netlist draws no more than it does switching (clock and leakage only).
    EXPECT_LE(k.idle_mw, k.power_mw * (1 + 1e-6)) << k.module;
    EXPECT_GT(k.nets_annotated, 0) << k.module;
  }
  EXPECT_GT(e.glue.power_mw, 0);

  // Like for like: the flat array's netlist simulated on the same trace.
  const double flat = flat_gate_pj_per_mac(point.str(), trace);
  const double error = e.pj_per_mac / flat - 1;
  RecordProperty("composed_pj_per_mac", std::to_string(e.pj_per_mac));
  RecordProperty("flat_pj_per_mac", std::to_string(flat));
  EXPECT_LT(std::abs(error), 0.10) << "composed " << e.pj_per_mac << " pJ/MAC, flat " << flat;

  // Composed at the measured size and utilisation, the duty model gives back the measurement,
  // and its parts add up to the total.
  const ScaledEnergy same = scale_gate_energy(e, c, e.utilisation);
  EXPECT_NEAR(same.pj_per_mac, e.pj_per_mac, 1e-9 * e.pj_per_mac);
  EXPECT_EQ(same.kinds_by_key, static_cast<int>(c.kinds.size()));
  double parts = 0;
  for (const auto& [part, pj] : same.pj_per_mac_by_part) parts += pj;
  EXPECT_NEAR(parts, same.pj_per_mac, 1e-9 * same.pj_per_mac);
  EXPECT_GT(same.pj_per_mac_by_part.at("multiplier"), 0);
  EXPECT_GT(same.pj_per_mac_by_part.at("registers"), 0);

  // A second measurement is read from the cache.
  const GateEnergy again = measure_gate_energy(rtl, c, library, options, eo);
  EXPECT_DOUBLE_EQ(again.pj_per_mac, e.pj_per_mac);

  // The schedule's steady state of a 2x2 output-stationary array is nearly busy.
  EXPECT_GT(steady_utilisation(rtl, e.k, e.group_size), 0.9);
}

TEST(KindEnergy, RefusesBadInput) {
  const LibrarySet library = resolve_library({});
  ComposeOptions options;
  options.work_dir = test::scratch_dir("kind-energy-bad");
  options.kind_cache = options.work_dir / "kinds";
  KindEnergyOptions eo;
  EXPECT_THROW(measure_gate_energy(design_rtl("gse:b=7@pe"), Composition{}, library, options, eo), UsageError);
  eo.traces = {"/nonexistent"};
  EXPECT_THROW(measure_gate_energy(design_rtl("gse:b=7@pe"), Composition{}, library, options, eo), UsageError);
}

}  // namespace
}  // namespace gsqhw::synth
