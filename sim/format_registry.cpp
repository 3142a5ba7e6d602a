// The format registry: spec string -> Format, and the list `gsqhw formats` prints.
// Each family lives in its own unit (gse.cpp, minifloat.cpp, int8.cpp, nf4.cpp) and is wired
// in here by one table row. (An explicit table rather than static self-registration: static
// registrars in a static library are dropped by the linker when nothing references them.)
#include <fmt/format.h>

#include <functional>

#include "sim/errors.h"
#include "sim/format.h"
#include "sim/gse.h"
#include "sim/int8.h"
#include "sim/minifloat.h"
#include "sim/nf4.h"
#include "sim/spec_parse.h"

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

}  // namespace

std::unique_ptr<Format> parse_format(std::string_view spec_text) {
  spec::Parts parts = spec::split_spec(spec_text);
  std::vector<std::string> names;
  for (const auto& entry : families()) {
    if (entry.info.family == parts.family) return entry.make(parts);
    names.push_back(entry.info.family);
  }
  throw UsageError(fmt::format("format spec '{}': unknown format family '{}' (known: {})",
                               spec_text, parts.family, fmt::join(names, ", ")));
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
