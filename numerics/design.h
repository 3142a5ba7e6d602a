// A design point: the one small value that travels the whole way (generator, co-simulation,
// cycle model, synthesis, sweep). Its canonical string is the key of every cache and, through
// slug(), the name of every output folder.
//
// Canonical string:  <format-spec>@<level>,acc=<acc>,flow=<os|ws>,pipe=<n>[,align=shared]
//   gse:b=6,g=32,e=5,scale=floor,round=rne,range=symmetric@pe,acc=fixed32.16,flow=os,pipe=1
//   fp8:e4m3,sat=satfinite,block=0@array4x4,acc=fp32,flow=ws,pipe=2
//   int8:per=channel@core8x8,acc=fixed32.0,flow=os,pipe=1
// <level> is "pe", "arrayRxC" or "coreRxC" (R, C in 1..64). Both operands use the format.
// align=shared (GSE arrays only): the per-group exponent/alignment/accumulator hardware is
// shared by the PEs of each column (docs/generator.md). It is printed only when set, so every
// per-PE design keeps the string (and slug, cache key, rtl/ reference) it always had.
// align=shared also applies to minifloat arrays (fp8 e4m3, fp6): each PE sums the exact
// products of a group of G steps and the column adds each group sum into the accumulator
// (numerics/gemm.h, AccumulatorSpec::group). G is the design option group=G (default 32),
// printed after align=shared:  fp8:e4m3,...@array4x4,acc=fp32,flow=os,pipe=1,align=shared,group=32
// Short forms parse too: "gse:b=6@array4x4" fills in every default.
#pragma once

#include <string>
#include <string_view>

#include "numerics/gemm.h"

namespace gsqhw {

// Group size of a minifloat shared-column array without group= (as GSE's default g), and the
// largest one accepted.
inline constexpr int kDefaultDesignGroup = 32;
inline constexpr int kMaxDesignGroup = 4096;

struct DesignPoint {
  enum class Level { pe, array, core };
  enum class Dataflow { output_stationary, weight_stationary };
  enum class Alignment { per_pe, shared_column };

  std::string format = "gse:b=8,g=32,e=5,scale=floor,round=rne,range=symmetric";  // canonical
  Level level = Level::pe;
  int rows = 1;  // array rows (R); 1 for a PE
  int cols = 1;  // array columns (C); 1 for a PE
  AccumulatorSpec acc;
  Dataflow dataflow = Dataflow::output_stationary;
  int pipeline = 1;  // PE pipeline depth (register stages in the MAC datapath), 1..4
  Alignment alignment = Alignment::per_pe;

  std::string str() const;
  std::string slug() const;  // filesystem-safe, unique per canonical string
  // Throws UsageError naming the limit that was broken.
  static DesignPoint parse(std::string_view s);
  bool operator==(const DesignPoint&) const = default;
};

}  // namespace gsqhw
