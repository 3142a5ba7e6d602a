// Verilog text helpers (gen/verilog_text.h).
#include "gen/verilog_text.h"

#include <fmt/format.h>

#include <stdexcept>

namespace gsqhw::gen {

std::string vlit(int width, int64_t value, bool is_signed) {
  if (width < 1 || width > 64) throw std::logic_error("vlit: bad width");
  if (is_signed) {
    int64_t lo = width == 64 ? INT64_MIN : -(int64_t{1} << (width - 1));
    int64_t hi = width == 64 ? INT64_MAX : (int64_t{1} << (width - 1)) - 1;
    if (value < lo || value > hi)
      throw std::logic_error(fmt::format("vlit: {} does not fit {} signed bits", value, width));
    if (value < 0) return fmt::format("-{}'sd{}", width, -value);
    return fmt::format("{}'sd{}", width, value);
  }
  if (value < 0 || (width < 64 && static_cast<uint64_t>(value) >= (uint64_t{1} << width)))
    throw std::logic_error(fmt::format("vlit: {} does not fit {} unsigned bits", value, width));
  return fmt::format("{}'d{}", width, value);
}

int bits_for_unsigned(uint64_t v) {
  int bits = 1;
  while (bits < 64 && (v >> bits) != 0) ++bits;
  return bits;
}

int bits_for_signed_range(int64_t lo, int64_t hi) {
  int bits = 1;
  while (bits < 64) {
    int64_t min = -(int64_t{1} << (bits - 1)), max = (int64_t{1} << (bits - 1)) - 1;
    if (lo >= min && hi <= max) break;
    ++bits;
  }
  return bits;
}

int ceil_log2(uint64_t v) {
  int bits = 0;
  while ((uint64_t{1} << bits) < v) ++bits;
  return bits;
}

std::string range(int width) { return width > 1 ? fmt::format("[{}:0]", width - 1) : ""; }

std::string sign_extend(std::string_view signal, int from, int to) {
  return fmt::format("{{{{{}{{{}[{}]}}}}, {}}}", to - from, signal, from - 1, signal);
}

std::string msb_index_assign(std::string_view target, std::string_view source, int width,
                             int target_width) {
  std::string text = fmt::format("  assign {} =", target);
  for (int bit = width - 1; bit >= 1; --bit)
    text += fmt::format("\n      {}[{}] ? {} :", source, bit, vlit(target_width, bit));
  text += fmt::format(" {};\n", vlit(target_width, 0));
  return text;
}

}  // namespace gsqhw::gen
