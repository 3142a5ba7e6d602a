// LoTA-QAF golden model (numerics/lota.h; semantics in docs/siblings.md).
#include "numerics/lota.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "base/errors.h"

namespace gsqhw::lota {

void validate(const LotaParams& p) {
  if (p.bits < 2 || p.bits > 4)
    throw UsageError(fmt::format("LoTA base weight bits N = {} is outside 2..4", p.bits));
  if (p.group != 64 && p.group != 128)
    throw UsageError(fmt::format("LoTA quantization group = {} is not one of 64, 128", p.group));
  if (p.rank < 1 || p.rank > 64)
    throw UsageError(fmt::format("LoTA adapter rank r = {} is outside 1..64", p.rank));
  if (!std::isfinite(p.omega) || p.omega <= 0 || p.omega >= p.rank)
    throw UsageError(fmt::format(
        "LoTA threshold omega = {} must lie strictly inside (0, r) = (0, {}), e.g. 0.75 r = {}",
        p.omega, p.rank, 0.75 * p.rank));
}

int threshold(double omega) { return static_cast<int>(std::floor(omega)) + 1; }

float round_to_fp16(float x) {
  if (!std::isfinite(x))
    throw UsageError(fmt::format("value {} cannot be stored as FP16 metadata", x));
  double a = std::fabs(static_cast<double>(x));
  if (a == 0) return x;
  int e = 0;
  std::frexp(a, &e);                          // a in [2^(e-1), 2^e)
  int unbiased = std::max(e - 1, -14);        // FP16 subnormals share exponent -14
  double ulp = std::ldexp(1.0, unbiased - 10);  // 10 fraction bits
  double rounded = std::nearbyint(a / ulp) * ulp;  // a / ulp is exact in binary64; RNE
  if (rounded > 65504.0)
    throw UsageError(fmt::format("value {} overflows FP16 metadata (max 65504)", x));
  return static_cast<float>(std::copysign(rounded, static_cast<double>(x)));
}

int ternary_dot(const int8_t* a, const int8_t* b, int rank) {
  int sum = 0;
  for (int j = 0; j < rank; ++j) sum += a[j] * b[j];
  return sum;
}

int ternary_decision(int dw, int t) {
  if (dw >= t) return 1;
  if (dw <= -t) return -1;
  return 0;
}

int merge_code(int q, int dw, int t, int bits) {
  int max_code = (1 << bits) - 1;
  return std::clamp(q + ternary_decision(dw, t), 0, max_code);
}

int64_t QuantizedWeights::group_count(int64_t g) const {
  return std::min<int64_t>(group, cols - g * group);
}

void QuantizedWeights::dequantize(float* out) const {
  const int64_t groups = groups_per_row();
  for (int64_t o = 0; o < rows; ++o)
    for (int64_t i = 0; i < cols; ++i) {
      int64_t g = o * groups + i / group;
      out[o * cols + i] = static_cast<float>(static_cast<double>(scale[g]) * q[o * cols + i] +
                                             static_cast<double>(zero[g]));
    }
}

QuantizedWeights quantize_weights(const float* w, int64_t rows, int64_t cols, int bits,
                                  int group) {
  if (rows < 1 || cols < 1)
    throw UsageError(fmt::format("weight shape {} x {} is empty", rows, cols));
  if (bits < 2 || bits > 8) throw UsageError(fmt::format("weight bits {} outside 2..8", bits));
  if (group < 1) throw UsageError(fmt::format("group size {} must be positive", group));
  QuantizedWeights qw;
  qw.rows = rows;
  qw.cols = cols;
  qw.bits = bits;
  qw.group = group;
  qw.q.resize(rows * cols);
  const int64_t groups = qw.groups_per_row();
  qw.scale.resize(rows * groups);
  qw.zero.resize(rows * groups);
  const int max_code = (1 << bits) - 1;
  for (int64_t o = 0; o < rows; ++o)
    for (int64_t g = 0; g < groups; ++g) {
      const float* begin = w + o * cols + g * group;
      const int64_t count = qw.group_count(g);
      for (int64_t i = 0; i < count; ++i)
        if (!std::isfinite(begin[i]))
          throw UsageError(fmt::format("weight [{}][{}] is not finite", o, g * group + i));
      auto [lo, hi] = std::minmax_element(begin, begin + count);
      float z = round_to_fp16(*lo);
      float s = round_to_fp16(static_cast<float>((static_cast<double>(*hi) - *lo) / max_code));
      qw.zero[o * groups + g] = z;
      qw.scale[o * groups + g] = s;
      for (int64_t i = 0; i < count; ++i) {
        int code = 0;
        if (s > 0) {
          double t = std::nearbyint((static_cast<double>(begin[i]) - z) / s);
          code = static_cast<int>(std::clamp(t, 0.0, static_cast<double>(max_code)));
        }
        qw.q[o * cols + g * group + i] = static_cast<uint8_t>(code);
      }
    }
  return qw;
}

void check_adapters(const Adapters& ad, const QuantizedWeights& base) {
  if (ad.d_in != base.cols || ad.d_out != base.rows)
    throw UsageError(fmt::format(
        "adapters are for a {} (d_in) x {} (d_out) layer, the weight is {} x {} (d_out x d_in)",
        ad.d_in, ad.d_out, base.rows, base.cols));
  if (ad.rank < 1 || static_cast<int64_t>(ad.a.size()) != ad.d_in * ad.rank ||
      static_cast<int64_t>(ad.b.size()) != ad.rank * ad.d_out)
    throw UsageError(fmt::format("adapter arrays do not match d_in {} x r {} and r x d_out {}",
                                 ad.d_in, ad.rank, ad.d_out));
  auto ternary = [](int8_t v) { return v >= -1 && v <= 1; };
  if (!std::all_of(ad.a.begin(), ad.a.end(), ternary) ||
      !std::all_of(ad.b.begin(), ad.b.end(), ternary))
    throw UsageError("adapter values must be ternary: -1, 0 or +1");
}

MergeResult merge(const QuantizedWeights& base, const Adapters& ad, const LotaParams& params) {
  validate(params);
  if (base.bits != params.bits || base.group != params.group)
    throw UsageError(fmt::format("base weights are {}-bit, group {}; parameters say {}-bit, group {}",
                                 base.bits, base.group, params.bits, params.group));
  if (ad.rank != params.rank)
    throw UsageError(fmt::format("adapters have rank {}, parameters say r = {}", ad.rank,
                                 params.rank));
  check_adapters(ad, base);

  const int t = threshold(params.omega);
  const int64_t rows = base.rows, cols = base.cols, groups = base.groups_per_row();
  MergeResult res;
  res.merged = base;
  res.dw.resize(rows * cols);
  res.applied.resize(rows * cols);
  res.group_sum_dw.assign(rows * groups, 0);
  res.group_sum_applied.assign(rows * groups, 0);

  std::vector<int8_t> b_column(params.rank);
  for (int64_t o = 0; o < rows; ++o) {
    for (int j = 0; j < params.rank; ++j) b_column[j] = ad.b[j * ad.d_out + o];
    for (int64_t i = 0; i < cols; ++i) {
      const int64_t k = o * cols + i;
      const int dw = ternary_dot(&ad.a[i * params.rank], b_column.data(), params.rank);
      const int q_new = merge_code(base.q[k], dw, t, params.bits);
      const int applied = q_new - base.q[k];
      res.dw[k] = dw;
      res.applied[k] = static_cast<int8_t>(applied);
      res.merged.q[k] = static_cast<uint8_t>(q_new);
      res.changed += applied != 0;
      res.clipped += applied != ternary_decision(dw, t);
      res.group_sum_dw[o * groups + i / base.group] += dw;
      res.group_sum_applied[o * groups + i / base.group] += applied;
    }
    for (int64_t g = 0; g < groups; ++g) {
      const int64_t k = o * groups + g;
      const double mu =
          (static_cast<double>(res.group_sum_dw[k]) - params.omega * res.group_sum_applied[k]) /
          static_cast<double>(base.group_count(g));
      res.merged.zero[k] = round_to_fp16(
          static_cast<float>(static_cast<double>(base.zero[k]) + base.scale[k] * mu));
    }
  }
  return res;
}

QuantizedTensor quantize_activations(const float* x, int64_t tokens, int64_t cols) {
  if (tokens < 1 || cols < 1)
    throw UsageError(fmt::format("activation shape {} x {} is empty", tokens, cols));
  QuantizedTensor qt;
  qt.format_spec = "int8:per=channel";
  qt.rows = tokens;
  qt.cols = cols;
  qt.codes.resize(tokens * cols);
  qt.scales.resize(tokens);
  for (int64_t t = 0; t < tokens; ++t) {
    const float* row = x + t * cols;
    float amax = 0;
    for (int64_t i = 0; i < cols; ++i) {
      if (!std::isfinite(row[i]))
        throw UsageError(fmt::format("activation [{}][{}] is not finite", t, i));
      amax = std::max(amax, std::fabs(row[i]));
    }
    const float scale = amax / 127.0f;
    qt.scales[t] = scale;
    for (int64_t i = 0; i < cols; ++i) {
      int code = 0;
      if (scale > 0) code = static_cast<int>(std::clamp(std::nearbyint(row[i] / scale), -127.0f, 127.0f));
      qt.codes[t * cols + i] = code;
    }
  }
  return qt;
}

MergedGemmResult merged_gemm(const QuantizedTensor& x, const QuantizedWeights& w) {
  if (x.cols != w.cols)
    throw UsageError(fmt::format("activations have {} channels, the weight has d_in = {}", x.cols,
                                 w.cols));
  if (static_cast<int64_t>(x.scales.size()) != x.rows)
    throw UsageError("activations need one INT8 scale per token (int8:per=channel)");
  MergedGemmResult r;
  r.tokens = x.rows;
  r.d_out = w.rows;
  r.groups = w.groups_per_row();
  r.group_dot.assign(r.tokens * r.d_out * r.groups, 0);
  r.group_xsum.assign(r.tokens * r.groups, 0);
  r.out.resize(r.tokens * r.d_out);
  for (int64_t t = 0; t < r.tokens; ++t) {
    const int32_t* xt = &x.codes[t * x.cols];
    for (int64_t i = 0; i < w.cols; ++i) r.group_xsum[t * r.groups + i / w.group] += xt[i];
    for (int64_t o = 0; o < r.d_out; ++o) {
      const uint8_t* qo = &w.q[o * w.cols];
      int64_t* dots = &r.group_dot[(t * r.d_out + o) * r.groups];
      for (int64_t i = 0; i < w.cols; ++i) dots[i / w.group] += int64_t{xt[i]} * qo[i];
      double y = 0;
      for (int64_t g = 0; g < r.groups; ++g)
        y += static_cast<double>(w.scale[o * r.groups + g]) * static_cast<double>(dots[g]) +
             static_cast<double>(w.zero[o * r.groups + g]) *
                 static_cast<double>(r.group_xsum[t * r.groups + g]);
      r.out[t * r.d_out + o] = static_cast<float>(static_cast<double>(x.scales[t]) * y);
    }
  }
  return r;
}

AdapterGradients adapter_gradients(const float* grad_w, const QuantizedWeights& base,
                                   const Adapters& ad) {
  check_adapters(ad, base);
  const int64_t rows = base.rows, cols = base.cols, groups = base.groups_per_row();
  const int r = ad.rank;
  std::vector<double> ga(cols * r, 0.0), gb(r * rows, 0.0);
  for (int64_t o = 0; o < rows; ++o)
    for (int64_t i = 0; i < cols; ++i) {
      const double gdw = static_cast<double>(grad_w[o * cols + i]) *
                         static_cast<double>(base.scale[o * groups + i / base.group]);
      if (gdw == 0) continue;
      for (int j = 0; j < r; ++j) {
        ga[i * r + j] += gdw * ad.b[j * rows + o];
        gb[j * rows + o] += gdw * ad.a[i * r + j];
      }
    }
  AdapterGradients out;
  out.a.assign(ga.begin(), ga.end());
  out.b.assign(gb.begin(), gb.end());
  return out;
}

int64_t t_signsgd_step(std::vector<int8_t>& x, const std::vector<float>& grad, float thr) {
  if (!std::isfinite(thr) || thr < 0)
    throw UsageError(fmt::format("t-SignSGD threshold {} must be finite and >= 0", thr));
  if (grad.size() != x.size())
    throw UsageError(fmt::format("t-SignSGD gradient has {} entries, the tensor {}", grad.size(),
                                 x.size()));
  int64_t changed = 0;
  for (size_t k = 0; k < x.size(); ++k) {
    const float g = grad[k];
    if (!(std::fabs(g) > thr)) continue;  // also skips NaN gradients
    const int step = g > 0 ? 1 : -1;
    const int next = std::clamp(x[k] - step, -1, 1);
    changed += next != x[k];
    x[k] = static_cast<int8_t>(next);
  }
  return changed;
}

float percentile_threshold(const std::vector<float>& grad, double fraction) {
  if (!(fraction >= 0 && fraction <= 1))
    throw UsageError(fmt::format("t-SignSGD update fraction {} is outside [0, 1]", fraction));
  std::vector<float> mags;
  mags.reserve(grad.size());
  for (float g : grad) mags.push_back(std::isfinite(g) ? std::fabs(g) : 0.0f);
  const size_t k = static_cast<size_t>(std::ceil(fraction * static_cast<double>(mags.size())));
  if (k >= mags.size()) return 0.0f;
  std::nth_element(mags.begin(), mags.begin() + k, mags.end(), std::greater<float>());
  return mags[k];  // the (k+1)-th largest: at most k entries are strictly above it
}

}  // namespace gsqhw::lota
