// Co-simulation of a generated core (sim/core_cosim.h).
#include "sim/core_cosim.h"

#include <fmt/format.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>

#include "gen/core.h"
#include "gen/cosim_wrapper_emit.h"
#include "base/errors.h"
#include "base/files.h"
#include "base/process.h"
#include "numerics/fp32_round.h"
#include "base/scratch_dir.h"
#include "sim/verilator_build.h"
#include "workloads/trace.h"

namespace fs = std::filesystem;

namespace gsqhw {
namespace {

// The wrapper's ports in the order of the stimulus records and the results (tb_main.cpp):
// the same list that declares them in the wrapper's Verilog (gen/cosim_wrapper_emit.h).
const std::vector<PortSpec>& wrapper_ports() {
  static const std::vector<PortSpec> ports = [] {
    std::vector<PortSpec> list;
    for (const auto& p : gen::core_cosim_wrapper_ports())
      list.push_back({p.name, p.dir == gen::verilog::Port::Dir::in, p.width});
    return list;
  }();
  return ports;
}
constexpr uint32_t kInputWords = 8;   // one u64 per input port (all are <= 64 bits)
constexpr uint32_t kOutputWords = 6;  // one u64 per output port

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

struct Record {
  int64_t cycle = 0;
  bool word = false, done = false, desc = false;
  uint32_t data = 0;
  int error = 0;
};

float float_of(uint32_t bits) { return fp32_from_bits(bits); }

class CoreChecker {
 public:
  CoreChecker(const GeneratedDesign& core, const CoreCosimOptions& options)
      : core_(core), options_(options), cm_(CoreManifest::from_json(core.manifest)) {
    result_.engine = "rtl";
    result_.design = core.design.str();
    if (options.in_rate <= 0 || options.in_rate > 1 || options.out_rate <= 0 ||
        options.out_rate > 1)
      throw UsageError("core co-simulation: in_rate and out_rate must be in (0, 1]");
  }

  void check(const CoreCosimGemm& g) {
    if (g.m < 1 || g.n < 1 || g.k < 1 || g.m > cm_.max_m || g.n > cm_.max_n || g.k > cm_.max_k)
      throw UsageError(fmt::format("{}: a {} x {} x {} GEMM does not fit the core's capacity "
                                   "{} x {} x {}",
                                   g.name, g.m, g.n, g.k, cm_.max_m, cm_.max_n, cm_.max_k));
    if (static_cast<int64_t>(g.a.size()) != g.m * g.k ||
        static_cast<int64_t>(g.b.size()) != g.n * g.k)
      throw UsageError(fmt::format("{}: operand sizes do not match {} x {} x {}", g.name, g.m,
                                   g.n, g.k));
    if (tb_.empty()) build();
    const std::vector<uint32_t> expected = core_golden_output(core_.design, g.a, g.b, g.m, g.n, g.k);
    auto start = std::chrono::steady_clock::now();
    std::vector<Record> records = run(g);
    double seconds = seconds_since(start);
    result_.engine_seconds += seconds;
    int64_t busy_cycles = compare(g, expected, records);
    CosimGemmReport report;
    report.trace = g.name;
    report.timing.m = g.m;
    report.timing.n = g.n;
    report.timing.k = g.k;
    report.timing.macs = g.m * g.n * g.k;
    report.measured_cycles = busy_cycles;
    report.engine_seconds = seconds;
    result_.per_gemm.push_back(report);
    result_.gemms += 1;
    result_.macs += g.m * g.n * g.k;
    result_.cycles += report.measured_cycles;
  }

  CosimResult finish() {
    result_.pass = result_.mismatch_count == 0 && result_.errors.empty();
    return std::move(result_);
  }

 private:
  void build() {
    VerilatorBuildSpec spec;
    spec.top = "gsqhw_core_cosim";
    spec.sources = core_.files;
    spec.sources.emplace_back("gsqhw_core_cosim.v", core_cosim_wrapper_verilog(core_));
    spec.ports = wrapper_ports();
    spec.valid_port = "record";
    spec.label = core_.design.str() + " (core co-simulation wrapper)";
    fs::path cache = options_.cache_dir.empty() ? default_cache_dir() : options_.cache_dir;
    VerilatedModel model = build_verilated_model(spec, cache);
    tb_ = model.executable;
    result_.build_seconds += model.build_seconds;
  }

  // A cycle bound that a working core meets with a wide margin; a hang becomes an error.
  int64_t cycle_budget(const CoreCosimGemm& g) const {
    const int64_t words = (g.m + g.n) * g.k;
    const int64_t tiles = ((g.m + cm_.rows - 1) / cm_.rows) * ((g.n + cm_.cols - 1) / cm_.cols);
    const int64_t steps = std::max<int64_t>(g.k, cm_.rows);
    const double load = 2.0 * static_cast<double>(words) / options_.in_rate;
    const double output = static_cast<double>(g.m * g.n) / options_.out_rate;
    return 64 + words + static_cast<int64_t>(2 * (load + output)) + tiles * steps +
           4 * (cm_.rows + cm_.cols) + 200;
  }

  std::vector<Record> run(const CoreCosimGemm& g) {
    const fs::path stimulus = scratch_.path() / "stimulus.bin";
    const fs::path results = scratch_.path() / "results.bin";
    const fs::path log = scratch_.path() / "tb.log";
    const uint64_t cycles = static_cast<uint64_t>(cycle_budget(g));
    {
      std::ofstream out(stimulus, std::ios::binary | std::ios::trunc);
      uint32_t version = 1, words = kInputWords;
      out.write("GSQHWSTI", 8);
      out.write(reinterpret_cast<const char*>(&version), 4);
      out.write(reinterpret_cast<const char*>(&words), 4);
      out.write(reinterpret_cast<const char*>(&cycles), 8);
      std::mt19937_64 rng(options_.seed * 0x9e3779b97f4a7c15ull + ++runs_);
      std::bernoulli_distribution in_gate(options_.in_rate), out_gate(options_.out_rate);
      // the descriptor channel sees a random delay too (it is held until taken)
      const uint64_t good_descriptor_cycle =
          options_.in_rate < 1 ? 3 + static_cast<uint64_t>(rng() % 16) : 3;
      const int64_t operand_words = (g.m + g.n) * g.k;
      for (uint64_t c = 0; c < cycles; ++c) {
        uint64_t rec[kInputWords] = {};
        const int64_t i = static_cast<int64_t>(c);
        if (i < operand_words) {
          float v = i < g.m * g.k ? g.a[static_cast<size_t>(i)]
                                  : g.b[static_cast<size_t>(i - g.m * g.k)];
          rec[0] = 1;
          rec[1] = fp32_bits(v);
        }
        if (c == 0 && options_.bad_descriptor_first) {
          rec[2] = 1;
          rec[3] = static_cast<uint64_t>(cm_.max_m + 1);
          rec[4] = 1;
          rec[5] = 1;
        }
        if (c == good_descriptor_cycle) {
          rec[2] = 1;
          rec[3] = static_cast<uint64_t>(g.m);
          rec[4] = static_cast<uint64_t>(g.n);
          rec[5] = static_cast<uint64_t>(g.k);
        }
        rec[6] = in_gate(rng);
        rec[7] = out_gate(rng);
        out.write(reinterpret_cast<const char*>(rec), sizeof rec);
      }
      if (!out.flush()) throw std::runtime_error("cannot write " + stimulus.string());
    }
    fs::remove(log);
    int rc = run_logged({tb_.string(), "--stimulus", stimulus.string(), "--results",
                         results.string()},
                        log);
    if (rc != 0)
      throw std::runtime_error(fmt::format("the Verilated core testbench failed (exit {}) on "
                                           "{}:\n{}",
                                           rc, g.name, read_file_if_present(log)));
    return read_records(results);
  }

  static std::vector<Record> read_records(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    char magic[8];
    uint32_t version = 0, words = 0;
    in.read(magic, 8);
    in.read(reinterpret_cast<char*>(&version), 4);
    in.read(reinterpret_cast<char*>(&words), 4);
    if (!in || std::memcmp(magic, "GSQHWRES", 8) != 0 || words != kOutputWords)
      throw std::runtime_error("the core testbench wrote a malformed results file " +
                               path.string());
    std::vector<Record> records;
    for (;;) {
      char head[8];
      in.read(head, 8);
      if (!in) throw std::runtime_error("results file " + path.string() + " has no trailer");
      if (std::memcmp(head, "GSQHWEND", 8) == 0) break;
      uint64_t beat[kOutputWords];
      in.read(reinterpret_cast<char*>(beat), sizeof beat);
      if (!in) throw std::runtime_error("results file " + path.string() + " is truncated");
      Record r;
      std::memcpy(&r.cycle, head, 8);
      r.word = beat[1] != 0;
      r.data = static_cast<uint32_t>(beat[2]);
      r.done = beat[3] != 0;
      r.desc = beat[4] != 0;
      r.error = static_cast<int>(beat[5]);
      records.push_back(r);
    }
    return records;
  }

  // Checks the records; returns the cycles from taking the GEMM's descriptor to `done` (-1
  // when either is missing).
  int64_t compare(const CoreCosimGemm& g, const std::vector<uint32_t>& expected,
                  const std::vector<Record>& records) {
    const std::string& design = result_.design;
    int descriptors = 0;
    int64_t received = 0, dones = 0, taken_cycle = -1, done_cycle = -1;
    for (const Record& r : records) {
      if (r.desc) {
        taken_cycle = r.cycle - 1;  // recorded the cycle after the handshake
        const int want = (descriptors == 0 && options_.bad_descriptor_first) ? 2 : 0;
        if (r.error != want)
          result_.errors.push_back(fmt::format(
              "{} on {}: descriptor {} (cycle {}) gave error {}, expected {}", design, g.name,
              descriptors, r.cycle, r.error, want));
        ++descriptors;
      }
      if (r.word) {
        if (received >= static_cast<int64_t>(expected.size())) {
          result_.errors.push_back(fmt::format("{} on {}: an extra result word {:08x} on cycle {}",
                                               design, g.name, r.data, r.cycle));
        } else if (r.data != expected[static_cast<size_t>(received)]) {
          ++result_.mismatch_count;
          if (static_cast<int>(result_.mismatches.size()) < options_.max_mismatches_reported) {
            Mismatch mm;
            mm.design = design;
            mm.trace = g.name;
            mm.engine = "rtl";
            mm.gemm_row = received / g.n;
            mm.gemm_col = received % g.n;
            mm.tile_row = static_cast<int>(mm.gemm_row / cm_.rows);
            mm.tile_col = static_cast<int>(mm.gemm_col / cm_.cols);
            mm.pe_row = static_cast<int>(mm.gemm_row % cm_.rows);
            mm.pe_col = static_cast<int>(mm.gemm_col % cm_.cols);
            mm.cycle = r.cycle;
            mm.expected_acc = expected[static_cast<size_t>(received)];
            mm.actual_acc = r.data;
            mm.expected_value = float_of(expected[static_cast<size_t>(received)]);
            mm.actual_value = float_of(r.data);
            result_.mismatches.push_back(mm);
          }
        }
        ++received;
      }
      if (r.done) {
        ++dones;
        done_cycle = r.cycle;
        if (received != static_cast<int64_t>(expected.size()))
          result_.errors.push_back(fmt::format("{} on {}: done on cycle {} after {} of {} result "
                                               "words",
                                               design, g.name, r.cycle, received,
                                               expected.size()));
      }
    }
    const int want_descriptors = options_.bad_descriptor_first ? 2 : 1;
    if (descriptors != want_descriptors)
      result_.errors.push_back(fmt::format("{} on {}: {} descriptors were taken, {} offered",
                                           design, g.name, descriptors, want_descriptors));
    if (received != static_cast<int64_t>(expected.size()) || dones != 1)
      result_.errors.push_back(fmt::format(
          "{} on {}: {} of {} result words and {} done pulses within {} cycles", design, g.name,
          received, expected.size(), dones, cycle_budget(g)));
    return taken_cycle >= 0 && done_cycle >= 0 ? done_cycle - taken_cycle : -1;
  }

  const GeneratedDesign& core_;
  CoreCosimOptions options_;
  CoreManifest cm_;
  fs::path tb_;
  ScratchDir scratch_{"gsqhw-core-cosim"};
  CosimResult result_;
  uint64_t runs_ = 0;
};

}  // namespace

std::string core_cosim_wrapper_verilog(const GeneratedDesign& core) {
  CoreManifest cm = CoreManifest::from_json(core.manifest);
  return gen::core_cosim_wrapper_verilog(core.design.str(),
                                         static_cast<int64_t>(cm.max_m + cm.max_n) * cm.max_k);
}

std::vector<SimulatedBeat> simulate_cycles(const VerilatorBuildSpec& spec,
                                           const std::vector<std::vector<uint64_t>>& inputs,
                                           const fs::path& cache_dir) {
  int in_ports = 0, out_ports = 0;
  for (const auto& p : spec.ports) {
    if (p.width > 64) throw UsageError("simulate_cycles: ports wider than 64 bits");
    (p.input ? in_ports : out_ports) += 1;
  }
  VerilatedModel model = build_verilated_model(spec, cache_dir);
  ScratchDir scratch("gsqhw-core-cosim");
  const fs::path stimulus = scratch.path() / "stimulus.bin", results = scratch.path() / "results.bin";
  {
    std::ofstream out(stimulus, std::ios::binary | std::ios::trunc);
    uint32_t version = 1, words = static_cast<uint32_t>(in_ports);
    uint64_t cycles = inputs.size();
    out.write("GSQHWSTI", 8);
    out.write(reinterpret_cast<const char*>(&version), 4);
    out.write(reinterpret_cast<const char*>(&words), 4);
    out.write(reinterpret_cast<const char*>(&cycles), 8);
    for (const auto& record : inputs) {
      if (static_cast<int>(record.size()) != in_ports)
        throw UsageError("simulate_cycles: an input record has the wrong number of words");
      out.write(reinterpret_cast<const char*>(record.data()),
                static_cast<std::streamsize>(record.size() * 8));
    }
    if (!out.flush()) throw std::runtime_error("cannot write " + stimulus.string());
  }
  const fs::path log = scratch.path() / "tb.log";
  int rc = run_logged({model.executable.string(), "--stimulus", stimulus.string(), "--results",
                       results.string()},
                      log);
  if (rc != 0)
    throw std::runtime_error(fmt::format("the Verilated {} failed (exit {}):\n{}", spec.top, rc,
                                         read_file_if_present(log)));
  std::ifstream in(results, std::ios::binary);
  char magic[8];
  uint32_t version = 0, words = 0;
  in.read(magic, 8);
  in.read(reinterpret_cast<char*>(&version), 4);
  in.read(reinterpret_cast<char*>(&words), 4);
  if (!in || std::memcmp(magic, "GSQHWRES", 8) != 0 || words != static_cast<uint32_t>(out_ports))
    throw std::runtime_error("malformed results file " + results.string());
  std::vector<SimulatedBeat> beats;
  for (;;) {
    char head[8];
    in.read(head, 8);
    if (!in) throw std::runtime_error("results file " + results.string() + " has no trailer");
    if (std::memcmp(head, "GSQHWEND", 8) == 0) break;
    SimulatedBeat beat;
    std::memcpy(&beat.cycle, head, 8);
    beat.outputs.resize(static_cast<size_t>(out_ports));
    in.read(reinterpret_cast<char*>(beat.outputs.data()), static_cast<std::streamsize>(out_ports * 8));
    if (!in) throw std::runtime_error("results file " + results.string() + " is truncated");
    beats.push_back(std::move(beat));
  }
  return beats;
}

CosimResult run_core_cosim_gemms(const GeneratedDesign& core,
                                 const std::vector<CoreCosimGemm>& gemms,
                                 const CoreCosimOptions& options) {
  if (gemms.empty()) throw UsageError("core co-simulation needs at least one GEMM");
  auto started = std::chrono::steady_clock::now();
  CoreChecker checker(core, options);
  for (const auto& g : gemms) checker.check(g);
  CosimResult r = checker.finish();
  r.wall_seconds = seconds_since(started);
  return r;
}

CoreCosimGemm core_gemm_from_trace(const fs::path& path, const nlohmann::json& core_manifest) {
  CoreManifest cm = CoreManifest::from_json(core_manifest);
  Trace t = read_trace(path);
  CoreCosimGemm g;
  const int64_t m = t.m(), n = t.n(), k = t.k();
  if (static_cast<int64_t>(t.a_fp32.size()) != m * k ||
      static_cast<int64_t>(t.b_fp32.size()) != n * k)
    throw UsageError(fmt::format("trace {} carries no FP32 operands (the core quantizes them "
                                 "itself)",
                                 path.string()));
  g.m = std::min<int64_t>(m, cm.max_m);
  g.n = std::min<int64_t>(n, cm.max_n);
  g.k = std::min<int64_t>(k, cm.max_k);
  g.name = t.name.empty() ? path.filename().string() : t.name;
  if (g.m != m || g.n != n || g.k != k)
    g.name += fmt::format(" (cropped from {}x{}x{} to {}x{}x{})", m, n, k, g.m, g.n, g.k);
  for (int64_t r = 0; r < g.m; ++r)
    for (int64_t c = 0; c < g.k; ++c) g.a.push_back(t.a_fp32[static_cast<size_t>(r * k + c)]);
  for (int64_t r = 0; r < g.n; ++r)
    for (int64_t c = 0; c < g.k; ++c) g.b.push_back(t.b_fp32[static_cast<size_t>(r * k + c)]);
  return g;
}

CosimResult run_core_cosim(const CosimDesign& design, const std::vector<fs::path>& traces,
                           const CosimOptions& options) {
  if (options.engine != CosimOptions::Engine::rtl)
    throw UsageError("a core (coreRxC) co-simulates with the rtl engine only; the fast cycle "
                     "model covers arrays");
  if (options.waves || options.activity || !options.netlist_files.empty() || options.systemc)
    throw UsageError("core co-simulation supports none of --waves, --activity, --netlist, "
                     "--systemc yet");
  GeneratedDesign core;
  core.design = design.design;
  core.top = design.manifest.at("top").get<std::string>();
  core.files = design.sources;
  core.manifest = design.manifest;
  std::vector<fs::path> files;
  for (const auto& t : traces) {
    if (!fs::exists(t)) throw UsageError(fmt::format("trace {} does not exist", t.string()));
    for (auto& f : list_traces(t)) files.push_back(f);
  }
  if (files.empty()) throw UsageError("no trace files found (expected *.safetensors)");
  std::vector<CoreCosimGemm> gemms;
  for (const auto& f : files) gemms.push_back(core_gemm_from_trace(f, core.manifest));
  CoreCosimOptions core_options;
  core_options.cache_dir = options.cache_dir;
  core_options.max_mismatches_reported = options.max_mismatches_reported;
  return run_core_cosim_gemms(core, gemms, core_options);
}

}  // namespace gsqhw
