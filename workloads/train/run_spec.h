// What one fine-tuning run computes with: a run spec names the engine of the linear layers.
//
//   fp32                 FP32 baseline (OpenBLAS sgemm)
//   bf16                 emulated BF16 baseline (operands rounded to BF16, FP32 accumulation)
//   fp8                  FP8 training as practised: E4M3 activations and weights, E5M2
//                        gradients (act=fp8:e4m3,weight=fp8:e4m3,grad=fp8:e5m2), QCD
//   SPEC or act=..,weight=..,grad=..   any `gsqhw trace --formats` assignment, QCD
// Any of the QCD forms may end in "@ACC" (e.g. "gse:b=6@fixed48.24") to override the run's
// accumulator (--acc). The accumulator "natural" is the one the sweep builds each family's
// design with: fixed32.16 for GSE-INT, fixed32.0 for INT8, fp32 for FP8/BF16/FP16.
#pragma once

#include <memory>
#include <string>

#include "numerics/gemm.h"
#include "workloads/lora.h"
#include "workloads/train/gemm_engine.h"

namespace gsqhw::train {

struct RunSpec {
  std::string text;      // as given
  std::string kind;      // "fp32", "bf16", "qcd"
  FormatAssignment formats;  // qcd only
  AccumulatorSpec acc;       // qcd only
  std::string label() const;  // short label for tables and plots ("fp32", "gse:b=6,...@fixed32.16")
  // Throws UsageError naming the bad part.
  static RunSpec parse(const std::string& text, const std::string& default_acc);
  std::unique_ptr<GemmEngine> engine(int threads) const;
};

// Shorthand used by `gsqhw generate --formats`.
std::unique_ptr<GemmEngine> make_engine_for(const std::string& spec, const std::string& acc, int threads);

// "natural" (the family's accumulator, as above) or an accumulator spec.
AccumulatorSpec resolve_accumulator(const std::string& acc, const FormatAssignment& formats);

}  // namespace gsqhw::train
