// Verilog literals and expressions for the emitters (the module builder and printer are
// gen/verilog/module.h): sized literals, widths, sign extension, a priority encoder.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

namespace gsqhw::gen {

// A sized Verilog literal: vlit(5, 3) = "5'd3"; negative values use signed form "-6'sd4"
// (only when `is_signed`). Throws std::logic_error when the value does not fit.
std::string vlit(int width, int64_t value, bool is_signed = false);

// Bits needed to hold the unsigned value v (at least 1).
int bits_for_unsigned(uint64_t v);
// Bits needed for a two's-complement signed range [lo, hi] (at least 1).
int bits_for_signed_range(int64_t lo, int64_t hi);
// ceil(log2(v)) for v >= 1 (0 for v == 1).
int ceil_log2(uint64_t v);

// `signal` (a `from`-bit two's-complement value) sign-extended to `to` > `from` bits:
// "{{N{signal[from-1]}}, signal}".
std::string sign_extend(std::string_view signal, int from, int to);

// "[W-1:0]" for W > 1, "" for W == 1 (keeps declarations tidy).
std::string range(int width);

// A priority encoder as one continuous assignment: `target` = index of the highest set bit of
// `source` (width bits), 0 when source is zero. Emitted as a chain of conditional operators
// so that the text is lint-clean in both Verilator and Yosys.
std::string msb_index_assign(std::string_view target, std::string_view source, int width,
                             int target_width);

}  // namespace gsqhw::gen
