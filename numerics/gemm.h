// The golden GEMM: C = A x B^T over quantized operands, with the MAC semantics of
// docs/formats.md. The RTL and the cycle model must reproduce `acc_raw` and `flags` bit for bit.
//
// Layout: A is M x K, B is N x K (both quantized along K, their reduction dimension), C is M x N:
//   C[m][n] = sum_k A[m][k] * B[n][k]
//
// Accumulator spec strings:  "fixed32.16"  (fixed(W=32) with F=16 fraction bits)   "fp32"
//
// Semantics per operand family (A and B must be of the same family; GSE operands must share G;
// minifloats may mix, e.g. E4M3 x E5M2; nf4 and fp32 are not GEMM operand formats):
//
// GSE-INT, per group j = 0, 1, ... (in that order; the last group may be partial):
//   S_j   = sum_i m_a[i] * m_b[i]                 (exact integer; order irrelevant)
//   x_j   = (e_a - B_a) + (e_b - B_b) - (b_a - 2) - (b_b - 2)    (value of S_j is S_j * 2^x_j)
//   fixed(W,F): addend = S_j shifted left by (x_j + F), or arithmetically right (floor) when
//               negative; acc = saturate_W(acc + addend); saturation sets the sticky OVERFLOW flag.
//               (An addend that does not fit in W bits saturates likewise.)
//   fp32:       acc = RNE_fp32(acc + S_j * 2^x_j)   (exact sum, rounded once), acc starts at +0.0
//   A NaN group (exponent code all ones) in either operand sets the sticky NAN flag and adds
//   nothing; the output is then NaN.
//
// Minifloats (fp8 e4m3/e5m2, bf16, fp16), per element k = 0, 1, ... in order:
//   p_k = exact product of the two decoded values (times the two MX block scales, if any)
//   fixed(W,F): addend = p_k * 2^F rounded toward -inf (floor) to an integer; saturating add
//   fp32:       acc = RNE_fp32(acc + p_k)  (IEEE: Inf and NaN propagate; overflow gives Inf)
//   fixed(W,F) with a NaN or Inf operand sets the sticky NAN flag and adds nothing.
//
// Minifloats with group sums (acc.group = G > 0: the shared-column arrays, align=shared), per
// group j = 0, 1, ... of G consecutive elements (in that order; the last may be partial):
//   every exact product is an integer multiple of 2^q, q = (1 - bias_a - man_a) +
//   (1 - bias_b - man_b) (the product of the two smallest subnormals; E4M3 x E4M3: q = -18), so
//   S_j = sum of the group's products / 2^q   (exact integer, signed; order irrelevant)
//   fixed(W,F): addend = S_j shifted left by (q + F), or arithmetically right (floor) when
//               negative, saturated to W bits; acc = saturate_W(acc + addend)  (as GSE)
//   fp32:       acc = RNE_fp32(acc + S_j * 2^q)   (exact group sum, rounded once per group)
//   A group with a NaN (or Inf) operand is a NaN group, as in GSE: it adds nothing and sets
//   the sticky NAN flag. Only pairs whose group sum fits 53 bits are allowed
//   (minifloat_group_sum_bits <= 53: E4M3 and FP6, G up to 2^16); no MX block scales.
//
// INT8, per element k in order: p_k = m_a * m_b (exact integer)
//   fixed(W,F): acc = saturate_W(acc + (p_k << F));   fp32: acc = RNE_fp32(acc + p_k)
//   The per-channel/per-tensor float scales are applied in the dequantize step.
//
// Dequantize (QCD), per output:
//   fixed: out = RNE_fp32(acc * 2^-F)      fp32: out = acc
//   int8 then: out = RNE_fp32(RNE_fp32(out * scale_a[m]) * scale_b[n])
//   NAN flag set: out = quiet NaN (0x7fc00000).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "numerics/accumulator.h"
#include "numerics/format.h"

namespace gsqhw {

enum GemmFlags : uint8_t {
  kFlagOverflow = 1,  // a fixed accumulator saturated at least once (sticky)
  kFlagNaN = 2,       // a NaN group / non-finite operand was seen (sticky)
};

struct GemmResult {
  int64_t m = 0, n = 0;
  std::vector<float> out;        // M*N dequantized FP32 outputs, row-major
  std::vector<int64_t> acc_raw;  // M*N final accumulators: fixed -> W-bit value sign-extended;
                                 // fp32 -> the IEEE bit pattern (uint32 in an int64)
  std::vector<uint8_t> flags;    // M*N GemmFlags
};

// Throws UsageError when the operands do not fit together (shapes, families, group sizes).
// Multi-threading: uses up to `threads` threads (0 = all cores); the result does not depend on it.
GemmResult golden_gemm(const QuantizedTensor& a, const QuantizedTensor& b,
                       const AccumulatorSpec& acc, int threads = 1);

}  // namespace gsqhw
