// Golden-model GEMM throughput next to OpenBLAS sgemm, all single-threaded, on one
// LLaMA-like tile shape M = N = 512, K = 4096. Quantization is outside the timed loop.
// Counters (from the thread's CPU time, so other processes on a loaded machine matter less):
//   GMAC/s    multiply-accumulates per second / 1e9
//   x_sgemm   the golden GEMM's speed relative to sgemm, paired: every iteration of a golden
//             benchmark runs one sgemm and then the golden GEMM, and x_sgemm = (sum of the
//             sgemm times) / (sum of the golden times). Both see the same machine load, which
//             on the shared machine drifts by +-15% between benchmarks run seconds apart.
//   sgemm_GMAC/s  the sgemm rate of those paired runs
//   x_sgemm_best  the same ratio from the fastest iteration of each (min sgemm time / min
//             golden time): the machine's noise only ever slows a run down, so the minima
//             are the closest to what each code does on a quiet core. Report both.
// The reported time per iteration is the golden GEMM's alone (manual time: its CPU time).
//   build/bench/bench_gemm                                  (everything, ~2-3 minutes)
//   build/bench/bench_gemm --benchmark_repetitions=3 --benchmark_report_aggregates_only=true
//   build/bench/bench_gemm --benchmark_filter=Gse
#include <benchmark/benchmark.h>
#include <cblas.h>
#include <time.h>

#include <algorithm>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "numerics/format.h"
#include "numerics/gemm.h"
#include "numerics/gemm_impl.h"

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

double thread_cpu_seconds() {
  timespec t;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
}

void sgemm_once(std::vector<float>& c) {
  // C = A x B^T with A M x K and B N x K, both row-major: the golden GEMM's layout.
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, kM, kN, kK, 1.0f, input_a().data(), kK,
              input_b().data(), kK, 0.0f, c.data(), kN);
}

double set_rate_counters(benchmark::State& state, double macs_per_iteration, double seconds) {
  double rate = macs_per_iteration * static_cast<double>(state.iterations()) / seconds / 1e9;
  state.counters["GMAC/s"] = rate;
  state.SetItemsProcessed(static_cast<int64_t>(macs_per_iteration) * state.iterations());
  return rate;
}

void golden(benchmark::State& state, const char* format_spec, const char* acc_spec,
            int64_t m = kM, bool scalar = false) {
  auto format = gsqhw::parse_format(format_spec);
  gsqhw::QuantizedTensor a = format->quantize(input_a().data(), m, kK);
  gsqhw::QuantizedTensor b = format->quantize(input_b().data(), kN, kK);
  gsqhw::AccumulatorSpec acc = gsqhw::AccumulatorSpec::parse(acc_spec);
  if (openblas_set_num_threads) openblas_set_num_threads(1);
  std::vector<float> c(static_cast<size_t>(kM * kN));
  double golden_seconds = 0, sgemm_seconds = 0;
  double golden_best = 1e30, sgemm_best = 1e30;
  for (auto _ : state) {
    double start = thread_cpu_seconds();
    sgemm_once(c);
    benchmark::DoNotOptimize(c.data());
    double middle = thread_cpu_seconds();
    gsqhw::GemmResult r = scalar ? gsqhw::golden_gemm_scalar(a, b, acc)
                                 : gsqhw::golden_gemm(a, b, acc, /*threads=*/1);
    benchmark::DoNotOptimize(r.out.data());
    double end = thread_cpu_seconds();
    state.SetIterationTime(end - middle);
    sgemm_seconds += middle - start;
    golden_seconds += end - middle;
    sgemm_best = std::min(sgemm_best, middle - start);
    golden_best = std::min(golden_best, end - middle);
  }
  const double macs = static_cast<double>(m) * kN * kK;
  const double rate = set_rate_counters(state, macs, golden_seconds);
  // sgemm always runs the full M: scale its time to the golden GEMM's rows.
  const double sgemm_rate = static_cast<double>(kM) * kN * kK * static_cast<double>(state.iterations()) /
                            sgemm_seconds / 1e9;
  state.counters["sgemm_GMAC/s"] = sgemm_rate;
  state.counters["x_sgemm"] = rate / sgemm_rate;
  // (sgemm runs all kM rows; the golden GEMM m of them)
  state.counters["x_sgemm_best"] = (sgemm_best * static_cast<double>(m) / kM) / golden_best;
  state.SetLabel(std::string(format_spec) + " acc=" + acc_spec + (scalar ? " (scalar reference)" : ""));
}

void BM_OpenblasSgemm(benchmark::State& state) {
  if (openblas_set_num_threads) openblas_set_num_threads(1);
  std::vector<float> c(static_cast<size_t>(kM * kN));
  double start = thread_cpu_seconds();
  for (auto _ : state) {
    sgemm_once(c);
    benchmark::DoNotOptimize(c.data());
  }
  set_rate_counters(state, static_cast<double>(kM) * kN * kK, thread_cpu_seconds() - start);
  state.counters["x_sgemm"] = 1.0;
  state.SetLabel("cblas_sgemm fp32, 1 thread");
}

void BM_GoldenGse8Fixed(benchmark::State& s) { golden(s, "gse:b=8,g=32,e=5", "fixed32.16"); }
void BM_GoldenGse6Fixed(benchmark::State& s) { golden(s, "gse:b=6,g=32,e=5", "fixed32.16"); }
void BM_GoldenGse4Fixed(benchmark::State& s) { golden(s, "gse:b=4,g=32,e=5", "fixed32.16"); }
void BM_GoldenGse8Fp32(benchmark::State& s) { golden(s, "gse:b=8,g=32,e=5", "fp32"); }
void BM_GoldenGse6Fp32(benchmark::State& s) { golden(s, "gse:b=6,g=32,e=5", "fp32"); }
void BM_GoldenGse4Fp32(benchmark::State& s) { golden(s, "gse:b=4,g=32,e=5", "fp32"); }
// range=full at b=8 may hold -128 on both sides: the int16 (vpmaddwd) kernel.
void BM_GoldenGse8FullFixed(benchmark::State& s) { golden(s, "gse:b=8,g=32,e=5,range=full", "fixed32.16"); }
void BM_GoldenFp8E4m3Fp32(benchmark::State& s) { golden(s, "fp8:e4m3", "fp32"); }
// INT8 (numerics/kernels/gemm_fast_int8.cpp): fp32 through the float form; fixed32.0 (the INT8 design
// point's accumulator, docs/siblings.md) through vpmaddwd with the Cauchy-Schwarz bound.
void BM_GoldenInt8Fp32(benchmark::State& s) { golden(s, "int8:per=channel", "fp32"); }
void BM_GoldenInt8Fixed(benchmark::State& s) { golden(s, "int8:per=channel", "fixed32.0"); }
// fixed32.16 leaves int8 dot products (~2^16 here) 15 integer bits: most outputs saturate and
// take the saturating double form.
void BM_GoldenInt8FixedSaturating(benchmark::State& s) { golden(s, "int8:per=channel", "fixed32.16"); }
// FP8 with a fixed accumulator: the float floor form (E4M3 subnormals at 2^-9 keep the
// products off the integer grid at F=16).
void BM_GoldenFp8Fixed(benchmark::State& s) { golden(s, "fp8:e4m3", "fixed32.16"); }
// The plain scalar reference on 32 rows, for the speed-up of the kernels.
void BM_ScalarInt8Fixed_M32(benchmark::State& s) { golden(s, "int8:per=channel", "fixed32.0", 32, true); }
void BM_ScalarGse8Fixed_M32(benchmark::State& s) { golden(s, "gse:b=8,g=32,e=5", "fixed32.16", 32, true); }

BENCHMARK(BM_OpenblasSgemm)->Unit(benchmark::kMillisecond)->MinTime(2.0);
BENCHMARK(BM_GoldenGse8Fixed)->Unit(benchmark::kMillisecond)->MinTime(2.0)->UseManualTime();
BENCHMARK(BM_GoldenGse6Fixed)->Unit(benchmark::kMillisecond)->MinTime(2.0)->UseManualTime();
BENCHMARK(BM_GoldenGse4Fixed)->Unit(benchmark::kMillisecond)->MinTime(2.0)->UseManualTime();
BENCHMARK(BM_GoldenGse8Fp32)->Unit(benchmark::kMillisecond)->MinTime(2.0)->UseManualTime();
BENCHMARK(BM_GoldenGse6Fp32)->Unit(benchmark::kMillisecond)->MinTime(2.0)->UseManualTime();
BENCHMARK(BM_GoldenGse4Fp32)->Unit(benchmark::kMillisecond)->MinTime(2.0)->UseManualTime();
BENCHMARK(BM_GoldenGse8FullFixed)->Unit(benchmark::kMillisecond)->MinTime(2.0)->UseManualTime();
BENCHMARK(BM_GoldenFp8E4m3Fp32)->Unit(benchmark::kMillisecond)->MinTime(1.0)->UseManualTime();
BENCHMARK(BM_GoldenInt8Fp32)->Unit(benchmark::kMillisecond)->MinTime(1.0)->UseManualTime();
BENCHMARK(BM_GoldenInt8Fixed)->Unit(benchmark::kMillisecond)->MinTime(1.0)->UseManualTime();
BENCHMARK(BM_GoldenInt8FixedSaturating)->Unit(benchmark::kMillisecond)->MinTime(1.0)->UseManualTime();
BENCHMARK(BM_GoldenFp8Fixed)->Unit(benchmark::kMillisecond)->MinTime(1.0)->UseManualTime();
BENCHMARK(BM_ScalarGse8Fixed_M32)->Unit(benchmark::kMillisecond)->MinTime(1.0)->UseManualTime();
BENCHMARK(BM_ScalarInt8Fixed_M32)->Unit(benchmark::kMillisecond)->MinTime(1.0)->UseManualTime();

}  // namespace

BENCHMARK_MAIN();
