// The scale sweep and its report (synth/scale.h).
#include "synth/scale.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include <fmt/format.h>

#include "base/errors.h"
#include "synth/compose.h"
#include "synth/baseline.h"
#include "synth/kind_energy.h"
#include "sim/cosim.h"
#include "numerics/design.h"
#include "workloads/trace.h"
#include "synth/point.h"
#include "base/process.h"
#include "synth/sweep.h"

namespace gsqhw::synth {
namespace fs = std::filesystem;

namespace {

std::string replace_all(std::string text, const std::string& from, const std::string& to) {
  for (size_t at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size()))
    text.replace(at, from.size(), to);
  return text;
}

std::vector<nlohmann::json> read_rows(const fs::path& jsonl) {
  std::vector<nlohmann::json> rows;
  std::ifstream in(jsonl);
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) continue;
    try {
      rows.push_back(nlohmann::json::parse(line));
    } catch (const std::exception&) {
      // A line cut by a kill mid-write: skipped, its row is re-run.
    }
  }
  return rows;
}

// Appends one row and flushes it to disk before returning: a killed sweep loses at most the
// rows being composed.
void append_row(const fs::path& jsonl, const nlohmann::json& row) {
  std::ofstream out(jsonl, std::ios::app);
  out << row.dump() << "\n";
  out.flush();
  if (!out) throw std::runtime_error(fmt::format("cannot append to {} (disk full?)", jsonl.string()));
}

std::string row_key(const std::string& kind, const std::string& family, int n, const std::string& library_hash,
                    double clock_ns, double activity) {
  return fmt::format("{}|{}|{}|{}|{:.6g}|{:.6g}", kind, family, n, library_hash, clock_ns, activity);
}

std::string key_of(const nlohmann::json& row) {
  return row_key(row.value("kind", ""), row.value("family", ""), row.value("n", 0), row.value("library_hash", ""),
                 row.value("clock_ns", 0.0), row.value("input_activity", 0.0));
}

// The traces for a family's gate-level energy: the first given folder (or file) whose operand
// format fits the design, else the built-in synthetic set; `label` says which.
std::vector<fs::path> family_energy_traces(const std::string& design, const std::vector<fs::path>& given, const fs::path& cache,
                                           std::string& label) {
  const std::string want = hardware_format_key(DesignPoint::parse(design).format);
  for (const auto& g : given) {
    const std::vector<fs::path> traces = list_traces(g);
    if (traces.empty()) continue;
    const Trace header = read_trace_header(traces.front());
    if (hardware_format_key(header.a.format_spec) == want && hardware_format_key(header.b.format_spec) == want)
      return energy_traces(design, {g}, cache, label);
  }
  return energy_traces(design, {}, cache, label);
}

}  // namespace

std::string ScaleFamily::design(int n, int pipe) const {
  return replace_all(replace_all(pattern, "{n}", std::to_string(n)), "{pipe}", std::to_string(pipe));
}

std::vector<ScaleFamily> scale_families(int b) {
  // FP8 E4M3 exact products span 2^-18 .. 448^2 < 2^18; a K = 4096 reduction adds 12 bits:
  // fixed(1 + 30 + 18, 18) = fixed49.18 holds every sum exactly (E5M2 would need 77 bits).
  return {
      {fmt::format("GSE-INT{} shared-column", b), "gse",
       fmt::format("gse:b={}@array{{n}}x{{n}},acc=fixed32.16,pipe={{pipe}},align=shared", b), true},
      {"FP8 E4M3 fp32", "fp8", "fp8:e4m3@array{n}x{n},acc=fp32,pipe={pipe}", true},
      {"FP8 E4M3 fixed49.18", "fp8-fixed", "fp8:e4m3@array{n}x{n},acc=fixed49.18,pipe={pipe}", true},
      // The shared-column FP8 arrays (gen/minifloat_shared_emit.cpp): exact group sums of
      // G = 32 products in each PE, one accumulation per group by one unit per column.
      {"FP8 E4M3 shared-column fp32", "fp8-shared",
       "fp8:e4m3@array{n}x{n},acc=fp32,pipe={pipe},align=shared,group=32", true},
      {"FP8 E4M3 shared-column fixed49.18", "fp8-shared-fixed",
       "fp8:e4m3@array{n}x{n},acc=fixed49.18,pipe={pipe},align=shared,group=32", true},
      {fmt::format("GSE-INT{} per-PE", b), "gse-pe", fmt::format("gse:b={}@array{{n}}x{{n}},acc=fixed32.16,pipe={{pipe}}", b), true},
      {fmt::format("INT{} fixed32.0", b), "int", fmt::format("baseline:intarray,b={},w=32,f=0,array={{n}}x{{n}}", b), false},
      {"FP8 E5M2 fp32", "fp8", "fp8:e5m2@array{n}x{n},acc=fp32,pipe={pipe}", true},
      {"BF16 fp32", "bf16", "bf16@array{n}x{n},acc=fp32,pipe={pipe}", true},
  };
}

ScaleSummary run_scale_sweep(const ScaleOptions& options) {
  auto start = std::chrono::steady_clock::now();
  for (int n : options.sizes)
    if (n < 2 || n > 64) throw UsageError(fmt::format("scale size {} outside 2..64 (the generator's array limit)", n));
  if (!(options.clock_ns > 0)) throw UsageError("the scale sweep needs a positive clock period");
  LibrarySet library = resolve_library(options.library);
  const fs::path cache = options.cache_dir.empty() ? default_cache_dir() : options.cache_dir;
  const fs::path out = fs::absolute(options.out_dir);
  fs::create_directories(out);
  ScaleSummary summary;
  summary.jsonl = out / "scale.jsonl";

  int b = options.gse_bits;
  if (b == 0) b = headline_gse_bits({3, 4, 5, 6, 7, 8}, {}, cache);
  std::vector<ScaleFamily> families;
  for (const auto& f : scale_families(b))
    if (options.only.empty() || std::find(options.only.begin(), options.only.end(), f.label) != options.only.end())
      families.push_back(f);
  if (families.empty()) throw UsageError("--scale-only names no known family (see gsqhw sweep --help)");

  std::map<std::string, nlohmann::json> done;
  for (const auto& row : read_rows(summary.jsonl)) done[key_of(row)] = row;

  ComposeOptions compose;
  compose.clock_ns = options.clock_ns;
  compose.input_activity = options.input_activity;
  compose.kind_cache = cache / "kinds";
  compose.progress = options.progress;
  const double target_mhz = 1000.0 / options.clock_ns;
  const int total = static_cast<int>(families.size() * options.sizes.size());
  int index = 0;

  auto base_row = [&](const std::string& kind, const ScaleFamily& f, int n) {
    return nlohmann::json{{"kind", kind},
                          {"library", library.name},
                          {"library_hash", library.hash},
                          {"clock_ns", options.clock_ns},
                          {"input_activity", options.input_activity},
                          {"family", f.label},
                          {"role", f.role},
                          {"gse_bits", b},
                          {"n", n}};
  };
  auto work_dir = [&](const std::string& design) {
    std::string slug = design;
    for (char& ch : slug)
      if (!std::isalnum(static_cast<unsigned char>(ch)) && ch != '.' && ch != '-') ch = '_';
    return out / "work" / library.name / slug;
  };

  // The pipeline depth per family: the smallest meeting the clock, judged on a 4x4 composition.
  std::map<std::string, int> pipes;
  for (const auto& f : families) {
    int pipe = 1;
    if (f.pipelined && options.choose_pipe) {
      const std::string key = row_key("pipe", f.label, 4, library.hash, options.clock_ns, options.input_activity);
      if (done.count(key)) {
        pipe = done[key].value("pipe", 1);
      } else {
        nlohmann::json row = base_row("pipe", f, 4);
        nlohmann::json tried = nlohmann::json::object();
        double best_fmax = 0;
        for (int p = 1; p <= 4; ++p) {
          const std::string design = f.design(4, p);
          compose.work_dir = work_dir(design);
          compose.breakdown = false;
          try {
            Composition c = compose_design(design_rtl(design), library, compose);
            tried[std::to_string(p)] = c.fmax_mhz;
            if (c.fmax_mhz > best_fmax) best_fmax = c.fmax_mhz, pipe = p;
            if (options.progress)
              fmt::print(stderr, "[scale] {} pipe {}: fmax {:.1f} MHz (target {:.1f}) on {}\n", f.label, p, c.fmax_mhz,
                         target_mhz, library.name);
            if (c.fmax_mhz >= target_mhz) {
              pipe = p;
              break;
            }
          } catch (const ToolMissing&) {
            throw;
          } catch (const std::exception& e) {
            tried[std::to_string(p)] = std::string(e.what()).substr(0, 300);
          }
        }
        row["pipe"] = pipe;
        row["fmax_by_pipe"] = tried;
        append_row(summary.jsonl, row);
        done[key] = row;
      }
    }
    pipes[f.label] = pipe;
  }
  // Gate-level energy: each family's kinds measured once on a small array (kind_energy.h).
  if (options.energy != "vectorless" && options.energy != "gate")
    throw UsageError(fmt::format("--energy {}: one of vectorless, gate", options.energy));
  std::map<std::string, GateEnergy> measured;
  auto gate_energy_of = [&](const ScaleFamily& f, int pipe) -> const GateEnergy& {
    auto found = measured.find(f.label);
    if (found != measured.end()) return found->second;
    const int m = options.energy_measure_size;
    const std::string design = f.design(m, pipe);
    if (Baseline::is_baseline(design))
      throw UsageError(fmt::format("{}: gate-level energy needs a co-simulated design (baselines have no golden model)", f.label));
    KindEnergyOptions eo;
    eo.traces = family_energy_traces(design, options.energy_traces, cache, eo.trace_source);
    eo.activity_traces = options.energy_activity_traces;
    eo.sim_cache = cache;
    eo.progress = options.progress;
    const DesignRtl rtl = design_rtl(design);
    compose.work_dir = work_dir(design);
    compose.breakdown = true;
    const Composition c = compose_design(rtl, library, compose);
    return measured[f.label] = measure_gate_energy(rtl, c, library, compose, eo);
  };
  // One gate-level row per (family, size, trace set): the kinds measured once per family, then
  // composed at size n by instance count and duty (resumable like the vectorless rows).
  auto gate_row = [&](const ScaleFamily& f, int n, int pipe, const std::string& design) {
    std::string label;
    const std::string probe = f.design(options.energy_measure_size, pipe);
    if (Baseline::is_baseline(probe)) return;
    family_energy_traces(probe, options.energy_traces, cache, label);
    const std::string key = row_key("gate", f.label + "|" + label + fmt::format("|m{}", options.energy_measure_size), n,
                                    library.hash, options.clock_ns, options.input_activity);
    if (done.count(key) && done[key].value("status", "") == "ok") return;
    nlohmann::json row = base_row("gate", f, n);
    row["family"] = f.label;
    row["design"] = design;
    row["pipe"] = pipe;
    row["trace_source"] = label;
    row["energy_source"] = "gate-level activity per module kind";
    try {
      const GateEnergy& g = gate_energy_of(f, pipe);
      const DesignRtl rtl = design_rtl(design);
      compose.work_dir = work_dir(design);
      compose.breakdown = true;
      const Composition c = compose_design(rtl, library, compose);
      const ScaledEnergy e = scale_gate_energy(g, c, steady_utilisation(rtl, g.k, g.group_size));
      row["status"] = "ok";
      row["measured_on"] = fmt::format("{}x{}", g.rows, g.columns);
      row["measured_pj_per_mac"] = g.pj_per_mac;
      row["measured_utilisation"] = g.utilisation;
      row["measured_cycles"] = g.cycles;
      row["trace_k"] = g.k;
      row["pj_per_mac_gate"] = e.pj_per_mac;
      row["utilisation"] = e.utilisation;
      row["gate_parts"] = e.pj_per_mac_by_part;
      row["kinds_by_key"] = e.kinds_by_key;
      row["kinds_by_module"] = e.kinds_by_module;
      row["trace_source"] = g.trace_source;
    } catch (const ToolMissing&) {
      throw;
    } catch (const std::exception& e) {
      row["status"] = "error";
      row["error"] = e.what();
    }
    if (options.progress)
      fmt::print(stderr, "[scale gate] {} {}x{} on {}: {}\n", f.label, n, n, library.name,
                 row["status"] == "ok" ? fmt::format("{:.2f} pJ/MAC gate-level (U {:.3f})", row["pj_per_mac_gate"].get<double>(),
                                                     row["utilisation"].get<double>())
                                       : "error: " + row["error"].get<std::string>().substr(0, 300));
    append_row(summary.jsonl, row);
    done[key] = row;
  };
  // Sizes outer, families inner: every family at a size before the next size, so a run cut short
  // still compares all designs at the largest size it reached.
  for (int n : options.sizes) {
    for (const auto& f : families) {
      const int pipe = pipes[f.label];
      ++index;
      const std::string design = f.design(n, pipe);
      if (options.energy == "gate") gate_row(f, n, pipe, design);
      const std::string key = row_key("row", f.label, n, library.hash, options.clock_ns, options.input_activity);
      if (done.count(key) && done[key].value("status", "") == "ok") {
        summary.reused++;
        summary.rows++;
        continue;
      }
      nlohmann::json row = base_row("row", f, n);
      row["design"] = design;
      row["pipe"] = f.pipelined ? pipe : 1;
      compose.work_dir = work_dir(design);
      compose.breakdown = true;
      try {
        Composition c = compose_design(design_rtl(design), library, compose);
        const double f_eff = std::min(target_mhz, c.fmax_mhz);
        const double macs = static_cast<double>(c.macs_per_cycle);
        row["status"] = "ok";
        row["area_um2"] = c.area_um2;
        row["cells"] = c.cells;
        row["power_vectorless_mw"] = c.power_mw;
        row["fmax_mhz"] = c.fmax_mhz;
        row["timing_met"] = c.fmax_mhz >= target_mhz;
        row["macs_per_cycle"] = c.macs_per_cycle;
        row["area_per_mac"] = c.area_um2 / macs;
        // mW x ns = pJ: energy per cycle at the stated clock, spread over the cycle's MACs.
        row["pj_per_mac_vectorless"] = c.power_mw * options.clock_ns / macs;
        row["gmacs"] = macs * f_eff / 1000.0;
        row["um2_per_gmacs"] = c.area_um2 / (macs * f_eff / 1000.0);
        row["mw_per_gmacs"] = c.power_mw * (f_eff / target_mhz) / (macs * f_eff / 1000.0);
        row["parts"] = c.area_per_mac_by_part();
        row["kinds"] = c.kinds.size();
        row["kinds_synthesized"] = c.kinds_synthesized;
        row["glue_area_um2"] = c.glue.area_um2;
        row["glue_method"] = c.glue_method;
        row["seconds"] = c.seconds;
        summary.composed++;
      } catch (const ToolMissing&) {
        throw;
      } catch (const std::exception& e) {
        row["status"] = "error";
        row["error"] = e.what();
        summary.failed++;
      }
      append_row(summary.jsonl, row);
      done[key] = row;
      summary.rows++;
      if (options.progress) {
        double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        fmt::print(stderr, "[scale {}/{}] {} {}x{} on {}: {} ({:.0f} s elapsed)\n", index, total, f.label, n, n, library.name,
                   row["status"] == "ok" ? fmt::format("{:.0f} um^2/MAC, {:.2f} pJ/MAC vl, fmax {:.1f} MHz",
                                                       row["area_per_mac"].get<double>(),
                                                       row["pj_per_mac_vectorless"].get<double>(),
                                                       row["fmax_mhz"].get<double>())
                                         : "error: " + row["error"].get<std::string>().substr(0, 200),
                   elapsed);
      }
    }
  }
  summary.report = write_scale_report(out);
  summary.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return summary;
}

std::vector<AnalyticMac> analytic_macs(int b, int g, int rows) {
  // Horowitz, "Computing's energy problem", ISSCC 2014, 45 nm, 0.9 V: energy pJ / area um^2.
  struct Op {
    double pj, um2;
  };
  const Op mul8{0.2, 282}, add8{0.03, 36}, add32{0.1, 137}, fadd16{0.4, 1360}, fmul16{1.1, 1640}, fadd32{0.9, 4184};
  (void)b;
  // A 17-bit group-sum adder lies between the 8- and 32-bit integer adders (linear in bits).
  const Op add17{add8.pj + (add32.pj - add8.pj) * (17 - 8) / 24.0, add8.um2 + (add32.um2 - add8.um2) * (17 - 8) / 24.0};
  auto gse = [&](double per_group_share) {
    return Op{mul8.pj + add17.pj + add32.pj / g, mul8.um2 + add17.um2 + add32.um2 * per_group_share};
  };
  const Op gse_shared = gse(1.0 / rows), gse_pe = gse(1.0);
  auto mac = [](std::string design, std::string model, const Op& mul, double acc_pj, double acc_um2) {
    return AnalyticMac{std::move(design), std::move(model), mul.pj + acc_pj, mul.um2 + acc_um2,
                       mul.um2, acc_um2, mul.pj, acc_pj};
  };
  const double gse_shared_acc_um2 = gse_shared.um2 - mul8.um2, gse_pe_acc_um2 = gse_pe.um2 - mul8.um2;
  return {
      mac("FP8 MAC, fp32 accumulator", "FP8 multiply as an 8-bit integer multiply + FP32 add", mul8, fadd32.pj, fadd32.um2),
      mac("FP8 MAC, fp32 accumulator", "FP8 multiply as an FP16 multiply + FP32 add", fmul16, fadd32.pj, fadd32.um2),
      mac("FP8 MAC, fp16 accumulator", "FP8 multiply as an 8-bit integer multiply + FP16 add", mul8, fadd16.pj, fadd16.um2),
      mac("FP8 MAC, wide fixed accumulator", "8-bit integer multiply + 32-bit integer add (+ shifter not counted)", mul8,
          add32.pj, add32.um2),
      mac("GSE-INT MAC, shared column",
          fmt::format("8-bit multiply + 17-bit add + 32-bit add once per group (G = {}), one per column (R = {})", g, rows),
          mul8, gse_shared.pj - mul8.pj, gse_shared_acc_um2),
      mac("GSE-INT MAC, per PE", "8-bit multiply + 17-bit add + 32-bit add per PE, used once per group", mul8,
          gse_pe.pj - mul8.pj, gse_pe_acc_um2),
  };
}

}  // namespace gsqhw::synth
