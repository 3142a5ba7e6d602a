// LLaMA-family model shapes and the (in, out) dimensions of each projection of a decoder layer.
// Weights follow the PyTorch convention: a projection's weight W is out x in and Y = X W^T.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace gsqhw {

struct ModelShape {
  std::string name;
  int64_t dim = 0;         // model (residual) width
  int64_t hidden_dim = 0;  // FFN width (gate/up out, down in)
  int64_t n_layers = 0;
  int64_t n_heads = 0;
  int64_t n_kv_heads = 0;  // < n_heads for grouped-query attention (GQA)
  int64_t vocab_size = 0;
  int64_t seq_len = 0;     // maximum context of the checkpoint (0 = not known)
  bool shared_classifier = false;  // lm_head tied to the token embedding

  int64_t head_dim() const { return dim / n_heads; }
  int64_t kv_dim() const { return head_dim() * n_kv_heads; }

  // Throws UsageError when the shape is not a consistent LLaMA shape (non-positive sizes,
  // dim not a multiple of n_heads, n_heads not a multiple of n_kv_heads).
  void validate() const;
  // True when every size that determines a projection's dimensions is equal.
  bool same_dims(const ModelShape& other) const;
};

// The seven adapted projections of a decoder layer, in this order.
enum class Proj { q, k, v, o, gate, up, down };
const std::vector<Proj>& all_projections();
std::string_view proj_name(Proj p);  // "q", "k", ..., "down"
Proj parse_proj(std::string_view s);  // throws UsageError listing the accepted names

struct ProjDims {
  int64_t in = 0, out = 0;
};
ProjDims proj_dims(const ModelShape& model, Proj p);

// Built-in shapes: "tiny" (for tests: dim 64, hidden 192, 2 layers, 4 heads, 2 KV heads,
// vocab 256), "llama-7b", "llama2-7b", "llama2-13b", "llama3-8b".
const std::vector<ModelShape>& builtin_models();
// Throws UsageError listing the known names.
const ModelShape& builtin_model(std::string_view name);

}  // namespace gsqhw
