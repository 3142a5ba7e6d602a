// Internal interface between the core's generator pieces (gen/core*.cpp): the derived sizes of
// one core and the emitters of its modules. Not part of the public contract (gen/core.h).
#pragma once

#include <string>
#include <vector>

#include "gen/core.h"
#include "gen/emit.h"
#include "gen/pe_spec.h"

namespace gsqhw::gen {

// Every size the core's Verilog is built from, derived once from the design and capacity.
struct CoreParams {
  DesignPoint design;  // the core design point (level core)
  PeSpec pe;           // the array's PE spec
  int r = 1, c = 1;
  int cw = 0, xw = 0, aw = 0;  // code, exponent and accumulator widths
  bool groups = false;         // GSE: group exponents travel with the codes
  int g = 0, log2g = 0;        // GSE group size
  int tile_rows = 0, tile_cols = 0;
  int max_m = 0, max_n = 0, max_k = 0;
  int kw = 0;     // log2(max_k): k index bits of a buffer address
  int maw = 0;    // row index bits of an A / C buffer address (clog2(max_m))
  int naw = 0;    // row index bits of a B buffer address (clog2(max_n))
  int tcw = 0;    // tile-column index bits of a C buffer address (>= 1)
  int rw = 0;     // width of row/column counters and M, N registers (holds max(max_m, max_n))
  int sw = 0;     // width of k/step counters and the K register (holds max(max_k, R))
  int lane_w = 0; // width of the result lane index (>= 1)
  int orw = 0;    // width of the array's out_row
  int latency = 0, min_steps_per_tile = 0;  // the array's timing (from its manifest)
};

CoreParams make_core_params(const DesignPoint& design, const CoreCapacity& capacity,
                            const nlohmann::json& array_manifest);

// gsqhw_quantizer (and the family's conversion leaves), gsqhw_dequantizer, gsqhw_core.
std::vector<VerilogFile> emit_quantizer_files(const CoreParams& p);
std::vector<VerilogFile> emit_dequantizer_files(const CoreParams& p);
VerilogFile emit_core_top(const CoreParams& p);

}  // namespace gsqhw::gen
