// FP32, emulated-BF16 and QCD (quantize -> golden_gemm -> dequantize) engines for the linear
// layers of the training engine (workloads/train/gemm_engine.h).
#include "workloads/train/gemm_engine.h"

#include <cblas.h>
#include <fmt/format.h>

#include <cmath>
#include <cstring>

#include "base/errors.h"
#include "workloads/models.h"

extern "C" void openblas_set_num_threads(int);

namespace gsqhw::train {

namespace {
const char* const kGemmNames[] = {"fwd.base",   "fwd.lora_a", "fwd.lora_b", "bwd.dx_base", "bwd.dh",
                                  "bwd.dx_lora", "bwd.da",    "bwd.db",     "bwd.dw",      "att.scores",
                                  "att.values",  "att.bwd.dp", "att.bwd.dv", "att.bwd.dq",  "att.bwd.dk"};
}

const char* gemm_kind_name(int gemm) { return kGemmNames[gemm]; }

std::string GemmSite::name() const {
  if (gemm >= kGemmAttScores) return fmt::format("L{}.{}", layer, gemm_kind_name(gemm));
  return fmt::format("L{}.{}.{}", layer, proj_name(all_projections()[static_cast<size_t>(proj)]),
                     gemm_kind_name(gemm));
}

void sgemm_nt(MatRef a, MatRef b, float* c, float beta) {
  const int64_t m = a.rows, n = b.rows, k = a.cols;
  if (m == 0 || n == 0) return;
  if (k == 0) {
    if (beta == 0) std::memset(c, 0, sizeof(float) * static_cast<size_t>(m * n));
    return;
  }
  // op(A) = A (m x k): memory m x k (NoTrans, lda k) or k x m (Trans, lda m).
  // op(B) = B^T (k x n): B memory n x k -> Trans, ldb k; memory k x n (b.trans) -> NoTrans, ldb n.
  cblas_sgemm(CblasRowMajor, a.trans ? CblasTrans : CblasNoTrans, b.trans ? CblasNoTrans : CblasTrans,
              static_cast<int>(m), static_cast<int>(n), static_cast<int>(k), 1.0f, a.data,
              static_cast<int>(a.trans ? m : k), b.data, static_cast<int>(b.trans ? n : k), beta, c,
              static_cast<int>(n));
}

void GemmEngine::count(const GemmSite& site, const float* c, int64_t m, int64_t n, int64_t k,
                       int64_t overflow, int64_t underflow) {
  GemmCounters& g = counters_[gemm_kind_name(site.gemm)];
  g.calls += 1;
  g.outputs += m * n;
  g.overflow += overflow;
  g.underflow += underflow;
  g.macs += static_cast<double>(m) * static_cast<double>(n) * static_cast<double>(k);
  int64_t bad = 0;
  for (int64_t i = 0; i < m * n; ++i) bad += !std::isfinite(c[i]);
  g.nonfinite += bad;
  if (bad && first_nonfinite_.empty()) first_nonfinite_ = site.name();
  if (overflow) overflowed_ = true;
}

namespace {

// Row-major K-last copy of a logical matrix.
std::vector<float> materialise(MatRef x) {
  std::vector<float> out(static_cast<size_t>(x.rows * x.cols));
  if (!x.trans) {
    std::memcpy(out.data(), x.data, sizeof(float) * out.size());
  } else {
    for (int64_t r = 0; r < x.rows; ++r)
      for (int64_t c = 0; c < x.cols; ++c) out[r * x.cols + c] = x.data[c * x.rows + r];
  }
  return out;
}

class Fp32Engine final : public GemmEngine {
 public:
  std::string name() const override { return "fp32"; }
  bool is_fp32() const override { return true; }
  void product(const GemmSite& site, MatRef a, MatRef b, float* c, uint64_t) override {
    sgemm_nt(a, b, c);
    count(site, c, a.rows, b.rows, a.cols, 0, 0);
  }
};

float round_bf16(float x) {
  uint32_t u;
  std::memcpy(&u, &x, 4);
  if ((u & 0x7f800000u) == 0x7f800000u) return x;  // Inf / NaN unchanged
  u += 0x7fffu + ((u >> 16) & 1u);                   // round to nearest even
  u &= 0xffff0000u;
  std::memcpy(&x, &u, 4);
  return x;
}

class Bf16Engine final : public GemmEngine {
 public:
  std::string name() const override { return "bf16"; }
  void product(const GemmSite& site, MatRef a, MatRef b, float* c, uint64_t) override {
    std::vector<float> ra = materialise(a), rb = materialise(b);
    for (float& x : ra) x = round_bf16(x);
    for (float& x : rb) x = round_bf16(x);
    sgemm_nt({ra.data(), a.rows, a.cols, false}, {rb.data(), b.rows, b.cols, false}, c);
    count(site, c, a.rows, b.rows, a.cols, 0, 0);
  }
};

class QcdEngine final : public GemmEngine {
 public:
  QcdEngine(const FormatAssignment& f, const AccumulatorSpec& acc, int threads)
      : assignment_(f), acc_(acc), threads_(threads) {
    act_ = parse_format(f.act);
    weight_ = parse_format(f.weight);
    grad_ = parse_format(f.grad);
  }
  std::string name() const override { return assignment_.str() + "@" + acc_.str(); }

  void product(const GemmSite& site, MatRef a, MatRef b, float* c, uint64_t seed) override {
    const int64_t m = a.rows, n = b.rows, k = a.cols;
    if (b.cols != k) throw std::logic_error("QcdEngine: K of A and B differ");
    const QuantizedTensor qa = quantize(format(site.a_role), a, seed * 2 + 0);
    const QuantizedTensor* qb_ptr;
    QuantizedTensor qb_local;
    if (site.frozen_b) {
      // A frozen base weight is quantized once (with a fixed seed) and reused by every step, as
      // the hardware would hold it.
      auto key = std::make_pair(b.data, b.trans);
      auto it = frozen_.find(key);
      if (it == frozen_.end()) it = frozen_.emplace(key, quantize(format(site.b_role), b, 0x5eed)).first;
      qb_ptr = &it->second;
    } else {
      qb_local = quantize(format(site.b_role), b, seed * 2 + 1);
      qb_ptr = &qb_local;
    }
    const GemmResult r = golden_gemm(qa, *qb_ptr, acc_, threads_);
    std::memcpy(c, r.out.data(), sizeof(float) * static_cast<size_t>(m * n));
    int64_t overflow = 0, underflow = 0;
    for (uint8_t f : r.flags) overflow += (f & kFlagOverflow) != 0;
    // INT8 accumulates exact integer products (the scales come after): nothing can fall below
    // its LSB. GSE-INT and minifloat addends are real values, floored to 2^-F.
    if (acc_.kind == AccumulatorSpec::Kind::fixed && act_->gemm_operand() != GemmOperandKind::integer)
      underflow = count_underflow(site, qa, *qb_ptr, r, k);
    count(site, c, m, n, k, overflow, underflow);
  }

 private:
  const Format& format(const char* role) const {
    if (role[0] == 'a') return *act_;
    if (role[0] == 'w') return *weight_;
    return *grad_;
  }

  static QuantizedTensor quantize(const Format& f, MatRef x, uint64_t seed) {
    const std::vector<float> rows = materialise(x);
    return f.quantize(rows.data(), x.rows, x.cols, seed);
  }

  // Outputs whose exact value (FP32 product of the dequantized operands) is non-zero but
  // smaller than the accumulator's LSB 2^-F: what the fixed accumulator cannot represent.
  int64_t count_underflow(const GemmSite& site, const QuantizedTensor& qa, const QuantizedTensor& qb,
                          const GemmResult& r, int64_t k) {
    std::vector<float> da(static_cast<size_t>(qa.rows * qa.cols)), db(static_cast<size_t>(qb.rows * qb.cols));
    format(site.a_role).dequantize(qa, da.data());
    format(site.b_role).dequantize(qb, db.data());
    exact_.resize(static_cast<size_t>(r.m * r.n));
    sgemm_nt({da.data(), qa.rows, k, false}, {db.data(), qb.rows, k, false}, exact_.data());
    const double lsb = std::ldexp(1.0, -acc_.frac_bits);
    int64_t under = 0;
    for (float e : exact_) under += e != 0 && std::fabs(e) < lsb;
    return under;
  }

  FormatAssignment assignment_;
  AccumulatorSpec acc_;
  int threads_;
  std::unique_ptr<Format> act_, weight_, grad_;
  std::map<std::pair<const float*, bool>, QuantizedTensor> frozen_;
  std::vector<float> exact_;
};

}  // namespace

// OpenBLAS's sgemm result depends on its thread count (how it splits the work), so the training
// engine pins it to one thread: a run is then bit-for-bit the same whatever --threads is (the
// golden GEMM is thread-count independent by construction and keeps its threads).
void pin_blas_threads() {
  static const bool pinned = [] {
    openblas_set_num_threads(1);
    return true;
  }();
  (void)pinned;
}

std::unique_ptr<GemmEngine> make_fp32_engine() {
  pin_blas_threads();
  return std::make_unique<Fp32Engine>();
}
std::unique_ptr<GemmEngine> make_bf16_engine() {
  pin_blas_threads();
  return std::make_unique<Bf16Engine>();
}
std::unique_ptr<GemmEngine> make_qcd_engine(const FormatAssignment& formats, const AccumulatorSpec& acc,
                                            int threads) {
  pin_blas_threads();
  return std::make_unique<QcdEngine>(formats, acc, threads);
}

}  // namespace gsqhw::train
