// The GSE-INT / FP8 / INT8 / LoTA-QAF / PTQ1.61 comparison table (synth/report_siblings.h).
#include "synth/report_siblings.h"

#include <fmt/format.h>

#include <cmath>
#include <fstream>
#include <functional>
#include <optional>

#include "base/files.h"
#include "synth/point.h"
#include "synth/report.h"

namespace gsqhw::synth {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

std::optional<double> number(const json& j, const char* key) {
  if (j.contains(key) && j[key].is_number()) return j[key].get<double>();
  return std::nullopt;
}
std::string text(const json& j, const char* key) { return j.contains(key) && j[key].is_string() ? j[key].get<std::string>() : ""; }
bool ok(const json& j) { return text(j, "status") == "ok"; }
std::string cell(std::optional<double> v, const char* spec) { return v ? fmt::format(fmt::runtime(spec), *v) : "-"; }
json value_or_null(std::optional<double> v) { return v ? json(*v) : json(nullptr); }

const json* find(const std::vector<json>& results, const std::function<bool(const json&)>& pred) {
  for (const auto& r : results)
    if (pred(r)) return &r;
  return nullptr;
}

// One row of the table: which point, and how to describe it.
struct RowSpec {
  std::string method;      // "GSE-INT6", "LoTA-QAF merged INT4", ...
  std::string operands;    // weight x activation formats
  const json* point = nullptr;
  std::string missing;     // why there is no point
};

// The trace error on the sibling traces for a GSE/FP8/INT8 point, or its own sweep figure.
struct ErrorCell {
  std::optional<double> sqnr_db;
  bool same_traces = false;
};

ErrorCell error_on(const json& point, const std::vector<fs::path>& files) {
  ErrorCell e;
  if (point.contains("trace_names")) {  // a sibling point: measured on exactly these traces
    e.sqnr_db = number(point, "sqnr_db");
    e.same_traces = true;
    return e;
  }
  if (!files.empty()) {
    try {
      TraceError t = trace_error(text(point, "format"), text(point, "acc"), files);
      e.sqnr_db = std::isfinite(t.sqnr_db) ? t.sqnr_db : 999.0;
      e.same_traces = true;
      return e;
    } catch (const std::exception&) {
      // Fall through to the point's own figure (files moved, format not requantizable).
    }
  }
  e.sqnr_db = number(point, "sqnr_db");
  return e;
}


std::vector<RowSpec> choose_rows(const std::vector<json>& results) {
  auto pe_point = [&](const std::function<bool(const json&)>& pred) {
    return find(results, [&](const json& r) { return ok(r) && text(r, "level") == "pe" && pred(r); });
  };
  std::vector<RowSpec> rows;
  Headline h = compute_headline(results);
  if (h.found) {
    rows.push_back({fmt::format("GSE-INT{} (narrowest as accurate as FP8 E4M3)", h.bits), "GSE-INT x GSE-INT",
                    pe_point([&](const json& r) {
                      return text(r, "family") == "gse" && text(r, "acc_kind") == "fixed" && r.value("bits", 0) == h.bits;
                    }),
                    ""});
  } else {
    rows.push_back({"GSE-INT", "GSE-INT x GSE-INT", nullptr, h.explanation});
  }
  rows.push_back({"FP8 E4M3", "FP8 x FP8",
                  pe_point([](const json& r) { return text(r, "variant") == "fp8-e4m3" && text(r, "acc_kind") == "fp32"; }),
                  "no FP8 E4M3 (fp32 accumulator) PE point"});
  rows.push_back({"INT8", "INT8 x INT8", pe_point([](const json& r) { return text(r, "family") == "int8"; }),
                  "no INT8 PE point"});
  auto sibling = [&](const char* family) {
    return find(results, [&](const json& r) { return ok(r) && text(r, "family") == family; });
  };
  const json* lota = sibling("lota");
  rows.push_back({lota ? fmt::format("LoTA-QAF merged INT{}", lota->value("bits", 4)) : "LoTA-QAF merged INT4",
                  "INT-N (group scale, zero) x INT8", lota, "no successful lota: point"});
  rows.push_back({"PTQ1.61", "1-bit / 4-bit salient x INT8", sibling("ptq161"), "no successful ptq161: point"});
  for (auto& r : rows)
    if (r.point && !r.missing.empty() && r.missing.rfind("no ", 0) == 0) r.missing.clear();
  return rows;
}

}  // namespace

SiblingComparison sibling_comparison(const std::vector<json>& results) {
  SiblingComparison c;
  c.title = "One table: GSE-INT, FP8 E4M3, INT8, LoTA-QAF, PTQ1.61";
  std::vector<RowSpec> rows = choose_rows(results);

  // The sibling points' traces: the LoRA layer's base GEMMs (X times the frozen W).
  std::vector<fs::path> files;
  for (const auto& r : rows)
    if (r.point && r.point->contains("trace_files") && files.empty())
      for (const auto& f : (*r.point)["trace_files"])
        if (fs::exists(f.get<std::string>())) files.push_back(f.get<std::string>());

  c.paragraphs.push_back(
      "Same flow, library, clock and sweep settings for every row. Area and power are of the hardware each "
      "row's design string generates: a PE doing 1 MAC per cycle, or (PTQ1.61) an R-row datapath doing R "
      "MACs per cycle with one shared column-sum unit, so compare **area per MAC/cycle** and **pJ/MAC**, "
      "not total area. Power and pJ/MAC are workload figures (simulated activity on the first traces) where "
      "the point has them, else vectorless (v); a design whose fmax is below the sweep's clock is marked (its "
      "power is still at that clock). Bits/weight is the storage of the weights with their scales "
      "and metadata: on the trace layers, and for a 4096 x 4096 layer (where PTQ1.61's per-row scales cost "
      "little). The trace error is the SQNR of the dequantized outputs against the FP32 product on the same "
      "traces for every row (the base GEMMs of the tiny LoRA layer, *.fwd.base), as synth::trace_error "
      "defines it; LoTA-QAF is measured against the FP32 product of its fine-tuned weight W + dW_merged "
      "(docs/siblings.md).");
  c.header = {"method", "weights x activations", "design", "level", "MACs/cycle", "area um^2", "area / (MAC/cycle)",
              "fmax MHz", "power mW", "pJ/MAC", "bits/weight (trace / 4096^2)", "trace SQNR dB"};
  bool any_fallback = false;
  for (const auto& r : rows) {
    json record = {{"method", r.method}, {"operands", r.operands}};
    if (!r.point) {
      c.rows.push_back({r.method, r.operands, "-", "-", "-", "-", "-", "-", "-", "-", "-",
                        "not available: " + r.missing});
      record["status"] = "missing";
      record["note"] = r.missing;
      c.records.push_back(record);
      continue;
    }
    const json& p = *r.point;
    const double macs = p.value("macs_per_cycle", 1.0);
    const std::optional<double> area = number(p, "area_um2");
    // Only gate-level activity is quoted (RTL activity overstates power: synth/report.cpp).
    const bool workload = text(p, "activity_source") == "gate" && number(p, "power_activity_mw").has_value();
    const std::optional<double> power = workload ? number(p, "power_activity_mw") : number(p, "power_mw");
    const std::optional<double> energy = workload ? number(p, "pj_per_mac") : number(p, "pj_per_mac_vectorless");
    std::optional<double> bits = number(p, "bits_per_weight");
    if (!bits) bits = number(p, "bits_per_element");
    std::optional<double> bits_large = number(p, "bits_per_weight_4096");
    if (!bits_large) bits_large = bits;
    const ErrorCell error = error_on(p, files);
    any_fallback |= !error.same_traces;
    const std::string level = text(p, "level") == "pe" ? "PE" : fmt::format("array {}x{}", p.value("rows", 1), p.value("cols", 1));
    c.rows.push_back({r.method, r.operands, "`" + text(p, "design") + "`", level, cell(macs, "{:.0f}"),
                      cell(area, "{:.0f}"), area ? cell(*area / macs, "{:.0f}") : "-",
                      cell(number(p, "fmax_mhz"), "{:.1f}") + (p.value("timing_met", true) ? "" : " (misses the clock)"),
                      cell(power, "{:.4g}") + (workload ? "" : " (v)"), cell(energy, "{:.4g}") + (workload ? "" : " (v)"),
                      cell(bits, "{:.3f}") + " / " + cell(bits_large, "{:.3f}"),
                      cell(error.sqnr_db, "{:.2f}") + (error.same_traces ? "" : " (all sweep traces)")});
    record.update({{"status", "ok"},
                   {"design", text(p, "design")},
                   {"level", text(p, "level")},
                   {"macs_per_cycle", macs},
                   {"area_um2", value_or_null(area)},
                   {"area_um2_per_mac_per_cycle", area ? json(*area / macs) : json(nullptr)},
                   {"fmax_mhz", value_or_null(number(p, "fmax_mhz"))},
                   {"timing_met", p.value("timing_met", true)},
                   {"power_mw", value_or_null(power)},
                   {"power_source", workload ? text(p, "activity_source") + " activity" : "vectorless"},
                   {"pj_per_mac", value_or_null(energy)},
                   {"bits_per_weight", value_or_null(bits)},
                   {"bits_per_weight_4096", value_or_null(bits_large)},
                   {"sqnr_db", value_or_null(error.sqnr_db)},
                   {"sqnr_traces", error.same_traces ? "sibling base-GEMM traces" : "all sweep traces"},
                   {"liberty", text(p, "liberty")},
                   {"clock_ns", value_or_null(number(p, "clock_ns"))}});
    c.records.push_back(record);
  }
  if (files.empty())
    c.notes.push_back("No sibling point with its trace files: the GSE-INT/FP8/INT8 trace errors are their sweep "
                      "figures over all traces, not comparable with the siblings'.");
  else if (any_fallback)
    c.notes.push_back("Rows marked (all sweep traces) could not be recomputed on the sibling traces.");
  c.notes.push_back("GSE-INT, FP8 and INT8 quantize both operands with their format; LoTA-QAF and PTQ1.61 quantize "
                    "the weights their way and the activations to INT8 per token (docs/siblings.md). Their "
                    "float scales and zeros are applied outside the datapath, once per group/row, and are "
                    "not in the area.");
  return c;
}

void write_comparison_files(const SiblingComparison& comparison, const fs::path& out_dir) {
  static const char* columns[] = {"method", "operands", "status", "design", "level", "macs_per_cycle", "area_um2",
                                  "area_um2_per_mac_per_cycle", "fmax_mhz", "timing_met", "power_mw", "power_source", "pj_per_mac",
                                  "bits_per_weight", "bits_per_weight_4096", "sqnr_db", "sqnr_traces", "note"};
  std::string csv;
  for (const char* col : columns) csv += std::string(csv.empty() ? "" : ",") + col;
  csv += "\n";
  for (const auto& record : comparison.records) {
    std::string line;
    for (size_t i = 0; i < std::size(columns); ++i) {
      if (i) line += ",";
      if (!record.contains(columns[i]) || record[columns[i]].is_null()) continue;
      const json& v = record[columns[i]];
      std::string field = v.is_string() ? v.get<std::string>() : v.dump();
      if (field.find_first_of(",\"\n") != std::string::npos) {
        std::string quoted = "\"";
        for (char ch : field) quoted += ch == '"' ? std::string("\"\"") : std::string(1, ch);
        field = quoted + "\"";
      }
      line += field;
    }
    csv += line + "\n";
  }
  const json doc = {{"title", comparison.title}, {"rows", comparison.records}, {"notes", comparison.notes}};
  for (const auto& [name, content] : {std::pair{"comparison.csv", csv}, std::pair{"comparison.json", doc.dump(2) + "\n"}})
    write_file_atomically(out_dir / name, content);
}

}  // namespace gsqhw::synth
