// The pipeline plan (gen/pipeline.h).
#include "gen/pipeline.h"

namespace gsqhw::gen {

PipelinePlan pipeline_plan(const DesignPoint& d, const PeSpec& pe) {
  using Style = PipelinePlan::Style;
  PipelinePlan plan;
  const int p = pe.pipeline;
  plan.product_cut = p >= 2;
  plan.accumulate_cut = p >= 3;
  plan.prepare_cut = p >= 4;
  const bool gse = pe.format.family == OperandFamily::gse;
  if (d.dataflow == DesignPoint::Dataflow::weight_stationary) {
    plan.style = Style::weight_stationary;
    plan.psum_lag = gse ? plan.product_cut : plan.cuts();
    // Results leave the bottom PE LAG + 1 cycles after the row reached it, the columns are
    // lined up to the last one (C - 1 + ...); GSE adds the column unit (its output register
    // and cuts 2 and 3).
    plan.latency = gse ? d.cols + p : d.cols + p - 1;
  } else if (d.alignment == DesignPoint::Alignment::shared_column) {
    plan.style = Style::shared_column;
    plan.sum_to_unit = plan.product_cut + 2;
    plan.latency = d.cols + p + 1;
  } else if (d.level == DesignPoint::Level::pe) {
    plan.style = Style::pe;
    plan.latency = p;
  } else {
    // The last column's PEs finish P cycles after their step; the drain adds C (skew of the
    // last column, C - 1, plus the bus register).
    plan.style = Style::output_stationary;
    plan.latency = p + d.cols;
  }
  return plan;
}

}  // namespace gsqhw::gen
