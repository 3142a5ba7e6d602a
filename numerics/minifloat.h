// Minifloat formats: OCP FP8 E4M3 / E5M2 and FP6 E3M2 / E2M3 (optionally MX, one E8M0 scale
// per block),
// BF16, FP16, and FP32 (identity). One generic encoder/decoder serves all of them.
//
// Codes are raw bit patterns: sign | exponent field | mantissa field.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "numerics/format.h"
#include "numerics/spec_parse.h"

namespace gsqhw {

struct MinifloatParams {
  enum class Specials {
    ieee,       // all-ones exponent = Inf (mantissa 0) / NaN (FP16, BF16, FP32, E5M2)
    e4m3_like,  // no Inf; only S.1111.111 is NaN; all-ones exponent holds normal values (E4M3)
    none,       // no Inf, no NaN: every code is a finite value (OCP MX FP6 E3M2 / E2M3)
  };
  const char* name = "";  // "e4m3", "e5m2", "e3m2", "e2m3", "bf16", "fp16", "fp32"
  int exp_bits = 0;
  int man_bits = 0;
  int bias = 0;
  Specials specials = Specials::ieee;

  int total_bits() const { return 1 + exp_bits + man_bits; }
  bool has_inf() const { return specials == Specials::ieee; }
  bool has_nan() const { return specials != Specials::none; }
  int min_normal_exp() const { return 1 - bias; }  // unbiased exponent of the smallest normal
  double max_normal() const;                        // 448 for E4M3, 57344 for E5M2, ...
  // Largest unbiased exponent of a finite value (8 for E4M3, 15 for E5M2): OCP's emax.
  int max_exp() const;
  uint32_t sign_mask() const { return 1u << (exp_bits + man_bits); }
  uint32_t nan_code() const;  // canonical quiet NaN, positive: E4M3 0x7f, E5M2 0x7e, ... (has_nan())
};

const MinifloatParams& e4m3_params();
const MinifloatParams& e5m2_params();
const MinifloatParams& e3m2_params();  // OCP MX FP6: bias 3, max 28, no Inf/NaN
const MinifloatParams& e2m3_params();  // OCP MX FP6: bias 1, max 7.5, no Inf/NaN
const MinifloatParams& bf16_params();
const MinifloatParams& fp16_params();
const MinifloatParams& fp32_params();

// Decodes one code to its exact value (every minifloat value up to FP32 is a double; also a
// float, except that this returns double so callers can multiply exactly).
double decode_minifloat(const MinifloatParams& p, uint32_t code);
inline float decode_fp8_e4m3(uint8_t code) { return static_cast<float>(decode_minifloat(e4m3_params(), code)); }
inline float decode_fp8_e5m2(uint8_t code) { return static_cast<float>(decode_minifloat(e5m2_params(), code)); }
inline float decode_bf16(uint16_t code) { return static_cast<float>(decode_minifloat(bf16_params(), code)); }
inline float decode_fp16(uint16_t code) { return static_cast<float>(decode_minifloat(fp16_params(), code)); }

bool minifloat_is_nan(const MinifloatParams& p, uint32_t code);
bool minifloat_is_inf(const MinifloatParams& p, uint32_t code);

// Encodes an exact value with round-to-nearest-even. Overflow (the rounded magnitude exceeds
// max_normal) saturates to +-max_normal when `saturate`, else gives +-Inf (ieee) or NaN
// (e4m3_like). Inf input: +-max_normal when `saturate`, else Inf / NaN likewise. NaN input:
// the canonical NaN with the input's sign. Formats without specials (none) always saturate
// and throw UsageError for a NaN input (they have no code for it).
uint32_t encode_minifloat(const MinifloatParams& p, double value, bool saturate);

// The OCP small-float families: FP8 "fp8:e4m3,sat=satfinite,block=0" (E4M3, E5M2) and FP6
// "fp6:e3m2,block=0" (E3M2, E2M3: no Inf/NaN, so always satfinite and no sat= option).
// block=0: plain elements; block=B (a power of two, 32 = MXFP8/MXFP6): one E8M0 scale per B
// elements along cols, stored in group_exponents (code c means 2^(c-127), 255 = NaN block).
struct Fp8Params {
  const char* family = "fp8";                // "fp8" or "fp6"
  const MinifloatParams* element = nullptr;  // e4m3, e5m2 (fp8); e3m2, e2m3 (fp6)
  bool saturate = true;                      // sat=satfinite (true) or sat=nonsat
  int block = 0;
  std::string spec() const;
};

// The MX block scale of OCP MX v1.0: X = floor(log2(amax)) - emax_elem, clamped to
// [-127, 127], code X + 127; amax == 0 gives code 0; a NaN/Inf element gives 255 (NaN block).
int mx_scale_code(const MinifloatParams& element, const float* x, int64_t n);

// Family factories used by the registry (numerics/format_registry.cpp).
std::unique_ptr<Format> make_fp8_format(const spec::Parts& parts);  // fp8 and fp6
std::unique_ptr<Format> make_plain_float_format(const spec::Parts& parts);  // bf16, fp16, fp32

// Parameters of any minifloat GEMM operand spec (fp8/fp6 with its block size, bf16, fp16);
// nullptr for other families. `block` is 0 without MX scales.
const MinifloatParams* minifloat_operand_params(std::string_view spec, int* block);

}  // namespace gsqhw
