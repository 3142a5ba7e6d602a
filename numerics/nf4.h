// NF4: the 16-level NormalFloat code of QLoRA, exactly as bitsandbytes implements it
// (quantize_blockwise / dQuantizeNF4): per block of `block` consecutive elements along cols,
//   absmax = max |x|;  n = x * RNE_fp32(1 / absmax)  (FP32)
//   code = index of the level picked by comparing n against bitsandbytes' float thresholds
//          (midpoints of adjacent levels) with '>' (a value equal to one goes to the lower level)
//   value = RNE_fp32(kNf4Levels[code] * absmax)
// An all-zero block gets absmax 0 and code 7 (0.0). NaN/Inf inputs throw UsageError.
#pragma once

#include <array>
#include <memory>

#include "numerics/format.h"
#include "numerics/spec_parse.h"

namespace gsqhw {

// bitsandbytes' NF4 code book (functional.py, "nf4" in get_4bit_type), as float32.
inline constexpr std::array<float, 16> kNf4Levels = {
    -1.0f,
    -0.6961928009986877f,
    -0.5250730514526367f,
    -0.39491748809814453f,
    -0.28444138169288635f,
    -0.18477343022823334f,
    -0.09105003625154495f,
    0.0f,
    0.07958029955625534f,
    0.16093020141124725f,
    0.24611230194568634f,
    0.33791524171829224f,
    0.44070982933044434f,
    0.5626170039176941f,
    0.7229568362236023f,
    1.0f,
};

// The NF4 code of a value already normalised by the block's absmax (n in [-1, 1]).
int nf4_code(float normalized);
// Decision threshold i (0..14) between levels i and i+1, as the float bitsandbytes compares.
float nf4_threshold(int i);

std::unique_ptr<Format> make_nf4_format(const spec::Parts& parts);

}  // namespace gsqhw
