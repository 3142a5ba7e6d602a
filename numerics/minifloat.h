// Minifloat formats: OCP FP8 E4M3 / E5M2 (optionally MXFP8 with one E8M0 scale per block),
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
  };
  const char* name = "";  // "e4m3", "e5m2", "bf16", "fp16", "fp32"
  int exp_bits = 0;
  int man_bits = 0;
  int bias = 0;
  Specials specials = Specials::ieee;

  int total_bits() const { return 1 + exp_bits + man_bits; }
  bool has_inf() const { return specials == Specials::ieee; }
  int min_normal_exp() const { return 1 - bias; }  // unbiased exponent of the smallest normal
  double max_normal() const;                        // 448 for E4M3, 57344 for E5M2, ...
  // Largest unbiased exponent of a finite value (8 for E4M3, 15 for E5M2): OCP's emax.
  int max_exp() const;
  uint32_t sign_mask() const { return 1u << (exp_bits + man_bits); }
  uint32_t nan_code() const;  // canonical quiet NaN, positive: E4M3 0x7f, E5M2 0x7e, ...
};

const MinifloatParams& e4m3_params();
const MinifloatParams& e5m2_params();
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
// the canonical NaN with the input's sign.
uint32_t encode_minifloat(const MinifloatParams& p, double value, bool saturate);

// The FP8 family: "fp8:e4m3,sat=satfinite,block=0". block=0: plain OCP FP8; block=B (a power
// of two, 32 = MXFP8): one E8M0 scale per B elements along cols, stored in group_exponents
// (code c means 2^(c-127), 255 = NaN block).
struct Fp8Params {
  const MinifloatParams* element = nullptr;  // e4m3 or e5m2
  bool saturate = true;                      // sat=satfinite (true) or sat=nonsat
  int block = 0;
  std::string spec() const;
};

// The MX block scale of OCP MX v1.0: X = floor(log2(amax)) - emax_elem, clamped to
// [-127, 127], code X + 127; amax == 0 gives code 0; a NaN/Inf element gives 255 (NaN block).
int mx_scale_code(const MinifloatParams& element, const float* x, int64_t n);

// Family factories used by the registry (numerics/format_registry.cpp).
std::unique_ptr<Format> make_fp8_format(const spec::Parts& parts);
std::unique_ptr<Format> make_plain_float_format(const spec::Parts& parts);  // bf16, fp16, fp32

// Parameters of any minifloat GEMM operand spec (fp8 with its block size, bf16, fp16);
// nullptr for other families. `block` is 0 without MX scales.
const MinifloatParams* minifloat_operand_params(std::string_view spec, int* block);

}  // namespace gsqhw
