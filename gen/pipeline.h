// One pipeline plan for every PE datapath and array style (gen/pe_emit.cpp, gen/shared_emit.cpp,
// gen/ws_emit.cpp, gen/generator.cpp): where a design's optional register cuts go and the
// latency that results.
//
// Every style computes product -> [GSE: exact group sum] -> prepare the addend -> accumulate.
// pipe = P (1..4) places P - 1 cuts, filled in this order:
//   cut 1 (P >= 2)  after the product
//   cut 3 (P >= 3)  between the prepared addend and the accumulator
//   cut 2 (P >= 4)  in front of the addend preparation (per-PE GSE: the group-sum register
//                   itself is that stage's register; the weight-stationary PE of other families
//                   puts it in front of the multiplier instead, see ws_emit.cpp)
#pragma once

#include "gen/pe_spec.h"
#include "numerics/design.h"

namespace gsqhw::gen {

struct PipelinePlan {
  enum class Style { pe, output_stationary, shared_column, weight_stationary };
  Style style = Style::pe;
  bool product_cut = false;     // cut 1
  bool prepare_cut = false;     // cut 2
  bool accumulate_cut = false;  // cut 3
  // Cycles from a tile's last step at the top module's inputs to row 0 of its results (the
  // manifest's timing.latency).
  int latency = 0;
  // Weight-stationary only: register stages between a row reaching a PE and its partial sum
  // being added there (GSE: cut 1 only, the other cuts sit in gsqhw_group_acc; others: every
  // cut). Shared-column only: cycles from a group's last step at a PE to its sum at the
  // column unit (cut 1, the group-sum register, the bus register).
  int psum_lag = 0;
  int sum_to_unit = 0;

  int cuts() const { return product_cut + prepare_cut + accumulate_cut; }
};

PipelinePlan pipeline_plan(const DesignPoint& design, const PeSpec& pe);

}  // namespace gsqhw::gen
