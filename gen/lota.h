// Generated RTL for LoTA-QAF (numerics/lota.h): the merge unit and the integer-weight PE, with
// golden-vector self-checks. Port lists and timing in docs/siblings.md.
//
// gsqhw_lota_merge  one weight per cycle, latency 1, no multipliers:
//   in_a / in_b: A_T row i and B_T column o, lane j at [2j +: 2] = {sign, nonzero}
//   (+1 = 2'b01, -1 = 2'b11, 0 = 2'b00; 2'b10 also reads as 0).
//   dW = #(lanes both nonzero, signs equal) - #(lanes both nonzero, signs differ);
//   up = dW >= T, down = dW <= -T; the stored code moves by +-1 unless it is at the grid edge.
//   Per group (in_group_last marks the last weight) it also outputs sum dW and sum applied,
//   the two integers the zero-point correction z' = z + s * (sum dW - omega sum applied) / n
//   needs (the host does that one multiply-add per group).
// gsqhw_lota_pe  activation x (INT8) times merged code q (unsigned N-bit) per cycle,
//   per group: P = sum x*q and X = sum x (the z * X term of the dequantization).
#pragma once

#include <filesystem>
#include <vector>

#include "gen/lota_rtlcheck.h"
#include "numerics/lota.h"

namespace gsqhw::lota {

struct MergeUnitWidths {
  int count = 0;      // bits of a popcount 0..r
  int dw = 0;         // signed dW in [-r, r]
  int sum_dw = 0;     // signed group sum of dW, |.| <= r * group
  int sum_delta = 0;  // signed group sum of applied changes, |.| <= group
};
MergeUnitWidths merge_unit_widths(const LotaParams& params);

struct PeWidths {
  int product = 0;  // signed x * q
  int dot = 0;      // signed group sum P
  int xsum = 0;     // signed group sum X
};
PeWidths pe_widths(const LotaParams& params);

// Both validate the parameters (UsageError).
rtlcheck::RtlBundle generate_merge_unit(const LotaParams& params);
rtlcheck::RtlBundle generate_integer_pe(const LotaParams& params);

// One weight presented to the merge unit.
struct MergeVector {
  std::vector<int8_t> a, b;  // rank ternary values each
  int q = 0;
  bool group_last = false;
  bool valid = true;  // false: an idle cycle (a, b, q ignored)
};
// Every ternary pattern pair of rank r (3^r x 3^r, r <= 5) with every N-bit code cycled through
// (all 2^N codes for each pair when `every_code`), group_last every `group` valid vectors, an
// idle cycle every 97 vectors.
std::vector<MergeVector> exhaustive_merge_vectors(const LotaParams& params, bool every_code);
// The weights of a layer in merge order (row o, then input i): what merge() computes.
std::vector<MergeVector> layer_merge_vectors(const QuantizedWeights& base, const Adapters& ad);

// Simulates `rtl` (normally generate_merge_unit(params), possibly altered by a test) with
// golden expectations from the scalar golden functions of numerics/lota.h.
rtlcheck::TbResult check_merge_unit(const rtlcheck::RtlBundle& rtl, const LotaParams& params,
                                    const std::vector<MergeVector>& vectors,
                                    const std::filesystem::path& dir);

// Simulates the integer PE on x (INT8 per token) times w, expectations from merged_gemm():
// the stream is token t, output row o, input i in order; one group_last per group.
rtlcheck::TbResult check_integer_pe(const rtlcheck::RtlBundle& rtl, const LotaParams& params,
                                    const QuantizedTensor& x, const QuantizedWeights& w,
                                    const std::filesystem::path& dir,
                                    const rtlcheck::SimOptions& options = {});

}  // namespace gsqhw::lota
