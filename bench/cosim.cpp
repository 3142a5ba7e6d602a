// Simulation speed of the Verilated RTL and of the fast cycle model on the same design and the
// same GEMM (both checked against the golden model on every iteration).
//   bench_cosim [--benchmark_filter=...]      GSQHW_BENCH_DESIGN=<design> overrides the design
// Counters: MACs/s and simulated cycles/s of the engine alone (Verilator build excluded).
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <random>

#include "sim/cosim.h"
#include "sim/verilator_build.h"
#include "numerics/format.h"

namespace gsqhw {
namespace {

std::string bench_design() {
  const char* env = std::getenv("GSQHW_BENCH_DESIGN");
  return env && *env ? env : "gse:b=8,g=32,e=5@array16x16,acc=fixed32.16";
}

const CosimDesign& design() {
  static CosimDesign d = cosim_design_generate(DesignPoint::parse(bench_design()));
  return d;
}

// A 64 x 64 x 512 GEMM of random operands in the design's format.
const CosimGemm& gemm() {
  static CosimGemm g = [] {
    CosimGemm g;
    g.name = "bench64x64x512";
    auto format = parse_format(design().design.format);
    std::mt19937 rng(1);
    std::normal_distribution<float> dist(0, 1);
    std::vector<float> a(64 * 512), b(64 * 512);
    for (auto& v : a) v = dist(rng);
    for (auto& v : b) v = dist(rng);
    g.a = format->quantize(a.data(), 64, 512);
    g.b = format->quantize(b.data(), 64, 512);
    return g;
  }();
  return g;
}

void run(benchmark::State& state, CosimOptions::Engine engine,
         CosimOptions::RtlPath path = CosimOptions::RtlPath::fast) {
  CosimOptions options;
  options.engine = engine;
  options.rtl_path = path;
  options.cache_dir = default_cache_dir();
  // Warm up (builds the Verilated model once, outside the timing).
  run_cosim_gemms(design(), {gemm()}, options);
  double engine_seconds = 0;
  int64_t macs = 0, cycles = 0;
  for (auto _ : state) {
    CosimResult r = run_cosim_gemms(design(), {gemm()}, options);
    if (!r.pass) state.SkipWithError("co-simulation mismatch");
    engine_seconds += r.engine_seconds;
    macs += r.macs;
    cycles += r.cycles;
  }
  state.counters["MACs/s"] = macs / engine_seconds;
  state.counters["cycles/s"] = cycles / engine_seconds;
  state.SetLabel(design().design.str());
}

// The fast RTL path (no tracing, -O3, stimulus streamed) and the old one (traced -Os build,
// stimulus file), same GEMM.
void BM_VerilatedRtl(benchmark::State& state) { run(state, CosimOptions::Engine::rtl); }
void BM_VerilatedRtlOldPath(benchmark::State& state) {
  run(state, CosimOptions::Engine::rtl, CosimOptions::RtlPath::legacy);
}
void BM_FastModel(benchmark::State& state) { run(state, CosimOptions::Engine::fast); }

BENCHMARK(BM_VerilatedRtl)->Unit(benchmark::kMillisecond)->Iterations(3);
BENCHMARK(BM_VerilatedRtlOldPath)->Unit(benchmark::kMillisecond)->Iterations(3);
BENCHMARK(BM_FastModel)->Unit(benchmark::kMillisecond)->Iterations(3);

}  // namespace
}  // namespace gsqhw

BENCHMARK_MAIN();
