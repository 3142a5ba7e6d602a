// Checkpoint loaders: the frozen base weights of a LLaMA model, one projection at a time.
//
// Two kinds, chosen by content:
//   * llama2.c (Karpathy) checkpoints: a 7 x int32 header (dim, hidden_dim, n_layers, n_heads,
//     n_kv_heads, vocab_size (negative = unshared classifier), seq_len), then float32 tensors in
//     the order token_embedding, rms_att, wq, wk, wv, wo, rms_ffn, w1 (gate), w2 (down),
//     w3 (up), rms_final, [freq_cis_real, freq_cis_imag (legacy exports)], [wcls if unshared].
//     The file size must match the header exactly (one of the legal layouts).
//   * safetensors with Hugging Face LLaMA names (model.layers.N.self_attn.q_proj.weight, ...,
//     model.layers.N.mlp.down_proj.weight, model.embed_tokens.weight, model.norm.weight,
//     lm_head.weight, norms, rotary inv_freq), dtypes F32, F16 or BF16: one file, or a folder
//     of shards (*.safetensors). The head count is read from a config.json beside the file
//     (num_attention_heads / num_key_value_heads) when present, else inferred with head_dim 128
//     (the LLaMA value) when it divides the widths, else with head_dim = gcd(dim, kv_dim).
//
// Every structural problem (truncated or inconsistent file, unknown tensor names, unsupported
// dtypes, wrong shapes) throws UsageError when the checkpoint is opened; NaN/Inf in a tensor
// throws UsageError when that tensor is read. Only the requested tensor's bytes are read.
#pragma once

#include <filesystem>
#include <memory>
#include <vector>

#include "workloads/models.h"

namespace gsqhw {

class Checkpoint {
 public:
  virtual ~Checkpoint() = default;
  const ModelShape& shape() const { return shape_; }
  const std::filesystem::path& path() const { return path_; }
  virtual std::string kind() const = 0;  // "llama2c" or "safetensors"

  // The base weight of projection `p` in layer `layer`, out x in row-major (PyTorch layout),
  // converted to FP32. Throws UsageError for a bad layer or non-finite values.
  virtual std::vector<float> read_projection(int64_t layer, Proj p) const = 0;

  // The tensors around the projections, converted to FP32: embedding and classifier are
  // vocab x dim (the classifier of a shared-classifier model is the embedding), norms are dim
  // (`layer` selects the layer of attn_norm / ffn_norm). Throws UsageError like read_projection.
  enum class Tensor { embedding, attn_norm, ffn_norm, final_norm, classifier };
  virtual std::vector<float> read_tensor(Tensor t, int64_t layer = 0) const = 0;

  // How the checkpoint's q/k rows pair up for rotary embeddings: llama2.c rotates interleaved
  // pairs (2i, 2i+1) of a head; Hugging Face checkpoints hold q/k rows permuted so that
  // rotate-half pairs (i, i + head_dim/2) are the same rotation.
  enum class Rope { interleaved, rotate_half };
  Rope rope() const { return rope_; }
  double rope_theta() const { return rope_theta_; }  // 10000 unless config.json says otherwise
  double norm_eps() const { return norm_eps_; }      // RMSNorm epsilon (llama2.c: 1e-5)

 protected:
  ModelShape shape_;
  std::filesystem::path path_;
  Rope rope_ = Rope::interleaved;
  double rope_theta_ = 10000;
  double norm_eps_ = 1e-5;
};

// Detects the kind (a folder or a file starting with a safetensors header is safetensors;
// otherwise llama2.c) and validates the structure.
std::unique_ptr<Checkpoint> open_checkpoint(const std::filesystem::path& path);

}  // namespace gsqhw
