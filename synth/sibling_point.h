// One sweep point of a sibling design (synth/sibling_design.h), end to end like
// synth::evaluate_point for GSE/FP8/INT8 designs: generate the RTL, quantize the LoRA layer's
// base-GEMM traces the method's way and measure the trace error, co-simulate bit-exact
// (synth/sibling_cosim.h; a failure gives no numbers), synthesize and time (synth/flow.h),
// vectorless power and workload power from the RTL simulation's switching activity.
// evaluate_point() dispatches "lota:" and "ptq161:" strings here. Result fields: those of
// docs/synthesis.md plus bits_per_weight, bits_per_weight_4096 (the same method on a
// 4096 x 4096 layer), the merge statistics (LoTA-QAF) and salient channels (PTQ1.61).
#pragma once

#include <nlohmann/json.hpp>

#include "synth/point.h"
#include "synth/sibling_design.h"

namespace gsqhw::synth {

// Same contract as evaluate_point: errors become {"status": "error"} / "cosim_failed";
// ToolMissing and a malformed request (UsageError) are thrown.
nlohmann::json evaluate_sibling_point(const PointRequest& request);

// Storage bits per weight of the design's method on a rows x cols layer (PTQ1.61: with
// round(salient * cols) salient channels).
double sibling_bits_per_weight(const SiblingDesign& design, int64_t rows, int64_t cols);

}  // namespace gsqhw::synth
