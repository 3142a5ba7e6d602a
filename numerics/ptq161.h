// PTQ1.61 (Zhao et al., ACL 2025): ~1.61-bit post-training weight quantization. Golden model
// of the quantizer and of the integer GEMM the generated datapath (gen/ptq161.h) computes.
// Semantics in docs/siblings.md.
//
// Layout: W is d_out x d_in, row-major; row o = output channel, column c = input channel
// (the paper's W_ij with i = input, j = output is our W[o = j][c = i]).
//
//   mask[c] = 1 for the round(f * d_in) input channels with the largest mean |activation|
//             (ties: lower index first); one bit per input channel.
//   salient (mask 1):  w[o][c] = s[o] * (q[o][c] - z[o]),  q, z in 0..15  (4-bit per row,
//             asymmetric, over the salient columns of the row)
//   binary  (mask 0):  w[o][c] = r[o] * t[c] * (alpha[o] * b[o][c] + mu[o]),  b in {-1, +1}
//             (the paper's r1_j * r2_i * (alpha_j * sign(W_ij - mu_j) + mu_j))
// Every float (s, r, alpha, mu, t) is an FP16 value: what bits/weight counts.
//
// Choice of the binary parameters (a closed-form stand-in for the paper's gradient-based
// block-wise scale optimisation; `iterations` rounds of alternating least squares):
//   t = 1; repeat: V = W / t (binary columns only);
//     mu[o] = mean_c V[o][c],  alpha[o] = mean_c |V[o][c] - mu[o]|,  b = sign(V - mu) (0 -> +1)
//     r[o]  = LS fit of W[o][.] by r * t * (alpha b + mu)  (rows), then
//     t[c]  = LS fit of W[.][c] by t * r * (alpha b + mu)  (columns; kept positive)
//   the last round ends after the row fit, so r, alpha, mu, b, t are mutually consistent.
//
// Integer GEMM (what the hardware computes; activations INT8 per token, numerics/lota.h):
//   x'[c]  = x[c] * t[c] for binary columns, x[c] for salient ones (t folded into the
//            activation quantizer: scales once per column, outside the MAC loop)
//   P_sal[o] = sum_{c salient} x_int[c] * q[o][c]      (4-bit multiplier)
//   P_bin[o] = sum_{c binary}  b[o][c] * x_int[c]      (add / subtract only)
//   X_sal = sum_{c salient} x_int[c],  X_bin = sum_{c binary} x_int[c]   (once per token)
//   y[o] = fp32( s_x * ( s[o] * (P_sal - z[o] * X_sal) + r[o] * (alpha[o] * P_bin + mu[o] * X_bin) ) )
//          (binary64, rounded once; scales once per row)
#pragma once

#include <cstdint>
#include <vector>

#include "numerics/format.h"

namespace gsqhw::ptq161 {

struct Ptq161Params {
  double salient_fraction = 0.2;  // f in [0, 1]
  int iterations = 2;             // alternating least-squares rounds, 1..16
};

// Throws UsageError naming the parameter out of range.
void validate(const Ptq161Params& params);

// The mask: the round(f * n) channels with the largest magnitude (ties: lower index).
std::vector<uint8_t> choose_salient(const std::vector<float>& channel_magnitude, double fraction);
// mean |x[t][c]| over tokens, per input channel c.
std::vector<float> channel_magnitudes(const float* x, int64_t tokens, int64_t cols);

struct Ptq161Layer {
  int64_t rows = 0, cols = 0;       // d_out, d_in
  std::vector<uint8_t> salient;     // cols, 1 = salient channel
  std::vector<uint8_t> code;        // rows*cols: salient q in 0..15; binary 1 = +1, 0 = -1
  std::vector<float> s, alpha, mu, r;  // per row (FP16 values)
  std::vector<int32_t> z;              // per row, 0..15
  std::vector<float> t;                // per column (FP16 values; 1 for salient columns)

  int64_t salient_count() const;
  void dequantize(float* out) const;  // rows*cols, each weight rounded once to FP32
};

// Throws UsageError for bad parameters, shapes, non-finite inputs, or a mask of the wrong size.
Ptq161Layer quantize(const float* w, int64_t rows, int64_t cols, const std::vector<uint8_t>& mask,
                     const Ptq161Params& params);

struct BitsBreakdown {
  double mask = 0, salient_codes = 0, binary_codes = 0, row_params = 0, col_params = 0;
  double total_bits() const {
    return mask + salient_codes + binary_codes + row_params + col_params;
  }
};
// Storage of a layer: mask 1 bit per column; salient codes 4 bits; binary codes 1 bit;
// per row s, alpha, mu, r (FP16) + z (4 bits) = 68 bits; per binary column t (FP16).
BitsBreakdown storage_bits(const Ptq161Layer& layer);
double bits_per_weight(const Ptq161Layer& layer);

// Activation quantization with t folded in: quantize_activations(x * t) per token.
QuantizedTensor quantize_activations(const float* x, int64_t tokens, const Ptq161Layer& layer);

struct Ptq161GemmResult {
  int64_t tokens = 0, d_out = 0;
  std::vector<int64_t> p_sal, p_bin;  // tokens*d_out
  std::vector<int64_t> x_sal, x_bin;  // tokens
  std::vector<float> out;             // tokens*d_out
};
Ptq161GemmResult gemm(const QuantizedTensor& x, const Ptq161Layer& layer);

}  // namespace gsqhw::ptq161
