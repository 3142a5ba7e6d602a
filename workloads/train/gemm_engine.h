// How the linear layers of the training engine multiply: every projection GEMM of the forward
// and backward pass (the eight per LoRA-adapted projection of workloads/lora.h, two for a
// projection without LoRA) goes through one GemmEngine.
//
//   Fp32Engine   OpenBLAS sgemm on the FP32 operands (the FP32 baseline)
//   Bf16Engine   operands rounded to BF16 (RNE), then sgemm with FP32 accumulation: emulated
//                BF16 mixed-precision training (the BF16 baseline; summation order is BLAS's)
//   QcdEngine    QCD as the hardware does it: each operand quantized along K in its role's
//                format (act / weight / grad), golden_gemm with the design's accumulator (the
//                function the RTL is verified against), dequantized output
//
// Every product is C = A B^T with A logically M x K and B logically N x K (K is the reduction
// axis of both, the axis the quantizer groups along). A MatRef may view the transpose of a
// row-major array, so callers never copy; the QCD engine materialises the K-last layout itself.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "numerics/format.h"
#include "numerics/gemm.h"
#include "workloads/lora.h"

namespace gsqhw::train {

struct MatRef {
  const float* data = nullptr;
  int64_t rows = 0, cols = 0;  // logical shape
  bool trans = false;          // memory holds the cols x rows matrix row-major (this is its transpose)
  float at(int64_t r, int64_t c) const { return trans ? data[c * rows + r] : data[r * cols + c]; }
};

// Where a GEMM sits in the model, for per-GEMM statistics, stochastic-rounding seeds and the
// NaN report. `frozen_b` marks B as a frozen base weight that may be quantized once and reused.
struct GemmSite {
  int64_t layer = 0;
  int proj = 0;            // index into all_projections()
  // 0..7: fwd.base, fwd.lora_a, fwd.lora_b, bwd.dx_base, bwd.dh, bwd.dx_lora, bwd.da, bwd.db;
  // 8: bwd.dw (a trained base weight's gradient dY^T X: LoTA-QAF's ternary adapters);
  // 9..14 (with --quantize-attention, per batch row and head): att.scores (Q K^T),
  // att.values (P V), att.bwd.dp (dO V^T), att.bwd.dv (P^T dO), att.bwd.dq (dS K), att.bwd.dk (dS^T Q)
  int gemm = 0;
  const char* a_role = "act";
  const char* b_role = "weight";
  bool frozen_b = false;
  int64_t index = 0;       // attention GEMMs: batch row * heads + head (feeds the rounding seed)
  std::string name() const;  // "L3.v.bwd.dx_base", "L3.att.scores"
};
constexpr int kGemmDw = 8, kGemmAttScores = 9, kGemmAttValues = 10, kGemmAttDp = 11, kGemmAttDv = 12,
              kGemmAttDq = 13, kGemmAttDk = 14;
const char* gemm_kind_name(int gemm);  // "fwd.base", ...

// Counts per GEMM kind (summed over layers and projections) of one run.
struct GemmCounters {
  int64_t calls = 0;
  int64_t outputs = 0;
  int64_t overflow = 0;   // outputs whose fixed accumulator saturated (sticky flag)
  int64_t underflow = 0;  // outputs whose exact value (product of the dequantized operands) is
                          // non-zero but below the fixed accumulator's resolution 2^-F: lost
                          // (GSE-INT and minifloats; INT8 sums exact integers, never counted)
  int64_t nonfinite = 0;  // outputs that are NaN or Inf
  double macs = 0;
};

class GemmEngine {
 public:
  virtual ~GemmEngine() = default;
  virtual std::string name() const = 0;
  // True for the FP32 baseline: what it computes outside the linear layers is the model's FP32
  // arithmetic, so options that route more products through the engine leave it unchanged.
  virtual bool is_fp32() const { return false; }
  // c (M x N row-major) = a b^T. `seed` drives stochastic rounding of this call's operands.
  virtual void product(const GemmSite& site, MatRef a, MatRef b, float* c, uint64_t seed) = 0;

  const std::map<std::string, GemmCounters>& counters() const { return counters_; }
  void reset_counters() { counters_.clear(); }
  // The first GEMM (site name) whose output held NaN/Inf since the last clear, or "".
  const std::string& first_nonfinite() const { return first_nonfinite_; }
  void clear_nonfinite() { first_nonfinite_.clear(); }
  // True when a GEMM saturated since the last clear (what dynamic loss scaling backs off on).
  bool overflowed() const { return overflowed_; }
  void clear_overflowed() { overflowed_ = false; }

 protected:
  void count(const GemmSite& site, const float* c, int64_t m, int64_t n, int64_t k,
             int64_t overflow, int64_t underflow);
  std::map<std::string, GemmCounters> counters_;
  std::string first_nonfinite_;
  bool overflowed_ = false;
};

std::unique_ptr<GemmEngine> make_fp32_engine();
std::unique_ptr<GemmEngine> make_bf16_engine();
// `threads`: golden_gemm threads (0 = all cores); results do not depend on it.
std::unique_ptr<GemmEngine> make_qcd_engine(const FormatAssignment& formats, const AccumulatorSpec& acc,
                                            int threads);

// Plain FP32 C = A B^T with OpenBLAS (also used outside the linear layers, e.g. the classifier).
void sgemm_nt(MatRef a, MatRef b, float* c, float beta = 0);

}  // namespace gsqhw::train
