// Generated RTL for PTQ1.61 (numerics/ptq161.h): an R-row datapath that streams one activation
// per cycle (broadcast to every row) together with the salient-mask bit of its input channel.
// Port lists and timing in docs/siblings.md.
//
// gsqhw_ptq161_pe      one output row: a salient column feeds an 8 x 4 (unsigned code)
//                      multiplier; a binary column adds or subtracts the activation (no
//                      multiplier; the multiplier's operand is held at zero then, so it does
//                      not toggle). Two accumulators: P_sal and P_bin.
// gsqhw_ptq161_colsum  the per-token activation sums X_sal and X_bin, once for all rows.
// gsqhw_ptq161_array   R PEs + one colsum. in_last closes an output tile (one token, R rows);
//                      results are registered one cycle later on out_valid.
// The row scales (s, z, r, alpha, mu) are applied once per output and the column scales t
// are folded into the activation quantizer: neither is in this datapath.
#pragma once

#include <cstdint>
#include <filesystem>

#include "gen/lota_rtlcheck.h"
#include "numerics/ptq161.h"

namespace gsqhw::ptq161 {

struct ArraySpec {
  int rows = 4;          // R output rows computed in parallel, 1..64
  int64_t max_k = 4096;  // the longest reduction the accumulators hold exactly, 1..2^20
};
// Throws UsageError naming the limit.
void validate(const ArraySpec& spec);

struct ArrayWidths {
  int p_sal = 0;  // signed, |.| <= 128 * 15 * max_k
  int p_bin = 0;  // signed, |.| <= 128 * max_k (also X_sal, X_bin)
};
ArrayWidths array_widths(const ArraySpec& spec);

rtlcheck::RtlBundle generate_array(const ArraySpec& spec);

// Streams x (tokens) through `rtl` for every block of R output rows of the layer (rows past
// the layer's end get code 0), with an idle cycle every `idle_every` steps (0: none), and
// compares with gemm(x, layer).
rtlcheck::TbResult check_array(const rtlcheck::RtlBundle& rtl, const ArraySpec& spec,
                               const Ptq161Layer& layer, const QuantizedTensor& x,
                               const std::filesystem::path& dir, int idle_every = 0,
                               const rtlcheck::SimOptions& options = {});

}  // namespace gsqhw::ptq161
