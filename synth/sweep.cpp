// The sweep driver (synth/sweep.h): a pool of worker threads, each running one `gsqhw synth`
// process at a time, and the main thread drawing progress.
#include "synth/sweep.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstring>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <mutex>
#include <optional>
#include <set>
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

namespace {

// Whether the sweep chooses b* itself, from a grid (an explicit --designs list has no b*).
bool chooses_b_star(const SweepOptions& options) {
  return options.grid.designs.empty() && (!options.grid.array_all_formats || !options.grid.all_iso);
}

std::vector<int> swept_bits(const SweepOptions& options) {
  return options.grid.bits.empty() ? std::vector<int>{3, 4, 5, 6, 7, 8} : options.grid.bits;
}

fs::path sweep_cache(const SweepOptions& options) {
  return options.cache_dir.empty() ? default_cache_dir() : options.cache_dir;
}

// The plan without b* and points: everything that goes into the keys (library hash, tool
// versions, settings).
SweepPlan plan_frame(const SweepOptions& options) {
  SweepPlan plan;
  plan.library = resolve_library(options.library);
  plan.tools = tool_versions().str();
  plan.settings = settings_string(options);
  plan.iso_accuracy = {{"traces", options.traces.empty() ? "synthetic" : "given"}};
  return plan;
}

// The trace-SQNR choice, shown beside any other (golden model only: seconds): on the given
// traces, or (when the sweep fine-tunes) on real traces of the same model and text, else on the
// synthetic built-in set. Sets headline_bits to it.
void choose_by_trace_sqnr(const SweepOptions& options, SweepPlan& plan) {
  const std::vector<int> bits = swept_bits(options);
  const fs::path cache = sweep_cache(options);
  if (sweep_fine_tunes(options)) {
    std::string label;
    const std::vector<fs::path> real = sweep_real_traces(options.finetune, cache, label);
    plan.headline_bits = headline_gse_bits(bits, real, cache);
    plan.iso_accuracy["traces"] = label;
    plan.iso_accuracy["synthetic_sqnr_bits"] = headline_gse_bits(bits, {}, cache);
  } else {
    plan.headline_bits = headline_gse_bits(bits, options.traces, cache);
  }
  plan.iso_accuracy["sqnr_bits"] = plan.headline_bits;
}

// b* from the sweep's own fine-tuning (the slow part of planning); `status` as in
// sweep_finetune_iso_accuracy.
void choose_by_finetuning(const SweepOptions& options, SweepPlan& plan, const FinetuneStatus& status,
                          const std::atomic<bool>* cancel) {
  plan.iso_accuracy.update(
      sweep_finetune_iso_accuracy(options.finetune, swept_bits(options), sweep_cache(options), options.progress, status, cancel));
  plan.headline_bits = plan.iso_accuracy["b_star"].get<int>();
  if (options.progress)
    std::fprintf(stderr,
                 "sweep: b* = GSE-INT%d from fine-tuning %s on %s (%s, %lld steps of %lld x %lld tokens, %lld seeds "
                 "per format); the trace SQNR on %s traces would choose GSE-INT%d, on the built-in synthetic ones "
                 "GSE-INT%d\n",
                 plan.headline_bits, plan.iso_accuracy["model"].get<std::string>().c_str(),
                 plan.iso_accuracy["text"].get<std::string>().c_str(),
                 plan.iso_accuracy["reused"].get<bool>()
                     ? "runs reused from the cache"
                     : fmt::format("{:.0f} s of fine-tuning", plan.iso_accuracy["seconds"].get<double>()).c_str(),
                 static_cast<long long>(options.finetune.steps), static_cast<long long>(options.finetune.batch),
                 static_cast<long long>(options.finetune.seq), static_cast<long long>(options.finetune.seeds),
                 plan.iso_accuracy["traces"].get<std::string>().c_str(), plan.iso_accuracy["sqnr_bits"].get<int>(),
                 plan.iso_accuracy.value("synthetic_sqnr_bits", 0));
}

// b* from --finetune-results or (--no-finetune, given traces) the trace SQNR alone.
void choose_without_finetuning(const SweepOptions& options, SweepPlan& plan) {
  if (!options.finetune_results.empty()) {
    plan.iso_accuracy = finetune_iso_accuracy(options.finetune_results, swept_bits(options), plan.iso_accuracy);
    plan.headline_bits = plan.iso_accuracy["b_star"].get<int>();
    if (options.progress)
      std::fprintf(stderr, "sweep: b* = GSE-INT%d from fine-tuning (%s); the trace SQNR would choose GSE-INT%d\n",
                   plan.headline_bits, options.finetune_results.c_str(), plan.iso_accuracy["sqnr_bits"].get<int>());
    return;
  }
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

// The points of the grid for plan.headline_bits: designs, activity sources, keys, folders.
void list_points(const SweepOptions& options, SweepPlan& plan) {
  plan.designs = sweep_designs(options.grid, plan.headline_bits);
  plan.activities.clear();
  plan.point_settings.clear();
  plan.keys.clear();
  plan.folders.clear();
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
}

}  // namespace

bool sweep_fine_tunes(const SweepOptions& options) {
  return chooses_b_star(options) && options.traces.empty() && options.finetune.enabled && options.finetune_results.empty();
}

SweepPlan plan_sweep(const SweepOptions& options) {
  SweepPlan plan = plan_frame(options);
  if (chooses_b_star(options)) {
    choose_by_trace_sqnr(options, plan);
    if (sweep_fine_tunes(options)) choose_by_finetuning(options, plan, {}, nullptr);
    else choose_without_finetuning(options, plan);
  }
  list_points(options, plan);
  return plan;
}

SweepPlan plan_points_before_b_star(const SweepOptions& options) {
  SweepPlan plan = plan_frame(options);
  choose_by_trace_sqnr(options, plan);
  const std::vector<int> candidates = finetune_widths(swept_bits(options));
  if (candidates.empty())
    throw UsageError("the sweep fine-tunes GSE-INT widths 4..8 to choose b*, and --bits has none of them; widen "
                     "--bits or give --no-finetune (b* from trace SQNR)");
  std::set<std::string> common;  // the keys every candidate's plan has
  for (size_t c = 0; c < candidates.size(); ++c) {
    SweepPlan with = plan;
    with.headline_bits = candidates[c];
    list_points(options, with);
    std::set<std::string> keys(with.keys.begin(), with.keys.end());
    if (c == 0) {
      common = keys;
    } else {
      std::set<std::string> both;
      std::set_intersection(common.begin(), common.end(), keys.begin(), keys.end(), std::inserter(both, both.end()));
      common = std::move(both);
    }
  }
  SweepPlan early = plan;
  early.headline_bits = candidates.empty() ? plan.headline_bits : candidates.front();
  list_points(options, early);
  SweepPlan kept = plan;
  for (size_t i = 0; i < early.keys.size(); ++i) {
    if (!common.count(early.keys[i])) continue;
    kept.designs.push_back(early.designs[i]);
    kept.activities.push_back(early.activities[i]);
    kept.point_settings.push_back(early.point_settings[i]);
    kept.keys.push_back(early.keys[i]);
    kept.folders.push_back(early.folders[i]);
  }
  kept.headline_bits = 0;  // not chosen yet
  return kept;
}

SweepPlan finish_plan_after_finetuning(const SweepOptions& options, SweepPlan early, const FinetuneStatus& status,
                                       const std::atomic<bool>* cancel) {
  SweepPlan plan = std::move(early);
  choose_by_finetuning(options, plan, status, cancel);
  list_points(options, plan);
  return plan;
}

namespace {

// A rough cost rank of a point, for the order the local executor takes them in (the longest
// first, so that the last minutes do not wait on one long point started late): a gate-level
// activity run (a Verilator build of the mapped netlist) and arrays cost minutes, PEs seconds.
int point_cost(const std::string& design, const std::string& activity) {
  int cost = activity == "gate" ? 4 : 0;
  const std::string level = design_level(design);
  if (level.rfind("array", 0) == 0) {
    const DesignPoint shape = DesignPoint::parse("int8@" + level);
    cost += shape.rows * shape.cols >= 64 ? 3 : 2;
  } else {
    cost += 1;
  }
  return cost;
}

// The local executor: `options.jobs` threads, each running one worker process at a time, fed
// from a queue that may grow while they run (the points that depend on b* join it once the
// fine-tuning has chosen b*), the costliest queued point first; a thread of its own draws the
// progress line.
class LocalExecutor {
 public:
  LocalExecutor(const SweepOptions& options, ResultsDb& db, SweepSummary& summary)
      : options_(options), db_(db), summary_(summary) {
    progress_.total = 0;
    for (int j = 0; j < std::max(1, options.jobs); ++j) workers_.emplace_back([this] { work(); });
    if (options_.progress) drawer_ = std::thread([this] { draw(); });
  }
  ~LocalExecutor() { finish(); }

  // Queues points `indices` of `plan`.
  void add(const SweepOptions& options, const SweepPlan& plan, const std::vector<size_t>& indices) {
    std::lock_guard lock(mutex_);
    for (size_t i : indices) {
      Job job{plan.designs[i], plan.keys[i], plan.point_settings[i], plan.folders[i], plan.library.hash, plan.tools,
              worker_argv(options, plan, i), point_cost(plan.designs[i], plan.activities[i]), sequence_++};
      queue_.push_back(std::move(job));
    }
    std::stable_sort(queue_.begin(), queue_.end(), [](const Job& a, const Job& b) {
      return a.cost != b.cost ? a.cost > b.cost : a.sequence < b.sequence;
    });
    {
      std::lock_guard plock(progress_.mutex);
      progress_.total += static_cast<int>(indices.size());
    }
    wake_.notify_all();
  }

  // What the progress line says besides the points (e.g. the fine-tuning's state).
  void note(const std::string& text) {
    std::lock_guard lock(progress_.mutex);
    progress_.note = text;
  }

  // No more points will come: waits for the queued ones (or an interrupt), then stops.
  void finish() {
    {
      std::lock_guard lock(mutex_);
      if (finished_) return;
      closed_ = true;
      wake_.notify_all();
    }
    for (auto& t : workers_) t.join();
    {
      std::lock_guard lock(mutex_);
      finished_ = true;
    }
    done_.notify_all();
    if (drawer_.joinable()) drawer_.join();
    if (options_.progress && progress_.total > 0) draw_progress(progress_, true);
  }

 private:
  struct Job {
    std::string design, key, settings, folder, liberty_hash, tools;
    std::vector<std::string> argv;
    int cost = 0;
    size_t sequence = 0;
  };

  std::optional<Job> next() {
    std::unique_lock lock(mutex_);
    while (true) {
      if (g_interrupted.load()) return std::nullopt;
      if (!queue_.empty()) {
        Job job = std::move(queue_.front());
        queue_.erase(queue_.begin());
        return job;
      }
      if (closed_) return std::nullopt;
      wake_.wait_for(lock, std::chrono::milliseconds(200));
    }
  }

  void work() {
    while (std::optional<Job> job = next()) {
      {
        std::lock_guard lock(progress_.mutex);
        progress_.running.push_back(job->design);
      }
      nlohmann::json result = evaluate_with_worker(job->argv, job->design, options_.out_dir / "points" / job->folder,
                                                   options_.max_file_bytes, &g_interrupted);
      if (g_interrupted.load()) return;  // a killed worker's "error" is not a result
      std::string status = result.value("status", "error");
      {
        std::lock_guard lock(db_mutex_);
        ResultRow row{job->key, job->design, job->liberty_hash, job->tools, job->settings, status, result, ""};
        try {
          db_.put(row);
        } catch (const std::exception& e) {
          std::fprintf(stderr, "\nsweep: cannot store %s: %s\n", job->design.c_str(), e.what());
          status = "error";
        }
      }
      std::lock_guard lock(progress_.mutex);
      progress_.running.erase(std::find(progress_.running.begin(), progress_.running.end(), job->design));
      ++progress_.done;
      if (status != "ok") ++progress_.failed;
      progress_.last = fmt::format("{} {}", job->design.substr(0, 60), status);
      summary_.evaluated++;
      if (status == "ok") summary_.ok++;
      else summary_.failed++;
    }
  }

  void draw() {
    const auto period = std::chrono::milliseconds(isatty(STDERR_FILENO) ? 500 : 10000);
    std::unique_lock lock(mutex_);
    while (!finished_ && !g_interrupted.load()) {
      done_.wait_for(lock, period);
      if (finished_) break;
      lock.unlock();
      bool any;
      {
        std::lock_guard plock(progress_.mutex);
        any = progress_.total > 0;
      }
      if (any) draw_progress(progress_, false);
      lock.lock();
    }
  }

  const SweepOptions& options_;
  ResultsDb& db_;
  SweepSummary& summary_;
  Progress progress_;
  std::mutex mutex_, db_mutex_;
  std::condition_variable wake_, done_;
  std::vector<Job> queue_;
  size_t sequence_ = 0;
  bool closed_ = false, finished_ = false;
  std::vector<std::thread> workers_;
  std::thread drawer_;
};

// The points of `plan` to evaluate: not stored yet, or stored as an error and --retry-errors;
// the others count as reused. `skip`: keys already queued.
std::vector<size_t> needed_points(const SweepOptions& options, const SweepPlan& plan, ResultsDb& db,
                                  const std::set<std::string>& skip, SweepSummary& summary) {
  std::vector<size_t> needed;
  for (size_t i = 0; i < plan.designs.size(); ++i) {
    if (skip.count(plan.keys[i])) continue;
    auto row = db.find(plan.keys[i]);
    if (row && (row->status != "error" || !options.retry_errors)) ++summary.reused;
    else needed.push_back(i);
  }
  return needed;
}

void begin_sweep_record(const SweepOptions& options, const SweepPlan& plan, ResultsDb& db) {
  nlohmann::json arguments = {{"designs", plan.designs}, {"liberty", plan.library.name},
                              {"liberty_hash", plan.library.hash}, {"tools", plan.tools},
                              {"settings", plan.settings}, {"clock_ns", options.clock_ns},
                              {"headline_activity", plan.headline_bits == 0 ? "" : options.headline_activity},
                              {"iso_accuracy", plan.iso_accuracy}};
  db.begin_sweep(arguments, plan.keys);
}

// The default sweep's order on the local executor: the points that are the same whatever b*
// the fine-tuning chooses start at once, beside the fine-tuning; the rest join when b* is known.
SweepPlan run_overlapped(const SweepOptions& options, ResultsDb& db, SweepSummary& summary) {
  SweepPlan early = plan_points_before_b_star(options);
  std::set<std::string> queued;
  LocalExecutor executor(options, db, summary);
  const std::vector<size_t> first = needed_points(options, early, db, {}, summary);
  for (size_t i = 0; i < early.keys.size(); ++i) queued.insert(early.keys[i]);
  if (options.progress && !first.empty())
    std::fprintf(stderr, "sweep: %zu points that do not depend on b* run beside the fine-tuning (%zu reused)\n",
                 first.size(), early.keys.size() - first.size());
  executor.add(options, early, first);
  SweepPlan plan;
  try {
    // With points running, the fine-tuning's lines go into the progress line instead of their own.
    const FinetuneStatus status = [&](const std::string& line) { executor.note(line); };
    plan = finish_plan_after_finetuning(options, std::move(early), first.empty() ? FinetuneStatus{} : status,
                                        &g_interrupted);
  } catch (const FinetuneInterrupted&) {
    executor.finish();
    return plan;
  } catch (...) {
    // The fine-tuning failed (bad input, a diverged run): stop the points as Ctrl-C would.
    g_interrupted.store(true);
    executor.finish();
    throw;
  }
  executor.note("");
  begin_sweep_record(options, plan, db);
  executor.add(options, plan, needed_points(options, plan, db, queued, summary));
  executor.finish();
  return plan;
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
  SweepSummary summary;
  summary.db = options.out_dir / "results.sqlite";
  ResultsDb db(summary.db);

  if (options.executor == "local" && sweep_fine_tunes(options)) {
    InterruptGuard guard;
    const SweepPlan plan = run_overlapped(options, db, summary);
    summary.points = static_cast<int>(plan.designs.size());
    summary.interrupted = g_interrupted.load();
  } else {
    SweepPlan plan = plan_sweep(options);
    begin_sweep_record(options, plan, db);
    const std::vector<size_t> needed = needed_points(options, plan, db, {}, summary);
    summary.points = static_cast<int>(plan.designs.size());
    InterruptGuard guard;
    if (options.executor == "slurm") {
      run_slurm_executor(options, plan, db, needed, summary, g_interrupted);
    } else {
      LocalExecutor executor(options, db, summary);
      executor.add(options, plan, needed);
      executor.finish();
    }
    summary.interrupted = g_interrupted.load();
  }

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
