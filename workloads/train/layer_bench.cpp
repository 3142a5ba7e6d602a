// One-layer speed benchmark of the training engine (workloads/train/layer_bench.h).
#include "workloads/train/layer_bench.h"

#include <fmt/format.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <ctime>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>

#include "base/errors.h"
#include "workloads/train/llama.h"
#include "workloads/train/run_spec.h"

namespace gsqhw::train {

namespace {

double process_cpu_seconds() {
  timespec t{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
}

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

// The process's peak resident set so far (VmHWM of /proc/self/status), in MiB; 0 when unknown.
double peak_rss_mib_self() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmHWM:", 0) == 0) return std::stod(line.substr(6)) / 1024.0;
  return 0;
}

ModelShape bench_model(const LayerBenchOptions& o) {
  ModelShape m = o.shape;
  m.n_layers = 1;
  m.vocab_size = o.vocab;
  m.seq_len = 0;
  m.shared_classifier = true;
  m.validate();
  return m;
}

void check_options(const LayerBenchOptions& o, const std::vector<std::string>& specs) {
  if (o.tokens < 2) throw UsageError(fmt::format("--tokens {} must be at least 2", o.tokens));
  if (o.steps < 1) throw UsageError(fmt::format("--steps {} must be at least 1", o.steps));
  if (o.vocab < 3) throw UsageError("the benchmark vocabulary needs at least 3 tokens");
  const ModelShape m = bench_model(o);
  if (m.head_dim() % 2 != 0)
    throw UsageError(fmt::format("head_dim {} is odd; rotary embeddings need pairs", m.head_dim()));
  LoraConfig lc;
  lc.targets = LoraConfig::parse_targets(o.targets);
  lc.rank = o.rank;
  lc.alpha = o.alpha;
  LlamaConfig cfg;
  cfg.shape = m;
  (void)LoraWeights::init(cfg, lc, 0);  // rank / alpha against the shapes
  if (specs.empty()) throw UsageError("give at least one run spec (fp32, bf16, gse:b=6, ...)");
  for (const auto& s : specs) (void)RunSpec::parse(s, o.acc);
}

}  // namespace

ModelShape parse_bench_shape(const std::string& text) {
  if (text.find('=') == std::string::npos) return builtin_model(text);
  ModelShape m;
  m.name = text;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    const auto eq = item.find('=');
    const std::string key = item.substr(0, eq);
    int64_t value = 0;
    try {
      size_t used = 0;
      value = std::stoll(item.substr(eq + 1), &used);
      if (used != item.size() - eq - 1) throw std::invalid_argument("trailing");
    } catch (const std::exception&) {
      throw UsageError(fmt::format("layer shape {}: {} is not an integer key=value", text, item));
    }
    if (key == "dim") m.dim = value;
    else if (key == "hidden") m.hidden_dim = value;
    else if (key == "heads") m.n_heads = value;
    else if (key == "kv_heads") m.n_kv_heads = value;
    else
      throw UsageError(fmt::format("layer shape {}: unknown key {} (dim, hidden, heads, kv_heads)", text, key));
  }
  if (m.n_kv_heads == 0) m.n_kv_heads = m.n_heads;
  m.n_layers = 1;
  m.vocab_size = 256;
  m.validate();
  return m;
}

nlohmann::json bench_layer_run(const LayerBenchOptions& o, const std::string& spec_text) {
  const RunSpec spec = RunSpec::parse(spec_text, o.acc);
  const auto t_setup = std::chrono::steady_clock::now();
  LlamaConfig cfg;
  cfg.shape = bench_model(o);
  LlamaWeights weights = LlamaWeights::random(cfg, o.seed, 0.02f);
  if (o.storage != "fp32") {
    // The same stored-weight treatment as a checkpoint load (LlamaWeights::load).
    auto store = parse_format(o.storage);
    for (auto& lw : weights.layers)
      for (int p = 0; p < 7; ++p) {
        const ProjDims d = proj_dims(cfg.shape, all_projections()[static_cast<size_t>(p)]);
        auto& w = lw.proj[static_cast<size_t>(p)];
        const QuantizedTensor q = store->quantize(w.data(), d.out, d.in);
        store->dequantize(q, w.data());
      }
  }
  LoraConfig lc;
  lc.targets = LoraConfig::parse_targets(o.targets);
  lc.rank = o.rank;
  lc.alpha = o.alpha;
  LoraWeights lora = LoraWeights::init(cfg, lc, o.seed);
  // B = 0 at PEFT's init would make the LoRA products trivially zero; give B small values so
  // every GEMM multiplies real numbers.
  std::mt19937_64 rng(o.seed + 7);
  std::normal_distribution<float> nd(0.0f, 0.01f);
  for (auto& layer : lora.adapters)
    for (auto& ad : layer)
      for (float& x : ad.b) x = nd(rng);
  std::vector<int> tokens(static_cast<size_t>(o.tokens + 1));
  for (int& t : tokens) t = static_cast<int>(rng() % static_cast<uint64_t>(o.vocab));
  const std::vector<int> in(tokens.begin(), tokens.end() - 1), target(tokens.begin() + 1, tokens.end());
  auto engine = spec.engine(o.threads);
  LlamaModel model(weights, &lora);
  const double setup_seconds = seconds_since(t_setup);
  const double setup_rss = peak_rss_mib_self();
  nlohmann::json steps = nlohmann::json::array(), cpu = nlohmann::json::array();
  double loss = 0, macs = 0;
  for (int64_t s = 0; s < o.steps; ++s) {
    engine->reset_counters();
    Gradients grads;
    const auto t0 = std::chrono::steady_clock::now();
    const double c0 = process_cpu_seconds();
    loss = model.step(in, target, 1, o.tokens, *engine, &grads, 1.0f, o.seed + static_cast<uint64_t>(s)).loss;
    steps.push_back(seconds_since(t0));
    cpu.push_back(process_cpu_seconds() - c0);
    macs = 0;
    for (const auto& [kind, c] : engine->counters()) macs += c.macs;
  }
  return {{"run", spec_text},
          {"engine", engine->name()},
          {"setup_seconds", setup_seconds},
          {"setup_peak_rss_mib", setup_rss},
          {"step_seconds", steps},
          {"step_cpu_seconds", cpu},
          {"linear_macs_per_step", macs},
          {"loss", loss}};
}

std::vector<nlohmann::json> bench_layer(const LayerBenchOptions& o, const std::vector<std::string>& specs,
                                        const std::function<void(const nlohmann::json&)>& done) {
  check_options(o, specs);
  std::vector<nlohmann::json> out;
  for (const auto& spec : specs) {
    int fds[2];
    if (pipe(fds) != 0) throw std::runtime_error(fmt::format("pipe: {}", std::strerror(errno)));
    std::fflush(nullptr);
    const pid_t pid = fork();
    if (pid < 0) throw std::runtime_error(fmt::format("fork: {}", std::strerror(errno)));
    if (pid == 0) {
      close(fds[0]);
      std::string text;
      int code = 0;
      try {
        text = bench_layer_run(o, spec).dump();
      } catch (const std::exception& e) {
        text = nlohmann::json{{"error", e.what()}}.dump();
        code = 3;
      }
      for (size_t done = 0; done < text.size();) {
        const ssize_t n = write(fds[1], text.data() + done, text.size() - done);
        if (n <= 0) break;
        done += static_cast<size_t>(n);
      }
      close(fds[1]);
      _exit(code);
    }
    close(fds[1]);
    std::string text;
    char buf[4096];
    for (ssize_t n; (n = read(fds[0], buf, sizeof buf)) != 0;) {
      if (n < 0) {
        if (errno == EINTR) continue;
        break;
      }
      text.append(buf, static_cast<size_t>(n));
    }
    close(fds[0]);
    int status = 0;
    rusage ru{};
    while (wait4(pid, &status, 0, &ru) < 0 && errno == EINTR) {
    }
    nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || j.is_discarded() || j.contains("error"))
      throw std::runtime_error(fmt::format(
          "benchmark run {} failed ({}): {}", spec,
          WIFSIGNALED(status) ? fmt::format("killed by signal {}", WTERMSIG(status)) : fmt::format("exit {}", WEXITSTATUS(status)),
          j.is_object() && j.contains("error") ? j["error"].get<std::string>() : text));
    j["peak_rss_mib"] = static_cast<double>(ru.ru_maxrss) / 1024.0;  // Linux: kilobytes
    j["cpu_seconds"] = static_cast<double>(ru.ru_utime.tv_sec) + 1e-6 * static_cast<double>(ru.ru_utime.tv_usec) +
                       static_cast<double>(ru.ru_stime.tv_sec) + 1e-6 * static_cast<double>(ru.ru_stime.tv_usec);
    if (done) done(j);
    out.push_back(std::move(j));
  }
  return out;
}

}  // namespace gsqhw::train
