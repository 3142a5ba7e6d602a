// PTQ1.61 golden model (numerics/ptq161.h; semantics in docs/siblings.md).
#include "numerics/ptq161.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <numeric>

#include "base/errors.h"
#include "numerics/lota.h"

namespace gsqhw::ptq161 {
namespace {

using lota::round_to_fp16;

// Column scales stay in a range where they, and V = W / t, are well conditioned in FP16.
constexpr double kMinColumnScale = 1.0 / 1024, kMaxColumnScale = 1024;

// Salient part of one row: 4-bit asymmetric with an integer zero point; the range always
// includes 0 so that a zero weight is exact.
void quantize_salient_row(const float* w, const std::vector<int64_t>& columns, float& s_out,
                          int32_t& z_out, uint8_t* codes) {
  double lo = 0, hi = 0;
  for (int64_t c : columns) {
    lo = std::min(lo, static_cast<double>(w[c]));
    hi = std::max(hi, static_cast<double>(w[c]));
  }
  const float s = round_to_fp16(static_cast<float>((hi - lo) / 15.0));
  int32_t z = 0;
  if (s > 0) z = static_cast<int32_t>(std::clamp(std::nearbyint(-lo / s), 0.0, 15.0));
  for (int64_t c : columns) {
    double q = s > 0 ? std::nearbyint(static_cast<double>(w[c]) / s) + z : 0.0;
    codes[c] = static_cast<uint8_t>(std::clamp(q, 0.0, 15.0));
  }
  s_out = s;
  z_out = z;
}

}  // namespace

void validate(const Ptq161Params& p) {
  if (!(p.salient_fraction >= 0 && p.salient_fraction <= 1))
    throw UsageError(fmt::format("PTQ1.61 salient fraction {} is outside [0, 1] (default 0.2)",
                                 p.salient_fraction));
  if (p.iterations < 1 || p.iterations > 16)
    throw UsageError(fmt::format("PTQ1.61 scale iterations {} is outside 1..16", p.iterations));
}

std::vector<float> channel_magnitudes(const float* x, int64_t tokens, int64_t cols) {
  if (tokens < 1 || cols < 1)
    throw UsageError(fmt::format("activation shape {} x {} is empty", tokens, cols));
  std::vector<double> sum(cols, 0.0);
  for (int64_t t = 0; t < tokens; ++t)
    for (int64_t c = 0; c < cols; ++c) {
      if (!std::isfinite(x[t * cols + c]))
        throw UsageError(fmt::format("activation [{}][{}] is not finite", t, c));
      sum[c] += std::fabs(static_cast<double>(x[t * cols + c]));
    }
  std::vector<float> mean(cols);
  for (int64_t c = 0; c < cols; ++c) mean[c] = static_cast<float>(sum[c] / tokens);
  return mean;
}

std::vector<uint8_t> choose_salient(const std::vector<float>& magnitude, double fraction) {
  if (!(fraction >= 0 && fraction <= 1))
    throw UsageError(fmt::format("PTQ1.61 salient fraction {} is outside [0, 1]", fraction));
  const size_t n = magnitude.size();
  const size_t k = static_cast<size_t>(std::nearbyint(fraction * static_cast<double>(n)));
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return magnitude[a] > magnitude[b]; });
  std::vector<uint8_t> mask(n, 0);
  for (size_t i = 0; i < k; ++i) mask[order[i]] = 1;
  return mask;
}

int64_t Ptq161Layer::salient_count() const {
  return std::count(salient.begin(), salient.end(), uint8_t{1});
}

void Ptq161Layer::dequantize(float* out) const {
  for (int64_t o = 0; o < rows; ++o)
    for (int64_t c = 0; c < cols; ++c) {
      const uint8_t k = code[o * cols + c];
      double v;
      if (salient[c]) {
        v = static_cast<double>(s[o]) * (k - z[o]);
      } else {
        const double sign = k ? 1.0 : -1.0;
        v = static_cast<double>(r[o]) * t[c] * (static_cast<double>(alpha[o]) * sign + mu[o]);
      }
      out[o * cols + c] = static_cast<float>(v);
    }
}

Ptq161Layer quantize(const float* w, int64_t rows, int64_t cols, const std::vector<uint8_t>& mask,
                     const Ptq161Params& params) {
  validate(params);
  if (rows < 1 || cols < 1)
    throw UsageError(fmt::format("weight shape {} x {} is empty", rows, cols));
  if (static_cast<int64_t>(mask.size()) != cols)
    throw UsageError(fmt::format("salient mask has {} bits, the layer has d_in = {} channels",
                                 mask.size(), cols));
  for (int64_t k = 0; k < rows * cols; ++k)
    if (!std::isfinite(w[k]))
      throw UsageError(fmt::format("weight [{}][{}] is not finite", k / cols, k % cols));

  Ptq161Layer L;
  L.rows = rows;
  L.cols = cols;
  L.salient.resize(cols);
  for (int64_t c = 0; c < cols; ++c) L.salient[c] = mask[c] ? 1 : 0;
  L.code.assign(rows * cols, 0);
  L.s.assign(rows, 0.0f);
  L.z.assign(rows, 0);
  L.alpha.assign(rows, 0.0f);
  L.mu.assign(rows, 0.0f);
  L.r.assign(rows, 1.0f);
  L.t.assign(cols, 1.0f);

  std::vector<int64_t> salient_cols, binary_cols;
  for (int64_t c = 0; c < cols; ++c) (L.salient[c] ? salient_cols : binary_cols).push_back(c);
  for (int64_t o = 0; o < rows; ++o)
    quantize_salient_row(w + o * cols, salient_cols, L.s[o], L.z[o], &L.code[o * cols]);
  if (binary_cols.empty()) return L;

  // Binary value of (o, c) without the row and column scales.
  auto core = [&](int64_t o, int64_t c) {
    const double sign = L.code[o * cols + c] ? 1.0 : -1.0;
    return static_cast<double>(L.alpha[o]) * sign + L.mu[o];
  };
  const double n_bin = static_cast<double>(binary_cols.size());
  for (int round = 0; round < params.iterations; ++round) {
    // Row statistics and signs on the column-normalised weights, then the row scale.
    for (int64_t o = 0; o < rows; ++o) {
      const float* wo = w + o * cols;
      double mean = 0;
      for (int64_t c : binary_cols) mean += wo[c] / static_cast<double>(L.t[c]);
      mean /= n_bin;
      double dev = 0;
      for (int64_t c : binary_cols) dev += std::fabs(wo[c] / static_cast<double>(L.t[c]) - mean);
      L.mu[o] = round_to_fp16(static_cast<float>(mean));
      L.alpha[o] = round_to_fp16(static_cast<float>(dev / n_bin));
      for (int64_t c : binary_cols)
        L.code[o * cols + c] = wo[c] / static_cast<double>(L.t[c]) - L.mu[o] >= 0 ? 1 : 0;
      double num = 0, den = 0;
      for (int64_t c : binary_cols) {
        const double u = L.t[c] * core(o, c);
        num += wo[c] * u;
        den += u * u;
      }
      L.r[o] = den > 0 ? round_to_fp16(static_cast<float>(num / den)) : 1.0f;
    }
    if (round + 1 == params.iterations) break;
    // Column scales given everything per row.
    for (int64_t c : binary_cols) {
      double num = 0, den = 0;
      for (int64_t o = 0; o < rows; ++o) {
        const double v = L.r[o] * core(o, c);
        num += w[o * cols + c] * v;
        den += v * v;
      }
      if (den > 0 && num > 0)
        L.t[c] = round_to_fp16(
            static_cast<float>(std::clamp(num / den, kMinColumnScale, kMaxColumnScale)));
    }
  }
  return L;
}

BitsBreakdown storage_bits(const Ptq161Layer& L) {
  const int64_t n_sal = L.salient_count(), n_bin = L.cols - n_sal;
  BitsBreakdown b;
  b.mask = static_cast<double>(L.cols);
  b.salient_codes = 4.0 * L.rows * n_sal;
  b.binary_codes = 1.0 * L.rows * n_bin;
  b.row_params = static_cast<double>(L.rows) * ((n_sal ? 16 + 4 : 0) + (n_bin ? 3 * 16 : 0));
  b.col_params = 16.0 * n_bin;
  return b;
}

double bits_per_weight(const Ptq161Layer& L) {
  return storage_bits(L).total_bits() / (static_cast<double>(L.rows) * L.cols);
}

QuantizedTensor quantize_activations(const float* x, int64_t tokens, const Ptq161Layer& L) {
  std::vector<float> scaled(x, x + tokens * L.cols);
  for (int64_t t = 0; t < tokens; ++t)
    for (int64_t c = 0; c < L.cols; ++c) scaled[t * L.cols + c] *= L.t[c];
  return lota::quantize_activations(scaled.data(), tokens, L.cols);
}

Ptq161GemmResult gemm(const QuantizedTensor& x, const Ptq161Layer& L) {
  if (x.cols != L.cols)
    throw UsageError(fmt::format("activations have {} channels, the layer has d_in = {}", x.cols,
                                 L.cols));
  if (static_cast<int64_t>(x.scales.size()) != x.rows)
    throw UsageError("activations need one INT8 scale per token (int8:per=channel)");
  Ptq161GemmResult res;
  res.tokens = x.rows;
  res.d_out = L.rows;
  res.p_sal.assign(res.tokens * res.d_out, 0);
  res.p_bin.assign(res.tokens * res.d_out, 0);
  res.x_sal.assign(res.tokens, 0);
  res.x_bin.assign(res.tokens, 0);
  res.out.resize(res.tokens * res.d_out);
  for (int64_t t = 0; t < res.tokens; ++t) {
    const int32_t* xt = &x.codes[t * x.cols];
    for (int64_t c = 0; c < L.cols; ++c) (L.salient[c] ? res.x_sal : res.x_bin)[t] += xt[c];
    for (int64_t o = 0; o < L.rows; ++o) {
      const uint8_t* code = &L.code[o * L.cols];
      int64_t p_sal = 0, p_bin = 0;
      for (int64_t c = 0; c < L.cols; ++c) {
        if (L.salient[c]) p_sal += int64_t{xt[c]} * code[c];
        else p_bin += code[c] ? xt[c] : -xt[c];
      }
      res.p_sal[t * res.d_out + o] = p_sal;
      res.p_bin[t * res.d_out + o] = p_bin;
      const double y =
          static_cast<double>(L.s[o]) * (static_cast<double>(p_sal) - L.z[o] * res.x_sal[t]) +
          static_cast<double>(L.r[o]) * (static_cast<double>(L.alpha[o]) * p_bin +
                                         static_cast<double>(L.mu[o]) * res.x_bin[t]);
      res.out[t * res.d_out + o] = static_cast<float>(static_cast<double>(x.scales[t]) * y);
    }
  }
  return res;
}

}  // namespace gsqhw::ptq161
