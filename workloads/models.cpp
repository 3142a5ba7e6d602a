// Built-in LLaMA shapes and projection dimensions (workloads/models.h).
#include "workloads/models.h"

#include <fmt/format.h>

#include "base/errors.h"

namespace gsqhw {

void ModelShape::validate() const {
  auto positive = [&](int64_t v, const char* what) {
    if (v <= 0) throw UsageError(fmt::format("model '{}': {} must be positive, got {}", name, what, v));
  };
  positive(dim, "dim");
  positive(hidden_dim, "hidden_dim");
  positive(n_layers, "n_layers");
  positive(n_heads, "n_heads");
  positive(n_kv_heads, "n_kv_heads");
  positive(vocab_size, "vocab_size");
  if (dim % n_heads != 0)
    throw UsageError(fmt::format("model '{}': dim {} is not a multiple of n_heads {}", name, dim, n_heads));
  if (n_heads % n_kv_heads != 0)
    throw UsageError(fmt::format("model '{}': n_heads {} is not a multiple of n_kv_heads {}", name,
                                 n_heads, n_kv_heads));
  // Keep sizes far from int64 overflow in products such as vocab * dim * layers.
  for (int64_t v : {dim, hidden_dim, n_layers, vocab_size})
    if (v > (int64_t{1} << 24))
      throw UsageError(fmt::format("model '{}': size {} is implausibly large", name, v));
}

bool ModelShape::same_dims(const ModelShape& o) const {
  return dim == o.dim && hidden_dim == o.hidden_dim && n_layers == o.n_layers &&
         n_heads == o.n_heads && n_kv_heads == o.n_kv_heads && vocab_size == o.vocab_size;
}

const std::vector<Proj>& all_projections() {
  static const std::vector<Proj> all = {Proj::q, Proj::k, Proj::v, Proj::o,
                                        Proj::gate, Proj::up, Proj::down};
  return all;
}

std::string_view proj_name(Proj p) {
  switch (p) {
    case Proj::q: return "q";
    case Proj::k: return "k";
    case Proj::v: return "v";
    case Proj::o: return "o";
    case Proj::gate: return "gate";
    case Proj::up: return "up";
    case Proj::down: return "down";
  }
  return "?";
}

Proj parse_proj(std::string_view s) {
  for (Proj p : all_projections())
    if (proj_name(p) == s) return p;
  throw UsageError(fmt::format("unknown projection '{}' (accepted: q, k, v, o, gate, up, down)", s));
}

ProjDims proj_dims(const ModelShape& m, Proj p) {
  switch (p) {
    case Proj::q: return {m.dim, m.dim};
    case Proj::k:
    case Proj::v: return {m.dim, m.kv_dim()};
    case Proj::o: return {m.dim, m.dim};
    case Proj::gate:
    case Proj::up: return {m.dim, m.hidden_dim};
    case Proj::down: return {m.hidden_dim, m.dim};
  }
  return {};
}

const std::vector<ModelShape>& builtin_models() {
  // Sizes from the published configs (params.json / config.json of each model).
  static const std::vector<ModelShape> models = {
      // name, dim, hidden, layers, heads, kv heads, vocab, seq_len, shared classifier
      {"tiny", 64, 192, 2, 4, 2, 256, 64, true},
      {"llama-7b", 4096, 11008, 32, 32, 32, 32000, 2048, false},
      {"llama2-7b", 4096, 11008, 32, 32, 32, 32000, 4096, false},
      {"llama2-13b", 5120, 13824, 40, 40, 40, 32000, 4096, false},
      {"llama3-8b", 4096, 14336, 32, 32, 8, 128256, 8192, false},
  };
  return models;
}

const ModelShape& builtin_model(std::string_view name) {
  std::string known;
  for (const auto& m : builtin_models()) {
    if (m.name == name) return m;
    known += (known.empty() ? "" : ", ") + m.name;
  }
  throw UsageError(fmt::format("unknown model '{}' (built-in models: {})", name, known));
}

}  // namespace gsqhw
