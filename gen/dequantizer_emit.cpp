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

std::string fp32_dequantizer(const CoreParams& p) {
  return file_header(p.design, "gsqhw_dequantizer",
                     "fp32 accumulator -> FP32 result word (NaN flag: canonical NaN)") +
         R"(module gsqhw_dequantizer (
  input  wire [31:0] acc,    // IEEE binary32 bits
  input  wire [1:0]  flags,  // bit 0 sticky overflow (no effect on the value), bit 1 NaN
  output wire [31:0] value
);
  wire unused_overflow = flags[0];
  assign value = flags[1] ? 32'h7fc00000 : acc;
endmodule
)";
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
  return file_header(p.design, "gsqhw_dequantizer",
                     fmt::format("fixed{}.{} accumulator -> FP32 result word, RNE (golden "
                                 "scaled_int_to_fp32; NaN flag: canonical NaN)",
                                 w, f)) +
         fill(R"(module gsqhw_dequantizer (
  input  wire [${w1}:0] acc,    // two's complement, value acc * 2^-${f}
  input  wire [1:0]      flags,  // bit 0 sticky overflow (no effect on the value), bit 1 NaN
  output wire [31:0]     value
);
  wire              negative = acc[${w1}];
  wire [${w1}:0]    magnitude = negative ? ~acc + ${one_w} : acc;  // -2^(W-1) gives 2^(W-1)
  wire [${pw1}:0]   lead;  // index of the leading one
${lead_assign}  wire [${pw1}:0]   lead_gap = ${w_minus_1} - lead;
  wire [${w1}:0]    normalised = magnitude << lead_gap;  // leading one at bit ${w1}
  // the top 26 bits (significand, round bit, one more) and whether anything is set below
  wire [${wx1}:0]   extended = {normalised, 26'd0};
  wire [25:0]       top = extended[${wx1}:${w}];
  wire              rest = extended[${w1}:0] != ${zero_w};
  // biased binary32 exponent of the leading one: lead + 127 - F
  wire signed [15:0] biased = $signed({${lead_pad}, lead}) + ${boff};
  wire              normal = biased > 16'sd0;
  // a subnormal result keeps fewer bits: shift right by 1 - biased (26 or more: all gone)
  wire signed [15:0] denorm = 16'sd1 - biased;
  wire [4:0]        shift = normal ? 5'd0 : (denorm > 16'sd26) ? 5'd26 : denorm[4:0];
  wire [51:0]       frame = {top, 26'd0} >> shift;
  wire [23:0]       kept = frame[51:28];
  wire              round_bit = frame[27];
  wire              sticky = (frame[26:0] != 27'd0) || rest;
  wire [24:0]       rounded = {1'b0, kept} + {24'd0, round_bit && (sticky || kept[0])};
  // exponent field - 1 (0 for subnormals); the sum carries a rounding overflow into it
  wire signed [15:0] field_minus_1 = normal ? biased - 16'sd1 : 16'sd0;
  wire [31:0]       unsigned_bits = {field_minus_1[8:0], 23'd0} + {7'd0, rounded};
  wire [6:0]        unused_field_top = field_minus_1[15:9];
  wire              infinite = normal && biased > 16'sd254;
  assign value = flags[1] ? 32'h7fc00000 :
                 (magnitude == ${zero_w}) ? 32'd0 :
                 infinite ? {negative, 31'h7f800000} :
                 {negative, unsigned_bits[30:0]};
  wire unused_flags = flags[0] | unsigned_bits[31];
endmodule
)",
              {{"w1", std::to_string(w - 1)},
               {"w", std::to_string(w)},
               {"wx1", std::to_string(w + 25)},
               {"f", std::to_string(f)},
               {"one_w", vlit(w, 1)},
               {"zero_w", vlit(w, 0)},
               {"pw1", std::to_string(pw - 1)},
               {"lead_assign", msb_index_assign("lead", "magnitude", w, pw)},
               {"w_minus_1", vlit(pw, w - 1)},
               {"lead_pad", vlit(16 - pw, 0)},
               {"boff", vlit(16, 127 - f, true)}});
}

}  // namespace

std::vector<VerilogFile> emit_dequantizer_files(const CoreParams& p) {
  return {{"gsqhw_dequantizer.v", p.pe.acc.kind == AccumulatorSpec::Kind::fixed
                                      ? fixed_dequantizer(p)
                                      : fp32_dequantizer(p)}};
}

}  // namespace gsqhw::gen
