// The core's dequantizer: one final accumulator (and its flags) -> the FP32 result word,
// exactly the dequantize step of numerics/gemm.h:
//   fixed(W,F): RNE_fp32(acc * 2^-F) (numerics/fp32_round.h scaled_int_to_fp32)
//   fp32:       the accumulator's bits
//   NaN flag:   the canonical quiet NaN 0x7fc00000, whatever the accumulator holds.
// The overflow flag does not change the value (the saturated accumulator is converted).
#include <fmt/format.h>

#include "gen/core_internal.h"
#include "gen/verilog_text.h"
#include "base/errors.h"

namespace gsqhw::gen {
namespace {

using verilog::Block;
using verilog::in;
using verilog::out;

std::string fp32_dequantizer(const CoreParams& p) {
  verilog::Module m("gsqhw_dequantizer");
  m.preamble = file_header(p.design, "gsqhw_dequantizer",
                           "fp32 accumulator -> FP32 result word (NaN flag: canonical NaN)");
  m.port(in("acc", 32).note("IEEE binary32 bits"));
  m.port(in("flags", 2).note("bit 0 sticky overflow (no effect on the value), bit 1 NaN"));
  m.port(out("value", 32));
  m.body.wire("unused_overflow", 1, "flags[0]");
  m.body.assign("value", "flags[1] ? 32'h7fc00000 : acc");
  return m.str();
}

// Fixed W.F: sign and magnitude, normalise the magnitude (leading one on top), keep 24 bits,
// round to nearest even at the binary32 quantum (2^-149 for subnormal results), let the
// rounding carry run into the exponent field (which also yields Inf past FLT_MAX).
std::string fixed_dequantizer(const CoreParams& p) {
  const int w = p.aw, f = p.pe.acc.frac_bits;
  const int pw = std::max(1, ceil_log2(static_cast<uint64_t>(w)));
  // biased exponent of the leading one = p + 127 - F; kept in 16-bit two's complement
  if (f < -16000 || f > 16000)
    throw UsageError(fmt::format("the core's dequantizer supports fixed accumulators with |F| <= "
                                 "16000, not F = {}",
                                 f));
  verilog::Module m("gsqhw_dequantizer");
  m.preamble = file_header(p.design, "gsqhw_dequantizer",
                           fmt::format("fixed{}.{} accumulator -> FP32 result word, RNE (golden "
                                       "scaled_int_to_fp32; NaN flag: canonical NaN)",
                                       w, f));
  m.port(in("acc", w).note(fmt::format("two's complement, value acc * 2^-{}", f)));
  m.port(in("flags", 2).note("bit 0 sticky overflow (no effect on the value), bit 1 NaN"));
  m.port(out("value", 32));
  Block& b = m.body;
  b.wire("negative", 1, fmt::format("acc[{}]", w - 1));
  b.wire("magnitude", w, fmt::format("negative ? ~acc + {} : acc", vlit(w, 1)),
         "-2^(W-1) gives 2^(W-1)");
  b.wire("lead", pw, "", "index of the leading one");
  b.lines(msb_index_assign("lead", "magnitude", w, pw));
  b.wire("lead_gap", pw, fmt::format("{} - lead", vlit(pw, w - 1)));
  b.wire("normalised", w, "magnitude << lead_gap", fmt::format("leading one at bit {}", w - 1));
  b.comment("the top 26 bits (significand, round bit, one more) and whether anything is set below");
  b.wire("extended", w + 26, "{normalised, 26'd0}");
  b.wire("top", 26, fmt::format("extended[{}:{}]", w + 25, w));
  b.wire("rest", 1, fmt::format("extended[{}:0] != {}", w - 1, vlit(w, 0)));
  b.comment("biased binary32 exponent of the leading one: lead + 127 - F");
  b.wire_signed("biased", 16, fmt::format("$signed({{{}, lead}}) + {}", vlit(16 - pw, 0),
                                          vlit(16, 127 - f, true)));
  b.wire("normal", 1, "biased > 16'sd0");
  b.comment("a subnormal result keeps fewer bits: shift right by 1 - biased (26 or more: all gone)");
  b.wire_signed("denorm", 16, "16'sd1 - biased");
  b.wire("shift", 5, "normal ? 5'd0 : (denorm > 16'sd26) ? 5'd26 : denorm[4:0]");
  b.wire("frame", 52, "{top, 26'd0} >> shift");
  b.wire("kept", 24, "frame[51:28]");
  b.wire("round_bit", 1, "frame[27]");
  b.wire("sticky", 1, "(frame[26:0] != 27'd0) || rest");
  b.wire("rounded", 25, "{1'b0, kept} + {24'd0, round_bit && (sticky || kept[0])}");
  b.comment("exponent field - 1 (0 for subnormals); the sum carries a rounding overflow into it");
  b.wire_signed("field_minus_1", 16, "normal ? biased - 16'sd1 : 16'sd0");
  b.wire("unsigned_bits", 32, "{field_minus_1[8:0], 23'd0} + {7'd0, rounded}");
  b.wire("unused_field_top", 7, "field_minus_1[15:9]");
  b.wire("infinite", 1, "normal && biased > 16'sd254");
  b.lines(fmt::format("assign value = flags[1] ? 32'h7fc00000 :\n"
                      "               (magnitude == {}) ? 32'd0 :\n"
                      "               infinite ? {{negative, 31'h7f800000}} :\n"
                      "               {{negative, unsigned_bits[30:0]}};",
                      vlit(w, 0)));
  b.wire("unused_flags", 1, "flags[0] | unsigned_bits[31]");
  return m.str();
}

}  // namespace

std::vector<VerilogFile> emit_dequantizer_files(const CoreParams& p) {
  return {{"gsqhw_dequantizer.v", p.pe.acc.kind == AccumulatorSpec::Kind::fixed
                                      ? fixed_dequantizer(p)
                                      : fp32_dequantizer(p)}};
}

}  // namespace gsqhw::gen
