// The accelerator core `gsqhw_core` (level coreRxC): the output-stationary array `gsqhw_array`
// (unchanged) plus operand buffers, a quantizer (FP32 in -> the design's codes), a dequantizer
// (accumulator -> FP32) and a controller that runs one GEMM per descriptor. docs/core.md holds
// the interface, the capacities, the schedule and the cycle counts; the manifest repeats them.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "gen/generator.h"
#include "numerics/design.h"

namespace gsqhw {

// Buffer capacities of a core (generator parameters, recorded in the manifest under "core").
struct CoreCapacity {
  int tile_rows = 4;  // M <= tile_rows * R
  int tile_cols = 4;  // N <= tile_cols * C
  int max_k = 256;    // K <= max_k (a power of two)
};

// Error codes on the core's `error` output after a descriptor was refused (docs/core.md).
enum CoreError : int {
  kCoreOk = 0,
  kCoreEmptyGemm = 1,  // M, N or K is 0
  kCoreMTooLarge = 2,  // M > tile_rows * R
  kCoreNTooLarge = 3,  // N > tile_cols * C
  kCoreKTooLarge = 4,  // K > max_k
};

// Width of desc_m / desc_n / desc_k: wide enough to name sizes beyond any capacity, so that
// too large a GEMM is refused with an error code rather than silently truncated.
constexpr int kCoreDescriptorWidth = 16;

// Generates the core (Verilog + manifest). Throws UsageError for design points the core does
// not support (formats other than gse / fp8 / bf16 / fp16 with block=0, gse round=stochastic,
// shared-column arrays, capacities out of range).
GeneratedDesign generate_core(const DesignPoint& design, const CoreCapacity& capacity = {});

// What the co-simulator and the testbench need from a core manifest.
struct CoreManifest {
  std::string design, top;
  int rows = 1, cols = 1;
  int max_m = 0, max_n = 0, max_k = 0;
  static CoreManifest from_json(const nlohmann::json& manifest);  // throws UsageError
};

// Cycles from the cycle a core takes a descriptor to the cycle of its `done` pulse when
// operand words are offered and result words taken on every cycle (no stalls):
//   load + T S + latency + R + 2 + M N
// load: minifloats (M+N) K; GSE the cycle of the last code out of the two-buffer quantizer
// ((M+N) K + the last group's length + waits where a short group follows a long one), T output
// tiles, S = max(K, min_steps_per_tile) steps per tile, latency and R of the array. The
// co-simulation checks it.
int64_t core_cycles_without_stalls(const nlohmann::json& manifest, int64_t m, int64_t n,
                                   int64_t k);

// The FP32 words a core returns for A (M x K) and B (N x K) given as FP32, per the golden
// model: quantize both with the design's format, golden_gemm, dequantize (numerics/gemm.h).
// `flags`, when not null, receives the golden GemmFlags per output.
std::vector<uint32_t> core_golden_output(const DesignPoint& design, const std::vector<float>& a,
                                         const std::vector<float>& b, int64_t m, int64_t n,
                                         int64_t k);

// Random FP32 operands that exercise the quantizer: mostly near 1 with a random scale per
// group, some outliers, all-zero groups, subnormals, and (when `specials`) NaN and Inf.
std::vector<float> core_random_operand(int64_t rows, int64_t cols, int group, uint64_t seed,
                                       bool specials);

// Self-checking Verilog-2005 testbench of a core (`gsqhw gen --testbench` for coreRxC): four
// bad descriptors first (checks each error code and that the core stays idle), then a random GEMM with random bubbles on the
// operand stream and random backpressure on the result stream; every result word is compared
// with core_golden_output. Prints "PASS: <n> results" or "FAIL: ...".
struct CoreTestbench {
  std::string module_name, file_name, text;
  int64_t m = 0, n = 0, k = 0;
  int64_t checked_outputs = 0;
};
CoreTestbench generate_core_testbench(const GeneratedDesign& core, uint64_t seed = 1,
                                      int64_t m = 0, int64_t n = 0, int64_t k = 0);
// Writes the testbench into dir (atomically).
void write_core_testbench(const CoreTestbench& bench, const std::filesystem::path& dir);

}  // namespace gsqhw
