// LoTA-QAF fine-tuning in the training engine (Chen et al., NeurIPS 2025; golden model in
// numerics/lota.h, semantics in docs/siblings.md): instead of FP32 LoRA masters trained by
// AdamW, each targeted projection's base weight is quantized to N-bit group-wise asymmetric
// integers, and ternary adapters A_T (in x r) and B_T (r x out) are trained with t-SignSGD:
//   forward     W_merged = dequant(lota::merge(base, A_T, B_T, omega)), what the model computes with
//   backward    gW = dY^T X (the engine's bwd.dw GEMM), gA, gB = lota::adapter_gradients(gW)
//               (straight-through estimator d w / d dW := group scale)
//   update      x <- clamp(x - sign(g) [|g| > t], -1, 1) per tensor, with t the percentile
//               threshold that lets the top `fraction` of |g| move (lota::percentile_threshold)
// Initial adapters as `gsqhw lota`: A_T = the run's seeded LoRA A ternarised with the TWN rule
// (|a| > 0.7 mean|a|), B_T = 0, so the first merge is the quantized base model.
// The update depends only on the gradients' signs and ranks, so loss scaling does not change it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "numerics/lota.h"
#include "workloads/train/llama.h"

namespace gsqhw::train {

struct TSignSgdConfig {
  int bits = 4;             // N of the base codes (2..4)
  int group = 64;           // quantization group along in (64 or 128)
  double omega = -1;        // merge threshold; < 0: 0.75 r
  double fraction = 0.05;   // share of each adapter tensor allowed to move per step
  std::string str() const;  // "tsignsgd:n=4,g=64,omega=6,fraction=0.05"
};

// "adamw" -> false; "tsignsgd[:n=N,g=G,omega=W,fraction=F]" -> true and `config`.
// Throws UsageError naming the bad part.
bool parse_optimizer(const std::string& text, TSignSgdConfig& config);

class TernaryAdapters {
 public:
  // `fp32` holds the checkpoint's FP32 projection weights (the ones quantized to N bits);
  // `init` the run's seeded LoRA initialisation (its A is ternarised). Validates the LoTA
  // parameters against the rank (UsageError).
  TernaryAdapters(const LlamaWeights& fp32, const LoraWeights& init, const TSignSgdConfig& config);

  // Writes the merged, dequantized weight of every target projection into `weights`.
  void merge_into(LlamaWeights& weights) const;
  // One t-SignSGD step (B, then A, of every target) from the gradients of the merged weights
  // (grads.weight); returns how many ternary entries changed.
  int64_t step(const Gradients& grads);
  // The ternary values in LoraWeights' layout (A: r x in = A_T^T; B: out x r = B_T^T), for the
  // resumable state; from_lora throws UsageError for a value outside {-1, 0, +1}.
  void to_lora(LoraWeights& lora) const;
  void from_lora(const LoraWeights& lora);
  const lota::LotaParams& params() const { return params_; }

 private:
  struct Target {
    int64_t layer = 0;
    int proj = 0;
    lota::QuantizedWeights base;
    lota::Adapters adapters;
  };
  lota::LotaParams params_;
  double fraction_ = 0.05;
  std::vector<Target> targets_;
};

}  // namespace gsqhw::train
