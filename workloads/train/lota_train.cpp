// LoTA-QAF ternary adapters trained with t-SignSGD (workloads/train/lota_train.h).
#include "workloads/train/lota_train.h"

#include <fmt/format.h>

#include <cmath>
#include <sstream>

#include "base/errors.h"

namespace gsqhw::train {

std::string TSignSgdConfig::str() const {
  return fmt::format("tsignsgd:n={},g={},omega={},fraction={}", bits, group, omega, fraction);
}

bool parse_optimizer(const std::string& text, TSignSgdConfig& c) {
  if (text == "adamw") return false;
  const std::string head = text.substr(0, text.find(':'));
  if (head != "tsignsgd")
    throw UsageError(fmt::format("--optimizer {}: give adamw (LoRA, the default) or tsignsgd[:n=4,g=64,omega=W,"
                                 "fraction=F] (LoTA-QAF's ternary adapters)", text));
  if (head.size() == text.size()) return true;
  std::stringstream ss(text.substr(head.size() + 1));
  std::string item;
  while (std::getline(ss, item, ',')) {
    const auto eq = item.find('=');
    const std::string key = item.substr(0, eq);
    double value = 0;
    try {
      size_t used = 0;
      value = std::stod(item.substr(eq == std::string::npos ? item.size() : eq + 1), &used);
      if (eq == std::string::npos || used != item.size() - eq - 1) throw std::invalid_argument("bad");
    } catch (const std::exception&) {
      throw UsageError(fmt::format("--optimizer {}: {} is not key=number", text, item));
    }
    if (key == "n") c.bits = static_cast<int>(value);
    else if (key == "g") c.group = static_cast<int>(value);
    else if (key == "omega") c.omega = value;
    else if (key == "fraction") c.fraction = value;
    else throw UsageError(fmt::format("--optimizer {}: unknown key {} (n, g, omega, fraction)", text, key));
  }
  if (!(c.fraction > 0 && c.fraction <= 1))
    throw UsageError(fmt::format("--optimizer {}: fraction {} is outside (0, 1]", text, c.fraction));
  return true;
}

TernaryAdapters::TernaryAdapters(const LlamaWeights& fp32, const LoraWeights& init, const TSignSgdConfig& c) {
  params_ = {c.bits, c.group, static_cast<int>(init.config.rank), c.omega < 0 ? 0.75 * static_cast<double>(init.config.rank) : c.omega};
  lota::validate(params_);
  fraction_ = c.fraction;
  const ModelShape& m = fp32.config.shape;
  const int r = params_.rank;
  for (size_t l = 0; l < init.adapters.size(); ++l)
    for (int p = 0; p < 7; ++p) {
      const LoraAdapter& ad = init.adapters[l][static_cast<size_t>(p)];
      if (ad.a.empty()) continue;
      const ProjDims d = proj_dims(m, all_projections()[static_cast<size_t>(p)]);
      Target t;
      t.layer = static_cast<int64_t>(l);
      t.proj = p;
      t.base = lota::quantize_weights(fp32.layers[l].proj[static_cast<size_t>(p)].data(), d.out, d.in, params_.bits,
                                      params_.group);
      t.adapters.d_in = d.in;
      t.adapters.d_out = d.out;
      t.adapters.rank = r;
      double mean_abs = 0;
      for (float v : ad.a) mean_abs += std::fabs(v);
      mean_abs /= static_cast<double>(ad.a.size());
      t.adapters.a.resize(static_cast<size_t>(d.in * r));
      for (int j = 0; j < r; ++j)
        for (int64_t i = 0; i < d.in; ++i) {
          const float v = ad.a[static_cast<size_t>(j * d.in + i)];
          t.adapters.a[static_cast<size_t>(i * r + j)] = std::fabs(v) > 0.7 * mean_abs ? (v > 0 ? 1 : -1) : 0;
        }
      t.adapters.b.assign(static_cast<size_t>(r * d.out), 0);
      targets_.push_back(std::move(t));
    }
}

void TernaryAdapters::merge_into(LlamaWeights& w) const {
  for (const Target& t : targets_) {
    const lota::MergeResult merged = lota::merge(t.base, t.adapters, params_);
    merged.merged.dequantize(w.layers[static_cast<size_t>(t.layer)].proj[static_cast<size_t>(t.proj)].data());
  }
}

int64_t TernaryAdapters::step(const Gradients& g) {
  int64_t changed = 0;
  for (Target& t : targets_) {
    if (g.weight.size() <= static_cast<size_t>(t.layer) ||
        g.weight[static_cast<size_t>(t.layer)][static_cast<size_t>(t.proj)].empty())
      throw std::logic_error("TernaryAdapters::step: no weight gradient for a target projection");
    const auto& gw = g.weight[static_cast<size_t>(t.layer)][static_cast<size_t>(t.proj)];
    const lota::AdapterGradients ga = lota::adapter_gradients(gw.data(), t.base, t.adapters);
    changed += lota::t_signsgd_step(t.adapters.b, ga.b, lota::percentile_threshold(ga.b, fraction_));
    changed += lota::t_signsgd_step(t.adapters.a, ga.a, lota::percentile_threshold(ga.a, fraction_));
  }
  return changed;
}

void TernaryAdapters::to_lora(LoraWeights& lora) const {
  const int64_t r = params_.rank;
  for (const Target& t : targets_) {
    LoraAdapter& ad = lora.adapters[static_cast<size_t>(t.layer)][static_cast<size_t>(t.proj)];
    const int64_t in = t.adapters.d_in, out = t.adapters.d_out;
    for (int64_t j = 0; j < r; ++j) {
      for (int64_t i = 0; i < in; ++i) ad.a[static_cast<size_t>(j * in + i)] = t.adapters.a[static_cast<size_t>(i * r + j)];
      for (int64_t o = 0; o < out; ++o) ad.b[static_cast<size_t>(o * r + j)] = t.adapters.b[static_cast<size_t>(j * out + o)];
    }
  }
}

void TernaryAdapters::from_lora(const LoraWeights& lora) {
  const int64_t r = params_.rank;
  auto ternary = [](float v) {
    if (v != -1.0f && v != 0.0f && v != 1.0f)
      throw UsageError(fmt::format("saved t-SignSGD state holds {}, not a ternary value", v));
    return static_cast<int8_t>(v);
  };
  for (Target& t : targets_) {
    const LoraAdapter& ad = lora.adapters[static_cast<size_t>(t.layer)][static_cast<size_t>(t.proj)];
    const int64_t in = t.adapters.d_in, out = t.adapters.d_out;
    for (int64_t j = 0; j < r; ++j) {
      for (int64_t i = 0; i < in; ++i) t.adapters.a[static_cast<size_t>(i * r + j)] = ternary(ad.a[static_cast<size_t>(j * in + i)]);
      for (int64_t o = 0; o < out; ++o) t.adapters.b[static_cast<size_t>(j * out + o)] = ternary(ad.b[static_cast<size_t>(o * r + j)]);
    }
  }
}

}  // namespace gsqhw::train
