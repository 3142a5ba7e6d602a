// Co-simulation: every GEMM of a trace set through the Verilated RTL and/or the fast cycle
// model, every output compared bit for bit with golden_gemm (sim/cosim.h).
#include "sim/cosim.h"

#include <fmt/format.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <fstream>
#include <istream>
#include <map>
#include <set>
#include <numeric>
#include <sstream>
#include <thread>

#include "gen/generator.h"
#include "sim/activity.h"
#include "sim/core_cosim.h"
#include "base/errors.h"
#include "base/files.h"
#include "base/process.h"
#include "numerics/format.h"
#include "base/scratch_dir.h"
#include "sim/tile_sample.h"
#include "sim/verilator_build.h"
#include "workloads/trace.h"

namespace fs = std::filesystem;

namespace gsqhw {

// ---- designs ---------------------------------------------------------------------------------

namespace {

// A core's manifest carries its datapath array's manifest under "array" (gen/core.h).
const nlohmann::json& array_manifest_of(const nlohmann::json& manifest) {
  return manifest.value("level", "") == "core" && manifest.contains("array") ? manifest.at("array")
                                                                            : manifest;
}

void check_level(const CosimDesign& d, bool core_allowed = true) {
  if (d.design.level == DesignPoint::Level::core && !core_allowed)
    throw UsageError(fmt::format(
        "design {}: co-simulation drives the pe and array levels (the array port protocol of "
        "docs/array-protocol.md); cores run through run_cosim_traces (sim/core_cosim.h)",
        d.design.str()));
}

}  // namespace

CosimDesign cosim_design_generate(const DesignPoint& design) {
  GeneratedDesign generated = generate_design(design);
  CosimDesign d;
  d.design = design;
  d.manifest = generated.manifest;
  d.array = ArrayManifest::from_json(array_manifest_of(generated.manifest));
  d.sources = generated.files;
  check_level(d);
  return d;
}

CosimDesign cosim_design_from_dir(const fs::path& dir) {
  fs::path manifest_path = dir / "manifest.json";
  if (!fs::exists(manifest_path))
    throw UsageError(fmt::format("{} has no manifest.json (is it a `gsqhw gen` folder?)",
                                 dir.string()));
  CosimDesign d;
  try {
    d.manifest = nlohmann::json::parse(read_file(manifest_path));
  } catch (const nlohmann::json::parse_error& e) {
    throw UsageError(fmt::format("{}: {}", manifest_path.string(), e.what()));
  }
  if (d.manifest.contains("int_bits"))
    throw UsageError(fmt::format(
        "{} holds a plain INT{} baseline (gsqhw gen --int-bits): a synthesis baseline with no golden "
        "model of its own; INT8 traces do not fit its {}-bit ports",
        dir.string(), d.manifest["int_bits"].dump(), d.manifest["int_bits"].dump()));
  d.array = ArrayManifest::from_json(array_manifest_of(d.manifest));
  d.design = DesignPoint::parse(d.manifest.at("design").get<std::string>());
  for (const auto& file : d.manifest.at("files").get<std::vector<std::string>>())
    d.sources.emplace_back(file, read_file(dir / file));
  check_level(d);
  return d;
}

// ---- formats and values ----------------------------------------------------------------------

std::string hardware_format_key(const std::string& format_spec) {
  return parse_format(format_spec)->hardware_spec();
}

namespace {

// "" when both operands' formats fit the design, else why not (one line naming the trace).
std::string operands_misfit(const CosimDesign& d, const std::string& trace, const std::string& a,
                            const std::string& b) {
  const std::string design_key = hardware_format_key(d.design.format);
  for (const auto& [spec, which] : {std::pair{a, "A"}, std::pair{b, "B"}})
    if (hardware_format_key(spec) != design_key)
      return fmt::format("trace {}: operand {} has format {} but design {} computes on {}", trace,
                         which, spec, d.design.str(), d.design.format);
  return "";
}

// A complete `gsqhw trace` command that writes traces this design runs: the model, layer and
// projections of the given traces when their metadata says (else the tiny model), in the
// design's format and accumulator.
std::string regenerate_command(const CosimDesign& d, const std::vector<Trace>& like) {
  std::string model = "tiny", layer = "0", proj = "all", tokens, rank;
  if (!like.empty()) {
    const nlohmann::json& info = like.front().metadata;
    auto text = [&](const char* key) -> std::string {
      if (!info.contains(key)) return "";
      return info[key].is_string() ? info[key].get<std::string>() : info[key].dump();
    };
    if (!text("model").empty()) model = text("model");
    if (!text("layer").empty()) layer = text("layer");
    tokens = text("tokens");
    rank = text("rank");
    std::set<std::string> projections;
    for (const auto& t : like)
      if (t.metadata.contains("proj") && t.metadata["proj"].is_string())
        projections.insert(t.metadata["proj"].get<std::string>());
    if (projections.size() == 1) proj = *projections.begin();
  }
  std::string family = d.design.format.substr(0, d.design.format.find(':'));
  std::string command = fmt::format("`gsqhw trace --model {} --layer {} --proj {}", model, layer, proj);
  if (!tokens.empty()) command += " --tokens " + tokens;
  if (!rank.empty()) command += " --rank " + rank;
  return command + fmt::format(" --formats 'all={}' --acc {} --out traces-{}`", d.design.format,
                               d.design.acc.str(), family);
}

}  // namespace

float dequantize_accumulator(const AccumulatorSpec& acc, int64_t acc_raw, uint8_t flags,
                             float scale_a, float scale_b, bool int8_scales) {
  if (flags & kFlagNaN) {
    uint32_t bits = 0x7fc00000u;
    float nan;
    std::memcpy(&nan, &bits, 4);
    return nan;
  }
  float out;
  if (acc.kind == AccumulatorSpec::Kind::fixed) {
    // long double holds any int64 exactly, and scaling by a power of two is exact, so the
    // conversion to float is the one rounding (to nearest even).
    out = static_cast<float>(std::ldexp(static_cast<long double>(acc_raw), -acc.frac_bits));
  } else {
    uint32_t bits = static_cast<uint32_t>(acc_raw);
    std::memcpy(&out, &bits, 4);
  }
  if (int8_scales) {
    out = out * scale_a;
    out = out * scale_b;
  }
  return out;
}

// ---- sampling --------------------------------------------------------------------------------

CosimOptions::Sample parse_sample(const std::string& text) {
  CosimOptions::Sample sample;
  auto bad = [&] {
    return UsageError(fmt::format(
        "--sample {}: give a tile count per GEMM (an integer >= 1) or a fraction of the tiles "
        "(0 < f <= 1, written with a point, e.g. 0.05 or 1.0, or as a percentage, e.g. 5%)",
        text));
  };
  std::string body = text;
  const bool percent = !body.empty() && body.back() == '%';
  if (percent) body.pop_back();
  if (body.empty() || body.find_first_not_of("0123456789.") != std::string::npos) throw bad();
  double value = 0;
  try {
    size_t used = 0;
    value = std::stod(body, &used);
    if (used != body.size()) throw bad();
  } catch (const std::logic_error&) {
    throw bad();
  }
  sample.fraction = percent || body.find('.') != std::string::npos;
  sample.value = percent ? value / 100 : value;
  if (sample.fraction ? !(sample.value > 0 && sample.value <= 1) : sample.value < 1) throw bad();
  return sample;
}

const std::vector<std::pair<std::string, std::string>> kCoverageCases = {
    {"saturation", "a fixed accumulator ends at its largest or smallest code"},
    {"sticky_overflow", "the sticky overflow flag is set"},
    {"nan_group", "the NaN flag is set (a NaN group or non-finite input)"},
    {"zero_group", "an operand group of all-zero codes"},
    {"partial_group", "K is not a multiple of the group size (lanes fed a short last group)"},
    {"max_exponent", "an operand group exponent at the largest code"},
    {"min_exponent", "a non-zero operand group at exponent code 0"},
    {"fp8_subnormal", "a subnormal FP8 operand element"},
};

// ---- the checker -----------------------------------------------------------------------------

namespace {

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// An std::istream over a file descriptor (the testbench's stdout pipe carrying the VCD).
class FdStreamBuf : public std::streambuf {
 public:
  explicit FdStreamBuf(int fd) : fd_(fd) { setg(buf_, buf_, buf_); }

 protected:
  int_type underflow() override {
    if (gptr() < egptr()) return traits_type::to_int_type(*gptr());
    ssize_t n;
    do {
      n = ::read(fd_, buf_, sizeof buf_);
    } while (n < 0 && errno == EINTR);
    if (n <= 0) return traits_type::eof();
    setg(buf_, buf_, buf_ + n);
    return traits_type::to_int_type(*gptr());
  }

 private:
  int fd_;
  char buf_[1 << 16];
};

// Thrown inside the stimulus writer when the testbench stopped reading (it exited).
struct TestbenchGone {};

// Runs the testbench `tb` on `tiles` of the GEMM (nullptr: all, in order) for `cycles`
// cycles, the stimulus streamed straight from the schedule (drive_tiles) into its stdin: no
// stimulus file. Results go to `dir`/results.bin. With `stdout_reader` the testbench's stdout is
// a pipe handed to it (the VCD of --trace /dev/stdout). Returns the exit status.
int run_testbench_streamed(const fs::path& tb, const ArrayManifest& array, const QuantizedTensor& a,
                           const QuantizedTensor& b, const std::vector<int64_t>* tiles,
                           int64_t cycles, const fs::path& dir,
                           const std::vector<std::string>& extra_args,
                           const std::function<void(int fd)>& stdout_reader = {}) {
  std::vector<std::string> argv = {tb.string(), "--stimulus", "-", "--results",
                                   (dir / "results.bin").string()};
  argv.insert(argv.end(), extra_args.begin(), extra_args.end());
  auto child = std::make_unique<ChildProcess>(argv, dir / "tb.log", /*pipe_stdin=*/true,
                                              /*pipe_stdout=*/bool(stdout_reader));
  std::exception_ptr writer_error;
  std::thread writer([&] {
    try {
      int words = 0;
      stimulus_layout(array, &words);
      std::vector<char> buffer;
      buffer.reserve(1 << 20);
      auto append = [&](const void* p, size_t n) {
        buffer.insert(buffer.end(), static_cast<const char*>(p), static_cast<const char*>(p) + n);
      };
      auto flush = [&] {
        if (!child->write_stdin(buffer.data(), buffer.size())) throw TestbenchGone{};
        buffer.clear();
      };
      const uint32_t version = 1, n_words = static_cast<uint32_t>(words);
      const uint64_t n_cycles = static_cast<uint64_t>(cycles);
      append("GSQHWSTI", 8);
      append(&version, 4);
      append(&n_words, 4);
      append(&n_cycles, 8);
      drive_tiles(array, a, b, tiles, cycles, [&](int64_t, const std::vector<uint64_t>& record) {
        append(record.data(), sizeof(uint64_t) * static_cast<size_t>(words));
        if (buffer.size() >= (1 << 20)) flush();
      });
      flush();
    } catch (const TestbenchGone&) {
      // The exit status says why.
    } catch (...) {
      writer_error = std::current_exception();
    }
    child->close_stdin();
  });
  try {
    if (stdout_reader) stdout_reader(child->stdout_fd());
  } catch (...) {
    child->kill();  // ends the writer (its writes fail), then reap the testbench
    writer.join();
    child->wait();
    throw;
  }
  writer.join();
  const int rc = child->wait();
  if (writer_error) std::rethrow_exception(writer_error);
  return rc;
}

std::string engine_name(CosimOptions::Engine e) {
  switch (e) {
    case CosimOptions::Engine::rtl: return "rtl";
    case CosimOptions::Engine::fast: return "fast";
    case CosimOptions::Engine::lockstep: return "lockstep";
  }
  return "?";
}

class Checker {
 public:
  Checker(const CosimDesign& design, const CosimOptions& options)
      : d_(design), options_(options), acc_(design.design.acc) {
    result_.engine = engine_name(options.engine);
    result_.design = d_.design.str();
    int8_ = parse_format(d_.design.format)->gemm_operand() == GemmOperandKind::integer;
    shape_ = operand_shape(d_.design.format, d_.array.exp_width);
    if (options_.engine == CosimOptions::Engine::fast && options_.activity)
      throw UsageError("--activity needs simulated nets: use --engine rtl or lockstep");
    if (options_.systemc && options_.activity)
      throw UsageError("the SystemC testbench does not trace: drop --systemc for --activity");
    if (options_.engine == CosimOptions::Engine::fast && options_.waves)
      throw UsageError("--waves needs simulated nets: use --engine rtl or lockstep");
    if (options_.engine == CosimOptions::Engine::fast && !options_.netlist_files.empty())
      throw UsageError("--netlist simulates a netlist: use --engine rtl or lockstep");
    if (options_.max_mismatches_reported < 0)
      throw UsageError("max_mismatches_reported must be >= 0");
    if (options_.jobs < 1 || options_.jobs > 256)
      throw UsageError(fmt::format("--jobs {}: give 1..256 worker processes", options_.jobs));
    if (options_.max_special_tiles < 0) throw UsageError("max_special_tiles must be >= 0");
    if (options_.verilator_threads < 1 || options_.verilator_threads > 64)
      throw UsageError("Verilator threads must be 1..64");
    if (tiled()) {
      if (options_.engine == CosimOptions::Engine::fast)
        throw UsageError("--sample/--jobs run tiles on the RTL against the fast model: use "
                         "--engine rtl (the fast model always runs every tile)");
      if (options_.activity)
        throw UsageError("--activity needs whole-GEMM runs: drop --sample/--jobs");
      if (options_.systemc) throw UsageError("--sample/--jobs use the plain C++ testbench: drop --systemc");
      if (options_.rtl_path == CosimOptions::RtlPath::legacy)
        throw UsageError("--sample/--jobs stream the stimulus (the fast RTL path)");
    }
    result_.coverage.sampled = options_.sample.has_value();
  }

  void check(const CosimGemm& gemm) {
    validate(gemm);
    // Built lazily, after the first GEMM passed validation: a wrong trace fails in milliseconds.
    if (uses_rtl() && tb_.empty()) prepare_rtl();
    if (tiled()) return check_tiles(gemm);
    const GemmResult expected = golden_gemm(gemm.a, gemm.b, acc_, 0);
    check_trace_golden(gemm, expected);

    CosimGemmReport report;
    report.trace = gemm.name;
    report.timing = gemm_timing(d_.array, gemm.a.rows, gemm.b.rows, gemm.a.cols, gemm.a.group_size);
    const int64_t before = result_.mismatch_count;

    auto engine_start = std::chrono::steady_clock::now();
    std::optional<Beats> rtl, fast;
    if (uses_rtl()) rtl = run_rtl(gemm, report.timing);
    if (options_.engine != CosimOptions::Engine::rtl)
      fast = fast_model_run(d_.array, gemm.a, gemm.b, acc_, 0);
    report.engine_seconds = seconds_since(engine_start);
    result_.engine_seconds += report.engine_seconds;

    if (rtl) {
      int64_t first_cycle = compare(gemm, expected, *rtl, report.timing, "rtl");
      report.measured_cycles = rtl->size() ? rtl->cycle.back() + 1 : 0;
      if (first_cycle >= 0 && !result_.waves_written) write_waves(gemm, nullptr, first_cycle);
    }
    if (fast) {
      compare(gemm, expected, *fast, report.timing, "fast");
      if (!rtl) report.measured_cycles = fast->size() ? fast->cycle.back() + 1 : 0;
    }
    if (rtl && fast) compare_lockstep(gemm, *rtl, *fast);
    add_whole_gemm_coverage(gemm, report.timing, rtl ? *rtl : *fast);

    report.mismatches = result_.mismatch_count - before;
    result_.gemms += 1;
    result_.macs += report.timing.macs;
    result_.cycles += report.measured_cycles;
    result_.per_gemm.push_back(report);
  }

  CosimResult finish() {
    if (options_.activity) {
      activity_.design = d_.design.str();
      activity_.top = d_.array.top;
      fs::path path = *options_.activity;
      if (path.has_parent_path()) fs::create_directories(path.parent_path());
      write_file_atomically(path, activity_.to_json().dump(1) + "\n");
      result_.activity_written = path;
    }
    result_.pass = result_.mismatch_count == 0 && result_.errors.empty();
    return std::move(result_);
  }

  CosimResult& result() { return result_; }

 private:
  bool uses_rtl() const { return options_.engine != CosimOptions::Engine::fast; }
  // Tile-list runs (sampled, or split over worker processes) instead of whole-GEMM runs.
  bool tiled() const { return options_.sample.has_value() || options_.jobs > 1; }
  bool fast_build() const {
    return options_.rtl_path == CosimOptions::RtlPath::fast && !options_.activity &&
           !options_.systemc;
  }

  void validate(const CosimGemm& g) {
    if (std::string why = operands_misfit(d_, g.name, g.a.format_spec, g.b.format_spec); !why.empty())
      throw UsageError(fmt::format("{} ({})", why, regenerate_command(d_, {})));
    if (g.a.cols != g.b.cols)
      throw UsageError(fmt::format("trace {}: A has K = {} but B has K = {}", g.name, g.a.cols,
                                   g.b.cols));
    if (g.a.rows < 1 || g.b.rows < 1 || g.a.cols < 1)
      throw UsageError(fmt::format("trace {}: empty GEMM ({} x {} x {})", g.name, g.a.rows,
                                   g.b.rows, g.a.cols));
  }

  void check_trace_golden(const CosimGemm& g, const GemmResult& expected) {
    if (!g.trace_golden || !(g.trace_acc == acc_)) return;
    const GemmResult& t = *g.trace_golden;
    if (t.acc_raw != expected.acc_raw || t.flags != expected.flags)
      result_.errors.push_back(fmt::format(
          "trace {}: its stored golden output ({}) differs from golden_gemm recomputed now; the "
          "trace or the golden model changed",
          g.name, g.trace_acc.str()));
  }

  // ---- RTL ----

  VerilatorBuildSpec build_spec(bool fst) const {
    VerilatorBuildSpec spec;
    spec.top = d_.array.top;
    spec.ports = d_.array.ports;
    spec.fst = fst;
    spec.systemc = options_.systemc;
    spec.label = d_.design.str();
    if (options_.netlist_files.empty()) {
      spec.sources = d_.sources;
    } else {
      spec.label += " (gate-level)";
      for (const auto& f : options_.netlist_files)
        spec.sources.emplace_back(f.filename().string(), read_file(f));
    }
    return spec;
  }

  fs::path cache_dir() const {
    return options_.cache_dir.empty() ? default_cache_dir() : options_.cache_dir;
  }

  void prepare_rtl() {
    VerilatorBuildSpec spec = build_spec(false);
    spec.fast = fast_build();
    if (spec.fast) spec.threads = options_.verilator_threads;
    VerilatedModel model = build_verilated_model(spec, cache_dir());
    tb_ = model.executable;
    result_.build_seconds += model.build_seconds;
  }

  int64_t slack_cycles() const { return std::max(8, d_.array.latency + d_.array.drain_beats); }

  Beats run_rtl(const CosimGemm& g, const GemmTiming& timing) {
    const int64_t total = timing.cycles + slack_cycles();  // every beat, then idle slack
    fs::path results = scratch_.path() / "results.bin";
    fs::path log = scratch_.path() / "tb.log";
    int rc;
    if (options_.rtl_path == CosimOptions::RtlPath::legacy || options_.systemc) {
      // The old path (and the SystemC testbench, which reads files only): the whole stimulus
      // written to a file first, then replayed.
      fs::path stimulus = scratch_.path() / "stimulus.bin";
      write_stimulus(d_.array, g.a, g.b, slack_cycles(), stimulus);
      fs::remove(log);
      rc = run_logged({tb_.string(), "--stimulus", stimulus.string(), "--results",
                       results.string()},
                      log);
    } else if (options_.activity) {
      // The testbench streams the VCD of the whole run into our pipe; we fold it into
      // per-net activity as it arrives, so nothing large touches the disk.
      const int64_t reset = 2, period = 10;
      SwitchingActivity run;
      std::exception_ptr parse_error;
      rc = run_testbench_streamed(
          tb_, d_.array, g.a, g.b, nullptr, total, scratch_.path(), {"--trace", "/dev/stdout"},
          [&](int fd) {
            FdStreamBuf buf(fd);
            std::istream vcd(&buf);
            try {
              run = activity_from_vcd(vcd, d_.array.top, period, reset * period,
                                      (reset + timing.cycles) * period);
            } catch (const UsageError&) {
              // A testbench that died mid-run leaves a cut VCD: its exit status tells.
              parse_error = std::current_exception();
            }
          });
      if (rc == 0 && parse_error) std::rethrow_exception(parse_error);
      if (rc == 0) activity_.merge(run);
    } else {
      rc = run_testbench_streamed(tb_, d_.array, g.a, g.b, nullptr, total, scratch_.path(), {});
    }
    if (rc != 0)
      throw std::runtime_error(fmt::format("the Verilated testbench failed (exit {}) on {}:\n{}",
                                           rc, g.name, read_file_if_present(log)));
    return read_results(d_.array, acc_.kind == AccumulatorSpec::Kind::fixed, results);
  }

  // A waveform of a window around `cycle` of a re-run with the traced build: of the whole GEMM
  // (tiles nullptr) or of a tile list (then `cycle` is a cycle of that list's run).
  void write_waves(const CosimGemm& g, const std::vector<int64_t>* tiles, int64_t cycle) {
    fs::path path;
    if (options_.waves) {
      path = *options_.waves;
    } else {
      path = fs::temp_directory_path() /
             fmt::format("gsqhw-mismatch-{}-{}.vcd", d_.design.slug(), ::getpid());
    }
    const bool fst = path.extension() == ".fst";
    if (!fst && path.extension() != ".vcd")
      throw UsageError(fmt::format("--waves {}: the file must end in .vcd or .fst", path.string()));
    // Waveforms come from the traced plain C++ build (the fast and SystemC ones do not trace).
    VerilatorBuildSpec spec = build_spec(fst);
    spec.systemc = false;
    const fs::path tb = build_verilated_model(spec, cache_dir()).executable;
    if (path.has_parent_path()) fs::create_directories(path.parent_path());
    const GemmTiming t = gemm_timing(d_.array, g.a.rows, g.b.rows, g.a.cols, g.a.group_size);
    const int64_t run_tiles = tiles ? static_cast<int64_t>(tiles->size()) : t.tiles;
    const int64_t total = run_cycles(d_.array, t.steps_per_tile, run_tiles) + slack_cycles();
    const int64_t window = 32 + d_.array.latency + d_.array.drain_beats;
    fs::path dir = scratch_.path() / "waves";
    fs::create_directories(dir);
    int rc = run_testbench_streamed(
        tb, d_.array, g.a, g.b, tiles, total, dir,
        {"--trace", path.string(), "--trace-from",
         std::to_string(std::max<int64_t>(0, cycle - window)), "--trace-to",
         std::to_string(cycle + 8)});
    if (rc != 0)
      throw std::runtime_error(fmt::format("re-running {} with tracing failed:\n{}", g.name,
                                           read_file_if_present(dir / "tb.log")));
    result_.waves_written = path;
  }

  // ---- comparison ----

  // Compares beats with the golden outputs; returns the cycle of the first mismatch or -1.
  int64_t compare(const CosimGemm& g, const GemmResult& expected, const Beats& beats,
                  const GemmTiming& t, const std::string& engine) {
    const int R = d_.array.rows, C = d_.array.cols;
    const int64_t M = g.a.rows, N = g.b.rows;
    const size_t want = static_cast<size_t>(t.tiles * R);
    int64_t first_cycle = -1;
    if (beats.size() != want)
      result_.errors.push_back(fmt::format(
          "{} on {}: {} result beats, the schedule needs {} ({} tiles x {} rows)", engine,
          g.name, beats.size(), want, t.tiles, R));
    int timing_errors = 0;
    for (size_t i = 0; i < std::min(want, beats.size()); ++i) {
      const int64_t tile = static_cast<int64_t>(i) / R;
      const int beat = static_cast<int>(i % R);
      const int64_t want_cycle = beat_cycle(d_.array, t.steps_per_tile, tile, beat);
      if ((beats.cycle[i] != want_cycle || beats.row[i] != beat) && timing_errors++ < 3) {
        result_.errors.push_back(fmt::format(
            "{} on {}: beat {} (tile {}, row {}) came on cycle {} with out_row {}; the manifest "
            "timing (latency {}, {} steps per tile) puts it on cycle {}",
            engine, g.name, i, tile, beat, beats.cycle[i], beats.row[i], d_.array.latency,
            t.steps_per_tile, want_cycle));
        if (first_cycle < 0) first_cycle = beats.cycle[i];
      }
      const int64_t tr = tile / t.tiles_n, tc = tile % t.tiles_n;
      const int64_t m = tr * R + beat;
      if (m >= M) continue;
      for (int j = 0; j < C; ++j) {
        const int64_t n = tc * C + j;
        if (n >= N) continue;
        const size_t out = static_cast<size_t>(m * N + n), lane = i * C + j;
        const int64_t acc = beats.acc[lane];
        const uint8_t flags = beats.flags[lane];
        if (acc == expected.acc_raw[out] && flags == expected.flags[out]) continue;
        ++result_.mismatch_count;
        if (first_cycle < 0) first_cycle = beats.cycle[i];
        record_mismatch({.gemm_row = m, .gemm_col = n, .tile_row = static_cast<int>(tr), .tile_col = static_cast<int>(tc),
                         .pe_row = beat, .pe_col = j, .cycle = beats.cycle[i], .run_cycle = -1},
                        g, engine, expected, out, acc, flags);
      }
    }
    return first_cycle;
  }

  // Where a wrong output came out (the fields of Mismatch of the same names).
  struct Place {
    int64_t gemm_row, gemm_col;
    int tile_row, tile_col, pe_row, pe_col;
    int64_t cycle, run_cycle;
  };

  // Records a wrong output at `place` with both values, up to the report's limit (every one is
  // counted by the caller).
  void record_mismatch(const Place& place, const CosimGemm& g, const std::string& engine, const GemmResult& expected,
                       size_t out, int64_t acc, uint8_t flags) {
    if (static_cast<int>(result_.mismatches.size()) >= options_.max_mismatches_reported) return;
    Mismatch where;
    where.gemm_row = place.gemm_row;
    where.gemm_col = place.gemm_col;
    where.tile_row = place.tile_row;
    where.tile_col = place.tile_col;
    where.pe_row = place.pe_row;
    where.pe_col = place.pe_col;
    where.cycle = place.cycle;
    where.run_cycle = place.run_cycle;
    where.design = d_.design.str();
    where.trace = g.name;
    where.engine = engine;
    where.expected_acc = expected.acc_raw[out];
    where.actual_acc = acc;
    where.expected_flags = expected.flags[out];
    where.actual_flags = flags;
    where.expected_value = expected.out[out];
    where.actual_value =
        dequantize_accumulator(acc_, acc, flags, scale_of(g.a, where.gemm_row), scale_of(g.b, where.gemm_col), int8_);
    result_.mismatches.push_back(std::move(where));
  }

  static float scale_of(const QuantizedTensor& q, int64_t row) {
    if (q.scales.empty()) return 1;
    return q.scales.size() == 1 ? q.scales[0] : q.scales[static_cast<size_t>(row)];
  }

  // Lockstep: the RTL and the fast model must agree beat for beat (cycle, row, every real lane).
  void compare_lockstep(const CosimGemm& g, const Beats& rtl, const Beats& fast) {
    const int R = d_.array.rows, C = d_.array.cols;
    const GemmTiming t = gemm_timing(d_.array, g.a.rows, g.b.rows, g.a.cols, g.a.group_size);
    if (rtl.size() != fast.size()) {
      result_.errors.push_back(fmt::format("lockstep on {}: RTL gave {} beats, the fast model {}",
                                           g.name, rtl.size(), fast.size()));
      return;
    }
    int64_t rtl_cycles = rtl.size() ? rtl.cycle.back() + 1 : 0;
    int64_t fast_cycles = fast.size() ? fast.cycle.back() + 1 : 0;
    if (rtl_cycles != fast_cycles)
      result_.errors.push_back(fmt::format("lockstep on {}: RTL took {} cycles, the fast model {}",
                                           g.name, rtl_cycles, fast_cycles));
    for (size_t i = 0; i < rtl.size(); ++i) {
      const int64_t tile = static_cast<int64_t>(i) / R;
      const int64_t m = (tile / t.tiles_n) * R + static_cast<int64_t>(i % R);
      bool differs = rtl.cycle[i] != fast.cycle[i] || rtl.row[i] != fast.row[i];
      for (int j = 0; j < C && !differs && m < g.a.rows; ++j) {
        const int64_t n = (tile % t.tiles_n) * C + j;
        if (n >= g.b.rows) continue;
        differs = rtl.acc[i * C + j] != fast.acc[i * C + j] ||
                  rtl.flags[i * C + j] != fast.flags[i * C + j];
      }
      if (differs) {
        result_.errors.push_back(fmt::format(
            "lockstep on {}: beat {} differs between the RTL (cycle {}) and the fast model "
            "(cycle {})",
            g.name, i, rtl.cycle[i], fast.cycle[i]));
        return;
      }
    }
  }

  // ---- tile-list runs (sampled, or split over worker processes) ----

  // The fast model computes every tile; the RTL runs the chosen tiles, split into contiguous
  // runs over `jobs` testbench processes; each RTL tile is checked against golden_gemm of its
  // own operand block and against the fast model's beat timing; the report is in tile order
  // whatever the split.
  void check_tiles(const CosimGemm& g) {
    CosimGemmReport report;
    report.trace = g.name;
    const GemmTiming t = gemm_timing(d_.array, g.a.rows, g.b.rows, g.a.cols, g.a.group_size);
    report.timing = t;
    const int64_t before = result_.mismatch_count;

    auto fast_started = std::chrono::steady_clock::now();
    const Beats fast = fast_model_run(d_.array, g.a, g.b, acc_, 0);
    const double fast_seconds = seconds_since(fast_started);
    check_fast_against_trace_golden(g, fast);
    const TileFacts facts = classify_tiles(d_.array, t, g.a, g.b, fast, acc_, shape_);
    TileChoice choice;
    if (options_.sample) {
      choice = choose_tiles(facts, options_.sample->fraction, options_.sample->value,
                            options_.seed, g.name, options_.max_special_tiles);
    } else {
      choice.tiles.resize(static_cast<size_t>(t.tiles));
      std::iota(choice.tiles.begin(), choice.tiles.end(), int64_t{0});
      choice.random = t.tiles;
      choice.capped.assign(kTileCaseCount, 0);
    }

    const auto runs = split_runs(choice.tiles, options_.jobs);
    auto rtl_started = std::chrono::steady_clock::now();
    const std::vector<Beats> rtl = run_tile_runs(g, t, runs);
    const double rtl_seconds = seconds_since(rtl_started);
    result_.fast_seconds += fast_seconds;
    result_.rtl_seconds += rtl_seconds;
    report.engine_seconds = fast_seconds + rtl_seconds;
    result_.engine_seconds += report.engine_seconds;

    int64_t first_tile = -1, first_prev = -1, first_run_cycle = -1;
    timing_errors_ = 0;
    int64_t previous = -1;  // the tile before, in the chosen order
    for (size_t ri = 0; ri < runs.size(); ++ri) {
      for (size_t pos = 0; pos < runs[ri].size(); ++pos) {
        const int64_t tile = runs[ri][pos];
        const int64_t r = compare_tile(g, t, fast, rtl[ri], static_cast<int64_t>(pos), tile,
                                       previous >= 0);
        if (r >= 0 && first_tile < 0) {
          first_tile = tile, first_prev = previous;
          first_run_cycle = beat_cycle(d_.array, t.steps_per_tile, previous >= 0 ? 1 : 0,
                                       static_cast<int>(r));
        }
        previous = tile;
      }
      const size_t want = runs[ri].size() * static_cast<size_t>(d_.array.rows);
      if (rtl[ri].size() > want)
        result_.errors.push_back(fmt::format("rtl on {}: a run of {} tiles gave {} result beats, "
                                             "the schedule {}",
                                             g.name, runs[ri].size(), rtl[ri].size(), want));
    }
    add_coverage(facts, choice, t);

    report.measured_cycles = fast.size() ? fast.cycle.back() + 1 : 0;
    report.mismatches = result_.mismatch_count - before;
    result_.gemms += 1;
    result_.macs += t.macs;
    result_.cycles += report.measured_cycles;
    result_.per_gemm.push_back(report);
    if (first_tile >= 0 && !result_.waves_written) {
      // Re-run the failing tile after the tile that preceded it in the sample, traced.
      std::vector<int64_t> again;
      if (first_prev >= 0) again.push_back(first_prev);
      again.push_back(first_tile);
      write_waves(g, &again, first_run_cycle);
    }
  }

  static std::vector<std::vector<int64_t>> split_runs(const std::vector<int64_t>& tiles, int jobs) {
    std::vector<std::vector<int64_t>> runs;
    const size_t n = tiles.size(), J = static_cast<size_t>(std::max(1, jobs));
    for (size_t w = 0; w < J; ++w) {
      const size_t lo = w * n / J, hi = (w + 1) * n / J;
      if (lo < hi) runs.emplace_back(tiles.begin() + static_cast<std::ptrdiff_t>(lo),
                                     tiles.begin() + static_cast<std::ptrdiff_t>(hi));
    }
    return runs;
  }

  // One testbench process per run, concurrently; beats per run.
  std::vector<Beats> run_tile_runs(const CosimGemm& g, const GemmTiming& t,
                                   const std::vector<std::vector<int64_t>>& runs) {
    std::vector<Beats> out(runs.size());
    std::vector<std::exception_ptr> errors(runs.size());
    std::vector<int64_t> cycles(runs.size(), 0);
    auto run_one = [&](size_t w) {
      try {
        const fs::path dir = scratch_.path() / fmt::format("job{}", w);
        fs::create_directories(dir);
        cycles[w] = run_cycles(d_.array, t.steps_per_tile, static_cast<int64_t>(runs[w].size())) +
                    slack_cycles();
        const int rc = run_testbench_streamed(tb_, d_.array, g.a, g.b, &runs[w], cycles[w], dir, {});
        if (rc != 0)
          throw std::runtime_error(fmt::format("the Verilated testbench failed (exit {}) on {}:\n{}",
                                               rc, g.name, read_file_if_present(dir / "tb.log")));
        out[w] = read_results(d_.array, acc_.kind == AccumulatorSpec::Kind::fixed,
                              dir / "results.bin");
      } catch (...) {
        errors[w] = std::current_exception();
      }
    };
    if (runs.size() == 1) {
      run_one(0);
    } else {
      std::vector<std::thread> pool;
      for (size_t w = 0; w < runs.size(); ++w) pool.emplace_back(run_one, w);
      for (auto& th : pool) th.join();
    }
    for (auto& e : errors)
      if (e) std::rethrow_exception(e);
    for (int64_t c : cycles) result_.rtl_cycles += c;
    return out;
  }

  // Tile `tile`, run position `pos` of `rtl`: beat timing, then every real lane of the RTL and
  // of the fast model against golden_gemm of the tile's operand block. Returns the row of the
  // first RTL mismatch (-1: none).
  int64_t compare_tile(const CosimGemm& g, const GemmTiming& t, const Beats& fast, const Beats& rtl,
                       int64_t pos, int64_t tile, bool has_previous) {
    const int R = d_.array.rows, C = d_.array.cols;
    const int64_t tr = tile / t.tiles_n, tc = tile % t.tiles_n;
    const int64_t r0 = tr * R, r1 = std::min<int64_t>(g.a.rows, r0 + R);
    const int64_t c0 = tc * C, c1 = std::min<int64_t>(g.b.rows, c0 + C);
    const GemmResult golden =
        golden_gemm(quantized_rows(g.a, r0, r1), quantized_rows(g.b, c0, c1), acc_, 1);
    int64_t first_row = -1;
    for (int r = 0; r < R; ++r) {
      const size_t i = static_cast<size_t>(pos * R + r);
      const size_t fb = static_cast<size_t>(tile * R + r);
      const int64_t gemm_cycle = fast.cycle[fb];
      const int64_t want_run = beat_cycle(d_.array, t.steps_per_tile, pos, r);
      if (gemm_cycle - beat_cycle(d_.array, t.steps_per_tile, tile, 0) !=
          want_run - beat_cycle(d_.array, t.steps_per_tile, pos, 0))
        result_.errors.push_back(fmt::format("fast on {}: tile {} row {} on cycle {}, off the "
                                             "manifest schedule",
                                             g.name, tile, r, gemm_cycle));
      if (i >= rtl.size()) {
        if (timing_errors_++ < 3)
          result_.errors.push_back(fmt::format("rtl on {}: tile {} row {}: no result beat (the "
                                               "run gave {} beats)",
                                               g.name, tile, r, rtl.size()));
        if (first_row < 0) first_row = r;
        continue;
      }
      if ((rtl.cycle[i] != want_run || rtl.row[i] != r) && timing_errors_++ < 3) {
        result_.errors.push_back(fmt::format(
            "rtl on {}: tile {} row {} came {} cycles after its tile started with out_row {}; "
            "the manifest timing (latency {}, {} steps per tile) says {} (GEMM cycle {})",
            g.name, tile, r, rtl.cycle[i] - beat_cycle(d_.array, t.steps_per_tile, pos, 0),
            rtl.row[i], d_.array.latency, t.steps_per_tile,
            want_run - beat_cycle(d_.array, t.steps_per_tile, pos, 0), gemm_cycle));
        if (first_row < 0) first_row = r;
      }
      const int64_t m = r0 + r;
      if (m >= r1) continue;
      for (int j = 0; j < C; ++j) {
        const int64_t n = c0 + j;
        if (n >= c1) continue;
        const size_t out = static_cast<size_t>(r * (c1 - c0) + j);
        for (const auto& [beats, beat, engine] :
             {std::tuple{&rtl, i, "rtl"}, std::tuple{&fast, fb, "fast"}}) {
          const int64_t acc = beats->acc[beat * C + j];
          const uint8_t flags = beats->flags[beat * C + j];
          if (acc == golden.acc_raw[out] && flags == golden.flags[out]) continue;
          ++result_.mismatch_count;
          if (engine == std::string("rtl") && first_row < 0) first_row = r;
          record_mismatch({.gemm_row = m, .gemm_col = n, .tile_row = static_cast<int>(tr),
                           .tile_col = static_cast<int>(tc), .pe_row = r, .pe_col = j, .cycle = gemm_cycle,
                           .run_cycle = beat_cycle(d_.array, t.steps_per_tile, has_previous ? 1 : 0, r)},
                          g, engine, golden, out, acc, flags);
        }
      }
    }
    return first_row;
  }

  // The trace's stored golden output (when computed with this accumulator) against the fast
  // model's every output: the whole GEMM's values are checked even where the RTL samples.
  void check_fast_against_trace_golden(const CosimGemm& g, const Beats& fast) {
    if (!g.trace_golden || !(g.trace_acc == acc_)) return;
    const GemmResult& golden = *g.trace_golden;
    const int R = d_.array.rows, C = d_.array.cols;
    const int64_t M = g.a.rows, N = g.b.rows, tiles_n = (N + C - 1) / C;
    int64_t differ = 0;
    for (int64_t m = 0; m < M; ++m)
      for (int64_t n = 0; n < N; ++n) {
        const size_t lane = static_cast<size_t>(((m / R) * tiles_n + n / C) * R + m % R) *
                                static_cast<size_t>(C) + static_cast<size_t>(n % C);
        const size_t out = static_cast<size_t>(m * N + n);
        differ += fast.acc[lane] != golden.acc_raw[out] || fast.flags[lane] != golden.flags[out];
      }
    if (differ > 0)
      result_.errors.push_back(fmt::format(
          "trace {}: {} outputs of the fast model differ from the trace's stored golden output "
          "({}); the trace, the golden model or the fast model changed",
          g.name, differ, g.trace_acc.str()));
  }

  void add_coverage(const TileFacts& facts, const TileChoice& choice, const GemmTiming& t) {
    CosimCoverage& cov = result_.coverage;
    const int R = d_.array.rows, C = d_.array.cols;
    cov.tiles += t.tiles;
    cov.tiles_rtl += static_cast<int64_t>(choice.tiles.size());
    cov.random_tiles_rtl += choice.random;
    cov.macs += t.macs;
    cov.gemms_rtl += choice.tiles.empty() ? 0 : 1;
    for (uint8_t e : facts.edge) cov.edge_tiles += e;
    for (int64_t tile : choice.tiles) {
      cov.edge_tiles_rtl += facts.edge[static_cast<size_t>(tile)];
      const int64_t row0 = (tile / t.tiles_n) * R, col0 = (tile % t.tiles_n) * C;
      cov.macs_rtl += std::min<int64_t>(R, t.m - row0) * std::min<int64_t>(C, t.n - col0) * t.k;
    }
    for (int c = 0; c < kTileCaseCount; ++c) {
      CoverageCase& cc = cov.cases[kCoverageCases[static_cast<size_t>(c)].first];
      const uint32_t bit = 1u << c;
      for (uint32_t cases : facts.cases) cc.tiles_present += (cases & bit) ? 1 : 0;
      for (int64_t tile : choice.tiles) {
        const size_t ti = static_cast<size_t>(tile);
        cc.tiles_rtl += (facts.cases[ti] & bit) ? 1 : 0;
        cc.outputs_rtl += facts.counts[static_cast<size_t>(c)][ti];
      }
      cc.capped += choice.capped.empty() ? 0 : choice.capped[static_cast<size_t>(c)];
    }
  }

  // A whole-GEMM run covers every tile (classified from the beats the run checked).
  void add_whole_gemm_coverage(const CosimGemm& g, const GemmTiming& t, const Beats& beats) {
    if (beats.size() != static_cast<size_t>(t.tiles * d_.array.rows)) return;  // reported already
    TileChoice all;
    all.tiles.resize(static_cast<size_t>(t.tiles));
    std::iota(all.tiles.begin(), all.tiles.end(), int64_t{0});
    all.random = t.tiles;
    add_coverage(classify_tiles(d_.array, t, g.a, g.b, beats, acc_, shape_), all, t);
  }

  const CosimDesign& d_;
  const CosimOptions& options_;
  AccumulatorSpec acc_;
  bool int8_ = false;
  OperandShape shape_;
  int timing_errors_ = 0;
  fs::path tb_;
  ScratchDir scratch_{"gsqhw-cosim"};
  SwitchingActivity activity_;
  CosimResult result_;
};

// Before anything is simulated: every trace of the set whose operands do not fit the design,
// in one error (not only the first), and a warning for traces made with another accumulator.
// An accumulator as a warning names it: with its group size when it sums minifloat groups.
std::string acc_name(const AccumulatorSpec& acc) {
  return acc.group > 0 ? fmt::format("{} (group sums of {})", acc.str(), acc.group) : acc.str();
}

void check_traces_fit(const CosimDesign& d, const std::vector<fs::path>& files, CosimResult& result) {
  std::vector<std::string> misfits;
  std::vector<Trace> misfit_headers;
  std::map<std::string, int> other_acc;  // trace accumulator -> traces
  for (const auto& f : files) {
    Trace t = read_trace_header(f);
    const std::string name = t.name.empty() ? f.filename().string() : t.name;
    if (std::string why = operands_misfit(d, name, t.a.format_spec, t.b.format_spec); !why.empty()) {
      misfits.push_back(why);
      misfit_headers.push_back(std::move(t));
    } else if (!(t.acc == d.design.acc)) {
      other_acc[acc_name(t.acc)] += 1;
    }
  }
  if (!misfits.empty())
    throw UsageError(fmt::format("{} of {} traces do not fit design {}:\n  {}\nregenerate them with "
                                 "the design's format and accumulator, e.g. {}",
                                 misfits.size(), files.size(), d.design.str(),
                                 fmt::join(misfits, "\n  "), regenerate_command(d, misfit_headers)));
  for (const auto& [acc, count] : other_acc)
    result.warnings.push_back(fmt::format(
        "{} of {} traces were made with accumulator {} but design {} accumulates in {}: their "
        "outputs are checked against golden_gemm recomputed for {} (the traces' stored golden "
        "outputs are not used)",
        count, files.size(), acc, d.design.str(), acc_name(d.design.acc), acc_name(d.design.acc)));
}

CosimGemm gemm_from_trace(const fs::path& path) {
  Trace t = read_trace(path);
  CosimGemm g;
  g.name = t.name.empty() ? path.filename().string() : t.name;
  g.a = std::move(t.a);
  g.b = std::move(t.b);
  if (!t.golden.acc_raw.empty()) g.trace_golden = std::move(t.golden);
  g.trace_acc = t.acc;
  return g;
}

}  // namespace

CosimResult run_cosim_gemms(const CosimDesign& design, const std::vector<CosimGemm>& gemms,
                            const CosimOptions& options) {
  if (gemms.empty()) throw UsageError("co-simulation needs at least one GEMM");
  check_level(design, /*core_allowed=*/false);
  auto started = std::chrono::steady_clock::now();
  Checker checker(design, options);
  for (const auto& g : gemms) checker.check(g);
  CosimResult r = checker.finish();
  r.wall_seconds = seconds_since(started);
  return r;
}

CosimResult run_cosim_traces(const CosimDesign& design, const std::vector<fs::path>& traces,
                             const CosimOptions& options) {
  if (design.design.level == DesignPoint::Level::core)
    return run_core_cosim(design, traces, options);  // sim/core_cosim.h
  auto started = std::chrono::steady_clock::now();
  std::vector<fs::path> files;
  for (const auto& t : traces) {
    if (!fs::exists(t)) throw UsageError(fmt::format("trace {} does not exist", t.string()));
    for (auto& f : list_traces(t)) files.push_back(f);
  }
  if (files.empty()) throw UsageError("no trace files found (expected *.safetensors)");
  CosimResult fit;
  check_traces_fit(design, files, fit);
  // One trace in memory at a time: a whole layer's traces need not fit.
  Checker checker(design, options);
  for (const auto& f : files) checker.check(gemm_from_trace(f));
  CosimResult r = checker.finish();
  r.warnings.insert(r.warnings.end(), fit.warnings.begin(), fit.warnings.end());
  r.wall_seconds = seconds_since(started);
  return r;
}

CosimResult run_cosim(const DesignPoint& design, const std::vector<fs::path>& traces,
                      const CosimOptions& options) {
  return run_cosim_traces(cosim_design_generate(design), traces, options);
}

}  // namespace gsqhw

namespace gsqhw {

namespace {

nlohmann::json float_json(float v) {
  if (std::isfinite(v)) return v;
  return std::isnan(v) ? "nan" : (v > 0 ? "inf" : "-inf");
}

double per_second(double count, double seconds) { return seconds > 0 ? count / seconds : 0; }

}  // namespace

// The coverage table's rows (and JSON): cases in kCoverageCases order.
nlohmann::json coverage_json(const CosimCoverage& c) {
  nlohmann::json cases = nlohmann::json::array();
  for (const auto& [name, meaning] : kCoverageCases) {
    auto it = c.cases.find(name);
    const CoverageCase cc = it == c.cases.end() ? CoverageCase{} : it->second;
    cases.push_back({{"case", name},
                     {"meaning", meaning},
                     {"tiles_present", cc.tiles_present},
                     {"tiles_rtl", cc.tiles_rtl},
                     {"hits_rtl", cc.outputs_rtl},
                     {"tiles_not_forced", cc.capped},
                     {"exercised", cc.tiles_rtl > 0}});
  }
  return {{"sampled", c.sampled},
          {"tiles", c.tiles},
          {"tiles_rtl", c.tiles_rtl},
          {"random_tiles_rtl", c.random_tiles_rtl},
          {"edge_tiles", c.edge_tiles},
          {"edge_tiles_rtl", c.edge_tiles_rtl},
          {"macs", c.macs},
          {"macs_rtl", c.macs_rtl},
          {"gemms_rtl", c.gemms_rtl},
          {"cases", cases}};
}

std::string coverage_text(const CosimCoverage& c) {
  if (c.tiles == 0) return "";
  std::string text = fmt::format(
      "coverage: RTL ran {} of {} tiles ({:.3g}%), {:.4g} of {:.4g} MACs ({:.3g}%); {} of {} "
      "edge tiles; {} tiles in the random sample\n",
      c.tiles_rtl, c.tiles, 100.0 * c.tiles_rtl / c.tiles, static_cast<double>(c.macs_rtl),
      static_cast<double>(c.macs), c.macs ? 100.0 * c.macs_rtl / c.macs : 0.0, c.edge_tiles_rtl,
      c.edge_tiles, c.random_tiles_rtl);
  text += fmt::format("  {:<16} {:>13} {:>10} {:>12} {:>10}  {}\n", "case", "tiles present",
                      "RTL tiles", "RTL hits", "not forced", "exercised on RTL");
  for (const auto& [name, meaning] : kCoverageCases) {
    auto it = c.cases.find(name);
    const CoverageCase cc = it == c.cases.end() ? CoverageCase{} : it->second;
    text += fmt::format("  {:<16} {:>13} {:>10} {:>12} {:>10}  {}\n", name, cc.tiles_present,
                        cc.tiles_rtl, cc.outputs_rtl, cc.capped,
                        cc.tiles_rtl > 0        ? "yes"
                        : cc.tiles_present == 0 ? "no (absent from these GEMMs)"
                                                : "NO");
  }
  text += "  (not classified: fp32 accumulator rounding cases; see docs/cosim.md)\n";
  if (c.sampled) {
    // What a passing sampled run says about the tiles it did not run on RTL.
    text += fmt::format(
        "confidence: every tile's values and cycles came from the fast model; the RTL checked "
        "{} tiles bit for bit. Assuming random tiles are independent, a fault that corrupts a "
        "fraction f of ordinary tiles escapes the random sample with probability (1-f)^{}: "
        "f = 1% -> {:.2g}, f = 0.1% -> {:.2g}. Edge tiles and the forced special cases above "
        "ran on RTL without sampling.\n",
        c.tiles_rtl, c.random_tiles_rtl, std::pow(0.99, static_cast<double>(c.random_tiles_rtl)),
        std::pow(0.999, static_cast<double>(c.random_tiles_rtl)));
  }
  return text;
}

nlohmann::json cosim_result_json(const CosimResult& r) {
  nlohmann::json mismatches = nlohmann::json::array();
  for (const auto& m : r.mismatches)
    mismatches.push_back({{"design", m.design},
                          {"trace", m.trace},
                          {"engine", m.engine},
                          {"output", {m.gemm_row, m.gemm_col}},
                          {"tile", {m.tile_row, m.tile_col}},
                          {"pe", {m.pe_row, m.pe_col}},
                          {"cycle", m.cycle},
                          {"expected_acc", m.expected_acc},
                          {"actual_acc", m.actual_acc},
                          {"expected_flags", m.expected_flags},
                          {"actual_flags", m.actual_flags},
                          {"expected_value", float_json(m.expected_value)},
                          {"actual_value", float_json(m.actual_value)},
                          {"waves_cycle", m.run_cycle}});
  nlohmann::json gemms = nlohmann::json::array();
  for (const auto& g : r.per_gemm) {
    nlohmann::json j = g.timing.to_json();
    j["trace"] = g.trace;
    j["measured_cycles"] = g.measured_cycles;
    j["mismatches"] = g.mismatches;
    j["engine_seconds"] = g.engine_seconds;
    gemms.push_back(j);
  }
  nlohmann::json j = {{"pass", r.pass},
                      {"design", r.design},
                      {"engine", r.engine},
                      {"gemms", r.gemms},
                      {"macs", r.macs},
                      {"cycles", r.cycles},
                      {"wall_seconds", r.wall_seconds},
                      {"engine_seconds", r.engine_seconds},
                      {"build_seconds", r.build_seconds},
                      {"simulated_cycles_per_second", per_second(r.cycles, r.engine_seconds)},
                      {"macs_per_second", per_second(r.macs, r.engine_seconds)},
                      {"mismatch_count", r.mismatch_count},
                      {"mismatches", mismatches},
                      {"errors", r.errors},
                      {"warnings", r.warnings},
                      {"per_gemm", gemms},
                      {"coverage", coverage_json(r.coverage)},
                      {"fast_seconds", r.fast_seconds},
                      {"rtl_seconds", r.rtl_seconds},
                      {"rtl_cycles", r.rtl_cycles}};
  if (r.waves_written) j["waves"] = r.waves_written->string();
  if (r.activity_written) j["activity"] = r.activity_written->string();
  return j;
}

std::string cosim_result_text(const CosimResult& r) {
  std::string text = fmt::format(
      "{} {} [{}]: {} GEMMs, {} MACs, {} cycles; {:.3g} simulated cycles/s, {:.3g} MACs/s "
      "(engine {:.2f} s, build {:.1f} s, wall {:.2f} s)\n",
      r.pass ? "PASS" : "FAIL", r.design, r.engine, r.gemms, r.macs, r.cycles,
      per_second(r.cycles, r.engine_seconds), per_second(r.macs, r.engine_seconds),
      r.engine_seconds, r.build_seconds, r.wall_seconds);
  if (r.mismatch_count > 0)
    text += fmt::format("{} outputs differ from golden_gemm; the first {}:\n", r.mismatch_count,
                        r.mismatches.size());
  for (const auto& m : r.mismatches)
    text += fmt::format(
        "  {} {} output ({}, {}) tile ({}, {}) PE ({}, {}) cycle {}{}: expected acc {} flags {} "
        "value {}, got acc {} flags {} value {}\n",
        m.engine, m.trace, m.gemm_row, m.gemm_col, m.tile_row, m.tile_col, m.pe_row, m.pe_col,
        m.cycle, m.run_cycle >= 0 ? fmt::format(" (waveform re-run cycle {})", m.run_cycle) : "",
        m.expected_acc, m.expected_flags, m.expected_value, m.actual_acc, m.actual_flags,
        m.actual_value);
  // Every trace with a mismatch, not only those of the first few listed above.
  std::vector<std::string> failing;
  for (const auto& g : r.per_gemm)
    if (g.mismatches > 0) failing.push_back(fmt::format("{} ({})", g.trace, g.mismatches));
  if (!failing.empty())
    text += fmt::format("  traces with mismatches ({} of {}): {}\n", failing.size(), r.per_gemm.size(),
                        fmt::join(failing, ", "));
  for (const auto& e : r.errors) text += "  error: " + e + "\n";
  for (const auto& w : r.warnings) text += "  warning: " + w + "\n";
  if (r.waves_written)
    text += fmt::format("  waveform around the first mismatch: {}\n", r.waves_written->string());
  if (r.activity_written)
    text += fmt::format("  switching activity: {}\n", r.activity_written->string());
  if (r.coverage.sampled || r.engine != "fast") text += coverage_text(r.coverage);
  if (r.coverage.sampled)
    text += fmt::format("  time: fast model {:.1f} s over every tile, RTL {:.1f} s ({} cycles "
                        "simulated)\n",
                        r.fast_seconds, r.rtl_seconds, r.rtl_cycles);
  return text;
}

}  // namespace gsqhw
