// INT8 with a symmetric absmax scale, per output channel (row) or per tensor:
//   scale = RNE_fp32(amax / 127)            (amax over the row / the whole tensor)
//   code  = clamp(round_half_even(RNE_fp32(x / scale)), -127, 127)   (as torch.round(x/scale))
//   value = RNE_fp32(code * scale)
// An all-zero row/tensor gets scale 0 and codes 0. NaN/Inf inputs cannot be represented:
// quantize throws UsageError naming the position.
#pragma once

#include <memory>

#include "numerics/format.h"
#include "numerics/spec_parse.h"

namespace gsqhw {

struct Int8Params {
  bool per_channel = true;  // per=channel (one scale per row) or per=tensor
  std::string spec() const { return per_channel ? "int8:per=channel" : "int8:per=tensor"; }
};

int int8_quantize_value(float x, float scale);

std::unique_ptr<Format> make_int8_format(const spec::Parts& parts);

}  // namespace gsqhw
