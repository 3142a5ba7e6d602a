// LoTA-QAF (Chen et al., NeurIPS 2025): ternary adapters merged losslessly into N-bit
// group-wise asymmetric integer weights. Golden model of the merge, of the merged integer GEMM
// and of the t-SignSGD adapter update. The generated merge unit and integer PE (gen/lota.h)
// must reproduce every integer this file computes, bit for bit. Semantics in docs/siblings.md.
//
// Layout (the project's "B is N x K" convention, K = reduction dimension):
//   W      d_out x d_in, row-major; quantization groups of `group` consecutive input channels
//          of one output row (the last group of a row may be partial).
//   A_T    d_in x r  ternary {-1, 0, +1}, row-major
//   B_T    r x d_out ternary, row-major
//   dW[o][i] = sum_j A_T[i][j] * B_T[j][o]       (integer in [-r, r])
//
// Zero-point convention (float offset, as in min-max quantization):
//   w = s * q + z      q in [0, 2^N - 1], s >= 0 and z FP16 values (carried as float)
// which is w = s * (q - zp) with zp = -z / s. The merge:
//   T        = floor(omega) + 1                     (|dW| > omega  <=>  |dW| >= T, dW integer)
//   W_hat    = sign(dW) if |dW| >= T else 0
//   q'       = clamp(q + W_hat, 0, 2^N - 1)         (saturating +-1 on the stored code)
//   applied  = q' - q                               (W_hat unless the clamp dropped it)
//   mu       = (sum_group dW - omega * sum_group applied) / n_group     (binary64)
//   z'       = fp16(z + s * mu)                     (binary64, rounded once to FP16)
// so w' = s * q' + z' moves the group by s * (applied + mu); in the zp convention zp' = zp - mu.
// mu uses the applied (post-clamp) ternary: the offset absorbs exactly what the code did not.
#pragma once

#include <cstdint>
#include <vector>

#include "numerics/format.h"

namespace gsqhw::lota {

struct LotaParams {
  int bits = 4;          // N: 2, 3 or 4
  int group = 64;        // quantization group along d_in: 64 or 128
  int rank = 16;         // r: 1..64
  double omega = 12.0;   // threshold, strictly inside (0, r)
};

// Throws UsageError naming the parameter that is out of range.
void validate(const LotaParams& params);

// The integer threshold the hardware compares against: T = floor(omega) + 1.
int threshold(double omega);

// Rounds to the nearest FP16 value (ties to even), returned as float. Throws UsageError when
// the value overflows FP16 (|x| > 65504 after rounding) or is not finite.
float round_to_fp16(float x);

// ---- scalar golden functions: what one merge-unit lane computes ----------------------------

// Ternary rank-r dot product: sum_j a[j] * b[j], with a, b in {-1, 0, +1}.
int ternary_dot(const int8_t* a, const int8_t* b, int rank);
// sign(dw) when |dw| >= t, else 0.
int ternary_decision(int dw, int t);
// The merged code: q + decision, saturated to [0, 2^bits - 1].
int merge_code(int q, int dw, int t, int bits);

// ---- layers -------------------------------------------------------------------------------

struct QuantizedWeights {
  int64_t rows = 0;  // d_out
  int64_t cols = 0;  // d_in
  int bits = 4;
  int group = 64;
  std::vector<uint8_t> q;     // rows*cols codes in [0, 2^bits - 1]
  std::vector<float> scale;   // rows*groups_per_row(), FP16 values
  std::vector<float> zero;    // rows*groups_per_row(), FP16 values

  int64_t groups_per_row() const { return (cols + group - 1) / group; }
  int64_t group_count(int64_t g) const;  // elements in group g of a row
  void dequantize(float* out) const;     // rows*cols: s * q + z, rounded to FP32
};

// Min-max asymmetric quantization per group: z = fp16(min), s = fp16((max - min) / (2^N-1)),
// q = clamp(rne((w - z) / s), 0, 2^N - 1) in binary64; s = 0 (all q = 0) for a constant group.
QuantizedWeights quantize_weights(const float* w, int64_t rows, int64_t cols, int bits, int group);

struct Adapters {
  int64_t d_in = 0, d_out = 0;
  int rank = 0;
  std::vector<int8_t> a;  // d_in x rank
  std::vector<int8_t> b;  // rank x d_out
};
// Throws UsageError on shape mismatch or a value outside {-1, 0, +1}.
void check_adapters(const Adapters& adapters, const QuantizedWeights& base);

struct MergeResult {
  QuantizedWeights merged;
  std::vector<int32_t> dw;                  // rows*cols, dW[o][i] at o*cols + i
  std::vector<int8_t> applied;              // rows*cols, q' - q
  std::vector<int64_t> group_sum_dw;        // rows*groups_per_row()
  std::vector<int64_t> group_sum_applied;   // rows*groups_per_row()
  int64_t changed = 0;   // weights whose code moved
  int64_t clipped = 0;   // weights whose decision the clamp dropped
};
MergeResult merge(const QuantizedWeights& base, const Adapters& adapters, const LotaParams& params);

// ---- the merged integer GEMM --------------------------------------------------------------

// Activations: INT8 per token (one symmetric scale per row of X), as the numerics/format.h family
// "int8:per=channel" applied to X (tokens x d_in): scale = fp32(amax / 127),
// code = clamp(rne(fp32(x / scale)), -127, 127); an all-zero token has scale 0 and codes 0.
QuantizedTensor quantize_activations(const float* x, int64_t tokens, int64_t cols);

struct MergedGemmResult {
  int64_t tokens = 0, d_out = 0, groups = 0;
  // P[t][o][g] = sum_{i in g} x[t][i] * q[o][i]   (exact; what the integer PE outputs)
  std::vector<int64_t> group_dot;   // tokens*d_out*groups
  // X[t][g] = sum_{i in g} x[t][i]                (exact; shared by every output row)
  std::vector<int64_t> group_xsum;  // tokens*groups
  // y[t][o] = fp32( s_x[t] * sum_g (s[o][g] * P + z[o][g] * X) ), binary64 in group order
  std::vector<float> out;           // tokens*d_out
};
MergedGemmResult merged_gemm(const QuantizedTensor& x, const QuantizedWeights& w);

// ---- t-SignSGD ----------------------------------------------------------------------------

// Gradients of the adapters from the gradient of the loss w.r.t. the dequantized weight
// gW (d_out x d_in), with the straight-through estimator through the ternary decision:
//   d w[o][i] / d dW[o][i] := s[o][g(i)],  gA[i][j] = sum_o gdW[o][i] * B[j][o],
//   gB[j][o] = sum_i gdW[o][i] * A[i][j]     (binary64 sums, rounded to FP32)
struct AdapterGradients {
  std::vector<float> a;  // d_in x rank
  std::vector<float> b;  // rank x d_out
};
AdapterGradients adapter_gradients(const float* grad_w, const QuantizedWeights& base,
                                   const Adapters& adapters);

// One t-SignSGD step on a ternary tensor: x <- clamp(x - sign(g) * [|g| > threshold], -1, 1).
// Returns how many entries changed. Throws UsageError for a negative or non-finite threshold.
int64_t t_signsgd_step(std::vector<int8_t>& x, const std::vector<float>& grad, float threshold);
// The threshold that lets the top `fraction` of |g| move (the paper's percentile rule):
// the value v such that exactly the entries with |g| > v are the largest ceil(fraction*n)
// (ties may let fewer move). fraction in [0, 1].
float percentile_threshold(const std::vector<float>& grad, double fraction);

}  // namespace gsqhw::lota
