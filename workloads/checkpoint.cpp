// llama2.c and Hugging Face safetensors checkpoint loaders (workloads/checkpoint.h).
#include "workloads/checkpoint.h"

#include <fmt/format.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <numeric>
#include <optional>
#include <regex>

#include "base/errors.h"
#include "workloads/safetensors.h"

namespace gsqhw {
namespace {

void check_layer(const ModelShape& shape, int64_t layer) {
  if (layer < 0 || layer >= shape.n_layers)
    throw UsageError(fmt::format("layer {} is out of range: the model has layers 0..{}", layer,
                                 shape.n_layers - 1));
}

void check_finite(const std::vector<float>& w, const std::filesystem::path& path,
                  const std::string& tensor) {
  for (size_t i = 0; i < w.size(); ++i)
    if (!std::isfinite(w[i]))
      throw UsageError(fmt::format("{}: tensor {} holds a non-finite value ({}) at element {}",
                                   path.string(), tensor, w[i], i));
}

// ---------------------------------------------------------------------------------------------
// llama2.c

class Llama2cCheckpoint final : public Checkpoint {
 public:
  explicit Llama2cCheckpoint(const std::filesystem::path& path) {
    path_ = path;
    std::ifstream in(path, std::ios::binary);
    if (!in) throw UsageError(fmt::format("{}: cannot open checkpoint", path.string()));
    int32_t h[7];
    if (!in.read(reinterpret_cast<char*>(h), sizeof h))
      throw UsageError(fmt::format("{}: llama2.c checkpoint shorter than its 28-byte header",
                                   path.string()));
    shape_.name = path.filename().string();
    shape_.dim = h[0];
    shape_.hidden_dim = h[1];
    shape_.n_layers = h[2];
    shape_.n_heads = h[3];
    shape_.n_kv_heads = h[4];
    shape_.shared_classifier = h[5] > 0;
    shape_.vocab_size = h[5] < 0 ? -static_cast<int64_t>(h[5]) : h[5];
    shape_.seq_len = h[6];
    try {
      shape_.validate();
      if (shape_.seq_len <= 0) throw UsageError(fmt::format("seq_len must be positive, got {}", shape_.seq_len));
    } catch (const UsageError& e) {
      throw UsageError(fmt::format("{}: inconsistent llama2.c header ({}, {}, {}, {}, {}, {}, {}): {}",
                                   path.string(), h[0], h[1], h[2], h[3], h[4], h[5], h[6], e.what()));
    }
    // Bound the layout arithmetic before doing it in int64 (a corrupt header can ask for 2^70 floats).
    const double approx_floats = static_cast<double>(shape_.n_layers) *
                                     (4.0 * shape_.dim * shape_.dim + 3.0 * shape_.dim * shape_.hidden_dim) +
                                 2.0 * static_cast<double>(shape_.vocab_size) * shape_.dim +
                                 static_cast<double>(shape_.seq_len) * shape_.dim;
    if (approx_floats > 0x1p60)
      throw UsageError(fmt::format("{}: llama2.c header describes an impossibly large model "
                                   "({:.3g} floats)", path.string(), approx_floats));
    compute_layout();
    check_size();
  }

  std::string kind() const override { return "llama2c"; }

  std::vector<float> read_projection(int64_t layer, Proj p) const override {
    check_layer(shape_, layer);
    const ProjDims d = proj_dims(shape_, p);
    const int64_t per_layer = d.in * d.out;
    const int64_t offset_floats = tensor_offset_.at(p) + layer * per_layer;
    std::vector<float> w(static_cast<size_t>(per_layer));
    std::ifstream in(path_, std::ios::binary);
    in.seekg(28 + 4 * offset_floats);
    if (!in.read(reinterpret_cast<char*>(w.data()), 4 * per_layer))
      throw UsageError(fmt::format("{}: truncated while reading layer {} {}", path_.string(), layer,
                                   proj_name(p)));
    check_finite(w, path_, fmt::format("layers[{}].{}", layer, llama2c_name(p)));
    return w;
  }

  std::vector<float> read_tensor(Tensor t, int64_t layer) const override {
    const ModelShape& m = shape_;
    int64_t offset = 0, count = m.dim;
    const char* name = "";
    switch (t) {
      case Tensor::embedding: offset = 0; count = m.vocab_size * m.dim; name = "token_embedding"; break;
      case Tensor::attn_norm:
        check_layer(m, layer);
        offset = m.vocab_size * m.dim + layer * m.dim; name = "rms_att"; break;
      case Tensor::ffn_norm:
        check_layer(m, layer);
        offset = tensor_offset_.at(Proj::o) + m.n_layers * m.dim * m.dim + layer * m.dim;
        name = "rms_ffn"; break;
      case Tensor::final_norm: offset = base_floats_ - m.dim; name = "rms_final"; break;
      case Tensor::classifier:
        if (m.shared_classifier) return read_tensor(Tensor::embedding, 0);
        offset = base_floats_ + (has_freq_ ? freq_floats_ : 0);
        count = m.vocab_size * m.dim; name = "wcls"; break;
    }
    std::vector<float> w(static_cast<size_t>(count));
    std::ifstream in(path_, std::ios::binary);
    in.seekg(28 + 4 * offset);
    if (!in.read(reinterpret_cast<char*>(w.data()), 4 * count))
      throw UsageError(fmt::format("{}: truncated while reading {}", path_.string(), name));
    check_finite(w, path_, name);
    return w;
  }

 private:
  static const char* llama2c_name(Proj p) {
    switch (p) {
      case Proj::q: return "wq";
      case Proj::k: return "wk";
      case Proj::v: return "wv";
      case Proj::o: return "wo";
      case Proj::gate: return "w1";
      case Proj::down: return "w2";
      case Proj::up: return "w3";
    }
    return "?";
  }

  // Offsets (in floats, after the header) of each projection tensor, and the legal file sizes.
  void compute_layout() {
    const ModelShape& m = shape_;
    const int64_t L = m.n_layers;
    int64_t pos = 0;
    pos += m.vocab_size * m.dim;  // token_embedding
    pos += L * m.dim;             // rms_att
    for (Proj p : {Proj::q, Proj::k, Proj::v, Proj::o}) {
      tensor_offset_[p] = pos;
      const ProjDims d = proj_dims(m, p);
      pos += L * d.in * d.out;
    }
    pos += L * m.dim;  // rms_ffn
    // llama2.c order: w1 (gate), w2 (down), w3 (up).
    for (Proj p : {Proj::gate, Proj::down, Proj::up}) {
      tensor_offset_[p] = pos;
      const ProjDims d = proj_dims(m, p);
      pos += L * d.in * d.out;
    }
    pos += m.dim;  // rms_final
    base_floats_ = pos;
    freq_floats_ = m.seq_len * m.head_dim() / 2 * 2;  // freq_cis_real + freq_cis_imag
    cls_floats_ = m.shared_classifier ? 0 : m.vocab_size * m.dim;
  }

  void check_size() {
    std::error_code ec;
    const auto size = static_cast<int64_t>(std::filesystem::file_size(path_, ec));
    if (ec) throw UsageError(fmt::format("{}: cannot read its size", path_.string()));
    const int64_t without_freq = 28 + 4 * (base_floats_ + cls_floats_);
    const int64_t with_freq = 28 + 4 * (base_floats_ + freq_floats_ + cls_floats_);
    if (size == without_freq || size == with_freq) {
      has_freq_ = size == with_freq && freq_floats_ > 0;
      return;
    }
    throw UsageError(fmt::format(
        "{}: llama2.c checkpoint is {} bytes but its header (dim {}, hidden {}, layers {}, heads {}, "
        "kv heads {}, vocab {}{}, seq_len {}) needs {} bytes (or {} with the legacy freq_cis "
        "tables){}",
        path_.string(), size, shape_.dim, shape_.hidden_dim, shape_.n_layers, shape_.n_heads,
        shape_.n_kv_heads, shape_.vocab_size, shape_.shared_classifier ? " shared" : " unshared",
        shape_.seq_len, without_freq, with_freq, size < without_freq ? ": truncated" : ""));
  }

  std::map<Proj, int64_t> tensor_offset_;
  int64_t base_floats_ = 0, freq_floats_ = 0, cls_floats_ = 0;
  bool has_freq_ = false;  // the legacy freq_cis tables sit between rms_final and wcls
};

// ---------------------------------------------------------------------------------------------
// Hugging Face safetensors

float half_to_float(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h >> 15) << 31;
  const int exp = (h >> 10) & 0x1f;
  const uint32_t mant = h & 0x3ff;
  float magnitude;
  if (exp == 0) magnitude = std::ldexp(static_cast<float>(mant), -24);           // subnormal
  else if (exp == 31) magnitude = mant ? NAN : INFINITY;                          // Inf / NaN
  else magnitude = std::ldexp(static_cast<float>(mant | 0x400), exp - 25);       // normal
  uint32_t bits;
  std::memcpy(&bits, &magnitude, 4);
  bits |= sign;
  float out;
  std::memcpy(&out, &bits, 4);
  return out;
}

float bf16_to_float(uint16_t b) {
  const uint32_t bits = static_cast<uint32_t>(b) << 16;
  float out;
  std::memcpy(&out, &bits, 4);
  return out;
}

struct HfTensor {
  const safetensors::Header* file;
  const safetensors::TensorEntry* entry;
};

class HfCheckpoint final : public Checkpoint {
 public:
  explicit HfCheckpoint(const std::filesystem::path& path) {
    path_ = path;
    std::vector<std::filesystem::path> files;
    if (std::filesystem::is_directory(path)) {
      for (const auto& e : std::filesystem::directory_iterator(path))
        if (e.path().extension() == ".safetensors") files.push_back(e.path());
      std::sort(files.begin(), files.end());
      if (files.empty())
        throw UsageError(fmt::format("{}: folder holds no *.safetensors file", path.string()));
    } else {
      files.push_back(path);
    }
    for (const auto& f : files) headers_.push_back(safetensors::read_header(f));
    index_tensors();
    infer_shape();
  }

  std::string kind() const override { return "safetensors"; }

  std::vector<float> read_projection(int64_t layer, Proj p) const override {
    check_layer(shape_, layer);
    return read_named(hf_name(layer, p));
  }

  std::vector<float> read_tensor(Tensor t, int64_t layer) const override {
    switch (t) {
      case Tensor::embedding: return read_named("model.embed_tokens.weight");
      case Tensor::attn_norm:
        check_layer(shape_, layer);
        return read_named(fmt::format("model.layers.{}.input_layernorm.weight", layer));
      case Tensor::ffn_norm:
        check_layer(shape_, layer);
        return read_named(fmt::format("model.layers.{}.post_attention_layernorm.weight", layer));
      case Tensor::final_norm: return read_named("model.norm.weight");
      case Tensor::classifier:
        return read_named(shape_.shared_classifier ? "model.embed_tokens.weight" : "lm_head.weight");
    }
    return {};
  }

 private:
  std::vector<float> read_named(const std::string& name) const {
    auto it = tensors_.find(name);
    if (it == tensors_.end())
      throw UsageError(fmt::format("{}: missing tensor '{}'", path_.string(), name));
    const HfTensor& t = it->second;
    const int64_t n = t.entry->numel();
    std::vector<float> w(static_cast<size_t>(n));
    if (t.entry->dtype == "F32") {
      safetensors::read_bytes(*t.file, *t.entry, w.data());
    } else {
      std::vector<uint16_t> raw(static_cast<size_t>(n));
      safetensors::read_bytes(*t.file, *t.entry, raw.data());
      const bool is_bf16 = t.entry->dtype == "BF16";
      for (int64_t i = 0; i < n; ++i) w[i] = is_bf16 ? bf16_to_float(raw[i]) : half_to_float(raw[i]);
    }
    check_finite(w, t.file->path, name);
    return w;
  }

  static std::string hf_name(int64_t layer, Proj p) {
    const bool attn = p == Proj::q || p == Proj::k || p == Proj::v || p == Proj::o;
    return fmt::format("model.layers.{}.{}.{}_proj.weight", layer, attn ? "self_attn" : "mlp",
                       proj_name(p));
  }

  // Accepts only LLaMA names; records the largest layer index seen.
  void index_tensors() {
    static const std::regex layer_re(
        R"(model\.layers\.(\d+)\.(self_attn\.(q|k|v|o)_proj\.weight|mlp\.(gate|up|down)_proj\.weight|input_layernorm\.weight|post_attention_layernorm\.weight|self_attn\.rotary_emb\.inv_freq))");
    for (const auto& h : headers_) {
      for (const auto& e : h.tensors) {
        std::smatch m;
        const bool global = e.name == "model.embed_tokens.weight" || e.name == "model.norm.weight" ||
                            e.name == "lm_head.weight";
        if (!global && !std::regex_match(e.name, m, layer_re))
          throw UsageError(fmt::format("{}: unknown tensor name '{}' (expected Hugging Face LLaMA "
                                       "names such as model.layers.0.self_attn.q_proj.weight)",
                                       h.path.string(), e.name));
        if (e.dtype != "F32" && e.dtype != "F16" && e.dtype != "BF16")
          throw UsageError(fmt::format("{}: tensor '{}' has dtype {}; supported: F32, F16, BF16",
                                       h.path.string(), e.name, e.dtype));
        if (!global) {
          const std::string digits = m[1].str();
          if (digits.size() > 6)
            throw UsageError(fmt::format("{}: tensor '{}': layer index too large", h.path.string(), e.name));
          max_layer_ = std::max<int64_t>(max_layer_, std::stoll(digits));
        }
        if (!tensors_.emplace(e.name, HfTensor{&h, &e}).second)
          throw UsageError(fmt::format("{}: tensor '{}' appears twice", path_.string(), e.name));
      }
    }
  }

  const safetensors::TensorEntry& require(const std::string& name) const {
    auto it = tensors_.find(name);
    if (it == tensors_.end())
      throw UsageError(fmt::format("{}: missing tensor '{}'", path_.string(), name));
    return *it->second.entry;
  }

  void expect_shape(const std::string& name, std::vector<int64_t> shape) const {
    const auto& e = require(name);
    if (e.shape != shape)
      throw UsageError(fmt::format("{}: tensor '{}' has shape [{}], expected [{}]", path_.string(),
                                   name, fmt::join(e.shape, ", "), fmt::join(shape, ", ")));
  }

  std::optional<nlohmann::json> read_config() const {
    const auto dir = std::filesystem::is_directory(path_) ? path_ : path_.parent_path();
    const auto file = dir / "config.json";
    if (!std::filesystem::is_regular_file(file)) return std::nullopt;
    std::ifstream in(file);
    try {
      return nlohmann::json::parse(in);
    } catch (const nlohmann::json::exception& e) {
      throw UsageError(fmt::format("{}: not valid JSON ({})", file.string(), e.what()));
    }
  }

  void infer_shape() {
    ModelShape& m = shape_;
    m.name = path_.filename().string();
    const auto& q = require("model.layers.0.self_attn.q_proj.weight");
    if (q.shape.size() != 2 || q.shape[0] != q.shape[1] || q.shape[0] == 0)
      throw UsageError(fmt::format("{}: q_proj of layer 0 must be square, has shape [{}]",
                                   path_.string(), fmt::join(q.shape, ", ")));
    m.dim = q.shape[1];
    const auto& k = require("model.layers.0.self_attn.k_proj.weight");
    const auto& gate = require("model.layers.0.mlp.gate_proj.weight");
    const auto& emb = require("model.embed_tokens.weight");
    if (k.shape.size() != 2 || gate.shape.size() != 2 || emb.shape.size() != 2)
      throw UsageError(fmt::format("{}: k_proj, gate_proj and embed_tokens must be 2-D", path_.string()));
    const int64_t kv_dim = k.shape[0];
    m.hidden_dim = gate.shape[0];
    m.vocab_size = emb.shape[0];
    m.n_layers = max_layer_ + 1;
    m.shared_classifier = !tensors_.count("lm_head.weight");
    rope_ = Rope::rotate_half;
    norm_eps_ = 1e-6;  // Hugging Face LlamaConfig's default
    if (auto config = read_config()) {
      rope_theta_ = config->value("rope_theta", 10000.0);
      norm_eps_ = config->value("rms_norm_eps", 1e-6);
      m.n_heads = config->value("num_attention_heads", int64_t{0});
      m.n_kv_heads = config->value("num_key_value_heads", m.n_heads);
      m.seq_len = config->value("max_position_embeddings", int64_t{0});
    } else {
      const int64_t head_dim =
          (kv_dim > 0 && m.dim % 128 == 0 && kv_dim % 128 == 0) ? 128 : std::gcd(m.dim, kv_dim);
      m.n_heads = head_dim > 0 ? m.dim / head_dim : 0;
      m.n_kv_heads = head_dim > 0 ? kv_dim / head_dim : 0;
    }
    try {
      m.validate();
    } catch (const UsageError& e) {
      throw UsageError(fmt::format("{}: {}", path_.string(), e.what()));
    }
    if (m.kv_dim() != kv_dim)
      throw UsageError(fmt::format("{}: k_proj has {} rows but the head counts give kv_dim {}",
                                   path_.string(), kv_dim, m.kv_dim()));
    // Every layer must hold all seven projections with the right shapes.
    for (int64_t l = 0; l < m.n_layers; ++l)
      for (Proj p : all_projections()) {
        const ProjDims d = proj_dims(m, p);
        expect_shape(hf_name(l, p), {d.out, d.in});
      }
    expect_shape("model.embed_tokens.weight", {m.vocab_size, m.dim});
    if (!m.shared_classifier) expect_shape("lm_head.weight", {m.vocab_size, m.dim});
  }

  std::vector<safetensors::Header> headers_;  // filled before index_tensors() takes pointers into it
  std::map<std::string, HfTensor> tensors_;
  int64_t max_layer_ = -1;
};

bool looks_like_safetensors(const std::filesystem::path& path) {
  if (std::filesystem::is_directory(path) || path.extension() == ".safetensors") return true;
  std::ifstream in(path, std::ios::binary);
  char buf[9] = {};
  if (!in.read(buf, 9)) return false;
  uint64_t n;
  std::memcpy(&n, buf, 8);
  return buf[8] == '{' && n < (100ull << 20);
}

}  // namespace

std::unique_ptr<Checkpoint> open_checkpoint(const std::filesystem::path& path) {
  if (!std::filesystem::exists(path))
    throw UsageError(fmt::format("{}: checkpoint not found", path.string()));
  if (looks_like_safetensors(path)) return std::make_unique<HfCheckpoint>(path);
  return std::make_unique<Llama2cCheckpoint>(path);
}

}  // namespace gsqhw
