// Synthetic, seeded tensors standing in for a real model and a real batch.
//
// Every element is a pure function of (seed, tensor kind, layer, projection, index): a
// counter-based generator (SplitMix64 finaliser) feeds Box-Muller, so any tensor can be
// regenerated on demand, by any number of threads, with identical values.
//
// Shapes and statistics (chosen to look like a LLaMA layer during LoRA fine-tuning):
//   base weight W (out x in): Gaussian, std = layer_scale / sqrt(in) with layer_scale rising
//     linearly from 0.75 (first layer) to 1.25 (last); 1 element in 256 is 4x larger (heavy
//     tail), as in trained weights.
//   LoRA A (r x in): uniform in +-1/sqrt(in) (PEFT's kaiming-uniform initialisation).
//   LoRA B (out x r): Gaussian, std 0.01 (a B that has moved away from its zero init).
//   activations X (T x in): per-token RMS-normalised Gaussian rows times per-channel gains; a
//     few outlier channels (max(2, in/256) of them, fixed per layer) carry gains of 16..32, the
//     persistent outlier features of LLaMA activations. The down projection's input is the
//     SwiGLU product, modelled as the product of two Gaussians (heavier tails).
//   output gradient dY (T x out): Gaussian with a per-token scale in [0.5, 2), i.e. O(1): the
//     magnitude of loss-scaled gradients; see docs/traces.md for why.
#pragma once

#include <cstdint>
#include <vector>

#include "workloads/models.h"

namespace gsqhw::synthetic {

// A well-mixed seed derived from a parent seed and a label (SplitMix64), for quantizer seeds etc.
uint64_t derive_seed(uint64_t parent, uint64_t label);

std::vector<float> base_weight(const ModelShape& model, int64_t layer, Proj proj, uint64_t seed);
std::vector<float> lora_a(const ModelShape& model, int64_t layer, Proj proj, int64_t rank,
                          uint64_t seed);
std::vector<float> lora_b(const ModelShape& model, int64_t layer, Proj proj, int64_t rank,
                          uint64_t seed);
std::vector<float> activations(const ModelShape& model, int64_t layer, Proj proj, int64_t tokens,
                               uint64_t seed);
std::vector<float> output_grad(const ModelShape& model, int64_t layer, Proj proj, int64_t tokens,
                               uint64_t seed);

}  // namespace gsqhw::synthetic
