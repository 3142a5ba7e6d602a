// The sweep driver (synth/sweep.h): a pool of worker threads, each running one `gsqhw synth`
// process at a time, and the main thread drawing progress.
#include "synth/sweep.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstring>
#include <cstdio>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>

#include <fmt/format.h>

#include "numerics/design.h"
#include "base/errors.h"
#include "numerics/format.h"
#include "numerics/gemm.h"
#include "synth/baseline.h"
#include "synth/flow.h"
#include "synth/point.h"
#include "base/files.h"
#include "base/process.h"
#include "synth/report.h"
#include "synth/results_db.h"
#include "synth/sibling_design.h"
#include "synth/sweep_parts.h"
#include "workloads/lora.h"
#include "workloads/trace.h"
#include "workloads/train/finetune.h"

namespace gsqhw::synth {
namespace fs = std::filesystem;

namespace {

std::atomic<bool> g_interrupted{false};
extern "C" void on_interrupt(int) { g_interrupted.store(true); }

// Installs the Ctrl-C/TERM handler for the sweep's lifetime.
class InterruptGuard {
 public:
  InterruptGuard() {
    g_interrupted.store(false);
    old_int_ = std::signal(SIGINT, on_interrupt);
    old_term_ = std::signal(SIGTERM, on_interrupt);
  }
  ~InterruptGuard() {
    std::signal(SIGINT, old_int_);
    std::signal(SIGTERM, old_term_);
  }

 private:
  void (*old_int_)(int) = SIG_DFL;
  void (*old_term_)(int) = SIG_DFL;
};

std::string canonical_design(const std::string& text) {
  if (Baseline::is_baseline(text)) return Baseline::parse(text).str();
  if (SiblingDesign::is_sibling(text)) return SiblingDesign::parse(text).str();
  return DesignPoint::parse(text).str();
}

std::string folder_name(const std::string& design) {
  if (SiblingDesign::is_sibling(design)) return SiblingDesign::parse(design).slug();
  if (Baseline::is_baseline(design)) {
    std::string name = design;
    for (char& ch : name)
      if (ch == ':' || ch == ',' || ch == '=') ch = '_';
    return name;
  }
  return DesignPoint::parse(design).slug();
}

std::string duration(double seconds) {
  int s = static_cast<int>(seconds + 0.5);
  return s >= 3600 ? fmt::format("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60) : fmt::format("{}:{:02}", s / 60, s % 60);
}

// The settings part of a result key: everything besides design, library and tools that
// changes a number.
std::string settings_string(const SweepOptions& options) {
  std::string traces = "builtin-tiny";
  if (!options.traces.empty()) {
    // User traces: identified by path, size and modification time of each file.
    uint64_t hash = 1469598103934665603ull;
    for (const auto& t : options.traces) {
      std::string id = fs::absolute(t).string();
      if (fs::is_regular_file(t))
        id += fmt::format(":{}:{}", fs::file_size(t), fs::last_write_time(t).time_since_epoch().count());
      for (unsigned char ch : id) hash = (hash ^ ch) * 1099511628211ull;
    }
    traces = fmt::format("user-{:016x}", hash);
  }
  return fmt::format("clock={}ns,input_activity={},activity={}x{},traces={}", options.clock_ns,
                     options.input_activity, options.activity, options.activity_traces, traces);
}

}  // namespace

void draw_progress(Progress& p, bool final_line) {
  std::lock_guard lock(p.mutex);
  double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - p.start).count();
  const int width = 24;
  int filled = p.total ? p.done * width / p.total : width;
  std::string bar(static_cast<size_t>(filled), '=');
  if (filled < width) bar += '>';
  bar.resize(width, ' ');
  std::string eta = p.done > 0 && p.done < p.total ? duration(elapsed / p.done * (p.total - p.done)) : "--:--";
  const size_t running = p.running_count >= 0 ? static_cast<size_t>(p.running_count) : p.running.size();
  std::string line = fmt::format("[{}] {}/{} {}  {} running  {} failed  elapsed {}  ETA {}", bar, p.done,
                                 p.total, p.unit, running, p.failed, duration(elapsed), eta);
  if (!p.note.empty()) line += "  " + p.note;
  if (!p.last.empty()) line += "  | " + p.last;
  if (line.size() > 150) line = line.substr(0, 147) + "...";
  if (isatty(STDERR_FILENO)) std::fprintf(stderr, "\r%-150s%s", line.c_str(), final_line ? "\n" : "");
  else std::fprintf(stderr, "%s\n", line.c_str());
  std::fflush(stderr);
}

std::vector<std::string> worker_argv(const SweepOptions& options, const SweepPlan& plan, size_t i) {
  const fs::path dir = fs::absolute(options.out_dir) / "points" / plan.folders[i];
  std::vector<std::string> argv = {options.worker.string(), "synth", "--design", plan.designs[i], "--json",
                                   "--clock", fmt::format("{}", options.clock_ns),
                                   "--input-activity", fmt::format("{}", options.input_activity),
                                   "--activity", plan.activities[i],
                                   "--activity-traces", std::to_string(options.activity_traces),
                                   "--out", dir.string()};
  fs::path cache = options.cache_dir;
  if (options.executor == "slurm" && !options.slurm.task_cache.empty()) cache = options.slurm.task_cache;
  if (!cache.empty()) argv.insert(argv.end(), {"--cache", fs::absolute(cache).string()});
  if (!options.library.pdk.empty())
    argv.insert(argv.end(), {"--pdk", options.library.pdk, "--pdk-dir", fs::absolute(options.library.pdk_dir).string()});
  for (const auto& f : options.library.files) argv.insert(argv.end(), {"--liberty", fs::absolute(f).string()});
  for (const auto& t : options.traces) argv.insert(argv.end(), {"--trace", fs::absolute(t).string()});
  return argv;
}

nlohmann::json evaluate_with_worker(const std::vector<std::string>& argv, const std::string& design,
                                    const fs::path& dir, uint64_t max_file_bytes, const std::atomic<bool>* cancel) {
  fs::create_directories(dir);
  fs::remove(dir / "result.json");
  ProcessResult run = run_process(argv, fs::current_path(), dir / "worker.log", 4 * 3600.0, cancel, max_file_bytes);
  nlohmann::json result;
  std::ifstream in(dir / "result.json");
  if (in) result = nlohmann::json::parse(in, nullptr, false);
  if (!result.is_object() || result.value("status", "") == "running" || !result.contains("status")) {
    result = nlohmann::json::object();
    result["design"] = design;
    result["status"] = "error";
    if (run.timed_out) {
      result["error"] = "worker timed out";
    } else {
      // A worker that could not even write its result most likely ran out of disk: say so.
      std::string cause = disk_full_cause(dir, max_file_bytes);
      result["error"] = fmt::format("worker exited with {} and left no result{}: {}", run.exit_code,
                                    cause.empty() ? "" : " (" + cause + ")", tail_lines(run.output, 4));
    }
  }
  return result;
}

SweepLock::SweepLock(const fs::path& out_dir) {
  fs::create_directories(out_dir);
  const fs::path path = out_dir / "sweep.lock";
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0) throw UsageError(fmt::format("cannot open the sweep lock {}: {}", path.string(), std::strerror(errno)));
  // flock: on NFS (Linux clients since 2.6.12) it becomes a POSIX lock the server arbitrates.
  if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    std::ifstream in(path);
    std::string holder;
    std::getline(in, holder);
    ::close(fd_);
    fd_ = -1;
    throw UsageError(fmt::format("another gsqhw sweep ({}) is working on {}; wait for it to finish or stop it "
                                 "(two controllers on one output folder would evaluate points twice)",
                                 holder.empty() ? "holder unknown" : holder, out_dir.string()));
  }
  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  std::string holder = fmt::format("pid {} on {}\n", ::getpid(), host);
  if (::ftruncate(fd_, 0) == 0 && ::pwrite(fd_, holder.data(), holder.size(), 0) < 0) {
    // The holder line is only for the message of a refused second controller.
  }
}

SweepLock::~SweepLock() {
  if (fd_ >= 0) ::close(fd_);
}

std::string natural_accumulator(const std::string& format_spec) {
  return parse_format(format_spec)->natural_accumulator().str();
}

std::vector<int> parse_bit_range(const std::string& text) {
  std::vector<int> bits;
  auto parse_one = [&](const std::string& s) {
    try {
      size_t used = 0;
      int b = std::stoi(s, &used);
      if (used != s.size()) throw std::invalid_argument(s);
      if (b < 2 || b > 8) throw UsageError(fmt::format("--bits: {} is outside 2..8", b));
      return b;
    } catch (const std::invalid_argument&) {
      throw UsageError(fmt::format("--bits: '{}' is not a bit width (e.g. 3..8 or 3,4,6)", s));
    } catch (const std::out_of_range&) {
      throw UsageError(fmt::format("--bits: '{}' is out of range", s));
    }
  };
  if (auto dots = text.find(".."); dots != std::string::npos) {
    int lo = parse_one(text.substr(0, dots)), hi = parse_one(text.substr(dots + 2));
    if (lo > hi) throw UsageError(fmt::format("--bits: empty range {}", text));
    for (int b = lo; b <= hi; ++b) bits.push_back(b);
    return bits;
  }
  std::stringstream in(text);
  std::string part;
  while (std::getline(in, part, ',')) bits.push_back(parse_one(part));
  if (bits.empty()) throw UsageError("--bits: no bit width given");
  return bits;
}

namespace {
std::vector<std::string> grid_levels(const SweepGrid& grid) {
  return grid.levels.empty() ? std::vector<std::string>{"pe", "array2x2"} : grid.levels;
}

// "array8x8" when the grid adds the amortisation points at that shape; empty when it does not
// (no shape asked, an explicit design list, or the shape is a level of the grid anyway).
std::string amortisation_level(const SweepGrid& grid) {
  if (grid.amortisation_array.empty() || !grid.designs.empty() || !grid.baselines) return "";
  const std::string level = "array" + grid.amortisation_array;
  const std::vector<std::string> levels = grid_levels(grid);
  return std::find(levels.begin(), levels.end(), level) == levels.end() ? level : "";
}

// "pe", "array8x8", ... of a design point or an INT-b array baseline; empty for anything else.
std::string design_level(const std::string& design) {
  try {
    if (Baseline::is_baseline(design)) {
      Baseline b = Baseline::parse(design);
      return b.kind == Baseline::Kind::intarray ? fmt::format("array{}x{}", b.rows, b.cols) : "";
    }
    if (SiblingDesign::is_sibling(design)) return "";
    DesignPoint point = DesignPoint::parse(design);
    return point.level == DesignPoint::Level::pe ? "pe" : fmt::format("array{}x{}", point.rows, point.cols);
  } catch (const std::exception&) {
    return "";
  }
}
}  // namespace

std::vector<std::string> sweep_designs(const SweepGrid& grid, int headline_bits) {
  if (!grid.designs.empty()) {
    std::vector<std::string> designs;
    for (const auto& d : grid.designs) {
      std::string canonical = canonical_design(d);
      if (std::find(designs.begin(), designs.end(), canonical) == designs.end()) designs.push_back(canonical);
    }
    return designs;
  }
  std::vector<std::string> formats = grid.formats.empty()
      ? std::vector<std::string>{"gse", "fp8:e4m3", "fp8:e5m2", "int8", "bf16"} : grid.formats;
  std::vector<int> bits = grid.bits.empty() ? std::vector<int>{3, 4, 5, 6, 7, 8} : grid.bits;
  const std::vector<std::string> levels = grid_levels(grid);

  std::vector<std::string> specs;  // canonical format specs
  for (const auto& f : formats) {
    if (f == "gse") {
      for (int b : bits) specs.push_back(parse_format(fmt::format("gse:b={},g=32,e=5", b))->spec());
    } else {
      specs.push_back(parse_format(f)->spec());
    }
  }
  std::vector<std::string> designs;
  auto add = [&](const std::string& d) {
    std::string canonical = canonical_design(d);
    if (std::find(designs.begin(), designs.end(), canonical) == designs.end()) designs.push_back(canonical);
  };
  auto is_headline = [&](const std::string& spec) {
    auto format = parse_format(spec);
    if (format->family() == "gse") return headline_bits == 0 || format->element_bits() == headline_bits;
    return spec.rfind("fp8:e4m3", 0) == 0;
  };
  for (const auto& level : levels) {
    for (const auto& spec : specs) {
      if (level != "pe" && parse_format(spec)->family() == "gse" && (grid.array_all_formats || is_headline(spec)))
        // The GSE-INT array as designed to be compared: its per-group hardware shared per
        // column (docs/generator.md); the per-PE variant below stays as the extra point.
        add(fmt::format("{}@{},acc={},align=shared", spec, level, natural_accumulator(spec)));
      if (level == "pe" || grid.array_all_formats || is_headline(spec))
        add(fmt::format("{}@{},acc={}", spec, level, natural_accumulator(spec)));
    }
    if (level == "pe" && grid.iso_accumulator)
      for (const auto& spec : specs)
        if (parse_format(spec)->family() == "gse" && (grid.all_iso || is_headline(spec)))
          add(fmt::format("{}@pe,acc=fp32", spec));
  }
  if (grid.baselines) {
    bool any_gse = std::any_of(specs.begin(), specs.end(), [](const std::string& s) { return s.rfind("gse:", 0) == 0; });
    if (any_gse)
      for (int b : bits) {
        add(fmt::format("baseline:intmac,b={},w=32", b));
        add(fmt::format("baseline:bare,b={},w=32", b));
      }
    // The like-for-like references of every GSE-INT array, for the amortised 1.15x comparison:
    // plain INT-b arrays of the same shape with the same 32-bit accumulator register, once with
    // its binary point at 0 (a 32-bit integer accumulator, as an INT MAC is built) and once in
    // the GSE array's own format fixed32.16 (integer products leave its 16 fraction bits zero,
    // so synthesis keeps a 16-bit integer accumulator).
    auto add_int_arrays = [&](int b, const std::string& level) {
      DesignPoint shape = DesignPoint::parse("int8@" + level);
      for (int frac : {0, 16})
        add(fmt::format("baseline:intarray,b={},w=32,f={},array={}x{}", b, frac, shape.rows, shape.cols));
    };
    for (const auto& level : levels) {
      if (level == "pe") continue;
      for (const auto& spec : specs)
        if (parse_format(spec)->family() == "gse" && (grid.array_all_formats || is_headline(spec)))
          add_int_arrays(parse_format(spec)->element_bits(), level);
    }
    // The amortisation check (headline width only: every width would cost minutes each).
    if (const std::string level = amortisation_level(grid); !level.empty() && headline_bits != 0)
      for (const auto& spec : specs)
        if (parse_format(spec)->family() == "gse" && is_headline(spec)) {
          add(fmt::format("{}@{},acc={},align=shared", spec, level, natural_accumulator(spec)));
          add_int_arrays(parse_format(spec)->element_bits(), level);
        }
  }
  if (grid.siblings)
    for (const auto& d : default_sibling_designs()) add(d);
  // PE-level points first: they are quick and give early numbers.
  std::stable_partition(designs.begin(), designs.end(), [](const std::string& d) {
    if (Baseline::is_baseline(d)) return d.find("intarray") == std::string::npos;
    return SiblingDesign::is_sibling(d) || d.find("@pe,") != std::string::npos;
  });
  return designs;
}

int headline_gse_bits(const std::vector<int>& bits, const std::vector<fs::path>& traces, const fs::path& cache_dir) {
  auto sqnr = [&](const std::string& spec) {
    std::string acc = natural_accumulator(spec);
    std::vector<fs::path> files;
    if (traces.empty()) {
      files = ensure_builtin_tiny_traces(cache_dir / "traces", spec, AccumulatorSpec::parse(acc));
    } else {
      for (const auto& t : traces)
        for (const auto& f : list_traces(t)) files.push_back(f);
    }
    return trace_error(spec, acc, files).sqnr_db;
  };
  double fp8 = sqnr(parse_format("fp8:e4m3")->spec());
  std::vector<int> sorted = bits;
  std::sort(sorted.begin(), sorted.end());
  for (int b : sorted)
    if (sqnr(parse_format(fmt::format("gse:b={},g=32,e=5", b))->spec()) >= fp8) return b;
  return sorted.empty() ? 8 : sorted.back();
}

std::string point_activity(const SweepOptions& options, const std::string& design, int headline_bits) {
  // The amortisation points (SweepGrid::amortisation_array) are there for their area:
  // vectorless power is enough for them.
  const std::string amortisation = amortisation_level(options.grid);
  if (!amortisation.empty() && design_level(design) == amortisation) return "none";
  if (Baseline::is_baseline(design)) return options.activity;
  if (headline_bits == 0 || options.headline_activity.empty()) return options.activity;
  DesignPoint point;
  try {
    point = DesignPoint::parse(design);
  } catch (const std::exception&) {
    return options.activity;  // not a DesignPoint (a sibling unit): never part of the pair
  }
  if (point.level != DesignPoint::Level::pe) return options.activity;
  bool fp8_e4m3 = point.format.rfind("fp8:e4m3", 0) == 0 && point.acc.kind == AccumulatorSpec::Kind::fp32;
  bool headline_gse = point.format.rfind(fmt::format("gse:b={},", headline_bits), 0) == 0 &&
                      point.acc.str() == natural_accumulator(point.format);
  return fp8_e4m3 || headline_gse ? options.headline_activity : options.activity;
}

// b* from a `gsqhw finetune` results.json (workloads/train/finetune.h), with what the report
// says about it. Throws UsageError when the file cannot decide b* or b* is not a swept width.
static nlohmann::json finetune_iso_accuracy(const fs::path& file, const std::vector<int>& bits, nlohmann::json iso) {
  std::ifstream in(file);
  if (!in) throw UsageError(fmt::format("--finetune-results {}: cannot read the file", file.string()));
  nlohmann::json results;
  try {
    results = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    throw UsageError(fmt::format("--finetune-results {}: not valid JSON ({})", file.string(), e.what()));
  }
  if (!results.is_object() || !results.contains("runs") || !results["runs"].is_array())
    throw UsageError(fmt::format("--finetune-results {}: not a `gsqhw finetune` results.json", file.string()));
  const nlohmann::json choice = train::iso_accuracy(results);
  if (!choice["b_star"].is_number_integer())
    throw UsageError(fmt::format("--finetune-results {}: b* not decided: {}", file.string(),
                                 choice.value("note", std::string("no FP8 or GSE-INT runs"))));
  const int b = choice["b_star"].get<int>();
  if (std::find(bits.begin(), bits.end(), b) == bits.end())
    throw UsageError(fmt::format("--finetune-results {}: b* = {} is not among the swept widths (--bits)", file.string(), b));
  iso.update(choice);
  iso["source"] = "fine-tuning";
  iso["file"] = file.string();
  iso["model"] = results.value("model", std::string("?"));
  iso["text"] = results.value("text", std::string("?"));
  iso["steps"] = results.value("steps", 0);
  return iso;
}

SweepPlan plan_sweep(const SweepOptions& options) {
  // Everything that goes into the keys: library hash, tool versions, settings.
  SweepPlan plan;
  plan.library = resolve_library(options.library);
  plan.tools = tool_versions().str();
  plan.settings = settings_string(options);
  const fs::path cache = options.cache_dir.empty() ? default_cache_dir() : options.cache_dir;
  plan.iso_accuracy = {{"traces", options.traces.empty() ? "synthetic" : "given"}};
  if (options.grid.designs.empty() && (!options.grid.array_all_formats || !options.grid.all_iso)) {
    std::vector<int> bits = options.grid.bits.empty() ? std::vector<int>{3, 4, 5, 6, 7, 8} : options.grid.bits;
    // The trace-SQNR choice, shown beside any other: on the given traces, or (when the sweep
    // fine-tunes) on real traces of the same model and text, else on the synthetic built-in set.
    if (options.traces.empty() && options.finetune.enabled && options.finetune_results.empty()) {
      std::string label;
      const std::vector<fs::path> real = sweep_real_traces(options.finetune, cache, label);
      plan.headline_bits = headline_gse_bits(bits, real, cache);
      plan.iso_accuracy["traces"] = label;
      plan.iso_accuracy["synthetic_sqnr_bits"] = headline_gse_bits(bits, {}, cache);
    } else {
      plan.headline_bits = headline_gse_bits(bits, options.traces, cache);
    }
    plan.iso_accuracy["sqnr_bits"] = plan.headline_bits;
    if (!options.finetune_results.empty()) {
      plan.iso_accuracy = finetune_iso_accuracy(options.finetune_results, bits, plan.iso_accuracy);
      plan.headline_bits = plan.iso_accuracy["b_star"].get<int>();
      if (options.progress)
        std::fprintf(stderr, "sweep: b* = GSE-INT%d from fine-tuning (%s); the trace SQNR would choose GSE-INT%d\n",
                     plan.headline_bits, options.finetune_results.c_str(), plan.iso_accuracy["sqnr_bits"].get<int>());
    } else if (options.finetune.enabled) {
      plan.iso_accuracy.update(sweep_finetune_iso_accuracy(options.finetune, bits, cache, options.progress));
      plan.headline_bits = plan.iso_accuracy["b_star"].get<int>();
      if (options.progress)
        std::fprintf(stderr,
                     "sweep: b* = GSE-INT%d from fine-tuning %s on %s (%s); the trace SQNR on %s traces would choose "
                     "GSE-INT%d, on the built-in synthetic ones GSE-INT%d\n",
                     plan.headline_bits, plan.iso_accuracy["model"].get<std::string>().c_str(),
                     plan.iso_accuracy["text"].get<std::string>().c_str(),
                     plan.iso_accuracy["reused"].get<bool>()
                         ? "runs reused from the cache"
                         : fmt::format("{:.0f} s of fine-tuning", plan.iso_accuracy["seconds"].get<double>()).c_str(),
                     plan.iso_accuracy["traces"].get<std::string>().c_str(), plan.iso_accuracy["sqnr_bits"].get<int>(),
                     plan.iso_accuracy.value("synthetic_sqnr_bits", 0));
    } else {
      plan.iso_accuracy["no_finetune"] = true;  // the report says why b* rests on traces alone
      if (options.progress) {
        std::fprintf(stderr, "sweep: GSE-INT%d is the narrowest width as accurate as FP8 E4M3 on the traces\n",
                     plan.headline_bits);
        if (options.traces.empty())
          std::fprintf(stderr,
                       "sweep: WARNING: b* rests on SYNTHETIC data (--no-finetune: SQNR of the built-in synthetic "
                       "traces), not on fine-tuning a real model; drop --no-finetune, or give --finetune-results FILE\n");
      }
    }
  }
  plan.designs = sweep_designs(options.grid, plan.headline_bits);
  // A point simulated with another activity source than the sweep's is another result: its
  // settings (and so its key) say which source it used.
  for (const auto& d : plan.designs) {
    plan.activities.push_back(point_activity(options, d, plan.headline_bits));
    plan.point_settings.push_back(plan.activities.back() == options.activity
                                      ? plan.settings
                                      : fmt::format("{},point_activity={}", plan.settings, plan.activities.back()));
    plan.keys.push_back(ResultsDb::make_key(d, plan.library.hash, plan.tools, plan.point_settings.back()));
    plan.folders.push_back(folder_name(d));
  }
  return plan;
}

namespace {

// The local executor: `options.jobs` threads, each running one worker process at a time.
void run_local_executor(const SweepOptions& options, const SweepPlan& plan, ResultsDb& db,
                        const std::vector<size_t>& pending, SweepSummary& summary) {
  Progress progress;
  progress.total = static_cast<int>(pending.size());
  std::mutex db_mutex;
  std::atomic<size_t> next{0};
  auto worker_loop = [&] {
    while (!g_interrupted.load()) {
      size_t slot = next.fetch_add(1);
      if (slot >= pending.size()) return;
      size_t i = pending[slot];
      const std::string& design = plan.designs[i];
      {
        std::lock_guard lock(progress.mutex);
        progress.running.push_back(design);
      }
      nlohmann::json result =
          evaluate_with_worker(worker_argv(options, plan, i), design, options.out_dir / "points" / plan.folders[i],
                               options.max_file_bytes, &g_interrupted);
      if (g_interrupted.load()) return;  // a killed worker's "error" is not a result
      std::string status = result.value("status", "error");
      {
        std::lock_guard lock(db_mutex);
        ResultRow row{plan.keys[i], design, plan.library.hash, plan.tools, plan.point_settings[i], status, result, ""};
        try {
          db.put(row);
        } catch (const std::exception& e) {
          std::fprintf(stderr, "\nsweep: cannot store %s: %s\n", design.c_str(), e.what());
          status = "error";
        }
      }
      std::lock_guard lock(progress.mutex);
      progress.running.erase(std::find(progress.running.begin(), progress.running.end(), design));
      ++progress.done;
      if (status != "ok") ++progress.failed;
      progress.last = fmt::format("{} {}", design.substr(0, 60), status);
      summary.evaluated++;
      if (status == "ok") summary.ok++;
      else summary.failed++;
    }
  };
  std::vector<std::thread> threads;
  for (int j = 0; j < std::min<int>(options.jobs, static_cast<int>(pending.size())); ++j) threads.emplace_back(worker_loop);
  while (true) {
    bool finished;
    {
      std::lock_guard lock(progress.mutex);
      finished = progress.done >= progress.total || (g_interrupted.load() && progress.running.empty());
    }
    if (options.progress && !pending.empty()) draw_progress(progress, false);
    if (finished || g_interrupted.load()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(isatty(STDERR_FILENO) ? 500 : 10000));
  }
  for (auto& t : threads) t.join();
  if (options.progress && !pending.empty()) draw_progress(progress, true);
}

}  // namespace

SweepSummary run_sweep(const SweepOptions& input) {
  SweepOptions options = input;
  if (options.jobs < 1 || options.jobs > 64) throw UsageError(fmt::format("--jobs {} is outside 1..64", options.jobs));
  if (!(options.clock_ns > 0)) throw UsageError(fmt::format("--clock {} must be positive", options.clock_ns));
  if (options.executor != "local" && options.executor != "slurm")
    throw UsageError(fmt::format("--executor '{}' is not one of local, slurm", options.executor));
  if (options.executor == "slurm") slurm::require_slurm_client();
  if (options.worker.empty()) options.worker = fs::read_symlink("/proc/self/exe");
  auto start = std::chrono::steady_clock::now();

  SweepLock lock(options.out_dir);  // before anything is planned or written
  SweepPlan plan = plan_sweep(options);
  SweepSummary summary;
  summary.db = options.out_dir / "results.sqlite";
  ResultsDb db(summary.db);
  nlohmann::json arguments = {{"designs", plan.designs}, {"liberty", plan.library.name},
                              {"liberty_hash", plan.library.hash}, {"tools", plan.tools},
                              {"settings", plan.settings}, {"clock_ns", options.clock_ns},
                              {"headline_activity", plan.headline_bits == 0 ? "" : options.headline_activity},
                              {"iso_accuracy", plan.iso_accuracy}};
  db.begin_sweep(arguments, plan.keys);

  // The points to evaluate: not stored yet, or stored as an error and --retry-errors.
  std::vector<size_t> needed;
  for (size_t i = 0; i < plan.designs.size(); ++i) {
    auto row = db.find(plan.keys[i]);
    if (row && (row->status != "error" || !options.retry_errors)) ++summary.reused;
    else needed.push_back(i);
  }
  summary.points = static_cast<int>(plan.designs.size());

  InterruptGuard guard;
  if (options.executor == "slurm") run_slurm_executor(options, plan, db, needed, summary, g_interrupted);
  else run_local_executor(options, plan, db, needed, summary);
  summary.interrupted = g_interrupted.load();

  summary.csv = options.out_dir / "results.csv";
  summary.json = options.out_dir / "results.json";
  export_results(summary.db, summary.csv, summary.json);
  // The report covers a finished sweep only (a detached Slurm run writes it when collected).
  if (options.report && !summary.interrupted && !summary.detached) summary.report = write_report(summary.db, options.out_dir);
  summary.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return summary;
}

namespace {

std::string csv_field(const nlohmann::json& value) {
  std::string text;
  if (value.is_null()) return "";
  if (value.is_string()) text = value.get<std::string>();
  else text = value.dump();
  if (text.find_first_of(",\"\n") == std::string::npos) return text;
  std::string quoted = "\"";
  for (char ch : text) quoted += ch == '"' ? std::string("\"\"") : std::string(1, ch);
  return quoted + "\"";
}

}  // namespace

void export_results(const fs::path& db_path, const fs::path& csv, const fs::path& json) {
  ResultsDb db(db_path);
  std::vector<ResultRow> rows = db.last_sweep_rows();
  static const char* columns[] = {"design", "status", "family", "variant", "bits", "level", "rows", "cols", "acc",
                                  "area_um2", "cells", "clock_ns", "critical_path_ns", "fmax_mhz", "timing_met",
                                  "power_mw", "pj_per_mac_vectorless", "power_activity_mw", "pj_per_mac", "pj_per_mac_source",
                                  "power_rtl_activity_mw_untrusted", "pj_per_mac_rtl_activity_untrusted",
                                  "activity_source", "sqnr_db", "bits_per_weight", "macs_per_cycle", "liberty", "liberty_hash",
                                  "tools", "error"};
  std::string text;
  for (const char* c : columns) text += std::string(text.empty() ? "" : ",") + c;
  text += "\n";
  nlohmann::json all = nlohmann::json::array();
  for (const auto& row : rows) {
    // The CSV's workload columns hold gate-level figures only: RTL activity overstates datapath
    // power (docs/synthesis.md) and moves to its own, so-named columns.
    nlohmann::json csv_row = row.result;
    const std::string activity = csv_row.value("activity_source", "");
    if (csv_row.value("status", "") == "ok")
      csv_row["pj_per_mac_source"] = activity == "gate" && csv_row.contains("pj_per_mac")
                                         ? "gate-level activity"
                                     : activity == "rtl" ? "none: RTL activity is not trusted (pj_per_mac_rtl_activity_untrusted)"
                                                         : "none: vectorless only (pj_per_mac_vectorless)";
    if (activity == "rtl") {
      for (const char* key : {"power_activity_mw", "pj_per_mac"}) {
        if (!csv_row.contains(key)) continue;
        csv_row[std::string(key) == "pj_per_mac" ? "pj_per_mac_rtl_activity_untrusted" : "power_rtl_activity_mw_untrusted"] =
            csv_row[key];
        csv_row.erase(key);
      }
    }
    std::string line;
    for (size_t i = 0; i < std::size(columns); ++i) {
      if (i) line += ",";
      if (csv_row.contains(columns[i])) line += csv_field(csv_row[columns[i]]);
    }
    text += line + "\n";
    nlohmann::json entry = row.result;
    entry["key"] = row.key;
    entry["finished_at"] = row.finished_at;
    all.push_back(entry);
  }
  write_file_atomically(csv, text);
  write_file_atomically(json, all.dump(2) + "\n");
}

}  // namespace gsqhw::synth
