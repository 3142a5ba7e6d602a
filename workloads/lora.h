// The GEMMs of one LoRA-adapted projection in one training step, as traces.
//
// Projection weight W is out x in (frozen, stored NF4), LoRA A is r x in and B is out x r
// (FP32 masters), s = alpha / r, X is T x in (T tokens), dY is T x out:
//   forward   Y  = X W^T + s (X A^T) B^T
//   backward  dX = dY W + s (dY B) A,   dA = s (B^T dY^T) X,   dB = s dY^T (X A^T)
// Every product is one GEMM C = A_op x B_op^T whose operands are transposed as needed so that
// the reduction dimension K is the last axis of both (QCD: quantize along K, compute on
// integers, dequantize). The eight GEMMs, in generation order, with H = X A^T and G = dY B
// taken from the dequantized outputs of earlier GEMMs (as the quantized pipeline produces them):
//
//   name          pass      A_op (role)        B_op (role)        M    N    K    combined as
//   fwd.base      forward   X      (act)       W      (weight)    T    out  in   Y  = base + s*lora_b
//   fwd.lora_a    forward   X      (act)       A      (weight)    T    r    in   H
//   fwd.lora_b    forward   H      (act)       B      (weight)    T    out  r
//   bwd.dx_base   backward  dY     (grad)      W^T    (weight)    T    in   out  dX = dx_base + s*dx_lora
//   bwd.dh        backward  dY     (grad)      B^T    (weight)    T    r    out  G
//   bwd.dx_lora   backward  G      (grad)      A^T    (weight)    T    in   r
//   bwd.da        backward  G^T    (grad)      X^T    (act)       r    in   T    dA = s*da
//   bwd.db        backward  dY^T   (grad)      H^T    (act)       out  r    T    dB = s*db
//
// The scale s is applied after dequantization (recorded as "post_scale" in each trace), so
// every trace is a plain GEMM whose golden output the hardware must reproduce.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "numerics/gemm.h"
#include "workloads/models.h"

namespace gsqhw {

class Checkpoint;

// Which format quantizes which operand role. Specs are canonical after parse().
struct FormatAssignment {
  std::string act;      // activations X, H
  std::string weight;   // base weight W and LoRA A, B
  std::string grad;     // output gradients dY, G
  std::string storage;  // how the frozen base weight is stored (dequantized to FP32 before use)

  // Defaults: GSE-INT b=6, G=32, E=5 for every GEMM operand (round to nearest even for act and
  // weight, stochastic rounding for grad), NF4 block 64 for the stored base weight.
  static FormatAssignment defaults();
  // Every GEMM operand role uses `spec` (the co-simulation of one design); storage stays NF4.
  static FormatAssignment uniform(std::string_view spec);
  // "act=SPEC,weight=SPEC,grad=SPEC,storage=SPEC" (any subset, starting from the defaults;
  // "all=SPEC" sets act, weight and grad; a leading SPEC with no role also means all). Commas
  // inside a SPEC are fine: a new role starts only at "act=", "weight=", "grad=", "storage="
  // or "all=". Throws UsageError for unknown roles or specs, and when the roles cannot meet in
  // one GEMM (e.g. act=fp8 with weight=gse: golden_gemm needs compatible operand families).
  static FormatAssignment parse(std::string_view text);
  std::string str() const;  // "act=...,weight=...,grad=...,storage=..."
  const std::string& role(std::string_view name) const;  // "act" / "weight" / "grad"
};

struct LoraGemmShape {
  std::string gemm;        // "fwd.base", ..., "bwd.db"
  std::string pass;        // "forward" / "backward"
  int64_t m = 0, n = 0, k = 0;
  std::string a_role, b_role;      // "act" / "weight" / "grad"
  std::string a_tensor, b_tensor;  // "X", "W^T", "dY^T", ...
  double post_scale = 1;           // s for LoRA-path products, 1 otherwise
};

// The eight GEMMs of a projection (table above), in generation order.
std::vector<LoraGemmShape> lora_gemm_shapes(const ModelShape& model, Proj proj, int64_t rank,
                                            int64_t tokens, double alpha);

// Error of an approximation against an exact array (NaN/Inf in `approx` are counted apart and
// excluded from the other figures).
struct ErrorStats {
  int64_t count = 0;
  int64_t nonfinite = 0;
  double rel_rms = 0;   // sqrt(sum (approx-exact)^2 / sum exact^2); 0 when both are all zero
  double max_abs = 0;   // max |approx - exact|
  double sqnr_db = 0;   // 10 log10(sum exact^2 / sum (approx-exact)^2); +inf when exact
};
ErrorStats error_stats(const float* approx, const float* exact, int64_t count);
// {"count", "nonfinite", "rel_rms", "max_abs", "sqnr_db"}; non-finite figures become null.
nlohmann::json error_stats_json(const ErrorStats& s);
// "relRMS 1.23e-02  maxAbs 4.56e-03  SQNR 38.2 dB" (+ "  nonfinite N" when any).
std::string error_stats_text(const ErrorStats& s);

// a (m x k) times b^T (b is n x k), computed in double precision (BLAS) and rounded once to FP32:
// the "FP32 reference" of a trace, and, on dequantized operands, the exact value that an
// accumulator is judged against.
std::vector<float> reference_product(const std::vector<float>& a, const std::vector<float>& b,
                                     int64_t m, int64_t n, int64_t k);

// Operands recorded from a real model run (workloads/train/capture.h); when given they replace
// the synthetic X, dY (and, when `a`/`b` are non-empty, the LoRA masters A, B). Each `*_source`
// says where the operand came from and goes into the trace metadata.
struct RealOperands {
  std::vector<float> x;   // tokens x in: the projection's input
  std::vector<float> dy;  // tokens x out: d(cross-entropy loss)/d(projection output)
  std::vector<float> a, b;  // rank x in, out x rank; empty: synthetic LoRA masters
  std::string x_source, dy_source, lora_source;
};

struct LoraTraceRequest {
  ModelShape model;
  const Checkpoint* checkpoint = nullptr;  // base weights from here; synthetic when null
  const RealOperands* real = nullptr;      // real X, dY (and A, B) when set
  int64_t layer = 0;
  Proj proj = Proj::q;
  int64_t rank = 8;
  double alpha = 16;
  int64_t tokens = 16;
  FormatAssignment formats = FormatAssignment::defaults();
  AccumulatorSpec acc;  // fixed32.16
  uint64_t seed = 1;
  int threads = 0;      // golden GEMM threads (0 = all cores); results do not depend on it

  void validate() const;  // throws UsageError
};

struct GemmReport {
  LoraGemmShape shape;
  std::string name;  // "L0.q.fwd.base"
  std::filesystem::path file;
  std::string a_format, b_format;
  ErrorStats a_error, b_error, out_error;  // operands: dequantized vs FP32; out: golden vs FP32 product
  // The accumulator's share: golden output vs the exact product of the dequantized operands
  // (zero for an exact accumulator; shows what a narrow fixed accumulator loses).
  ErrorStats acc_error;
  int64_t overflow_outputs = 0, nan_outputs = 0;
  double seconds = 0;  // generate + quantize + golden + reference + write
};

// Generates, quantizes, computes and writes the eight traces of the request into out_dir
// (created if needed), one GEMM at a time: peak memory is about one GEMM's operands.
// `on_gemm` (optional) is called after each trace is written.
std::vector<GemmReport> generate_lora_traces(const LoraTraceRequest& request,
                                             const std::filesystem::path& out_dir,
                                             const std::function<void(const GemmReport&)>& on_gemm = {});

// The built-in tiny trace set used by the sweep and the co-simulation: layer 0 of the "tiny"
// model, all seven projections (56 GEMMs), 16 tokens, rank 8, alpha 16, seed 1, synthetic
// data. Generated on first use into dir/tiny-<hash of formats, acc and generator version>/ and
// reused afterwards (files are written atomically, so a concurrent or interrupted run leaves
// only complete traces). Returns the trace files sorted by name.
std::vector<std::filesystem::path> ensure_builtin_tiny_traces(const std::filesystem::path& dir,
                                                              const FormatAssignment& formats,
                                                              const AccumulatorSpec& acc);
// Same, with one format for every operand role (what a single DesignPoint runs).
std::vector<std::filesystem::path> ensure_builtin_tiny_traces(const std::filesystem::path& dir,
                                                              std::string_view format_spec,
                                                              const AccumulatorSpec& acc);

}  // namespace gsqhw
