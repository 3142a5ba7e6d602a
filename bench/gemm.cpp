// Golden-model GEMM throughput next to OpenBLAS sgemm, all single-threaded, on one
// LLaMA-like tile shape M = N = 512, K = 4096. items_per_second counts multiply-accumulates,
// so the report reads directly as MAC/s. Quantization is outside the timed loop.
//   build-*/bench/bench_gemm                        (all, ~1 minute)
//   build-*/bench/bench_gemm --benchmark_filter=Gse
#include <benchmark/benchmark.h>
#include <cblas.h>

#include <cstdlib>
#include <random>
#include <vector>

#include "sim/format.h"
#include "sim/gemm.h"
#include "sim/gemm_impl.h"

// OpenBLAS's thread control; weak so that the benchmark still links against another BLAS
// (then OPENBLAS_NUM_THREADS / the BLAS's own default applies).
extern "C" void openblas_set_num_threads(int) __attribute__((weak));

namespace {

constexpr int64_t kM = 512, kN = 512, kK = 4096;

std::vector<float> random_matrix(int64_t rows, int64_t cols, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal;
  std::vector<float> x(static_cast<size_t>(rows * cols));
  for (auto& v : x) v = normal(rng);
  return x;
}

const std::vector<float>& input_a() {
  static const std::vector<float> a = random_matrix(kM, kK, 1);
  return a;
}
const std::vector<float>& input_b() {
  static const std::vector<float> b = random_matrix(kN, kK, 2);
  return b;
}

void golden(benchmark::State& state, const char* format_spec, const char* acc_spec,
            int64_t m = kM, bool scalar = false) {
  auto format = gsqhw::parse_format(format_spec);
  gsqhw::QuantizedTensor a = format->quantize(input_a().data(), m, kK);
  gsqhw::QuantizedTensor b = format->quantize(input_b().data(), kN, kK);
  gsqhw::AccumulatorSpec acc = gsqhw::AccumulatorSpec::parse(acc_spec);
  for (auto _ : state) {
    gsqhw::GemmResult r = scalar ? gsqhw::golden_gemm_scalar(a, b, acc)
                                 : gsqhw::golden_gemm(a, b, acc, /*threads=*/1);
    benchmark::DoNotOptimize(r.out.data());
  }
  state.SetItemsProcessed(state.iterations() * m * kN * kK);
  state.SetLabel(std::string(format_spec) + " acc=" + acc_spec + (scalar ? " (scalar reference)" : ""));
}

void BM_GoldenGse8Fixed(benchmark::State& s) { golden(s, "gse:b=8,g=32,e=5", "fixed32.16"); }
void BM_GoldenGse6Fixed(benchmark::State& s) { golden(s, "gse:b=6,g=32,e=5", "fixed32.16"); }
void BM_GoldenGse8Fp32(benchmark::State& s) { golden(s, "gse:b=8,g=32,e=5", "fp32"); }
void BM_GoldenFp8E4m3Fp32(benchmark::State& s) { golden(s, "fp8:e4m3", "fp32"); }
// The plain scalar reference on 32 rows, for the speed-up of the kernels.
void BM_ScalarGse8Fixed_M32(benchmark::State& s) { golden(s, "gse:b=8,g=32,e=5", "fixed32.16", 32, true); }

void BM_OpenblasSgemm(benchmark::State& state) {
  if (openblas_set_num_threads) openblas_set_num_threads(1);
  std::vector<float> c(static_cast<size_t>(kM * kN));
  for (auto _ : state) {
    // C = A x B^T with A M x K and B N x K, both row-major: the golden GEMM's layout.
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, kM, kN, kK, 1.0f, input_a().data(), kK,
                input_b().data(), kK, 0.0f, c.data(), kN);
    benchmark::DoNotOptimize(c.data());
  }
  state.SetItemsProcessed(state.iterations() * kM * kN * kK);
  state.SetLabel("cblas_sgemm fp32, 1 thread");
}

BENCHMARK(BM_OpenblasSgemm)->Unit(benchmark::kMillisecond)->MinTime(2.0);
BENCHMARK(BM_GoldenGse8Fixed)->Unit(benchmark::kMillisecond)->MinTime(2.0);
BENCHMARK(BM_GoldenGse6Fixed)->Unit(benchmark::kMillisecond)->MinTime(2.0);
BENCHMARK(BM_GoldenGse8Fp32)->Unit(benchmark::kMillisecond)->MinTime(2.0);
BENCHMARK(BM_GoldenFp8E4m3Fp32)->Unit(benchmark::kMillisecond)->MinTime(1.0);
BENCHMARK(BM_ScalarGse8Fixed_M32)->Unit(benchmark::kMillisecond)->MinTime(1.0);

}  // namespace

BENCHMARK_MAIN();
