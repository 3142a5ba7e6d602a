// Verilog of the hand-sized MAC baselines that synthesis compares the generated PEs with
// (synth/baseline.h says what each baseline is for; the INT array baseline is the generator's
// own INT8 array narrowed to b bits, gen/generator.h).
#pragma once

#include <string>

namespace gsqhw::gen {

// gsqhw_bare_mac: the area lower bound of a MAC of these widths, a `bits` x `bits` signed
// multiplier, an `acc_width`-bit adder and accumulator register, with no control, reset,
// saturation or flags. `design` is the baseline's canonical string for the header.
std::string bare_mac_verilog(int bits, int acc_width, const std::string& design);

// gsqhw_int_mac_pe: a plain INT-b MAC PE with the array protocol's PE shell: exact product,
// fixed(acc_width, 0) saturating accumulation with a sticky overflow flag, a result register.
std::string int_mac_pe_verilog(int bits, int acc_width, const std::string& design);

}  // namespace gsqhw::gen
