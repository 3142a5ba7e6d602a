// Co-simulation of generated RTL (Verilated) or of the fast cycle model against the golden
// model, on LoRA traces. Also the source of switching activity for power analysis.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "sim/cycle_model.h"
#include "numerics/design.h"

namespace gsqhw {

struct CosimOptions {
  enum class Engine { rtl, fast, lockstep };
  Engine engine = Engine::rtl;
  std::filesystem::path cache_dir;                  // Verilator build cache (default: ~/.cache/gsqhw or $GSQHW_CACHE)
  std::optional<std::filesystem::path> waves;       // FST/VCD of a window around the first mismatch
  std::optional<std::filesystem::path> activity;    // write switching activity (JSON) here
  // Gate-level: simulate these Verilog files (a mapped netlist plus cell models) instead of
  // the generated RTL; the top module and ports are those of the design's manifest.
  std::vector<std::filesystem::path> netlist_files;
  int max_mismatches_reported = 10;
  // (extension) Run the RTL in the SystemC testbench (Verilator --sc) instead of the plain C++
  // one: same results, slower; no waves/activity. For measuring SystemC's cost (docs/cosim.md).
  bool systemc = false;

  // (extension) The RTL build and stimulus path (docs/cosim.md, "Fast RTL path"):
  //  - fast (default): when neither waves nor activity are being produced, the Verilated model
  //    is the fast build (no tracing compiled in, -O3 -march=native) and the stimulus streams
  //    from the schedule into the testbench's stdin; the traced build serves waves/activity;
  //  - legacy: the traced -Os build replaying a per-cycle stimulus file (what gsqhw used
  //    before; kept so `gsqhw bench` measures both paths in one run).
  enum class RtlPath { fast, legacy };
  RtlPath rtl_path = RtlPath::fast;
  int verilator_threads = 1;  // Verilator --threads of the fast build

  // (extension) Sampled-tile co-simulation (engine rtl): the fast model computes every tile of
  // every GEMM; the RTL runs a seeded random sample of whole tiles plus every edge tile and
  // the special-value tiles (saturation, NaN groups, exponent extremes, ...); each RTL tile is
  // checked against the golden model and the fast model's beats (docs/cosim.md).
  struct Sample {
    bool fraction = false;  // value is a fraction of each GEMM's tiles (else a tile count)
    double value = 1;
  };
  std::optional<Sample> sample;
  uint64_t seed = 1;
  // Special-value tiles forced into the sample, at most this many per category per GEMM
  // (chosen at random among them); the summary says when a category had more.
  int64_t max_special_tiles = 64;
  // RTL worker processes: the tiles of a GEMM are split into `jobs` contiguous runs, each in
  // its own testbench process, merged in tile order (so the verdict and report equal jobs=1).
  int jobs = 1;
};

// Parses --sample: an integer (tiles per GEMM, >= 1) or a fraction written with a point or a
// percent sign ("0.05", "1.0", "5%"). Throws UsageError.
CosimOptions::Sample parse_sample(const std::string& text);

// (extension) What the RTL exercised: per case, tiles where it occurs in the GEMMs (the fast
// model and the operands show it) and tiles of those that ran on RTL.
struct CoverageCase {
  int64_t tiles_present = 0, tiles_rtl = 0;
  int64_t outputs_rtl = 0;  // outputs (or operand groups, for operand cases) of RTL tiles hit
  int64_t capped = 0;       // tiles of this case left out by max_special_tiles
};
struct CosimCoverage {
  int64_t tiles = 0, tiles_rtl = 0, edge_tiles = 0, edge_tiles_rtl = 0;
  int64_t random_tiles_rtl = 0;  // of the seeded random sample (may overlap edge/special)
  int64_t macs = 0, macs_rtl = 0;
  int64_t gemms_rtl = 0;  // GEMMs with at least one RTL tile
  std::map<std::string, CoverageCase> cases;  // case name -> counts (kCoverageCases order)
  bool sampled = false;
};
// The cases, in table order, with what each means.
extern const std::vector<std::pair<std::string, std::string>> kCoverageCases;

struct Mismatch {
  std::string design, trace;
  int64_t gemm_row = 0, gemm_col = 0;  // output index
  int tile_row = 0, tile_col = 0;      // output tile
  int pe_row = 0, pe_col = 0;          // PE coordinates in the array
  int64_t cycle = 0;
  int64_t expected_acc = 0, actual_acc = 0;
  uint8_t expected_flags = 0, actual_flags = 0;
  float expected_value = 0, actual_value = 0;
  std::string engine;  // (extension) "rtl" or "fast": which engine produced the actual value
  // (extension) sampled/parallel runs: the cycle above is the GEMM's own schedule cycle; the
  // testbench run (of a tile list) produced it on run_cycle. -1: a whole-GEMM run.
  int64_t run_cycle = -1;
};

// (extension) One GEMM of a co-simulation run.
struct CosimGemmReport {
  std::string trace;
  GemmTiming timing;          // the cycle model's figures (cycles, utilisation, buffer traffic)
  int64_t measured_cycles = 0;  // last result beat + 1 as the engine produced it
  int64_t mismatches = 0;
  double engine_seconds = 0;
};

struct CosimResult {
  bool pass = false;
  int64_t gemms = 0, macs = 0, cycles = 0;
  double wall_seconds = 0;
  std::vector<Mismatch> mismatches;  // the first few
  std::optional<std::filesystem::path> waves_written;
  std::optional<std::filesystem::path> activity_written;
  // (extensions)
  int64_t mismatch_count = 0;       // all mismatching outputs (mismatches holds the first few)
  std::vector<std::string> errors;  // protocol/timing/lockstep/trace-consistency failures
  std::vector<std::string> warnings;  // e.g. traces made with another accumulator than the design's
  std::vector<CosimGemmReport> per_gemm;
  double engine_seconds = 0;        // time inside the simulation engines only
  double build_seconds = 0;         // Verilator build time (0 on a cache hit)
  std::string engine;               // "rtl", "fast" or "lockstep"
  std::string design;               // canonical design string
  CosimCoverage coverage;           // (extension) what the RTL exercised
  double fast_seconds = 0;          // (extension) sampled mode: fast model over every tile
  double rtl_seconds = 0;           // (extension) sampled mode: testbench runs (wall)
  int64_t rtl_cycles = 0;           // (extension) cycles the testbenches simulated
};

// (extension) A design ready to co-simulate: its manifest and Verilog text. Tests may edit
// `sources` (fault injection) before running it.
struct CosimDesign {
  DesignPoint design;
  ArrayManifest array;
  std::vector<std::pair<std::string, std::string>> sources;  // (file name, Verilog text)
  nlohmann::json manifest;
};
CosimDesign cosim_design_generate(const DesignPoint& design);               // gen/ generator
CosimDesign cosim_design_from_dir(const std::filesystem::path& generated);  // manifest.json + files

// (extension) One GEMM to check: operands, and optionally the golden output the trace carries
// (checked against the recomputation when its accumulator equals the design's).
struct CosimGemm {
  std::string name;
  QuantizedTensor a, b;
  std::optional<GemmResult> trace_golden;
  AccumulatorSpec trace_acc;
};

// (extension) run_cosim on a prepared design and in-memory GEMMs (`run_cosim` loads the traces
// one at a time and calls the same checker).
CosimResult run_cosim_gemms(const CosimDesign& design, const std::vector<CosimGemm>& gemms,
                            const CosimOptions& options);
CosimResult run_cosim_traces(const CosimDesign& design,
                             const std::vector<std::filesystem::path>& traces,
                             const CosimOptions& options);

// (extension) The operand format parameters the hardware depends on: the format unit's
// hardware_spec() (the canonical spec without the quantizer-only parameters, numerics/format.h).
// A trace fits a design when both operands' keys equal the design format's key.
std::string hardware_format_key(const std::string& format_spec);

// (extension) The whole result as JSON (what `gsqhw cosim --json` prints), and a human summary
// (verdict line, figures, the first mismatches and errors, the waveform path).
nlohmann::json cosim_result_json(const CosimResult& result);
std::string cosim_result_text(const CosimResult& result);

// (extension) The dequantize step of numerics/gemm.h applied to one accumulator (for reports).
float dequantize_accumulator(const AccumulatorSpec& acc, int64_t acc_raw, uint8_t flags,
                             float scale_a = 1, float scale_b = 1, bool int8_scales = false);

// `traces` are trace files (workloads/trace.h) or folders of them.
CosimResult run_cosim(const DesignPoint& design, const std::vector<std::filesystem::path>& traces,
                      const CosimOptions& options);

}  // namespace gsqhw
