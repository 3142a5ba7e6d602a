// Seeded synthetic LLaMA-like tensors (workloads/synthetic.h).
#include "workloads/synthetic.h"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <thread>

namespace gsqhw::synthetic {
namespace {

uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

enum class Kind : uint64_t { weight = 1, lora_a, lora_b, act, act_gain, grad, grad_scale };

// Random numbers indexed by position: stream(i) does not depend on what was drawn before.
class Stream {
 public:
  Stream(uint64_t seed, Kind kind, int64_t layer, Proj proj)
      : key_(splitmix64(splitmix64(splitmix64(seed) ^ static_cast<uint64_t>(kind)) ^
                        static_cast<uint64_t>(layer)) ^
             (static_cast<uint64_t>(proj) << 56)) {}

  uint64_t bits(uint64_t i) const { return splitmix64(key_ ^ splitmix64(i)); }
  // Uniform in (0, 1), never 0 (so log() below is finite).
  double uniform(uint64_t i) const { return ((bits(i) >> 11) + 0.5) * 0x1p-53; }
  // Standard normal (Box-Muller, cosine branch) from the uniforms at 2i and 2i+1.
  double normal(uint64_t i) const {
    const double u1 = uniform(2 * i), u2 = uniform(2 * i + 1);
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2);
  }

 private:
  uint64_t key_;
};

// Fills out[i] = f(i) on up to two threads (values do not depend on the split).
template <typename F>
std::vector<float> generate(int64_t n, F f) {
  std::vector<float> out(static_cast<size_t>(n));
  auto run = [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) out[i] = static_cast<float>(f(i));
  };
  const int64_t threads = n >= (int64_t{1} << 20) ? std::max(1u, std::thread::hardware_concurrency()) : 1;
  std::vector<std::thread> pool;
  for (int64_t t = 1; t < threads; ++t) pool.emplace_back(run, n * t / threads, n * (t + 1) / threads);
  run(0, n / threads);
  for (auto& th : pool) th.join();
  return out;
}

double layer_scale(const ModelShape& model, int64_t layer) {
  const double depth = model.n_layers > 1 ? static_cast<double>(layer) / (model.n_layers - 1) : 0.0;
  return 0.75 + 0.5 * depth;
}

}  // namespace

uint64_t derive_seed(uint64_t parent, uint64_t label) {
  return splitmix64(splitmix64(parent) ^ splitmix64(~label));
}

std::vector<float> base_weight(const ModelShape& model, int64_t layer, Proj proj, uint64_t seed) {
  const ProjDims d = proj_dims(model, proj);
  const Stream s(seed, Kind::weight, layer, proj);
  const double std_dev = layer_scale(model, layer) / std::sqrt(static_cast<double>(d.in));
  return generate(d.out * d.in, [&](int64_t i) {
    const double heavy = (s.bits(~static_cast<uint64_t>(i)) & 255) == 0 ? 4.0 : 1.0;
    return s.normal(i) * std_dev * heavy;
  });
}

std::vector<float> lora_a(const ModelShape& model, int64_t layer, Proj proj, int64_t rank,
                          uint64_t seed) {
  const ProjDims d = proj_dims(model, proj);
  const Stream s(seed, Kind::lora_a, layer, proj);
  const double bound = 1.0 / std::sqrt(static_cast<double>(d.in));
  return generate(rank * d.in, [&](int64_t i) { return (2.0 * s.uniform(i) - 1.0) * bound; });
}

std::vector<float> lora_b(const ModelShape& model, int64_t layer, Proj proj, int64_t rank,
                          uint64_t seed) {
  const ProjDims d = proj_dims(model, proj);
  const Stream s(seed, Kind::lora_b, layer, proj);
  return generate(d.out * rank, [&](int64_t i) { return 0.01 * s.normal(i); });
}

std::vector<float> activations(const ModelShape& model, int64_t layer, Proj proj, int64_t tokens,
                               uint64_t seed) {
  const int64_t in = proj_dims(model, proj).in;
  // Per-channel gains: 1 (with a little spread) except a few outlier channels. The outlier set
  // depends on the layer only, not on the projection that reads the tensor (q, k, v read the same
  // normalised input), which is what LLaMA's persistent outlier features look like.
  const Stream gains(seed, Kind::act_gain, layer, Proj::q);
  std::vector<double> gain(static_cast<size_t>(in));
  for (int64_t c = 0; c < in; ++c) gain[c] = 0.8 + 0.4 * gains.uniform(c);
  const int64_t outliers = std::max<int64_t>(2, in / 256);
  for (int64_t j = 0; j < outliers; ++j) {
    const auto c = static_cast<int64_t>(gains.bits(uint64_t{1} << 40 | j) % static_cast<uint64_t>(in));
    gain[c] = 16.0 + 16.0 * gains.uniform(uint64_t{1} << 41 | j);
  }
  const Stream s(seed, Kind::act, layer, proj);
  const bool swiglu_product = proj == Proj::down;
  const double level = proj == Proj::o ? 0.5 : 1.0;  // attention output: averaged values, smaller
  std::vector<float> x = generate(tokens * in, [&](int64_t i) {
    const double z = swiglu_product ? s.normal(i) * s.normal(i + tokens * in) : s.normal(i);
    return z * level;
  });
  // RMS-normalise each token row, then apply the gains (as RMSNorm's weight would).
  for (int64_t t = 0; t < tokens; ++t) {
    float* row = x.data() + t * in;
    double sum_sq = 0;
    for (int64_t c = 0; c < in; ++c) sum_sq += static_cast<double>(row[c]) * row[c];
    const double inv_rms = sum_sq > 0 ? level / std::sqrt(sum_sq / in) : 0.0;
    for (int64_t c = 0; c < in; ++c) row[c] = static_cast<float>(row[c] * inv_rms * gain[c]);
  }
  return x;
}

std::vector<float> output_grad(const ModelShape& model, int64_t layer, Proj proj, int64_t tokens,
                               uint64_t seed) {
  const int64_t out = proj_dims(model, proj).out;
  const Stream s(seed, Kind::grad, layer, proj);
  const Stream token_scale(seed, Kind::grad_scale, layer, proj);
  return generate(tokens * out, [&](int64_t i) {
    const double scale = 0.5 * std::exp2(2.0 * token_scale.uniform(static_cast<uint64_t>(i / out)));
    return scale * s.normal(i);
  });
}

}  // namespace gsqhw::synthetic
