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
#include <sstream>

#include "gen/generator.h"
#include "sim/activity.h"
#include "sim/core_cosim.h"
#include "sim/errors.h"
#include "sim/format.h"
#include "sim/scratch_dir.h"
#include "sim/verilator_build.h"
#include "workloads/trace.h"

namespace fs = std::filesystem;

namespace gsqhw {

// ---- designs ---------------------------------------------------------------------------------

namespace {

std::string read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw UsageError(fmt::format("cannot read {}", path.string()));
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

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
    d.manifest = nlohmann::json::parse(read_text(manifest_path));
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
    d.sources.emplace_back(file, read_text(dir / file));
  check_level(d);
  return d;
}

// ---- formats and values ----------------------------------------------------------------------

std::string hardware_format_key(const std::string& format_spec) {
  std::string canonical = parse_format(format_spec)->spec();
  auto colon = canonical.find(':');
  if (colon == std::string::npos) return canonical;
  std::string key = canonical.substr(0, colon + 1);
  std::stringstream params(canonical.substr(colon + 1));
  std::string param;
  bool first = true;
  while (std::getline(params, param, ',')) {
    std::string name = param.substr(0, param.find('='));
    if (name == "scale" || name == "round" || name == "seed" || name == "sat" || name == "per")
      continue;
    key += (first ? "" : ",") + param;
    first = false;
  }
  return key;
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
    int8_ = parse_format(d_.design.format)->family() == "int8";
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
  }

  void check(const CosimGemm& gemm) {
    validate(gemm);
    // Built lazily, after the first GEMM passed validation: a wrong trace fails in milliseconds.
    if (uses_rtl() && tb_.empty()) prepare_rtl();
    const GemmResult expected = golden_gemm(gemm.a, gemm.b, acc_, 0);
    check_trace_golden(gemm, expected);

    CosimGemmReport report;
    report.trace = gemm.name;
    report.timing = gemm_timing(d_.array, gemm.a.rows, gemm.b.rows, gemm.a.cols, gemm.a.group_size);
    const int64_t before = result_.mismatch_count;

    auto engine_start = std::chrono::steady_clock::now();
    std::optional<Beats> rtl, fast;
    std::optional<fs::path> stimulus;
    if (uses_rtl()) {
      stimulus = scratch_.path() / "stimulus.bin";
      rtl = run_rtl(gemm, *stimulus, report.timing);
    }
    if (options_.engine != CosimOptions::Engine::rtl)
      fast = fast_model_run(d_.array, gemm.a, gemm.b, acc_, 0);
    report.engine_seconds = seconds_since(engine_start);
    result_.engine_seconds += report.engine_seconds;

    if (rtl) {
      int64_t first_cycle = compare(gemm, expected, *rtl, report.timing, "rtl");
      report.measured_cycles = rtl->size() ? rtl->cycle.back() + 1 : 0;
      if (first_cycle >= 0 && !result_.waves_written) write_waves(*stimulus, first_cycle, gemm);
    }
    if (fast) {
      compare(gemm, expected, *fast, report.timing, "fast");
      if (!rtl) report.measured_cycles = fast->size() ? fast->cycle.back() + 1 : 0;
    }
    if (rtl && fast) compare_lockstep(gemm, *rtl, *fast);

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
      fs::path tmp = path;
      tmp += ".tmp";
      {
        std::ofstream out(tmp);
        out << activity_.to_json().dump(1) << "\n";
        if (!out) throw std::runtime_error(fmt::format("cannot write {}", path.string()));
      }
      fs::rename(tmp, path);
      result_.activity_written = path;
    }
    result_.pass = result_.mismatch_count == 0 && result_.errors.empty();
    return std::move(result_);
  }

  CosimResult& result() { return result_; }

 private:
  bool uses_rtl() const { return options_.engine != CosimOptions::Engine::fast; }

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
        spec.sources.emplace_back(f.filename().string(), read_text(f));
    }
    return spec;
  }

  fs::path cache_dir() const {
    return options_.cache_dir.empty() ? default_cache_dir() : options_.cache_dir;
  }

  void prepare_rtl() {
    VerilatedModel model = build_verilated_model(build_spec(false), cache_dir());
    tb_ = model.executable;
    result_.build_seconds += model.build_seconds;
  }

  int64_t slack_cycles() const { return std::max(8, d_.array.latency + d_.array.drain_beats); }

  Beats run_rtl(const CosimGemm& g, const fs::path& stimulus, const GemmTiming& timing) {
    write_stimulus(d_.array, g.a, g.b, slack_cycles(), stimulus);
    fs::path results = scratch_.path() / "results.bin";
    fs::path log = scratch_.path() / "tb.log";
    std::vector<std::string> argv = {tb_.string(), "--stimulus", stimulus.string(), "--results",
                                     results.string()};
    int rc;
    if (options_.activity) {
      // The testbench streams the VCD of the whole run into our pipe; we fold it into
      // per-net activity as it arrives, so nothing large touches the disk.
      argv.insert(argv.end(), {"--trace", "/dev/stdout"});
      ChildProcess child(argv, log);
      FdStreamBuf buf(child.stdout_fd());
      std::istream vcd(&buf);
      const int64_t reset = 2, period = 10;
      SwitchingActivity run;
      try {
        run = activity_from_vcd(vcd, d_.array.top, period, reset * period,
                                (reset + timing.cycles) * period);
      } catch (const UsageError&) {
        // A testbench that died mid-run leaves a cut VCD: report the testbench's failure.
        if (int status = child.wait(); status != 0)
          throw std::runtime_error(fmt::format("the Verilated testbench failed (exit {}) on {}:\n{}",
                                               status, g.name, read_text(log)));
        throw;
      }
      rc = child.wait();
      if (rc == 0) activity_.merge(run);
    } else {
      fs::remove(log);
      rc = run_logged(argv, log);
    }
    if (rc != 0)
      throw std::runtime_error(fmt::format("the Verilated testbench failed (exit {}) on {}:\n{}",
                                           rc, g.name, read_text(log)));
    return read_results(d_.array, acc_.kind == AccumulatorSpec::Kind::fixed, results);
  }

  void write_waves(const fs::path& stimulus, int64_t cycle, const CosimGemm& g) {
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
    fs::path tb = tb_;
    if (fst || options_.systemc) {
      // Waveforms come from the plain C++ testbench (the SystemC one does not trace).
      VerilatorBuildSpec spec = build_spec(fst);
      spec.systemc = false;
      tb = build_verilated_model(spec, cache_dir()).executable;
    }
    if (path.has_parent_path()) fs::create_directories(path.parent_path());
    const int64_t window = 32 + d_.array.latency + d_.array.drain_beats;
    fs::path log = scratch_.path() / "waves.log";
    int rc = run_logged({tb.string(), "--stimulus", stimulus.string(), "--results",
                         (scratch_.path() / "waves-results.bin").string(), "--trace",
                         path.string(), "--trace-from",
                         std::to_string(std::max<int64_t>(0, cycle - window)), "--trace-to",
                         std::to_string(cycle + 8)},
                        log);
    if (rc != 0)
      throw std::runtime_error(fmt::format("re-running {} with tracing failed:\n{}", g.name,
                                           read_text(log)));
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
        if (static_cast<int>(result_.mismatches.size()) >= options_.max_mismatches_reported)
          continue;
        Mismatch mm;
        mm.design = d_.design.str();
        mm.trace = g.name;
        mm.engine = engine;
        mm.gemm_row = m;
        mm.gemm_col = n;
        mm.tile_row = static_cast<int>(tr);
        mm.tile_col = static_cast<int>(tc);
        mm.pe_row = beat;
        mm.pe_col = j;
        mm.cycle = beats.cycle[i];
        mm.expected_acc = expected.acc_raw[out];
        mm.actual_acc = acc;
        mm.expected_flags = expected.flags[out];
        mm.actual_flags = flags;
        mm.expected_value = expected.out[out];
        mm.actual_value = dequantize_accumulator(acc_, acc, flags, scale_of(g.a, m),
                                                 scale_of(g.b, n), int8_);
        result_.mismatches.push_back(mm);
      }
    }
    return first_cycle;
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

  const CosimDesign& d_;
  const CosimOptions& options_;
  AccumulatorSpec acc_;
  bool int8_ = false;
  fs::path tb_;
  ScratchDir scratch_{"gsqhw-cosim"};
  SwitchingActivity activity_;
  CosimResult result_;
};

// Before anything is simulated: every trace of the set whose operands do not fit the design,
// in one error (not only the first), and a warning for traces made with another accumulator.
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
      other_acc[t.acc.str()] += 1;
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
        count, files.size(), acc, d.design.str(), d.design.acc.str(), d.design.acc.str()));
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
                          {"actual_value", float_json(m.actual_value)}});
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
                      {"per_gemm", gemms}};
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
        "  {} {} output ({}, {}) tile ({}, {}) PE ({}, {}) cycle {}: expected acc {} flags {} "
        "value {}, got acc {} flags {} value {}\n",
        m.engine, m.trace, m.gemm_row, m.gemm_col, m.tile_row, m.tile_col, m.pe_row, m.pe_col,
        m.cycle, m.expected_acc, m.expected_flags, m.expected_value, m.actual_acc,
        m.actual_flags, m.actual_value);
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
  return text;
}

}  // namespace gsqhw
