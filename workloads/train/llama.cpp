// LLaMA forward/backward with LoRA through a GemmEngine (workloads/train/llama.h).
#include "workloads/train/llama.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <sstream>

#include "base/errors.h"
#include "numerics/format.h"

namespace gsqhw::train {

namespace {

constexpr int kNumProj = 7;


uint64_t mix(uint64_t h, uint64_t v) {
  h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
  h ^= h >> 31;
  h *= 0xbf58476d1ce4e5b9ull;
  return h ^ (h >> 27);
}

void add_into(float* dst, const float* src, int64_t n, float s = 1) {
  for (int64_t i = 0; i < n; ++i) dst[i] += s * src[i];
}

// llama2.c's rmsnorm: ss = 1/sqrt(mean(x^2) + eps), out = w * (ss * x).
void rmsnorm_forward(const float* x, const float* w, int64_t n, int64_t dim, float eps, float* out,
                     float* rs) {
  for (int64_t t = 0; t < n; ++t) {
    const float* xr = x + t * dim;
    float ss = 0;
    for (int64_t j = 0; j < dim; ++j) ss += xr[j] * xr[j];
    ss /= static_cast<float>(dim);
    ss += eps;
    ss = 1.0f / std::sqrt(ss);
    rs[t] = ss;
    for (int64_t j = 0; j < dim; ++j) out[t * dim + j] = w[j] * (ss * xr[j]);
  }
}

// dx += d/dx, dw += d/dw (dw may be null).
void rmsnorm_backward(const float* x, const float* w, const float* rs, const float* dy, int64_t n,
                      int64_t dim, float* dx, float* dw) {
  for (int64_t t = 0; t < n; ++t) {
    const float* xr = x + t * dim;
    const float* dyr = dy + t * dim;
    const double r = rs[t];
    double dot = 0;
    for (int64_t j = 0; j < dim; ++j) dot += static_cast<double>(dyr[j]) * w[j] * xr[j];
    const double c = r * r * r * dot / static_cast<double>(dim);
    for (int64_t j = 0; j < dim; ++j) {
      dx[t * dim + j] += static_cast<float>(r * w[j] * dyr[j] - c * xr[j]);
      if (dw) dw[j] += static_cast<float>(dyr[j] * xr[j] * r);
    }
  }
}

// Rotary tables: cos/sin per position and pair index j (0..head_dim/2), computed in float as
// llama2.c does (freq = 1 / theta^(2j / head_dim), angle = pos * freq).
struct RopeTable {
  int64_t half = 0;
  std::vector<float> cos, sin;
  RopeTable(int64_t seq, int64_t head_dim, double theta) : half(head_dim / 2) {
    cos.resize(static_cast<size_t>(seq * half));
    sin.resize(cos.size());
    for (int64_t pos = 0; pos < seq; ++pos)
      for (int64_t j = 0; j < half; ++j) {
        const float freq = 1.0f / std::pow(static_cast<float>(theta),
                                           static_cast<float>(2 * j) / static_cast<float>(head_dim));
        const float val = static_cast<float>(pos) * freq;
        cos[pos * half + j] = std::cos(val);
        sin[pos * half + j] = std::sin(val);
      }
  }
};

// Rotates the heads of one token's q or k vector; `inverse` applies the transpose (backward).
void rope_apply(float* vec, int64_t heads, int64_t head_dim, int64_t pos, const RopeTable& rt,
                Checkpoint::Rope style, bool inverse) {
  const int64_t half = head_dim / 2;
  for (int64_t h = 0; h < heads; ++h) {
    float* v = vec + h * head_dim;
    for (int64_t j = 0; j < half; ++j) {
      const float c = rt.cos[pos * half + j];
      const float s = inverse ? -rt.sin[pos * half + j] : rt.sin[pos * half + j];
      float& a = style == Checkpoint::Rope::interleaved ? v[2 * j] : v[j];
      float& b = style == Checkpoint::Rope::interleaved ? v[2 * j + 1] : v[j + half];
      const float a0 = a, b0 = b;
      a = a0 * c - b0 * s;
      b = a0 * s + b0 * c;
    }
  }
}

float silu(float x) { return x / (1.0f + std::exp(-x)); }

}  // namespace

// ---------------------------------------------------------------------------------------------
// Weights

LlamaWeights LlamaWeights::load(const Checkpoint& ck, const std::string& storage) {
  LlamaWeights w;
  w.config.shape = ck.shape();
  w.config.rope = ck.rope();
  w.config.rope_theta = ck.rope_theta();
  w.config.norm_eps = ck.norm_eps();
  const ModelShape& m = w.config.shape;
  if (m.head_dim() % 2 != 0)
    throw UsageError(fmt::format("{}: head_dim {} is odd; rotary embeddings need pairs", ck.path().string(),
                                 m.head_dim()));
  std::unique_ptr<Format> store;
  if (storage != "fp32") {
    store = parse_format(storage);
    if (store->family() != "nf4" && store->family() != "bf16" && store->family() != "fp16" &&
        store->family() != "int8")
      throw UsageError(fmt::format("--storage {}: the frozen base weights can be stored as fp32, "
                                   "nf4:block=B, bf16, fp16 or int8", storage));
  }
  w.embedding = ck.read_tensor(Checkpoint::Tensor::embedding);
  w.final_norm = ck.read_tensor(Checkpoint::Tensor::final_norm);
  if (!m.shared_classifier) w.classifier = ck.read_tensor(Checkpoint::Tensor::classifier);
  w.layers.resize(static_cast<size_t>(m.n_layers));
  for (int64_t l = 0; l < m.n_layers; ++l) {
    LayerWeights& lw = w.layers[static_cast<size_t>(l)];
    lw.attn_norm = ck.read_tensor(Checkpoint::Tensor::attn_norm, l);
    lw.ffn_norm = ck.read_tensor(Checkpoint::Tensor::ffn_norm, l);
    for (int p = 0; p < kNumProj; ++p) {
      const Proj proj = all_projections()[static_cast<size_t>(p)];
      lw.proj[static_cast<size_t>(p)] = ck.read_projection(l, proj);
      if (store) {
        const ProjDims d = proj_dims(m, proj);
        auto& wp = lw.proj[static_cast<size_t>(p)];
        const QuantizedTensor q = store->quantize(wp.data(), d.out, d.in);
        store->dequantize(q, wp.data());
      }
    }
  }
  return w;
}

LlamaWeights LlamaWeights::random(const LlamaConfig& config, uint64_t seed, float scale) {
  LlamaWeights w;
  w.config = config;
  const ModelShape& m = config.shape;
  m.validate();
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  auto fill = [&](std::vector<float>& v, int64_t n, float mean, float sd) {
    v.resize(static_cast<size_t>(n));
    for (float& x : v) x = mean + sd * nd(rng);
  };
  fill(w.embedding, m.vocab_size * m.dim, 0, 1);
  w.layers.resize(static_cast<size_t>(m.n_layers));
  for (auto& lw : w.layers) {
    fill(lw.attn_norm, m.dim, 1, 0.1f);
    fill(lw.ffn_norm, m.dim, 1, 0.1f);
    for (int p = 0; p < kNumProj; ++p) {
      const ProjDims d = proj_dims(m, all_projections()[static_cast<size_t>(p)]);
      fill(lw.proj[static_cast<size_t>(p)], d.in * d.out, 0, scale);
    }
  }
  fill(w.final_norm, m.dim, 1, 0.1f);
  if (!m.shared_classifier) fill(w.classifier, m.vocab_size * m.dim, 0, scale);
  return w;
}

// ---------------------------------------------------------------------------------------------
// LoRA

bool LoraConfig::targets_proj(int p) const {
  const Proj proj = all_projections()[static_cast<size_t>(p)];
  return std::find(targets.begin(), targets.end(), proj) != targets.end();
}

std::vector<Proj> LoraConfig::parse_targets(const std::string& csv) {
  if (csv == "all") return all_projections();
  std::vector<Proj> out;
  std::stringstream ss(csv);
  std::string item;
  while (std::getline(ss, item, ',')) {
    const Proj p = parse_proj(item);
    if (std::find(out.begin(), out.end(), p) == out.end()) out.push_back(p);
  }
  if (out.empty()) throw UsageError("--targets: give a comma-separated subset of q,k,v,o,gate,up,down (or all)");
  return out;
}

LoraWeights LoraWeights::init(const LlamaConfig& model, const LoraConfig& config, uint64_t seed) {
  const ModelShape& m = model.shape;
  if (config.rank < 1)
    throw UsageError(fmt::format("--rank {} must be at least 1", config.rank));
  for (Proj p : config.targets) {
    const ProjDims d = proj_dims(m, p);
    if (config.rank > std::min(d.in, d.out))
      throw UsageError(fmt::format("--rank {} exceeds the {} projection's {} x {} weight",
                                   config.rank, proj_name(p), d.out, d.in));
  }
  if (!(config.alpha > 0) || !std::isfinite(config.alpha))
    throw UsageError(fmt::format("--alpha {} must be positive", config.alpha));
  LoraWeights w;
  w.config = config;
  w.adapters.resize(static_cast<size_t>(m.n_layers));
  std::mt19937_64 rng(seed);
  for (int64_t l = 0; l < m.n_layers; ++l)
    for (int p = 0; p < kNumProj; ++p) {
      if (!config.targets_proj(p)) continue;
      const ProjDims d = proj_dims(m, all_projections()[static_cast<size_t>(p)]);
      LoraAdapter& ad = w.adapters[static_cast<size_t>(l)][static_cast<size_t>(p)];
      ad.a.resize(static_cast<size_t>(config.rank * d.in));
      ad.b.assign(static_cast<size_t>(d.out * config.rank), 0.0f);
      const double bound = 1.0 / std::sqrt(static_cast<double>(d.in));
      for (float& x : ad.a) x = static_cast<float>(bound * (2.0 * std::ldexp(static_cast<double>(rng() >> 11), -53) - 1.0));
    }
  return w;
}

std::vector<std::vector<float>*> LoraWeights::tensors() {
  std::vector<std::vector<float>*> out;
  for (auto& layer : adapters)
    for (auto& ad : layer)
      if (!ad.a.empty()) {
        out.push_back(&ad.a);
        out.push_back(&ad.b);
      }
  return out;
}

std::vector<std::string> LoraWeights::peft_names() const {
  std::vector<std::string> out;
  for (size_t l = 0; l < adapters.size(); ++l)
    for (int p = 0; p < kNumProj; ++p) {
      if (adapters[l][static_cast<size_t>(p)].a.empty()) continue;
      const Proj proj = all_projections()[static_cast<size_t>(p)];
      const bool attn = proj == Proj::q || proj == Proj::k || proj == Proj::v || proj == Proj::o;
      const std::string base = fmt::format("base_model.model.model.layers.{}.{}.{}_proj", l,
                                           attn ? "self_attn" : "mlp", proj_name(proj));
      out.push_back(base + ".lora_A.weight");
      out.push_back(base + ".lora_B.weight");
    }
  return out;
}

std::vector<std::vector<int64_t>> LoraWeights::shapes() const {
  std::vector<std::vector<int64_t>> out;
  for (size_t l = 0; l < adapters.size(); ++l)
    for (int p = 0; p < kNumProj; ++p) {
      const LoraAdapter& ad = adapters[l][static_cast<size_t>(p)];
      if (ad.a.empty()) continue;
      const int64_t r = config.rank;
      const int64_t in = static_cast<int64_t>(ad.a.size()) / r, out_dim = static_cast<int64_t>(ad.b.size()) / r;
      out.push_back({r, in});
      out.push_back({out_dim, r});
    }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Forward / backward


namespace {

struct LinearCtx {
  const LlamaWeights& w;
  const LoraWeights* lora;
  GemmEngine& engine;
  uint64_t seed;
  Capture* capture = nullptr;
  const std::vector<Proj>* trained = nullptr;
  bool captures(int64_t l, int p) const { return capture && capture->layer == l && capture->proj == p; }
  // The base weight of projection p changes between steps (not frozen; backward computes dW).
  bool trains(int p) const {
    return trained && std::find(trained->begin(), trained->end(), all_projections()[static_cast<size_t>(p)]) !=
                          trained->end();
  }
};

uint64_t site_seed(uint64_t seed, const GemmSite& s) {
  const uint64_t h = mix(mix(mix(seed, static_cast<uint64_t>(s.layer)), static_cast<uint64_t>(s.proj)),
                         static_cast<uint64_t>(s.gemm));
  return s.gemm >= kGemmAttScores ? mix(h, static_cast<uint64_t>(s.index)) : h;
}

const LoraAdapter* adapter_at(const LoraWeights* lora, int64_t l, int p) {
  if (!lora) return nullptr;
  const LoraAdapter& ad = lora->adapters[static_cast<size_t>(l)][static_cast<size_t>(p)];
  return ad.a.empty() ? nullptr : &ad;
}

// y (n x out) = x W^T + s (x A^T) B^T; h receives x A^T when adapted.
void linear_forward(LinearCtx& c, int64_t l, int p, const float* x, int64_t n, float* y,
                    std::vector<float>& h) {
  const ModelShape& m = c.w.config.shape;
  const ProjDims d = proj_dims(m, all_projections()[static_cast<size_t>(p)]);
  const float* W = c.w.layers[static_cast<size_t>(l)].proj[static_cast<size_t>(p)].data();
  if (c.captures(l, p)) c.capture->x.assign(x, x + n * d.in);
  GemmSite site{l, p, 0, "act", "weight", !c.trains(p)};
  c.engine.product(site, {x, n, d.in, false}, {W, d.out, d.in, false}, y, site_seed(c.seed, site));
  const LoraAdapter* ad = adapter_at(c.lora, l, p);
  if (!ad) return;
  const int64_t r = c.lora->config.rank;
  h.resize(static_cast<size_t>(n * r));
  site = {l, p, 1, "act", "weight", false};
  c.engine.product(site, {x, n, d.in, false}, {ad->a.data(), r, d.in, false}, h.data(), site_seed(c.seed, site));
  std::vector<float> tmp(static_cast<size_t>(n * d.out));
  site = {l, p, 2, "act", "weight", false};
  c.engine.product(site, {h.data(), n, r, false}, {ad->b.data(), d.out, r, false}, tmp.data(),
                   site_seed(c.seed, site));
  add_into(y, tmp.data(), n * d.out, static_cast<float>(c.lora->config.scale()));
}

// dx (n x in) += dY W + s (dY B) A; LoRA grads dA += s G^T X, dB += s dY^T H; base dW += dY^T X.
void linear_backward(LinearCtx& c, int64_t l, int p, const float* x, const float* dy, int64_t n,
                     const std::vector<float>& h, float* dx, Gradients* grads) {
  const ModelShape& m = c.w.config.shape;
  const ProjDims d = proj_dims(m, all_projections()[static_cast<size_t>(p)]);
  const float* W = c.w.layers[static_cast<size_t>(l)].proj[static_cast<size_t>(p)].data();
  if (c.captures(l, p)) c.capture->dy.assign(dy, dy + n * d.out);
  std::vector<float> tmp(static_cast<size_t>(n * d.in));
  GemmSite site{l, p, 3, "grad", "weight", !c.trains(p)};
  c.engine.product(site, {dy, n, d.out, false}, {W, d.in, d.out, true}, tmp.data(), site_seed(c.seed, site));
  add_into(dx, tmp.data(), n * d.in);
  if (grads && c.trains(p)) {
    // dW = dY^T X (out x in), the gradient a trained base weight (LoTA-QAF) needs.
    if (grads->weight.size() <= static_cast<size_t>(l)) grads->weight.resize(static_cast<size_t>(l) + 1);
    std::vector<float>& gw = grads->weight[static_cast<size_t>(l)][static_cast<size_t>(p)];
    gw.resize(static_cast<size_t>(d.out * d.in));
    site = {l, p, kGemmDw, "grad", "act", false};
    c.engine.product(site, {dy, d.out, n, true}, {x, d.in, n, true}, gw.data(), site_seed(c.seed, site));
  }
  if (grads && grads->want_base)
    sgemm_nt({dy, d.out, n, true}, {x, d.in, n, true},
             grads->base.layers[static_cast<size_t>(l)].proj[static_cast<size_t>(p)].data(), 1);
  const LoraAdapter* ad = adapter_at(c.lora, l, p);
  if (!ad) return;
  const int64_t r = c.lora->config.rank;
  const float s = static_cast<float>(c.lora->config.scale());
  std::vector<float> g(static_cast<size_t>(n * r));
  site = {l, p, 4, "grad", "weight", false};
  c.engine.product(site, {dy, n, d.out, false}, {ad->b.data(), r, d.out, true}, g.data(), site_seed(c.seed, site));
  site = {l, p, 5, "grad", "weight", false};
  c.engine.product(site, {g.data(), n, r, false}, {ad->a.data(), d.in, r, true}, tmp.data(), site_seed(c.seed, site));
  add_into(dx, tmp.data(), n * d.in, s);
  if (!grads) return;
  LoraAdapter& ga = grads->lora.adapters[static_cast<size_t>(l)][static_cast<size_t>(p)];
  std::vector<float> t2(static_cast<size_t>(std::max(r * d.in, d.out * r)));
  site = {l, p, 6, "grad", "act", false};
  c.engine.product(site, {g.data(), r, n, true}, {x, d.in, n, true}, t2.data(), site_seed(c.seed, site));
  add_into(ga.a.data(), t2.data(), r * d.in, s);
  site = {l, p, 7, "grad", "act", false};
  c.engine.product(site, {dy, d.out, n, true}, {h.data(), r, n, true}, t2.data(), site_seed(c.seed, site));
  add_into(ga.b.data(), t2.data(), d.out * r, s);
}

// Head `col0 / hd` of batch row b as a contiguous seq x hd block, from a (batch*seq) x width array.
void gather_head(const float* src, int64_t width, int64_t b, int64_t seq, int64_t col0, int64_t hd, float* dst) {
  for (int64_t t = 0; t < seq; ++t) std::memcpy(dst + t * hd, src + (b * seq + t) * width + col0, sizeof(float) * hd);
}
void scatter_add_head(float* dst, int64_t width, int64_t b, int64_t seq, int64_t col0, int64_t hd, const float* src) {
  for (int64_t t = 0; t < seq; ++t) add_into(dst + (b * seq + t) * width + col0, src + t * hd, hd);
}

// Attention of one batch row and head with both products through the engine (--quantize-attention):
// S = Q K^T (K = head_dim), causal softmax of S * scale into p (seq x seq, zeros above the
// diagonal), out = P V (K = seq).
void attention_head_forward(LinearCtx& c, int64_t l, int64_t index, const float* q, const float* k, const float* v,
                            int64_t seq, int64_t hd, float scale, float* p, float* out) {
  std::vector<float> scores(static_cast<size_t>(seq * seq));
  GemmSite site{l, 0, kGemmAttScores, "act", "act", false, index};
  c.engine.product(site, {q, seq, hd, false}, {k, seq, hd, false}, scores.data(), site_seed(c.seed, site));
  for (int64_t t = 0; t < seq; ++t) {
    float* row = p + t * seq;
    float mx = -INFINITY;
    for (int64_t s = 0; s <= t; ++s) mx = std::max(mx, row[s] = scores[t * seq + s] * scale);
    float sum = 0;
    for (int64_t s = 0; s <= t; ++s) sum += row[s] = std::exp(row[s] - mx);
    for (int64_t s = 0; s <= t; ++s) row[s] /= sum;
    for (int64_t s = t + 1; s < seq; ++s) row[s] = 0;
  }
  site = {l, 0, kGemmAttValues, "act", "act", false, index};
  c.engine.product(site, {p, seq, seq, false}, {v, hd, seq, true}, out, site_seed(c.seed, site));
}

// Its backward: dP = dO V^T, dV = P^T dO, dS = P (dP - rowsum(P dP)) scale, dQ = dS K, dK = dS^T Q.
void attention_head_backward(LinearCtx& c, int64_t l, int64_t index, const float* q, const float* k, const float* v,
                             const float* p, const float* dout, int64_t seq, int64_t hd, float scale, float* dq,
                             float* dk, float* dv) {
  std::vector<float> dp(static_cast<size_t>(seq * seq));
  GemmSite site{l, 0, kGemmAttDp, "grad", "act", false, index};
  c.engine.product(site, {dout, seq, hd, false}, {v, seq, hd, false}, dp.data(), site_seed(c.seed, site));
  site = {l, 0, kGemmAttDv, "act", "grad", false, index};
  c.engine.product(site, {p, seq, seq, true}, {dout, hd, seq, true}, dv, site_seed(c.seed, site));
  for (int64_t t = 0; t < seq; ++t) {
    double pdp = 0;
    for (int64_t s = 0; s <= t; ++s) pdp += static_cast<double>(p[t * seq + s]) * dp[t * seq + s];
    for (int64_t s = 0; s < seq; ++s)
      dp[t * seq + s] = s <= t ? p[t * seq + s] * (dp[t * seq + s] - static_cast<float>(pdp)) * scale : 0.0f;
  }
  site = {l, 0, kGemmAttDq, "grad", "act", false, index};
  c.engine.product(site, {dp.data(), seq, seq, false}, {k, hd, seq, true}, dq, site_seed(c.seed, site));
  site = {l, 0, kGemmAttDk, "grad", "act", false, index};
  c.engine.product(site, {dp.data(), seq, seq, true}, {q, hd, seq, true}, dk, site_seed(c.seed, site));
}

}  // namespace

void LlamaModel::forward(const std::vector<int>& tokens, int64_t batch, int64_t seq, GemmEngine& engine,
                         uint64_t seed, bool) {
  const ModelShape& m = w_.config.shape;
  const int64_t n = batch * seq, dim = m.dim, kv_dim = m.kv_dim(), hd = m.head_dim(), hid = m.hidden_dim;
  const int64_t heads = m.n_heads, kv_heads = m.n_kv_heads, group = heads / kv_heads;
  const float eps = static_cast<float>(w_.config.norm_eps);
  for (int t : tokens)
    if (t < 0 || t >= m.vocab_size)
      throw UsageError(fmt::format("token id {} is outside the vocabulary 0..{}", t, m.vocab_size - 1));
  batch_ = batch;
  seq_ = seq;
  const RopeTable rt(seq, hd, w_.config.rope_theta);
  LinearCtx c{w_, lora_, engine, seed, capture_, &trained_};
  std::vector<float> x(static_cast<size_t>(n * dim));
  for (int64_t i = 0; i < n; ++i)
    std::memcpy(&x[i * dim], &w_.embedding[static_cast<size_t>(tokens[i]) * dim], sizeof(float) * dim);
  cache_.resize(static_cast<size_t>(m.n_layers));
  std::vector<float> tmp(static_cast<size_t>(n * std::max(dim, hid)));
  const float att_scale = 1.0f / std::sqrt(static_cast<float>(hd));
  for (int64_t l = 0; l < m.n_layers; ++l) {
    LayerCache& lc = cache_[static_cast<size_t>(l)];
    const LayerWeights& lw = w_.layers[static_cast<size_t>(l)];
    lc.x_in = x;
    lc.rs1.resize(n);
    lc.xn1.resize(n * dim);
    rmsnorm_forward(x.data(), lw.attn_norm.data(), n, dim, eps, lc.xn1.data(), lc.rs1.data());
    lc.q.resize(n * dim);
    lc.k.resize(n * kv_dim);
    lc.v.resize(n * kv_dim);
    linear_forward(c, l, 0, lc.xn1.data(), n, lc.q.data(), lc.lora_h[0]);
    linear_forward(c, l, 1, lc.xn1.data(), n, lc.k.data(), lc.lora_h[1]);
    linear_forward(c, l, 2, lc.xn1.data(), n, lc.v.data(), lc.lora_h[2]);
    for (int64_t i = 0; i < n; ++i) {
      rope_apply(&lc.q[i * dim], heads, hd, i % seq, rt, w_.config.rope, false);
      rope_apply(&lc.k[i * kv_dim], kv_heads, hd, i % seq, rt, w_.config.rope, false);
    }
    lc.probs.assign(static_cast<size_t>(batch * heads * seq * seq), 0.0f);
    lc.att.assign(static_cast<size_t>(n * dim), 0.0f);
    if (attention_through(engine)) {
      std::vector<float> qh(static_cast<size_t>(seq * hd)), kh(qh.size()), vh(qh.size()), oh(qh.size());
      for (int64_t b = 0; b < batch; ++b)
        for (int64_t h = 0; h < heads; ++h) {
          const int64_t kvh = h / group;
          gather_head(lc.q.data(), dim, b, seq, h * hd, hd, qh.data());
          gather_head(lc.k.data(), kv_dim, b, seq, kvh * hd, hd, kh.data());
          gather_head(lc.v.data(), kv_dim, b, seq, kvh * hd, hd, vh.data());
          attention_head_forward(c, l, b * heads + h, qh.data(), kh.data(), vh.data(), seq, hd, att_scale,
                                 &lc.probs[static_cast<size_t>((b * heads + h) * seq * seq)], oh.data());
          scatter_add_head(lc.att.data(), dim, b, seq, h * hd, hd, oh.data());
        }
    }
    for (int64_t b = 0; b < batch && !attention_through(engine); ++b)
      for (int64_t h = 0; h < heads; ++h) {
        const int64_t kvh = h / group;
        for (int64_t t = 0; t < seq; ++t) {
          const float* qt = &lc.q[(b * seq + t) * dim + h * hd];
          float* p = &lc.probs[((b * heads + h) * seq + t) * seq];
          float mx = -INFINITY;
          for (int64_t s = 0; s <= t; ++s) {
            const float* ks = &lc.k[(b * seq + s) * kv_dim + kvh * hd];
            float dot = 0;
            for (int64_t i = 0; i < hd; ++i) dot += qt[i] * ks[i];
            p[s] = dot * att_scale;
            mx = std::max(mx, p[s]);
          }
          float sum = 0;
          for (int64_t s = 0; s <= t; ++s) {
            p[s] = std::exp(p[s] - mx);
            sum += p[s];
          }
          float* out = &lc.att[(b * seq + t) * dim + h * hd];
          for (int64_t s = 0; s <= t; ++s) {
            p[s] /= sum;
            const float* vs = &lc.v[(b * seq + s) * kv_dim + kvh * hd];
            for (int64_t i = 0; i < hd; ++i) out[i] += p[s] * vs[i];
          }
        }
      }
    linear_forward(c, l, 3, lc.att.data(), n, tmp.data(), lc.lora_h[3]);
    add_into(x.data(), tmp.data(), n * dim);
    lc.x_mid = x;
    lc.rs2.resize(n);
    lc.xn2.resize(n * dim);
    rmsnorm_forward(x.data(), lw.ffn_norm.data(), n, dim, eps, lc.xn2.data(), lc.rs2.data());
    lc.g.resize(n * hid);
    lc.u.resize(n * hid);
    lc.hact.resize(n * hid);
    linear_forward(c, l, 4, lc.xn2.data(), n, lc.g.data(), lc.lora_h[4]);
    linear_forward(c, l, 5, lc.xn2.data(), n, lc.u.data(), lc.lora_h[5]);
    for (int64_t i = 0; i < n * hid; ++i) lc.hact[i] = silu(lc.g[i]) * lc.u[i];
    linear_forward(c, l, 6, lc.hact.data(), n, tmp.data(), lc.lora_h[6]);
    add_into(x.data(), tmp.data(), n * dim);
  }
  x_final_ = std::move(x);
  rs_final_.resize(n);
  xn_final_.resize(n * dim);
  rmsnorm_forward(x_final_.data(), w_.final_norm.data(), n, dim, eps, xn_final_.data(), rs_final_.data());
}

std::vector<float> LlamaModel::logits(const std::vector<int>& tokens, GemmEngine& engine, uint64_t seed) {
  const ModelShape& m = w_.config.shape;
  const int64_t seq = static_cast<int64_t>(tokens.size());
  forward(tokens, 1, seq, engine, seed, false);
  std::vector<float> out(static_cast<size_t>(seq * m.vocab_size));
  sgemm_nt({xn_final_.data(), seq, m.dim, false},
           {w_.classifier_or_embedding().data(), m.vocab_size, m.dim, false}, out.data());
  return out;
}

StepResult LlamaModel::step(const std::vector<int>& tokens, const std::vector<int>& targets, int64_t batch,
                            int64_t seq, GemmEngine& engine, Gradients* grads, float loss_scale, uint64_t seed) {
  const ModelShape& m = w_.config.shape;
  const int64_t n = batch * seq, dim = m.dim, vocab = m.vocab_size;
  if (static_cast<int64_t>(tokens.size()) != n || static_cast<int64_t>(targets.size()) != n)
    throw std::logic_error("LlamaModel::step: tokens/targets size is not batch * seq");
  forward(tokens, batch, seq, engine, seed, grads != nullptr);
  const std::vector<float>& cls = w_.classifier_or_embedding();
  std::vector<float> logit(static_cast<size_t>(n * vocab));
  sgemm_nt({xn_final_.data(), n, dim, false}, {cls.data(), vocab, dim, false}, logit.data());
  // Cross-entropy; logit becomes dL/dlogit (times loss_scale).
  double loss = 0;
  for (int64_t i = 0; i < n; ++i) {
    float* row = &logit[i * vocab];
    const int tgt = targets[i];
    if (tgt < 0 || tgt >= vocab)
      throw UsageError(fmt::format("target token id {} is outside the vocabulary 0..{}", tgt, vocab - 1));
    float mx = row[0];
    for (int64_t j = 1; j < vocab; ++j) mx = std::max(mx, row[j]);
    double sum = 0;
    for (int64_t j = 0; j < vocab; ++j) sum += std::exp(static_cast<double>(row[j] - mx));
    loss += std::log(sum) + mx - row[tgt];
    if (grads) {
      const double k = static_cast<double>(loss_scale) / static_cast<double>(n);
      for (int64_t j = 0; j < vocab; ++j)
        row[j] = static_cast<float>(k * std::exp(static_cast<double>(row[j] - mx)) / sum);
      row[tgt] -= static_cast<float>(k);
    }
  }
  StepResult result{loss / static_cast<double>(n), n};
  if (!grads) return result;

  // ---- backward ----
  const int64_t kv_dim = m.kv_dim(), hd = m.head_dim(), hid = m.hidden_dim;
  const int64_t heads = m.n_heads, group = heads / m.n_kv_heads;
  const RopeTable rt(seq, hd, w_.config.rope_theta);
  const float att_scale = 1.0f / std::sqrt(static_cast<float>(hd));
  LinearCtx c{w_, lora_, engine, seed, capture_, &trained_};
  if (grads->lora.adapters.empty() && lora_) {
    grads->lora = *lora_;
    for (auto* t : grads->lora.tensors()) std::fill(t->begin(), t->end(), 0.0f);
  }
  if (grads->want_base && grads->base.layers.empty()) {
    grads->base = w_;
    auto zero = [](std::vector<float>& v) { std::fill(v.begin(), v.end(), 0.0f); };
    zero(grads->base.embedding);
    zero(grads->base.final_norm);
    zero(grads->base.classifier);
    for (auto& lw : grads->base.layers) {
      zero(lw.attn_norm);
      zero(lw.ffn_norm);
      for (auto& pw : lw.proj) zero(pw);
    }
  }
  // Classifier: dxn = dlogit C; dC += dlogit^T xn.
  std::vector<float> dxn(static_cast<size_t>(n * dim));
  sgemm_nt({logit.data(), n, vocab, false}, {cls.data(), dim, vocab, true}, dxn.data());
  if (grads->want_base) {
    std::vector<float>& dc = m.shared_classifier ? grads->base.embedding : grads->base.classifier;
    sgemm_nt({logit.data(), vocab, n, true}, {xn_final_.data(), dim, n, true}, dc.data(), 1);
  }
  std::vector<float> dx(static_cast<size_t>(n * dim), 0.0f);
  rmsnorm_backward(x_final_.data(), w_.final_norm.data(), rs_final_.data(), dxn.data(), n, dim, dx.data(),
                   grads->want_base ? grads->base.final_norm.data() : nullptr);
  std::vector<float> d_h(static_cast<size_t>(n * hid)), dg(static_cast<size_t>(n * hid)),
      du(static_cast<size_t>(n * hid)), d_xn(static_cast<size_t>(n * dim)), datt(static_cast<size_t>(n * dim)),
      dq(static_cast<size_t>(n * dim)), dk(static_cast<size_t>(n * kv_dim)), dv(static_cast<size_t>(n * kv_dim));
  std::vector<float> dp(static_cast<size_t>(seq));
  for (int64_t l = m.n_layers - 1; l >= 0; --l) {
    LayerCache& lc = cache_[static_cast<size_t>(l)];
    const LayerWeights& lw = w_.layers[static_cast<size_t>(l)];
    LayerWeights* gw = grads->want_base ? &grads->base.layers[static_cast<size_t>(l)] : nullptr;
    // MLP: x = x_mid + down(hact)
    std::fill(d_h.begin(), d_h.end(), 0.0f);
    linear_backward(c, l, 6, lc.hact.data(), dx.data(), n, lc.lora_h[6], d_h.data(), grads);
    for (int64_t i = 0; i < n * hid; ++i) {
      const float sg = 1.0f / (1.0f + std::exp(-lc.g[i]));
      du[i] = d_h[i] * lc.g[i] * sg;
      dg[i] = d_h[i] * lc.u[i] * sg * (1.0f + lc.g[i] * (1.0f - sg));
    }
    std::fill(d_xn.begin(), d_xn.end(), 0.0f);
    linear_backward(c, l, 4, lc.xn2.data(), dg.data(), n, lc.lora_h[4], d_xn.data(), grads);
    linear_backward(c, l, 5, lc.xn2.data(), du.data(), n, lc.lora_h[5], d_xn.data(), grads);
    rmsnorm_backward(lc.x_mid.data(), lw.ffn_norm.data(), lc.rs2.data(), d_xn.data(), n, dim, dx.data(),
                     gw ? gw->ffn_norm.data() : nullptr);
    // Attention: x_mid = x_in + o(att)
    std::fill(datt.begin(), datt.end(), 0.0f);
    linear_backward(c, l, 3, lc.att.data(), dx.data(), n, lc.lora_h[3], datt.data(), grads);
    std::fill(dq.begin(), dq.end(), 0.0f);
    std::fill(dk.begin(), dk.end(), 0.0f);
    std::fill(dv.begin(), dv.end(), 0.0f);
    if (attention_through(engine)) {
      const size_t block = static_cast<size_t>(seq * hd);
      std::vector<float> qh(block), kh(block), vh(block), doh(block), dqh(block), dkh(block), dvh(block);
      for (int64_t b = 0; b < batch; ++b)
        for (int64_t h = 0; h < heads; ++h) {
          const int64_t kvh = h / group;
          gather_head(lc.q.data(), dim, b, seq, h * hd, hd, qh.data());
          gather_head(lc.k.data(), kv_dim, b, seq, kvh * hd, hd, kh.data());
          gather_head(lc.v.data(), kv_dim, b, seq, kvh * hd, hd, vh.data());
          gather_head(datt.data(), dim, b, seq, h * hd, hd, doh.data());
          attention_head_backward(c, l, b * heads + h, qh.data(), kh.data(), vh.data(),
                                  &lc.probs[static_cast<size_t>((b * heads + h) * seq * seq)], doh.data(), seq, hd,
                                  att_scale, dqh.data(), dkh.data(), dvh.data());
          scatter_add_head(dq.data(), dim, b, seq, h * hd, hd, dqh.data());
          scatter_add_head(dk.data(), kv_dim, b, seq, kvh * hd, hd, dkh.data());
          scatter_add_head(dv.data(), kv_dim, b, seq, kvh * hd, hd, dvh.data());
        }
    }
    for (int64_t b = 0; b < batch && !attention_through(engine); ++b)
      for (int64_t h = 0; h < heads; ++h) {
        const int64_t kvh = h / group;
        for (int64_t t = 0; t < seq; ++t) {
          const float* p = &lc.probs[((b * heads + h) * seq + t) * seq];
          const float* dout = &datt[(b * seq + t) * dim + h * hd];
          const float* qt = &lc.q[(b * seq + t) * dim + h * hd];
          float* dqt = &dq[(b * seq + t) * dim + h * hd];
          double pdp = 0;
          for (int64_t s = 0; s <= t; ++s) {
            const float* vs = &lc.v[(b * seq + s) * kv_dim + kvh * hd];
            float* dvs = &dv[(b * seq + s) * kv_dim + kvh * hd];
            float d = 0;
            for (int64_t i = 0; i < hd; ++i) {
              d += dout[i] * vs[i];
              dvs[i] += p[s] * dout[i];
            }
            dp[s] = d;
            pdp += static_cast<double>(p[s]) * d;
          }
          for (int64_t s = 0; s <= t; ++s) {
            const float ds = p[s] * (dp[s] - static_cast<float>(pdp)) * att_scale;
            const float* ks = &lc.k[(b * seq + s) * kv_dim + kvh * hd];
            float* dks = &dk[(b * seq + s) * kv_dim + kvh * hd];
            for (int64_t i = 0; i < hd; ++i) {
              dqt[i] += ds * ks[i];
              dks[i] += ds * qt[i];
            }
          }
        }
      }
    for (int64_t i = 0; i < n; ++i) {
      rope_apply(&dq[i * dim], heads, hd, i % seq, rt, w_.config.rope, true);
      rope_apply(&dk[i * kv_dim], m.n_kv_heads, hd, i % seq, rt, w_.config.rope, true);
    }
    std::fill(d_xn.begin(), d_xn.end(), 0.0f);
    linear_backward(c, l, 0, lc.xn1.data(), dq.data(), n, lc.lora_h[0], d_xn.data(), grads);
    linear_backward(c, l, 1, lc.xn1.data(), dk.data(), n, lc.lora_h[1], d_xn.data(), grads);
    linear_backward(c, l, 2, lc.xn1.data(), dv.data(), n, lc.lora_h[2], d_xn.data(), grads);
    rmsnorm_backward(lc.x_in.data(), lw.attn_norm.data(), lc.rs1.data(), d_xn.data(), n, dim, dx.data(),
                     gw ? gw->attn_norm.data() : nullptr);
  }
  if (grads->want_base)
    for (int64_t i = 0; i < n; ++i)
      add_into(&grads->base.embedding[static_cast<size_t>(tokens[i]) * dim], &dx[i * dim], dim);
  return result;
}

}  // namespace gsqhw::train
