// gsqhw bench: simulation speed of the Verilated RTL against the fast cycle model on the same
// design and traces (both fully checked against the golden model), and the fast model's
// figures for a whole LLaMA layer (forward + backward of all seven LoRA projections).
#include <fmt/format.h>

#include <chrono>
#include <cstdio>
#include <iostream>
#include <random>

#include "cli/command.h"
#include "sim/cosim.h"
#include "sim/errors.h"
#include "workloads/lora.h"
#include "workloads/models.h"

namespace gsqhw::cli {
namespace {

struct BenchArgs {
  std::string design = "gse:b=8,g=32,e=5@array16x16,acc=fixed32.16";
  std::vector<std::string> traces;
  std::string layer;  // model name: run the layer figures instead
  int64_t tokens = 512;
  int64_t rank = 8;
  bool values = false;
  std::string cache;
  bool json = false;
};

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

// Random operands in the design's format for an M x N x K GEMM (for --values).
QuantizedTensor random_operand(const Format& format, int64_t rows, int64_t cols, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> dist(0, 1);
  std::vector<float> x(static_cast<size_t>(rows * cols));
  for (auto& v : x) v = dist(rng);
  return format.quantize(x.data(), rows, cols, seed);
}

// The fast model on every GEMM of one decoder layer, forward and backward.
int run_layer(const BenchArgs& args, const CosimDesign& d) {
  const ModelShape& model = builtin_model(args.layer);
  auto format = parse_format(d.design.format);
  nlohmann::json gemms = nlohmann::json::array();
  int64_t cycles = 0, macs = 0;
  double value_seconds = 0;
  auto started = std::chrono::steady_clock::now();
  // The format's group (or block) size, for the exponent-read figure.
  const int group_size = random_operand(*format, 1, 1, 1).group_size;
  for (Proj proj : all_projections()) {
    for (const auto& shape : lora_gemm_shapes(model, proj, args.rank, args.tokens, 16.0)) {
      GemmTiming t = gemm_timing(d.array, shape.m, shape.n, shape.k, group_size);
      nlohmann::json j = t.to_json();
      j["gemm"] = fmt::format("{}.{}", proj_name(proj), shape.gemm);
      if (args.values) {
        QuantizedTensor a = random_operand(*format, shape.m, shape.k, 1);
        QuantizedTensor b = random_operand(*format, shape.n, shape.k, 2);
        auto v0 = std::chrono::steady_clock::now();
        Beats beats = fast_model_run(d.array, a, b, d.design.acc, 0);
        double s = seconds_since(v0);
        value_seconds += s;
        j["value_seconds"] = s;
        if (beats.size() == 0 || beats.cycle.back() + 1 != t.cycles)
          throw std::runtime_error("fast model beats disagree with its own timing");
      }
      cycles += t.cycles;
      macs += t.macs;
      gemms.push_back(j);
      if (!args.json)
        std::fprintf(stderr, "  %-16s %6lld x %6lld x %6lld: %12lld cycles, utilisation %.3f\n",
                     j["gemm"].get<std::string>().c_str(), static_cast<long long>(shape.m),
                     static_cast<long long>(shape.n), static_cast<long long>(shape.k),
                     static_cast<long long>(t.cycles), t.pe_utilisation);
    }
  }
  const double wall = seconds_since(started);
  const double pes = static_cast<double>(d.array.rows) * d.array.cols;
  nlohmann::json out = {{"design", d.design.str()},
                        {"model", model.name},
                        {"tokens", args.tokens},
                        {"rank", args.rank},
                        {"gemms", gemms},
                        {"cycles", cycles},
                        {"macs", macs},
                        {"pe_utilisation", cycles ? macs / (cycles * pes) : 0.0},
                        {"values", args.values},
                        {"value_seconds", value_seconds},
                        {"fast_model_macs_per_second", value_seconds > 0 ? macs / value_seconds : 0.0},
                        {"wall_seconds", wall}};
  if (args.json) {
    std::cout << out.dump(2) << "\n";
  } else {
    std::cout << fmt::format(
        "{} layer (fwd+bwd, 7 projections, {} tokens, rank {}) on {}: {} GEMMs, {:.4g} MACs, {} "
        "cycles, PE utilisation {:.3f}{}; wall {:.1f} s\n",
        model.name, args.tokens, args.rank, d.design.str(), gemms.size(),
        static_cast<double>(macs), cycles, out["pe_utilisation"].get<double>(),
        args.values ? fmt::format(", fast model computed every output in {:.1f} s ({:.3g} MACs/s)",
                                  value_seconds, out["fast_model_macs_per_second"].get<double>())
                    : "",
        wall);
  }
  return 0;
}

// RTL and fast model on the same design and traces.
int run_speed(const BenchArgs& args, const CosimDesign& d, const CosimOptions& base) {
  std::vector<std::filesystem::path> traces(args.traces.begin(), args.traces.end());
  if (traces.empty())
    traces = ensure_builtin_tiny_traces(base.cache_dir / "traces", d.design.format, d.design.acc);
  CosimOptions rtl_options = base, fast_options = base;
  rtl_options.engine = CosimOptions::Engine::rtl;
  fast_options.engine = CosimOptions::Engine::fast;
  CosimResult rtl = run_cosim_traces(d, traces, rtl_options);
  CosimResult fast = run_cosim_traces(d, traces, fast_options);
  auto rate = [](double n, double s) { return s > 0 ? n / s : 0.0; };
  const double rtl_macs = rate(rtl.macs, rtl.engine_seconds);
  const double fast_macs = rate(fast.macs, fast.engine_seconds);
  nlohmann::json out = {
      {"design", d.design.str()},
      {"gemms", rtl.gemms},
      {"macs", rtl.macs},
      {"cycles", rtl.cycles},
      {"rtl", {{"pass", rtl.pass}, {"engine_seconds", rtl.engine_seconds},
               {"build_seconds", rtl.build_seconds},
               {"simulated_cycles_per_second", rate(rtl.cycles, rtl.engine_seconds)},
               {"macs_per_second", rtl_macs}}},
      {"fast", {{"pass", fast.pass}, {"engine_seconds", fast.engine_seconds},
                {"simulated_cycles_per_second", rate(fast.cycles, fast.engine_seconds)},
                {"macs_per_second", fast_macs}}},
      {"speedup", rtl_macs > 0 ? fast_macs / rtl_macs : 0.0}};
  if (args.json) {
    std::cout << out.dump(2) << "\n";
  } else {
    std::cout << fmt::format(
        "{}: {} GEMMs, {} MACs, {} cycles\n"
        "  rtl  (Verilated): {:.3g} cycles/s, {:.3g} MACs/s ({:.2f} s){}\n"
        "  fast (cycle model): {:.3g} cycles/s, {:.3g} MACs/s ({:.2f} s){}\n"
        "  fast / rtl = {:.1f}x\n",
        d.design.str(), rtl.gemms, rtl.macs, rtl.cycles, rate(rtl.cycles, rtl.engine_seconds),
        rtl_macs, rtl.engine_seconds, rtl.pass ? "" : "  MISMATCH",
        rate(fast.cycles, fast.engine_seconds), fast_macs, fast.engine_seconds,
        fast.pass ? "" : "  MISMATCH", out["speedup"].get<double>());
  }
  return rtl.pass && fast.pass ? 0 : 1;
}

Runner setup_bench(CLI::App& app) {
  auto args = std::make_shared<BenchArgs>();
  app.add_option("--design", args->design, "design point (default: GSE b=8 on a 16x16 array)");
  app.add_option("--trace", args->traces,
                 "trace files/folders for the RTL vs fast comparison (default: built-in tiny set)");
  app.add_option("--layer", args->layer,
                 "instead: the fast model's cycles and utilisation for one whole decoder layer of "
                 "this model (llama-7b, ...), forward + backward of all seven projections");
  app.add_option("--tokens", args->tokens, "tokens per step for --layer")->check(CLI::PositiveNumber);
  app.add_option("--rank", args->rank, "LoRA rank for --layer")->check(CLI::PositiveNumber);
  app.add_flag("--values", args->values,
               "with --layer: also compute every output with the fast model (random operands)");
  app.add_option("--cache", args->cache, "Verilator build cache");
  app.add_flag("--json", args->json, "print JSON");
  return [args]() -> int {
    CosimOptions options;
    options.cache_dir = args->cache.empty() ? default_cache_dir() : std::filesystem::path(args->cache);
    CosimDesign d = cosim_design_generate(DesignPoint::parse(args->design));
    if (!args->layer.empty()) return run_layer(*args, d);
    return run_speed(*args, d, options);
  };
}

GSQHW_COMMAND("bench",
              "Simulation speed: Verilated RTL vs the fast cycle model; whole-layer cycle figures",
              setup_bench);

}  // namespace
}  // namespace gsqhw::cli
