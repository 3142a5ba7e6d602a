// The format registry: spec string -> Format, and the list `gsqhw formats` prints.
// Each family lives in its own unit (gse.cpp, minifloat.cpp, int8.cpp, nf4.cpp) and is wired
// in here by one table row. (An explicit table rather than static self-registration: static
// registrars in a static library are dropped by the linker when nothing references them.)
#include <fmt/format.h>

#include <cctype>
#include <functional>

#include "base/errors.h"
#include "numerics/format.h"
#include "numerics/gse.h"
#include "numerics/int8.h"
#include "numerics/minifloat.h"
#include "numerics/nf4.h"
#include "numerics/spec_parse.h"

namespace gsqhw {
namespace {

struct FamilyEntry {
  FormatInfo info;
  std::function<std::unique_ptr<Format>(const spec::Parts&)> make;
};

const std::vector<FamilyEntry>& families() {
  static const std::vector<FamilyEntry> table = {
      {{"gse", "gse:b=2..8,g=4..256 (power of two),e=4..8,scale=floor|ceil,"
               "round=rne|rna|stochastic|trunc,range=symmetric|full[,seed=N with stochastic]",
        "GSE-INT: b-bit integers sharing one E-bit power-of-two exponent per group of g "
        "(GSQ-Tuning); defaults b=8,g=32,e=5,floor,rne,symmetric",
        "gse:b=6,g=32,e=5,scale=floor,round=rne,range=symmetric"},
       make_gse_format},
      {{"fp8", "fp8:e4m3|e5m2,sat=satfinite|nonsat,block=0|2..256 (power of two)",
        "OCP FP8 (OFP8) with RNE; block=32 adds one E8M0 scale per 32 elements (MXFP8)",
        "fp8:e4m3,sat=satfinite,block=0"},
       make_fp8_format},
      {{"fp6", "fp6:e3m2|e2m3,block=0|2..256 (power of two)",
        "OCP MX FP6 elements (no Inf/NaN, RNE, overflow saturates); block=32 adds one E8M0 "
        "scale per 32 elements (MXFP6)",
        "fp6:e3m2,block=0"},
       make_fp8_format},
      {{"int8", "int8:per=channel|tensor",
        "INT8 with symmetric absmax/127 FP32 scale per row (channel) or per tensor, RNE",
        "int8:per=channel"},
       make_int8_format},
      {{"bf16", "bf16", "bfloat16 (RNE from FP32, overflow to Inf)", "bf16"},
       make_plain_float_format},
      {{"fp16", "fp16", "IEEE binary16 (RNE from FP32, overflow to Inf)", "fp16"},
       make_plain_float_format},
      {{"fp32", "fp32", "IEEE binary32 (identity)", "fp32"}, make_plain_float_format},
      {{"nf4", "nf4:block=4..4096 (power of two)",
        "QLoRA NormalFloat4: 16 levels as in bitsandbytes, FP32 absmax per block (default 64)",
        "nf4:block=64"},
       make_nf4_format},
  };
  return table;
}

// Names people use for formats this registry spells differently ("mxfp8" is an FP8 family
// member with block scales): "; MXFP8 is fp8:e4m3,block=32 (...)" or "".
std::string common_name_hint(const std::string& family) {
  std::string name;
  for (char c : family)
    if (c != '_' && c != '-') name += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  static const std::vector<std::pair<std::string, std::string>> aliases = {
      {"mxfp8", "fp8:e4m3,block=32 (OCP MX: E4M3 elements, one E8M0 scale per block of 32; "
                "fp8:e5m2,block=32 for MXFP8 E5M2)"},
      {"mxfp8e4m3", "fp8:e4m3,block=32"},
      {"mxfp8e5m2", "fp8:e5m2,block=32"},
      {"e4m3", "fp8:e4m3"},
      {"e5m2", "fp8:e5m2"},
      {"fp8e4m3", "fp8:e4m3"},
      {"fp8e5m2", "fp8:e5m2"},
      {"float8", "fp8:e4m3 or fp8:e5m2"},
      {"mxfp6", "fp6:e3m2,block=32 (OCP MX: E3M2 elements, one E8M0 scale per block of 32; "
                "fp6:e2m3,block=32 for MXFP6 E2M3)"},
      {"e3m2", "fp6:e3m2"},
      {"e2m3", "fp6:e2m3"},
      {"fp6e3m2", "fp6:e3m2"},
      {"fp6e2m3", "fp6:e2m3"},
      {"bfloat16", "bf16"},
      {"float16", "fp16"},
      {"half", "fp16"},
      {"float32", "fp32"},
      {"float", "fp32"},
      {"int", "int8"},
      {"gseint", "gse:b=6 (GSE-INT6; b=2..8 sets the width)"},
      {"normalfloat4", "nf4"},
      {"int4", "int8 is the only plain integer format; gse:b=4 is a 4-bit group-shared-exponent integer"},
      {"mxint8", "gse:b=8 is the nearest (group-shared exponent); MX block-scaled INT8 is not built"},
      {"mxfp4", "not built; the narrowest float here is fp6 (fp6:e2m3,block=32 is MXFP6)"},
  };
  for (const auto& [alias, spec] : aliases)
    if (name == alias) return fmt::format("; {} is {}", family, spec);
  return "";
}

}  // namespace

HardwareOperand Format::hardware() const {
  std::vector<std::string> buildable;
  // Every GEMM operand family has a PE; storage-only formats (nf4, fp32) do not.
  for (const auto& entry : families())
    if (entry.make(spec::split_spec(entry.info.example))->gemm_operand() != GemmOperandKind::none)
      buildable.push_back(entry.info.family);
  throw UsageError(fmt::format(
      "format family '{}' cannot be a PE operand format of the RTL generator (supported: {})",
      family(), fmt::join(buildable, ", ")));
}

AccumulatorSpec Format::natural_accumulator() const { return {AccumulatorSpec::Kind::fp32, 32, 16}; }

std::unique_ptr<Format> parse_format(std::string_view spec_text) {
  spec::Parts parts = spec::split_spec(spec_text);
  std::vector<std::string> names;
  for (const auto& entry : families()) {
    if (entry.info.family == parts.family) return entry.make(parts);
    names.push_back(entry.info.family);
  }
  throw UsageError(fmt::format("format spec '{}': unknown format family '{}' (known: {}){}",
                               spec_text, parts.family, fmt::join(names, ", "),
                               common_name_hint(parts.family)));
}

const std::vector<FormatInfo>& registered_formats() {
  static const std::vector<FormatInfo> infos = [] {
    std::vector<FormatInfo> list;
    for (const auto& entry : families()) list.push_back(entry.info);
    return list;
  }();
  return infos;
}

}  // namespace gsqhw
