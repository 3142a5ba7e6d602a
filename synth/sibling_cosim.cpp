// Co-simulation of the sibling designs on LoRA-layer traces (synth/sibling_cosim.h).
#include "synth/sibling_cosim.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <functional>
#include <random>

#include "gen/lota.h"
#include "gen/ptq161.h"
#include "base/errors.h"

namespace gsqhw::synth {
namespace fs = std::filesystem;

namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

uint64_t fnv1a(const std::string& s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char ch : s) h = (h ^ ch) * 1099511628211ull;
  return h;
}

// X W^T in binary64 (X tokens x d_in, W d_out x d_in row-major, W given in binary64).
std::vector<double> product(const std::vector<float>& x, const std::vector<double>& w, int64_t tokens,
                            int64_t d_out, int64_t d_in) {
  std::vector<double> y(static_cast<size_t>(tokens * d_out));
  for (int64_t t = 0; t < tokens; ++t)
    for (int64_t o = 0; o < d_out; ++o) {
      double s = 0;
      for (int64_t i = 0; i < d_in; ++i) s += static_cast<double>(x[t * d_in + i]) * w[o * d_in + i];
      y[t * d_out + o] = s;
    }
  return y;
}

void prepare_lota(const SiblingDesign& design, const Trace& trace, SiblingCase& c) {
  const lota::LotaParams& p = design.lota;
  c.base = lota::quantize_weights(trace.b_fp32.data(), c.d_out, c.d_in, p.bits, p.group);
  c.adapters = seeded_adapters(c.d_in, c.d_out, p.rank, design.seed, c.trace);
  c.merged = lota::merge(c.base, c.adapters, p);
  c.x = lota::quantize_activations(trace.a_fp32.data(), c.tokens, c.d_in);
  c.out = lota::merged_gemm(c.x, c.merged.merged).out;
  // The fine-tuned FP32 layer: W plus exactly the change the merged codes and offsets make.
  std::vector<float> base_deq(trace.b_fp32.size()), merged_deq(trace.b_fp32.size());
  c.base.dequantize(base_deq.data());
  c.merged.merged.dequantize(merged_deq.data());
  std::vector<double> tuned(trace.b_fp32.size());
  for (size_t k = 0; k < tuned.size(); ++k)
    tuned[k] = static_cast<double>(trace.b_fp32[k]) + (static_cast<double>(merged_deq[k]) - base_deq[k]);
  c.reference = product(trace.a_fp32, tuned, c.tokens, c.d_out, c.d_in);
  // N-bit codes plus an FP16 scale and an FP16 zero per group.
  c.storage_bits = static_cast<double>(c.d_out) * c.d_in * p.bits +
                   static_cast<double>(c.d_out) * c.base.groups_per_row() * 32.0;
}

void prepare_ptq161(const SiblingDesign& design, const Trace& trace, SiblingCase& c) {
  const auto mask = ptq161::choose_salient(ptq161::channel_magnitudes(trace.a_fp32.data(), c.tokens, c.d_in),
                                           design.ptq161.salient_fraction);
  c.layer = ptq161::quantize(trace.b_fp32.data(), c.d_out, c.d_in, mask, design.ptq161);
  c.x = ptq161::quantize_activations(trace.a_fp32.data(), c.tokens, c.layer);
  c.out = ptq161::gemm(c.x, c.layer).out;
  if (static_cast<int64_t>(trace.reference_fp32.size()) == c.tokens * c.d_out) {
    c.reference.assign(trace.reference_fp32.begin(), trace.reference_fp32.end());
  } else {
    std::vector<double> w(trace.b_fp32.begin(), trace.b_fp32.end());
    c.reference = product(trace.a_fp32, w, c.tokens, c.d_out, c.d_in);
  }
  c.storage_bits = ptq161::storage_bits(c.layer).total_bits();
}

// One value of a mismatching output: which unit produced it, and both values.
struct Field {
  std::string unit;  // "PE 3" or "column-sum unit"
  int64_t expected = 0, actual = 0;
};

// The fields of a mismatching port that differ (a port of R per-row fields, or one value).
std::vector<Field> differing_fields(const rtlcheck::TbMismatch& m, int fields, int width, bool is_signed,
                                    const std::string& unit_prefix) {
  std::vector<Field> out;
  for (int i = 0; i < fields; ++i) {
    const int64_t e = rtlcheck::hex_field(m.expected_hex, i * width, width, is_signed);
    const int64_t a = rtlcheck::hex_field(m.actual_hex, i * width, width, is_signed);
    const bool undefined = m.actual_hex.find_first_of("xXzZ") != std::string::npos;
    if (e != a || (undefined && fields == 1))
      out.push_back({fields == 1 ? unit_prefix : fmt::format("{} {}", unit_prefix, i), e, a});
  }
  return out;
}

std::string describe_lota_pe(const SiblingDesign& d, const SiblingCase& c, const rtlcheck::TbMismatch& m) {
  const lota::PeWidths w = lota::pe_widths(d.lota);
  const int64_t per_token = c.d_out * c.d_in;
  const int64_t t = m.vector / per_token, o = m.vector / c.d_in % c.d_out, i = m.vector % c.d_in;
  const bool is_p = m.port == "out_p";
  const auto fields = differing_fields(m, 1, is_p ? w.dot : w.xsum, true, "PE 0");
  if (fields.empty())  // the testbench saw a difference the decoding does not (defensive)
    return fmt::format("design {} trace {} cycle {} PE 0: port {} expected {} got {} (hex)", d.str(), c.trace,
                       m.vector, m.port, m.expected_hex, m.actual_hex);
  const Field& f = fields.front();
  return fmt::format("design {} trace {} cycle {} {}: {} of token {} output {} group {}: expected {}, got {}{}",
                     d.str(), c.trace, m.vector, f.unit, is_p ? "P" : "X", t, o, i / d.lota.group, f.expected,
                     f.actual, m.actual_hex.find_first_of("xXzZ") != std::string::npos ? " (x/z bits)" : "");
}

std::string describe_ptq161(const SiblingDesign& d, const SiblingCase& c, const rtlcheck::TbMismatch& m) {
  const ptq161::ArrayWidths w = ptq161::array_widths(ptq161::ArraySpec{d.rows, d.max_k});
  const int64_t blocks = (c.d_out + d.rows - 1) / d.rows;
  const int64_t t = m.vector / (blocks * c.d_in), block = m.vector / c.d_in % blocks;
  std::vector<Field> fields;
  std::string what = m.port.substr(4);  // p_sal, p_bin, x_sal, x_bin
  if (m.port == "out_p_sal") fields = differing_fields(m, d.rows, w.p_sal, true, "PE");
  else if (m.port == "out_p_bin") fields = differing_fields(m, d.rows, w.p_bin, true, "PE");
  else fields = differing_fields(m, 1, w.p_bin, true, "column-sum unit");
  if (fields.empty())
    return fmt::format("design {} trace {} cycle {}: port {} expected {} got {} (undefined bits)", d.str(), c.trace,
                       m.vector, m.port, m.expected_hex, m.actual_hex);
  const Field& f = fields.front();
  std::string output = m.port.rfind("out_p_", 0) == 0
                           ? fmt::format("output {}", block * d.rows + std::stoll(f.unit.substr(3)))
                           : std::string("(shared by the rows)");
  return fmt::format("design {} trace {} cycle {} {}: {} of token {} {}: expected {}, got {}{}", d.str(), c.trace,
                     m.vector, f.unit, what, t, output, f.expected, f.actual,
                     fields.size() > 1 ? fmt::format(" ({} PEs differ in this cycle)", fields.size()) : "");
}

std::string describe_merge(const SiblingDesign& d, const SiblingCase& c, const rtlcheck::TbMismatch& m) {
  const int64_t o = m.vector / c.d_in, i = m.vector % c.d_in;
  return fmt::format("design {} trace {} cycle {} merge unit: port {} of weight ({}, {}): expected {} got {} (hex)",
                     d.str(), c.trace, m.vector, m.port, o, i, m.expected_hex, m.actual_hex);
}

SiblingSimResult to_sim_result(const rtlcheck::TbResult& r, const std::function<std::string(const rtlcheck::TbMismatch&)>& describe) {
  SiblingSimResult out;
  out.vectors = out.cycles = r.checked;
  out.errors = r.errors;
  out.pass = r.errors == 0;
  for (const auto& m : r.mismatches) out.mismatches.push_back(describe(m));
  if (!out.pass && out.mismatches.empty())
    out.mismatches.push_back(fmt::format("{} mismatches; the simulator log has the details", r.errors));
  return out;
}

}  // namespace

std::vector<fs::path> base_gemm_traces(const std::vector<fs::path>& files) {
  std::vector<fs::path> out;
  for (const auto& f : files)
    if (ends_with(f.stem().string(), "fwd.base")) out.push_back(f);
  if (out.empty())
    throw UsageError("no base-GEMM traces (files named *.fwd.base.safetensors): the LoTA-QAF and PTQ1.61 points "
                     "quantize a layer's FP32 weights and activations, which only the forward base GEMM carries");
  return out;
}

lota::Adapters seeded_adapters(int64_t d_in, int64_t d_out, int rank, uint64_t seed, const std::string& trace) {
  // mt19937_64's output sequence is fixed by the standard; `% 3` keeps the draw portable
  // (std::uniform_int_distribution is not).
  std::mt19937_64 rng(seed ^ fnv1a(trace));
  auto ternary = [&rng]() { return static_cast<int8_t>(static_cast<int>(rng() % 3) - 1); };
  lota::Adapters ad;
  ad.d_in = d_in;
  ad.d_out = d_out;
  ad.rank = rank;
  ad.a.resize(static_cast<size_t>(d_in * rank));
  ad.b.resize(static_cast<size_t>(rank * d_out));
  for (auto& v : ad.a) v = ternary();
  for (auto& v : ad.b) v = ternary();
  return ad;
}

SiblingCase prepare_case(const SiblingDesign& design, const Trace& trace) {
  SiblingCase c;
  c.trace = trace.name;
  c.tokens = trace.m();
  c.d_out = trace.n();
  c.d_in = trace.k();
  if (static_cast<int64_t>(trace.a_fp32.size()) != c.tokens * c.d_in ||
      static_cast<int64_t>(trace.b_fp32.size()) != c.d_out * c.d_in)
    throw UsageError(fmt::format("trace {} has no FP32 originals of X and W to quantize", trace.name));
  if (design.method == SiblingDesign::Method::lota) prepare_lota(design, trace, c);
  else prepare_ptq161(design, trace, c);
  return c;
}

void add_error(const SiblingCase& c, TraceError& error) {
  for (size_t i = 0; i < c.out.size(); ++i) {
    ++error.outputs;
    const double out = c.out[i], ref = c.reference[i];
    if (!std::isfinite(out)) {
      ++error.nan_outputs;
      continue;
    }
    error.signal += ref * ref;
    error.noise += (out - ref) * (out - ref);
  }
  error.sqnr_db = error.noise > 0 ? 10 * std::log10(error.signal / error.noise) : INFINITY;
}

SiblingSimResult simulate_case(const SiblingDesign& design, const rtlcheck::RtlBundle& rtl, const SiblingCase& c,
                               const fs::path& dir, const fs::path& vcd) {
  rtlcheck::SimOptions options;
  options.vcd = vcd;
  if (design.method == SiblingDesign::Method::lota) {
    auto r = lota::check_integer_pe(rtl, design.lota, c.x, c.merged.merged, dir, options);
    return to_sim_result(r, [&](const rtlcheck::TbMismatch& m) { return describe_lota_pe(design, c, m); });
  }
  auto r = ptq161::check_array(rtl, ptq161::ArraySpec{design.rows, design.max_k}, c.layer, c.x, dir, 0, options);
  return to_sim_result(r, [&](const rtlcheck::TbMismatch& m) { return describe_ptq161(design, c, m); });
}

SiblingSimResult simulate_merge(const SiblingDesign& design, const SiblingCase& c, const fs::path& dir) {
  auto rtl = lota::generate_merge_unit(design.lota);
  auto r = lota::check_merge_unit(rtl, design.lota, lota::layer_merge_vectors(c.base, c.adapters), dir);
  return to_sim_result(r, [&](const rtlcheck::TbMismatch& m) { return describe_merge(design, c, m); });
}

SwitchingActivity activity_from_testbench_vcd(const fs::path& vcd, const std::string& top) {
  std::ifstream in(vcd);
  if (!in) throw MismatchError(fmt::format("the simulation wrote no VCD at {}", vcd.string()));
  // The VCD's time unit: Icarus writes the finest precision of the design ("$timescale 1ps $end").
  std::string token, unit;
  while (in >> token && token != "$enddefinitions")
    if (token == "$timescale") {
      std::string part;
      while (in >> part && part != "$end") unit += part;
      break;
    }
  static const std::pair<const char*, int64_t> units[] = {{"1ns", 1}, {"100ps", 10}, {"10ps", 100}, {"1ps", 1000},
                                                          {"100fs", 10000}, {"10fs", 100000}, {"1fs", 1000000}};
  int64_t per_ns = 0;
  for (const auto& [name, n] : units)
    if (unit == name) per_ns = n;
  if (per_ns == 0) throw MismatchError(fmt::format("{}: unexpected VCD timescale '{}'", vcd.string(), unit));
  in.clear();
  in.seekg(0);
  SwitchingActivity activity =
      activity_from_vcd(in, "dut", rtlcheck::kTbClockPeriodNs * per_ns, rtlcheck::kTbResetReleaseNs * per_ns);
  activity.top = top;
  return activity;
}

}  // namespace gsqhw::synth
