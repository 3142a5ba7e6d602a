// Sweep design strings for the sibling methods (docs/siblings.md, "In the sweep"):
//   lota:n=4,g=64,r=8,omega=2,seed=1@pe
//       the LoTA-QAF integer PE (gen/lota.h gsqhw_lota_pe): INT8 activation x merged N-bit
//       code, one MAC per cycle; n = N (2..4), g = group (64 or 128), r = adapter rank (1..64),
//       omega = merge threshold strictly inside (0, r) (default 0.75 r), seed = the ternary
//       adapters' seed. Level: pe only.
//   ptq161:salient=0.2,iters=2,k=4096@array8x1
//       the PTQ1.61 datapath (gen/ptq161.h gsqhw_ptq161_array): R rows, one input channel per
//       cycle broadcast to every row, so R MACs per cycle; salient = fraction of 4-bit input
//       channels in [0, 1], iters = scale-fit rounds (1..16), k = the longest reduction the
//       accumulators hold (1..2^20). Level: arrayRx1 (R = 1..64; the datapath has one column)
//       or pe (= array1x1).
// Every key is optional (defaults above); an unknown key, a repeated key, a malformed number or
// a value out of range is a UsageError naming it.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "gen/lota_rtlcheck.h"
#include "numerics/lota.h"
#include "numerics/ptq161.h"

namespace gsqhw::synth {

struct SiblingDesign {
  enum class Method { lota, ptq161 };
  Method method = Method::lota;
  lota::LotaParams lota{4, 64, 8, 6.0};
  uint64_t seed = 1;                 // LoTA: seed of the ternary adapters
  ptq161::Ptq161Params ptq161;
  int rows = 8;                      // PTQ1.61: R
  int64_t max_k = 4096;              // PTQ1.61: accumulator reach

  static bool is_sibling(std::string_view s) {
    return s.substr(0, 5) == "lota:" || s.substr(0, 7) == "ptq161:";
  }
  static SiblingDesign parse(std::string_view s);
  std::string str() const;           // canonical, every key spelled out
  std::string slug() const;          // a folder name
  std::string family() const { return method == Method::lota ? "lota" : "ptq161"; }
  std::string level() const;         // "pe" or "array"
  int64_t macs_per_cycle() const { return method == Method::lota ? 1 : rows; }
  rtlcheck::RtlBundle generate() const;
};

// The sibling points of the default sweep: the LoTA-QAF INT4 PE (omega = 2 at r = 8, so that the
// seeded adapters move codes) and the PTQ1.61 datapath at 8 rows (salient fraction 0.2).
std::vector<std::string> default_sibling_designs();

}  // namespace gsqhw::synth
