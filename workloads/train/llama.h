// A LLaMA decoder for training and generation: forward and backward over a batch of token
// sequences, with LoRA adapters on any subset of the seven projections.
//
// Per layer (x is the residual stream, N = batch * seq tokens):
//   a = RMSNorm(x) * w_att;  q, k, v = a Wq^T, a Wk^T, a Wv^T (+ LoRA);  RoPE on q, k
//   grouped-query causal attention (FP32; n_heads / n_kv_heads query heads share a KV head)
//   x += att Wo^T (+ LoRA)
//   f = RMSNorm(x) * w_ffn;  x += (silu(f W1^T) * (f W3^T)) W2^T   (each + LoRA)
// then RMSNorm with w_final and the classifier (the embedding when shared), and the mean
// cross-entropy over all N next-token targets.
//
// Every projection GEMM, base and LoRA, forward and backward, goes through a GemmEngine
// (gemm_engine.h) - FP32, emulated BF16 or QCD with the golden model. Norms, RoPE, attention,
// SwiGLU, the classifier and the loss are FP32. Base weights are frozen: the backward pass
// computes gradients for the LoRA matrices (and, on request, for every base parameter, which
// the finite-difference tests check).
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "workloads/checkpoint.h"
#include "workloads/models.h"
#include "workloads/train/gemm_engine.h"

namespace gsqhw::train {

struct LlamaConfig {
  ModelShape shape;
  Checkpoint::Rope rope = Checkpoint::Rope::interleaved;
  double rope_theta = 10000;
  double norm_eps = 1e-5;
};

struct LayerWeights {
  std::vector<float> attn_norm, ffn_norm;    // dim
  std::array<std::vector<float>, 7> proj;    // out x in, indexed like all_projections()
};

struct LlamaWeights {
  LlamaConfig config;
  std::vector<float> embedding;   // vocab x dim
  std::vector<LayerWeights> layers;
  std::vector<float> final_norm;  // dim
  std::vector<float> classifier;  // vocab x dim; empty when shared with the embedding

  const std::vector<float>& classifier_or_embedding() const {
    return classifier.empty() ? embedding : classifier;
  }
  // Loads every tensor. `storage` is how the frozen projection weights are stored: "fp32"
  // (as read) or a format spec such as "nf4:block=64" (quantized and dequantized once, what
  // the model computes with afterwards). Embedding, norms and classifier stay FP32.
  static LlamaWeights load(const Checkpoint& checkpoint, const std::string& storage = "fp32");
  // A random model for tests (weights ~ N(0, scale^2), norms around 1).
  static LlamaWeights random(const LlamaConfig& config, uint64_t seed, float scale = 0.1f);
};

// LoRA: A (r x in) and B (out x r) FP32 masters per adapted (layer, projection);
// the adapted projection computes X W^T + (alpha / r) (X A^T) B^T.
struct LoraConfig {
  std::vector<Proj> targets;  // empty = no adapters
  int64_t rank = 8;
  double alpha = 16;
  double scale() const { return alpha / static_cast<double>(rank); }
  bool targets_proj(int p) const;
  static std::vector<Proj> parse_targets(const std::string& csv);  // "q,v" / "all"; throws UsageError
};

struct LoraAdapter {
  std::vector<float> a, b;  // r x in, out x r
};

struct LoraWeights {
  LoraConfig config;
  // [layer][proj index]; an empty `a` means no adapter there.
  std::vector<std::array<LoraAdapter, 7>> adapters;
  // PEFT's initialisation: A uniform in +-1/sqrt(in) (kaiming_uniform with a = sqrt(5)), B = 0.
  static LoraWeights init(const LlamaConfig& model, const LoraConfig& config, uint64_t seed);
  // All trainable tensors in a fixed order (layer, proj, A then B), for the optimizer and I/O.
  std::vector<std::vector<float>*> tensors();
  std::vector<std::string> peft_names() const;  // same order: base_model.model.model.layers.N....lora_A.weight
  std::vector<std::vector<int64_t>> shapes() const;
};

// Gradients: the LoRA tensors (same layout as LoraWeights), and optionally every base
// parameter (`want_base`).
struct Gradients {
  LoraWeights lora;
  bool want_base = false;
  LlamaWeights base;  // filled only when want_base
  // [layer][proj]: dW (out x in) of the base projections the model trains
  // (LlamaModel::set_trained_projections), through the engine's bwd.dw GEMM; empty elsewhere.
  std::vector<std::array<std::vector<float>, 7>> weight;
};

struct StepResult {
  double loss = 0;  // mean cross-entropy (natural log) over the batch's targets
  int64_t tokens = 0;
};

// Records one projection's input X (forward) and output gradient dY (backward) during a step:
// the real operands of `gsqhw trace --data`.
struct Capture {
  int64_t layer = 0;
  int proj = 0;  // index into all_projections()
  std::vector<float> x, dy;  // tokens x in, tokens x out
};

class LlamaModel {
 public:
  LlamaModel(const LlamaWeights& weights, const LoraWeights* lora) : w_(weights), lora_(lora) {}
  void set_capture(Capture* capture) { capture_ = capture; }
  // Base projections whose weights change between steps (LoTA-QAF's merged weights): their
  // products are not cached as frozen by a QCD engine, and backward computes their dW.
  void set_trained_projections(std::vector<Proj> projs) { trained_ = std::move(projs); }
  // Quantize the attention score and value products too (default off: FP32). With a QCD or
  // BF16 engine the six attention GEMMs of each batch row and head (Q K^T, P V and their
  // backward) go through the engine; the FP32 engine computes exactly what it computes without.
  void set_quantize_attention(bool on) { quantize_attention_ = on; }

  // tokens and targets: batch x seq. Forward, loss, and (when grads != null) backward with the
  // loss gradient multiplied by loss_scale (dynamic loss scaling; gradients come out scaled).
  // `seed` feeds the per-GEMM stochastic-rounding seeds.
  StepResult step(const std::vector<int>& tokens, const std::vector<int>& targets, int64_t batch,
                  int64_t seq, GemmEngine& engine, Gradients* grads, float loss_scale = 1,
                  uint64_t seed = 0);

  // Logits (seq x vocab) of one sequence.
  std::vector<float> logits(const std::vector<int>& tokens, GemmEngine& engine, uint64_t seed = 0);

 private:
  // Activations of one layer kept by forward for backward.
  struct LayerCache {
    std::vector<float> x_in, rs1, xn1, q, k, v, probs, att, x_mid, rs2, xn2, g, u, hact;
    std::array<std::vector<float>, 7> lora_h;  // X A^T per adapted projection
  };
  void forward(const std::vector<int>& tokens, int64_t batch, int64_t seq, GemmEngine& engine,
               uint64_t seed, bool keep);
  bool attention_through(const GemmEngine& engine) const { return quantize_attention_ && !engine.is_fp32(); }
  std::vector<Proj> trained_;
  bool quantize_attention_ = false;
  const LlamaWeights& w_;
  const LoraWeights* lora_;
  Capture* capture_ = nullptr;
  // Activations of the last forward pass (kept for backward).
  std::vector<LayerCache> cache_;
  std::vector<float> x_final_, xn_final_, rs_final_;
  int64_t batch_ = 0, seq_ = 0;
};

}  // namespace gsqhw::train
