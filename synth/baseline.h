// Reference designs the synthesis report compares the GSE-INT PE against. They are not
// DesignPoints (no format registry entry, no co-simulation protocol of their own), so they are
// named by their own small strings:
//   baseline:bare,b=6,w=32    a bare b x b signed multiplier, a W-bit adder and the W-bit
//                             accumulator register: nothing else (the area lower bound)
//   baseline:intmac,b=6,w=32  a plain INT-b MAC PE with the array protocol's PE shell
//                             (in_valid/in_first/in_last, out_valid, out_acc, out_flags):
//                             exact b x b product, fixed(W, 0) saturating accumulate with a
//                             sticky overflow flag, result register: what a GSE-INT PE is
//                             without its group-sum and exponent hardware
//   baseline:intarray,b=6,w=32,f=16,array=8x8
//                             a plain INT-b R x C array from the RTL generator
//                             (GeneratorOptions::int_bits) with a fixed(W, F) accumulator: the
//                             like-for-like reference of a GSE-INT-b array of the same shape
//                             and accumulator (per-PE area = area / (R x C))
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace gsqhw::synth {

struct Baseline {
  enum class Kind { bare, intmac, intarray };
  Kind kind = Kind::bare;
  int bits = 8;          // b: element bits, sign included, 2..16 (intarray: 2..8)
  int acc_width = 32;    // W: 2b+1..64
  int acc_frac = 0;      // F (intarray only): the accumulator is fixed(W, F)
  int rows = 1, cols = 1;  // R x C (intarray only)

  std::string str() const;   // canonical "baseline:bare,b=6,w=32"
  // The RTL: (file name, Verilog) in dependency order, the top module and MACs per cycle.
  struct Rtl {
    std::vector<std::pair<std::string, std::string>> files;
    std::string top;
    int64_t macs_per_cycle = 1;
  };
  Rtl rtl() const;
  // Throws UsageError naming the bad part.
  static Baseline parse(std::string_view s);
  static bool is_baseline(std::string_view s) { return s.substr(0, 9) == "baseline:"; }
};

// Cycle-level reference of Baseline::Kind::intmac for one step (used by its tests): returns the
// new accumulator after adding a*b to `acc` (or to 0 when first) with W-bit saturation.
long long intmac_step(long long acc, bool first, long long a, long long b, int acc_width, bool* overflow);

}  // namespace gsqhw::synth
