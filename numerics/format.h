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

namespace gsqhw {

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
