// Self-checking plain-Verilog testbenches for generated designs.
//
// The testbench streams a small random GEMM (random element codes and group exponents, a few
// NaN/Inf/saturating cases on purpose) through the design with the protocol of
// docs/array-protocol.md, back to back, and checks every out_valid beat against golden_gemm:
// the row index, every column's accumulator and flags, and the cycle the beat arrives on
// (manifest timing). It prints "PASS: <n> results" or "FAIL: <m> of <n> ..." and finishes.
// Runs under `iverilog -g2005` and `verilator --binary` (Verilator needs --timing for the
// clock generator, which --binary implies).
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

#include "gen/generator.h"
#include "numerics/format.h"

namespace gsqhw {

struct TestbenchOptions {
  int tiles = 3;       // output tiles streamed back to back (tile rows x tile columns)
  int k = 0;           // reduction length; 0 = a default that covers groups and partial groups
  uint64_t seed = 1;   // random codes
};

struct GeneratedTestbench {
  std::string module_name;  // "tb_" + top
  std::string file_name;    // module_name + ".v"
  std::string text;
  int m = 0, n = 0, k = 0;   // the GEMM: M x K times (N x K)^T
  int checked_outputs = 0;   // M * N results checked
  int64_t expected_cycles = 0;  // cycle of the last result beat + 1 (manifest formula)
};

// Random operands for a design's format: A is m x k, B is n x k, with codes as the golden
// model expects them (numerics/format.h). Also used by the tests.
void random_operands(const GeneratedDesign& design, int m, int n, int k, uint64_t seed,
                     QuantizedTensor& a, QuantizedTensor& b);

GeneratedTestbench generate_testbench(const GeneratedDesign& design,
                                      const TestbenchOptions& options);

// Writes the testbench file into dir (atomically, like write_design).
void write_testbench(const GeneratedTestbench& bench, const std::filesystem::path& dir);

}  // namespace gsqhw
