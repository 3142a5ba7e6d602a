// A/B speed comparison of numerics/kernels/gemm_fast.cpp variants in one process (run.sh builds it with
// VARIANT_DECLS = "V(v0) V(v1) ..." naming the renamed fast_gemm_rows of each variant).
// Each round runs one sgemm and then every variant in a shuffled order, on M=N=512, K=4096.
// Reported per variant: the best time (as GMAC/s and as a ratio to the best sgemm), the median
// over rounds of sgemm time / variant time from the same round, and the median over rounds
// of t(v0) / t(variant) from the same round: the comparison least affected by the machine's
// load, which drifts between rounds but hardly within one.
#include <cblas.h>
#include <time.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "numerics/format.h"
#include "numerics/gemm.h"
#include "numerics/kernels/gemm_fast.h"

extern "C" void openblas_set_num_threads(int);

namespace gsqhw {
#define V(name)                                                                               \
  bool fast_gemm_rows_##name(const GemmOperands&, const QuantizedTensor&, const QuantizedTensor&, \
                             const AccumulatorSpec&, int64_t, int64_t, GemmResult&);
VARIANT_DECLS
#undef V
}  // namespace gsqhw

namespace {

using FastRows = bool (*)(const gsqhw::GemmOperands&, const gsqhw::QuantizedTensor&,
                          const gsqhw::QuantizedTensor&, const gsqhw::AccumulatorSpec&, int64_t,
                          int64_t, gsqhw::GemmResult&);

double cpu_seconds() {
  timespec t;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

double minimum(const std::vector<double>& v) { return *std::min_element(v.begin(), v.end()); }

}  // namespace

int main(int argc, char** argv) {
  using namespace gsqhw;
  if (argc != 4 || std::atoi(argv[3]) < 1) {
    std::fprintf(stderr, "usage: %s FORMAT_SPEC ACCUMULATOR ROUNDS\n", argv[0]);
    return 2;
  }
  constexpr int64_t kM = 512, kN = 512, kK = 4096;
  const int rounds = std::atoi(argv[3]);
  std::mt19937 rng(1);
  std::normal_distribution<float> normal;
  std::vector<float> a(kM * kK), b(kN * kK), c(kM * kN);
  for (auto& v : a) v = normal(rng);
  for (auto& v : b) v = normal(rng);
  openblas_set_num_threads(1);

  auto format = parse_format(argv[1]);
  const QuantizedTensor qa = format->quantize(a.data(), kM, kK);
  const QuantizedTensor qb = format->quantize(b.data(), kN, kK);
  const AccumulatorSpec acc = AccumulatorSpec::parse(argv[2]);
  const GemmOperands ops = classify_gemm_operands(qa, qb);
  const GemmResult reference = golden_gemm(qa, qb, acc, 1);
  const bool check = std::getenv("AB_NOCHECK") == nullptr;

  std::vector<FastRows> variants;
  std::vector<std::string> names;
#define V(name)                                   \
  variants.push_back(gsqhw::fast_gemm_rows_##name); \
  names.push_back(#name);
  VARIANT_DECLS
#undef V

  const size_t count = variants.size();
  std::vector<std::vector<double>> seconds(count);
  std::vector<double> sgemm_seconds;
  std::vector<size_t> order(count);
  std::iota(order.begin(), order.end(), 0);
  std::mt19937 shuffle_rng(7);
  for (int round = 0; round < rounds; ++round) {
    const double start = cpu_seconds();
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, kM, kN, kK, 1.0f, a.data(), kK, b.data(),
                kK, 0.0f, c.data(), kN);
    sgemm_seconds.push_back(cpu_seconds() - start);
    std::shuffle(order.begin(), order.end(), shuffle_rng);
    for (size_t v : order) {
      GemmResult result = make_gemm_result(kM, kN);
      const double begin = cpu_seconds();
      const bool ran = variants[v](ops, qa, qb, acc, 0, kM, result);
      seconds[v].push_back(cpu_seconds() - begin);
      if (!ran || (check && result.acc_raw != reference.acc_raw)) {
        std::printf("variant %s: %s\n", names[v].c_str(), ran ? "MISMATCH with golden_gemm" : "declined");
        return 1;
      }
    }
  }

  const double macs = static_cast<double>(kM) * kN * kK;
  std::printf("%s %s, %d rounds: sgemm best %.1f GMAC/s, median %.1f\n", argv[1], argv[2], rounds,
              macs / minimum(sgemm_seconds) / 1e9, macs / median(sgemm_seconds) / 1e9);
  for (size_t v = 0; v < count; ++v) {
    std::vector<double> vs_first, vs_sgemm;
    for (int round = 0; round < rounds; ++round) {
      vs_first.push_back(seconds[0][round] / seconds[v][round]);
      vs_sgemm.push_back(sgemm_seconds[round] / seconds[v][round]);
    }
    std::sort(vs_first.begin(), vs_first.end());
    std::printf("  %-4s best %5.1f GMAC/s, median %5.1f | x sgemm: best/best %.3f, median pair %.3f"
                " | speed vs %s: median %.3f [quartiles %.3f %.3f]\n",
                names[v].c_str(), macs / minimum(seconds[v]) / 1e9, macs / median(seconds[v]) / 1e9,
                minimum(sgemm_seconds) / minimum(seconds[v]), median(vs_sgemm), names[0].c_str(),
                vs_first[rounds / 2], vs_first[rounds / 4], vs_first[3 * rounds / 4]);
  }
  return 0;
}
