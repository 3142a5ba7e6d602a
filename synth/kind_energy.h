// Energy per MAC of a composed array from gate-level activity of each module kind
// (docs/synthesis.md, "Gate-level energy per module kind").
//
// Measuring (one small array, 2x2 or 4x4, which holds every kind of the larger ones up to PE
// positions): every submodule instance of the array's top is replaced by its kind's own mapped
// netlist (the one composition synthesized, synth/compose.h; a delay line of depth d by d
// stages of its depth-1 kind), the top's own logic is mapped onto the same library with those
// instances as black boxes, and the whole is simulated on traces with the co-simulation's
// gate-level path (sim/cosim.h: bit-exact against the golden model, so the composed netlist is
// checked too) while switching activity is recorded. Each kind's activity is the mean over all
// its instances (stages), re-rooted at the kind's netlist, and OpenSTA gives the kind's power
// from it (flow.h run_activity_power), plus the same netlist with every net held still (the
// clock and leakage floor, "idle"). The top's own logic ("glue") likewise.
//
// At the measured size, energy = sum over kinds of count x power + glue, times the simulated
// cycles and the clock period, per simulated MAC: the sum of every instance's gate-level
// energy. At another size n it is composed by instance count and duty (scale_gate_energy):
//   E/MAC(n) = T * sum_k count_k(n) * (idle_k + (P_k - idle_k) * duty_k(n) / duty_k(m))
//              / (n_rows * n_cols * U(n))
// where the duty of a kind is the rate of the data it handles per cycle, from the schedule
// (gen/schedule.h gemm_timing, steady state: a GEMM of 8 x 8 tiles with the traces' K):
//   - "stream" kinds (PEs, operand and exponent skew lines): one step per cycle when the array
//     works: duty = U, the PE utilisation;
//   - "column" kinds (the shared-column group accumulator, output deskew lines): one group sum
//     or result per row of the column: duty = R x U;
//   - the top's own logic (drain OR-buses and bus registers per column): duty = R x C x U, its
//     idle floor scaled by its area.
// A kind of size n whose key was not measured (e.g. a column unit whose ring holds R
// accumulators) takes the measured kind of the same module, its idle floor scaled by area.
#pragma once

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "synth/compose.h"

namespace gsqhw::synth {

struct KindEnergyOptions {
  std::vector<std::filesystem::path> traces;  // trace files; the first `activity_traces` are simulated
  std::string trace_source;                   // label: "real (...)" or "synthetic (...)"
  int activity_traces = 2;
  std::filesystem::path sim_cache;            // Verilator build cache (empty: the default)
  bool progress = false;
};

struct KindPower {
  std::string key, module, ties;
  std::string duty;            // "stream", "column" or "glue"
  int64_t count = 0;           // instances (stages) in the measured array
  double area_um2 = 0;         // per instance
  double power_mw = 0;         // per instance, mean over the simulated instances
  double idle_mw = 0;          // the same netlist with every net held still
  double sequential_mw = 0;    // flip-flops' share of power_mw
  int64_t nets_annotated = 0, names_unmatched = 0;
  std::map<std::string, double> area_parts;  // the kind's area breakdown (compose.h)
};

struct GateEnergy {
  std::string design, library, trace_source;
  int rows = 0, columns = 0;
  double clock_ns = 0;
  int64_t cycles = 0, macs = 0, k = 0;  // simulated; k: the traces' reduction length
  int group_size = 0;
  double utilisation = 0;               // macs / (cycles x rows x columns)
  std::vector<KindPower> kinds;
  KindPower glue;
  double pj_per_mac = 0;                // at the measured size
  double seconds = 0;
};

// Measures `composition` (of `rtl`, a small array composed with `compose_options`) on
// `options.traces`. Cached in compose_options.kind_cache by the RTL, library, clock, tools and
// trace contents. Throws MismatchError-like std::runtime_error when the gate-level simulation
// disagrees with the golden model, UsageError on bad input, ToolMissing without the tools.
GateEnergy measure_gate_energy(const DesignRtl& rtl, const Composition& composition, const LibrarySet& library,
                               const ComposeOptions& compose_options, const KindEnergyOptions& options);

struct ScaledEnergy {
  double pj_per_mac = 0;
  double utilisation = 0;                      // steady state at this size (the schedule)
  std::map<std::string, double> pj_per_mac_by_part;  // same parts as the area breakdown
  int kinds_by_key = 0, kinds_by_module = 0;   // how each kind of this size was matched
};

// Steady-state PE utilisation of `rtl` (an array) on a GEMM of 8 x 8 tiles of reduction
// length k (gen/schedule.h gemm_timing).
double steady_utilisation(const DesignRtl& rtl, int64_t k, int group_size);

// Energy per MAC of `at_size` (a composition of the same design family at any size) from the
// measured kinds, by instance count and duty (see the top of this file).
ScaledEnergy scale_gate_energy(const GateEnergy& measured, const Composition& at_size, double utilisation);

// The traces to measure on and their label: `given` (files or folders; real traces say so in
// their metadata), else the built-in tiny LoRA set in the design's format, labelled synthetic.
std::vector<std::filesystem::path> energy_traces(const std::string& design, const std::vector<std::filesystem::path>& given,
                                                 const std::filesystem::path& cache_dir, std::string& label);

nlohmann::json to_json(const GateEnergy& energy);
GateEnergy gate_energy_from_json(const nlohmann::json& j);

}  // namespace gsqhw::synth
