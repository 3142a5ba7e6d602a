// gsqhw bench: simulation speed of the Verilated RTL against the fast cycle model on the same
// design and traces (both fully checked against the golden model), and the fast model's
// figures for a whole LLaMA layer (forward + backward of all seven LoRA projections).
#include <fmt/format.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <random>

#include "cli/command.h"
#include "sim/cosim.h"
#include "sim/verilator_build.h"
#include "base/errors.h"
#include "workloads/lora.h"
#include "workloads/models.h"
#include "workloads/train/layer_bench.h"

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
  std::string gemm;           // MxNxK: one random GEMM instead of traces
  int verilator_threads = 1;  // Verilator --threads of the new RTL path
  // --train-layer: the training engine on one decoder layer (workloads/train/layer_bench.h)
  std::string train_layer;
  std::vector<std::string> formats{"fp32", "gse:b=6"};
  int64_t steps = 2;
  std::string targets = "q,v";
  std::string storage = "nf4:block=64";
  int threads = 1;
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

double machine_load() {
  double load[1] = {0};
  return getloadavg(load, 1) == 1 ? load[0] : -1;
}

// The training engine on one decoder layer: forward + backward per run spec, side by side.
int run_train_layer(const BenchArgs& args) {
  train::LayerBenchOptions o;
  o.shape = train::parse_bench_shape(args.train_layer);
  o.tokens = args.tokens;
  o.rank = args.rank;
  o.targets = args.targets;
  o.storage = args.storage;
  o.steps = args.steps;
  o.threads = args.threads;
  const double load_before = machine_load();
  if (!args.json)
    std::cout << fmt::format(
        "one decoder layer of {} (dim {}, hidden {}, heads {}/{}; synthetic random weights stored as {}, "
        "vocab 256), {} tokens, LoRA r={} on {}, {} step(s) per run, golden GEMM threads {}; load {:.1f}\n",
        o.shape.name, o.shape.dim, o.shape.hidden_dim, o.shape.n_heads, o.shape.n_kv_heads, o.storage,
        o.tokens, o.rank, o.targets, o.steps, o.threads, load_before) << std::flush;
  // Rows print as each run finishes (a LLaMA-7B layer takes minutes per run on a loaded machine).
  auto last = [](const nlohmann::json& r, const char* key) { return r[key].back().get<double>(); };
  double fp32_cpu = 0;
  auto print_row = [&](const nlohmann::json& r) {
    const double s = last(r, "step_seconds"), cpu = last(r, "step_cpu_seconds");
    if (r["run"] == "fp32") fp32_cpu = cpu;
    std::cout << fmt::format("  {:<16} {:>8.1f} {:>9.1f} {:>9.1f} {:>9.1f} {:>10} {:>11.2f} {:>9.0f} {:>10.0f}\n",
                             r["run"].get<std::string>(), r["setup_seconds"].get<double>(),
                             r["step_seconds"].front().get<double>(), s, cpu,
                             fp32_cpu > 0 ? fmt::format("{:.2f}x", cpu / fp32_cpu) : "-",
                             r["linear_macs_per_step"].get<double>() / cpu / 1e9, r["peak_rss_mib"].get<double>(),
                             r["setup_peak_rss_mib"].get<double>())
              << std::flush;
  };
  if (!args.json)
    std::cout << fmt::format("  {:<16} {:>8} {:>9} {:>9} {:>9} {:>10} {:>11} {:>9} {:>10}\n", "run", "setup s",
                             "step1 s", "last s", "last cpu", "cpu/fp32", "GMAC/cpu-s", "peak MiB", "setup MiB");
  const auto runs = train::bench_layer(o, args.formats, args.json ? std::function<void(const nlohmann::json&)>{} : print_row);
  const double load_after = machine_load();
  if (args.json) {
    nlohmann::json out = {{"shape", {{"name", o.shape.name}, {"dim", o.shape.dim}, {"hidden", o.shape.hidden_dim},
                                     {"heads", o.shape.n_heads}, {"kv_heads", o.shape.n_kv_heads}}},
                          {"tokens", o.tokens}, {"rank", o.rank}, {"targets", o.targets}, {"storage", o.storage},
                          {"weights", "synthetic"}, {"load_before", load_before}, {"load_after", load_after},
                          {"runs", runs}};
    std::cout << out.dump(2) << "\n";
    return 0;
  }
  std::cout << fmt::format(
      "  (step = forward + loss + backward, wall and CPU seconds of the last step; cpu/fp32 and GMAC/cpu-s "
      "(linear-layer GEMMs) use CPU time, which a loaded machine distorts least; peak MiB = the run's "
      "process peak RSS; load {:.1f} -> {:.1f})\n", load_before, load_after);
  return 0;
}

// One engine's figures in the speed table.
struct SpeedRow {
  std::string name;
  CosimResult result;
  double macs_per_second() const {
    return result.engine_seconds > 0 ? result.macs / result.engine_seconds : 0.0;
  }
  double cycles_per_second() const {
    return result.engine_seconds > 0 ? result.cycles / result.engine_seconds : 0.0;
  }
};

// A random M x N x K GEMM in the design's format (--gemm).
CosimGemm random_gemm(const CosimDesign& d, const std::string& shape) {
  long long m = 0, n = 0, k = 0;
  char x1 = 0, x2 = 0, extra = 0;
  if (std::sscanf(shape.c_str(), "%lld%c%lld%c%lld%c", &m, &x1, &n, &x2, &k, &extra) != 5 ||
      x1 != 'x' || x2 != 'x' || m < 1 || n < 1 || k < 1 || m * n * k > (1LL << 34))
    throw UsageError(fmt::format("--gemm {}: give MxNxK, e.g. 64x64x512", shape));
  auto format = parse_format(d.design.format);
  CosimGemm g;
  g.name = fmt::format("random{}x{}x{} (synthetic)", m, n, k);
  g.a = random_operand(*format, m, k, 1);
  g.b = random_operand(*format, n, k, 2);
  return g;
}

// The old RTL path (traced -Os build, per-cycle stimulus file), the new fast RTL path (-O3
// build without tracing, stimulus streamed from the schedule) and the fast cycle model, on
// the same design and GEMMs in one run; every engine checks every output against golden.
int run_speed(const BenchArgs& args, const CosimDesign& d, const CosimOptions& base) {
  auto run = [&](const CosimOptions& options) {
    if (!args.gemm.empty()) return run_cosim_gemms(d, {random_gemm(d, args.gemm)}, options);
    std::vector<std::filesystem::path> traces(args.traces.begin(), args.traces.end());
    if (traces.empty())
      traces = ensure_builtin_tiny_traces(base.cache_dir / "traces", d.design.format, d.design.acc);
    return run_cosim_traces(d, traces, options);
  };
  CosimOptions legacy = base, fast_rtl = base, fast_model = base;
  legacy.engine = fast_rtl.engine = CosimOptions::Engine::rtl;
  legacy.rtl_path = CosimOptions::RtlPath::legacy;
  fast_rtl.rtl_path = CosimOptions::RtlPath::fast;
  fast_rtl.verilator_threads = args.verilator_threads;
  fast_model.engine = CosimOptions::Engine::fast;
  std::vector<SpeedRow> rows;
  rows.push_back({"rtl old path (traced -Os build, stimulus file)", run(legacy)});
  rows.push_back({fmt::format("rtl new path (-O3 -march=native, no trace, streamed{})",
                              args.verilator_threads > 1
                                  ? fmt::format(", --threads {}", args.verilator_threads)
                                  : ""),
                  run(fast_rtl)});
  rows.push_back({"fast cycle model", run(fast_model)});
  const double old_rate = rows[0].macs_per_second(), new_rate = rows[1].macs_per_second();
  const double rtl_speedup = old_rate > 0 ? new_rate / old_rate : 0.0;
  const double model_over_rtl = new_rate > 0 ? rows[2].macs_per_second() / new_rate : 0.0;
  bool pass = true;
  for (const auto& row : rows) pass = pass && row.result.pass;
  const CosimResult& first = rows[0].result;
  if (args.json) {
    nlohmann::json engines = nlohmann::json::array();
    for (const auto& row : rows)
      engines.push_back({{"engine", row.name},
                         {"pass", row.result.pass},
                         {"engine_seconds", row.result.engine_seconds},
                         {"build_seconds", row.result.build_seconds},
                         {"simulated_cycles_per_second", row.cycles_per_second()},
                         {"macs_per_second", row.macs_per_second()}});
    nlohmann::json out = {{"design", d.design.str()},
                          {"gemms", first.gemms},
                          {"macs", first.macs},
                          {"cycles", first.cycles},
                          {"engines", engines},
                          {"rtl_new_over_old", rtl_speedup},
                          {"fast_model_over_rtl_new", model_over_rtl},
                          {"synthetic", !args.gemm.empty()}};
    std::cout << out.dump(2) << "\n";
  } else {
    std::cout << fmt::format("{}: {} GEMMs{}, {} MACs, {} cycles\n", d.design.str(), first.gemms,
                             args.gemm.empty() ? "" : " (synthetic random operands)", first.macs,
                             first.cycles);
    std::cout << fmt::format("  {:<60} {:>12} {:>12} {:>9} {:>9}\n", "engine", "cycles/s",
                             "MACs/s", "engine s", "build s");
    for (const auto& row : rows)
      std::cout << fmt::format("  {:<60} {:>12.4g} {:>12.4g} {:>9.2f} {:>9.1f}{}\n", row.name,
                               row.cycles_per_second(), row.macs_per_second(),
                               row.result.engine_seconds, row.result.build_seconds,
                               row.result.pass ? "" : "  MISMATCH");
    std::cout << fmt::format("  RTL new / old path = {:.1f}x; fast model / RTL new path = {:.1f}x\n",
                             rtl_speedup, model_over_rtl);
  }
  return pass ? 0 : 1;
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
  app.add_option("--gemm", args->gemm,
                 "instead of traces: one GEMM MxNxK of random (synthetic) operands in the "
                 "design's format, e.g. 64x64x512");
  app.add_option("--verilator-threads", args->verilator_threads,
                 "Verilator --threads for the new RTL path's build (default 1)")
      ->check(CLI::Range(1, 64));
  app.add_option("--train-layer", args->train_layer,
                 "instead: time the training engine (forward + backward) on one decoder layer of this "
                 "shape (llama-7b, ..., or dim=D,hidden=H,heads=N[,kv_heads=K]) with synthetic weights, "
                 "each --formats run in its own process with its peak memory");
  app.add_option("--formats", args->formats, "run specs for --train-layer (default: fp32 gse:b=6)");
  app.add_option("--steps", args->steps, "training steps timed per run for --train-layer (default 2)")
      ->check(CLI::PositiveNumber);
  app.add_option("--targets", args->targets, "LoRA targets for --train-layer (default q,v)");
  app.add_option("--storage", args->storage, "frozen base weight storage for --train-layer (default nf4:block=64)");
  app.add_option("--threads", args->threads, "golden GEMM threads for --train-layer (default 1)")
      ->check(CLI::Range(0, 256));
  app.add_flag("--json", args->json, "print JSON");
  return [args]() -> int {
    if (!args->train_layer.empty()) return run_train_layer(*args);
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
