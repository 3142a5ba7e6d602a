// Co-simulation of a generated core (gsqhw_core, gen/core.h) against the golden model.
//
// The Verilated core runs inside a small generated wrapper (gsqhw_core_cosim) under the
// generic testbench of sim/harness/tb_main.cpp, which replays one input record per cycle and
// so cannot react to in_ready itself. The wrapper closes the handshake loop in hardware: the
// harness pushes every operand word into a source FIFO and the descriptor into a holding
// register; the FIFO offers words to the core only on cycles whose random `in_gate` bit is set
// (an offered word stays offered until taken, as valid/ready requires), and the core's
// out_ready is a random `out_gate` bit per cycle. Every accepted result word, the `done`
// pulse and each descriptor's error code are recorded with their cycle.
//
// Each result word is compared bit for bit with core_golden_output (quantize the FP32
// operands with the design's format, golden_gemm, dequantize). A mismatch names the design,
// the trace, the output (row, col), the cycle and both values (Mismatch: expected_acc /
// actual_acc hold the FP32 bit patterns). Missing or extra words, a missing `done` and a
// refused descriptor are errors.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "gen/generator.h"
#include "sim/cosim.h"
#include "sim/verilator_build.h"

namespace gsqhw {

struct CoreCosimGemm {
  std::string name;
  int64_t m = 0, n = 0, k = 0;
  std::vector<float> a, b;  // A: m x k, B: n x k, row-major FP32
};

struct CoreCosimOptions {
  uint64_t seed = 1;        // the random bubbles and backpressure
  double in_rate = 0.7;     // probability that the source may offer a new word in a cycle
  double out_rate = 0.6;    // probability of out_ready in a cycle
  bool bad_descriptor_first = true;  // offer M = capacity + 1 first: must be refused (error 2)
  int max_mismatches_reported = 10;
  std::filesystem::path cache_dir;   // Verilator build cache (default: default_cache_dir())
};

// Runs every GEMM through the core's RTL. Per GEMM, CosimGemmReport::measured_cycles is the
// number of cycles from the one taking the GEMM's descriptor to the one with `done` (with
// in_rate = out_rate = 1: core_cycles_without_stalls of gen/core.h). (one Verilated run each; the build is cached).
// GEMMs beyond the core's capacity are a UsageError (crop them first, see
// core_gemm_from_trace).
CosimResult run_core_cosim_gemms(const GeneratedDesign& core,
                                 const std::vector<CoreCosimGemm>& gemms,
                                 const CoreCosimOptions& options);

// A trace's FP32 operands (workloads/trace.h), cropped to the core's capacity: the first
// min(M, max_m) rows of A, min(N, max_n) rows of B and min(K, max_k) columns of both.
CoreCosimGemm core_gemm_from_trace(const std::filesystem::path& trace,
                                   const nlohmann::json& core_manifest);

// `gsqhw cosim` on a coreRxC design (generated, or read from a folder; run_cosim_traces
// dispatches here): the FP32 operands of the traces (files or folders) through the core.
// The rtl engine only (the fast cycle model covers arrays).
CosimResult run_core_cosim(const CosimDesign& design,
                           const std::vector<std::filesystem::path>& traces,
                           const CosimOptions& options);

// Runs a Verilated design for inputs.size() cycles under the generic harness (one record of
// input words per cycle, spec.ports order, one u64 per port; ports up to 64 bits) and returns,
// per cycle on which spec.valid_port was high, the cycle and the output words (spec.ports
// order). For unit tests of combinational leaves (the quantizer's conversions).
struct SimulatedBeat {
  int64_t cycle = 0;
  std::vector<uint64_t> outputs;
};
std::vector<SimulatedBeat> simulate_cycles(const VerilatorBuildSpec& spec,
                                           const std::vector<std::vector<uint64_t>>& inputs,
                                           const std::filesystem::path& cache_dir);

// The wrapper module (exposed for the tests).
std::string core_cosim_wrapper_verilog(const GeneratedDesign& core);

}  // namespace gsqhw
