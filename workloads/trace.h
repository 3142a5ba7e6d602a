// One trace = one GEMM of a LoRA layer: quantized operands (codes), their FP32 originals, the
// golden output, and metadata. Stored as a safetensors file (layout in docs/traces.md) so that
// PyTorch / NumPy users can read it; gsqhw metadata lives in the header's "__metadata__".
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "numerics/format.h"
#include "numerics/gemm.h"

namespace gsqhw {

struct Trace {
  // Metadata: model, layer, projection, gemm name (e.g. "fwd.base", "bwd.dA"), pass
  // ("forward"/"backward"), seed, data source ("synthetic" / checkpoint path), tool version,
  // operand roles, and anything else worth keeping. Written as a JSON string.
  nlohmann::json metadata;
  std::string name;  // unique within its folder, e.g. "L0.q.fwd.base"

  // C (M x N) = A (M x K) x B^T (N x K), both quantized along K.
  QuantizedTensor a, b;
  std::vector<float> a_fp32, b_fp32;  // the originals before quantization
  AccumulatorSpec acc;                // the accumulator the golden output was computed with
  GemmResult golden;                  // golden_gemm(a, b, acc)
  std::vector<float> reference_fp32;  // M x N, the unquantized product in FP32 (may be empty)

  int64_t m() const { return a.rows; }
  int64_t n() const { return b.rows; }
  int64_t k() const { return a.cols; }
};

// Atomic: writes to a temporary name beside `path` and renames.
void write_trace(const Trace& trace, const std::filesystem::path& path);
// Validates everything (header JSON, dtypes, shapes, offsets, sizes, metadata); a malformed or
// truncated file throws UsageError naming the problem.
Trace read_trace(const std::filesystem::path& path);
// The header only: name, acc, metadata and the operands' formats and shapes (codes, golden
// output and the other tensors left empty). Cheap, for checking a folder before running it.
Trace read_trace_header(const std::filesystem::path& path);
// A file, or every *.safetensors in a folder (sorted by name).
std::vector<std::filesystem::path> list_traces(const std::filesystem::path& file_or_dir);

// Producing traces: generate_lora_traces() (the eight GEMMs of a LoRA projection) and
// ensure_builtin_tiny_traces() (the small built-in set for sweeps and co-simulation) are in
// workloads/lora.h; the file layout is documented in docs/traces.md.

}  // namespace gsqhw
