// Composition: the area, timing and vectorless power of a large generated array from its module
// kinds, each synthesized once, instead of one flat synthesis of the whole array (which does not
// fit this machine's time from 16x16 up).
//
// A module kind is a submodule of the array's top together with how that instance is wired:
// which input bits are tied to constants and which output bits nothing reads. Flat synthesis
// propagates those tie-offs into the instance and removes the logic behind unread outputs
// (an edge PE's unused forwarding output, the INT array's constant-zero accumulator bits, ...),
// so each kind is synthesized flattened inside a wrapper that ties the same bits and leaves the
// same outputs unread: constant propagation is specialised per instance kind, as in the flat run.
// A delay line `gsqhw_delay(_clear)` of depth d counts as d instances of its depth-1 kind (the
// stages are identical registers, and a tied or unread bit is so in every stage). The top's
// own logic (row counter, drain OR-buses, column deskew registers not in delay modules) is
// synthesized once with every submodule a black box ("glue").
//
//   area  = glue + sum over kinds of count x kind area     (likewise cells and power)
//   fmax  = min over kinds and glue (a path through a module boundary is split at the port,
//           each side given the whole cycle: the composed fmax can be optimistic)
//
// Validated against flat synthesis on 2x2 .. 8x8 arrays (tests/synth/test_compose.cpp,
// docs/synthesis.md "Composition"). Kind results are cached by the kind's Verilog, the library,
// the clock and the tools, so a 64x64 array costs little more than a 4x4 once the kinds exist.
#pragma once

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/process.h"
#include "synth/flow.h"
#include "synth/liberty.h"

namespace gsqhw::synth {

// The RTL of a design string (a DesignPoint or `baseline:intarray,...`), as generated.
struct DesignRtl {
  std::string design;
  std::vector<std::pair<std::string, std::string>> files;  // (name, text), the top last
  std::string top;
  int64_t macs_per_cycle = 1;
  nlohmann::json manifest;  // docs/array-protocol.md (null for baselines)
};
DesignRtl design_rtl(const std::string& design);

// The breakdown of a kind's area into its parts (one hierarchical Yosys run of the wrapper in
// which the kind's own module is flattened into the wrapper and its submodules are kept).
// Parts, by the generator's module names (gen/accumulator_emit.cpp):
//   "multiplier"              gsqhw_product (minifloats: with the 4-5 bit exponent-code add)
//   "exponent path"           gsqhw_exp_*: GSE group exponent, shift amounts, fp32 ordering
//   "alignment shifter"       gsqhw_align_* (and the gsqhw_addend_* wrappers' own wiring)
//   "accumulator adder"       gsqhw_add_*, gsqhw_acc_*: fp32 significand adder and specials,
//                             the saturating fixed adder, the GSE group-sum adder
//   "normalisation/rounding"  gsqhw_norm_*, gsqhw_sat_*: fp32 normalisation and RNE rounding,
//                             the fixed addend's saturation
//   "registers"               every flip-flop of every part (pipeline, accumulator, ring)
//   "control"                 the kind's own combinational logic (step control, restart muxes)
struct AreaBreakdown {
  std::map<std::string, double> parts;  // part -> um^2
  double total() const;
};

// One port of a kind's module as the array wires it: per bit 'n' (an input driven by a net),
// '0'/'1' (an input tied to a constant), 'u' (an output something reads) or '-' (an output
// nothing reads). Bits LSB first, as Yosys JSON lists them.
struct KindPort {
  std::string name, direction, bits;
};

struct ModuleKind {
  std::string module;      // the module's name (parameters in `parameters`)
  std::map<std::string, int64_t> parameters;
  std::string ties;        // human-readable: tied input bits and unread outputs
  std::string key;         // cache key (hash of the wrapper, module sources, library, clock)
  int64_t count = 0;       // instances (a delay of depth d counts d)
  double area_um2 = 0;
  int64_t cells = 0;
  double power_mw = 0;     // vectorless, at the clock and input activity of the options
  double fmax_mhz = 0;
  AreaBreakdown breakdown;  // empty for delay lines (all registers) and the glue
  // Where the kind sits (synth/kind_energy.h simulates every instance): the module's ports as
  // wired, and the top's cell names of its instances with their depth (delay lines: DEPTH
  // stages of this depth-1 kind; every other module: 1).
  std::vector<KindPort> ports;
  std::vector<std::pair<std::string, int64_t>> instances;
};

struct Composition {
  std::string design, top, library;
  int64_t macs_per_cycle = 1;
  double clock_ns = 0, input_activity = 0;
  std::vector<ModuleKind> kinds;
  ModuleKind glue;  // the top's own logic, count 1
  double area_um2 = 0;
  int64_t cells = 0;
  double power_mw = 0;      // vectorless
  double fmax_mhz = 0;
  double seconds = 0;       // wall time of this composition (cached kinds cost nothing)
  std::string glue_method;  // "flat" or "by columns" (ComposeOptions::glue_columns_from)
  int kinds_synthesized = 0, kinds_cached = 0;
  // Area and energy per MAC per part (um^2 per MAC/cycle; "skew/forwarding/drain" holds the
  // delay kinds and the glue; per-column units are spread over the array's MACs).
  std::map<std::string, double> area_per_mac_by_part() const;
};

struct ComposeOptions {
  double clock_ns = 30.0;
  double input_activity = 0.1;
  std::filesystem::path work_dir;   // this design's RTL, hierarchy and glue runs
  std::filesystem::path kind_cache; // kind results, shared by designs, sizes and runs
  bool breakdown = true;            // the hierarchical breakdown run for non-delay kinds
  double timeout_seconds = 3600;
  bool progress = false;            // one line per stage on stderr (64x64 stages take minutes)
  // From this many columns up the top's own logic is composed from the R x 1 and R x 2 arrays'
  // (glue(R x C) = glue(R x 1) + (C - 1) x (glue(R x 2) - glue(R x 1))) instead of synthesized
  // flat; 0: always flat. Flat glue synthesis of a 32x32 array took 15-30 minutes.
  int glue_columns_from = 16;
};

// Composes `rtl` on `library`. Throws like run_flow (ToolMissing, UsageError, runtime_error).
Composition compose_design(const DesignRtl& rtl, const LibrarySet& library, const ComposeOptions& options);

nlohmann::json to_json(const Composition& composition);

// The array shape of a design string ("...@array16x8,..." or "...,array=16x8"): false if none.
bool array_shape(const std::string& design, int* rows, int* columns);
// The design string with its array shape replaced.
std::string with_array_shape(const std::string& design, int rows, int columns);

// The instance kinds of the top module in a Yosys JSON of the hierarchy (submodules black
// boxes): exposed for tests. Each entry's `count` is filled, its numbers are not.
struct KindInstance {
  ModuleKind kind;
  std::string wrapper;  // Verilog of the wrapper module `gsqhw_kind`
};
std::vector<KindInstance> module_kinds(const nlohmann::json& hierarchy, const std::string& top);

// Runs a Yosys script in `dir` (kept as script.ys beside yosys.log); throws std::runtime_error
// with the log's tail when Yosys fails or times out.
ProcessResult run_yosys(const std::filesystem::path& dir, const std::string& script, double timeout,
                        const std::string& what);
// `read_verilog -sv` of each file (absolute paths).
std::string read_files_script(const std::vector<std::filesystem::path>& files);

}  // namespace gsqhw::synth
