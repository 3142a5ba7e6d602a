// Number formats: one pluggable unit per format family, found through a registry by its
// spec string. This is the contract between the golden model, the RTL generator, the traces
// and the sweep; the semantics are those of ../shared/docs/formats.md (copied to
// docs/formats.md).
//
// Canonical spec strings (parse(print(x)) == x, print(parse(s)) == s for canonical s; every
// parameter is printed, so nothing is a silent default):
//   gse:b=6,g=32,e=5,scale=floor,round=rne,range=symmetric
//   gse:b=6,g=32,e=5,scale=floor,round=stochastic,range=symmetric,seed=1
//   fp8:e4m3,sat=satfinite,block=0        (block=32: MXFP8, one E8M0 scale per 32 elements)
//   fp8:e5m2,sat=nonsat,block=0
//   int8:per=channel                      (per=tensor also)
//   bf16  fp16  fp32
//   nf4:block=64
// Short forms that omit parameters parse to the defaults (e.g. "gse:b=6", "fp8:e5m2").
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "numerics/accumulator.h"

namespace gsqhw {

struct MinifloatParams;

// A quantized 2-D tensor of rows x cols. Groups (GSE) or blocks (MX, NF4) run along cols,
// which is always the reduction dimension of the GEMM that consumes the tensor (QCD).
// The last group of a row may be partial when cols % group_size != 0.
struct QuantizedTensor {
  std::string format_spec;  // canonical spec of the format that produced it
  int64_t rows = 0;
  int64_t cols = 0;
  int group_size = 0;  // elements per group/block along cols; 0 when the format has none

  // rows*cols element codes, row-major:
  //   gse  : signed element m in two's complement range of b bits
  //   fp8  : raw 8-bit pattern 0..255;  bf16/fp16: raw 16-bit pattern; fp32: raw bits as int32
  //   int8 : signed -127..127
  //   nf4  : level index 0..15
  std::vector<int32_t> codes;

  // rows*groups_per_row() shared exponent codes: gse biased E-bit exponent (all ones = NaN
  // group); fp8 with block=32 the E8M0 code. Empty when the format has none.
  std::vector<int32_t> group_exponents;

  // Float scales: int8 per=channel one per row, per=tensor one; nf4 one absmax per block
  // (rows*groups_per_row()). Empty when the format has none.
  std::vector<float> scales;

  int64_t groups_per_row() const {
    return group_size == 0 ? 0 : (cols + group_size - 1) / group_size;
  }
};

// How the golden GEMM (numerics/gemm.h) multiplies and adds codes of a format.
enum class GemmOperandKind {
  none,       // a storage format only (nf4, fp32): not a GEMM operand
  gse,        // group-shared-exponent integers: exact group sums, one exponent per group
  integer,    // plain integers with float scales applied after the GEMM (int8)
  minifloat,  // sign | exponent | mantissa codes (fp8, bf16, fp16), exact products
};

// What the RTL generator builds for one operand of a format: the element code and exponent
// port widths and the parameters that shape the datapath (gen/pe_spec.h derives the datapath
// widths from it). Quantizer-only choices (GSE scale/round, FP8 sat, INT8 per) are absent.
struct HardwareOperand {
  enum class Family { gse, minifloat, integer };
  Family family = Family::gse;
  std::string family_name;  // "gse", "fp8", "bf16", "fp16", "int8"
  std::string variant;      // "e4m3"/"e5m2" for fp8, "" otherwise
  int code_bits = 0;        // CW: element code width on in_a / in_b
  int exp_bits = 0;         // XW: width of in_a_exp / in_b_exp, 0 when the family has none

  // GSE-INT(b, G, E)
  int gse_b = 0, gse_g = 0, gse_e = 0;
  bool gse_full_range = false;  // range=full allows -2^(b-1)
  int gse_bias() const { return (1 << (gse_e - 1)) - 1; }

  // Minifloats: sign | exponent field | mantissa field
  int mf_exp_bits = 0, mf_man_bits = 0, mf_bias = 0;
  bool mf_ieee_specials = true;  // all-ones exponent is Inf/NaN (false: E4M3, no Inf)
  bool mf_has_nan = true;        // false: every code is finite (OCP MX FP6/FP4)

  // Plain integers: INT8 (b = 8) or the plain INT-b MAC baseline of GeneratorOptions.
  int int_bits = 0;

  bool has_groups() const { return family == Family::gse; }
};

// A minifloat GEMM operand as the golden GEMM and the core's quantizer see it.
struct MinifloatOperand {
  const MinifloatParams* element = nullptr;  // program-lifetime; nullptr: not a minifloat
  int block = 0;                             // MX block size, 0 without block scales
  bool saturate = false;                     // overflow saturates (satfinite) or gives Inf/NaN
};

class Format {
 public:
  virtual ~Format() = default;

  virtual std::string spec() const = 0;    // canonical spec string
  virtual std::string family() const = 0;  // "gse", "fp8", "int8", "bf16", "fp16", "fp32", "nf4"
  virtual int element_bits() const = 0;    // bits stored per element, shared metadata excluded
  // Bits per element including shared exponents / scales amortised over their group.
  virtual double bits_per_element() const = 0;

  // Quantizes a row-major rows x cols FP32 array along cols. `seed` drives stochastic
  // rounding (a format whose spec carries a seed combines both); other formats ignore it.
  virtual QuantizedTensor quantize(const float* x, int64_t rows, int64_t cols,
                                   uint64_t seed = 0) const = 0;

  // Writes rows*cols FP32 values (exact: every code's value is an FP32 number).
  virtual void dequantize(const QuantizedTensor& q, float* out) const = 0;

  // How the golden GEMM treats codes of this format.
  virtual GemmOperandKind gemm_operand() const = 0;
  // Minifloat GEMM operands: element parameters, MX block size, overflow rule (element is
  // nullptr for other formats).
  virtual MinifloatOperand minifloat_operand() const { return {}; }

  // The hardware the RTL generator builds for an operand of this format. Throws UsageError
  // naming the reason for formats the generator cannot build (nf4, fp32, MX block scales).
  virtual HardwareOperand hardware() const;
  // The canonical spec with the quantizer-only parameters left out: two formats with the same
  // hardware_spec() run on the same hardware (a trace quantized with round=stochastic runs on
  // an rne design).
  virtual std::string hardware_spec() const { return spec(); }
  // The accumulator a design of this format gets when its string names none: the one every
  // report compares it with (fixed32.16 for GSE-INT, fixed32.0 for INT8, fp32 for floats).
  virtual AccumulatorSpec natural_accumulator() const;

  // For reports: "GSE-INT6", "FP8 E4M3", "INT8", "BF16", ...
  virtual std::string label() const = 0;
  // What reports group by within a family: "fp8-e4m3", "fp8-e5m2"; the family otherwise.
  virtual std::string variant() const { return family(); }
};

// Parses any registered spec; throws UsageError naming the bad part and the accepted values.
std::unique_ptr<Format> parse_format(std::string_view spec);

// What `gsqhw formats` lists.
struct FormatInfo {
  std::string family;
  std::string syntax;       // e.g. "gse:b=B,g=G,e=E,scale=floor|ceil,round=...,range=..."
  std::string description;  // one line
  std::string example;      // a canonical spec
};
const std::vector<FormatInfo>& registered_formats();

}  // namespace gsqhw
