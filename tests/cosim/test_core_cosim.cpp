// The core in Verilator against the golden model: the quantizer's and the dequantizer's
// conversions one value per cycle over large random and edge-case sets, and whole GEMMs through
// gsqhw_core with random bubbles and backpressure (sim/core_cosim.h), plus fault injection.
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <random>

#include "gen/core.h"
#include "gen/generator.h"
#include "sim/core_cosim.h"
#include "base/errors.h"
#include "numerics/fp32_round.h"
#include "numerics/gse.h"
#include "numerics/minifloat.h"
#include "workloads/lora.h"

namespace gsqhw {
namespace {

namespace fs = std::filesystem;

bool have_verilator() { return std::system("command -v verilator >/dev/null 2>&1") == 0; }

fs::path cache_dir() { return fs::path(GSQHW_TEST_BINARY_DIR) / "cosim-test-cache"; }

uint32_t bits_of(float f) { return fp32_bits(f); }
float float_from(uint32_t b) { return fp32_from_bits(b); }

const std::string& file_text(const GeneratedDesign& g, const std::string& name) {
  for (const auto& [n, text] : g.files)
    if (n == name) return text;
  throw std::runtime_error("no file " + name);
}

// FP32 inputs for a conversion test: every boundary of the target's grid (each representable
// value, the exact midpoints between neighbours and the floats just beside them), FP32 specials
// and subnormals, and random bit patterns.
std::vector<uint32_t> conversion_inputs(const std::vector<double>& grid, uint64_t seed,
                                        int random_count) {
  std::vector<uint32_t> in;
  auto add = [&](double v) {
    float f = static_cast<float>(v);
    if (static_cast<double>(f) != v) return;  // only exact FP32 values (midpoints may not be)
    for (float x : {f, std::nextafter(f, -INFINITY), std::nextafter(f, INFINITY)}) {
      in.push_back(bits_of(x));
      in.push_back(bits_of(-x));
    }
  };
  for (size_t i = 0; i < grid.size(); ++i) {
    add(grid[i]);
    if (i + 1 < grid.size()) add((grid[i] + grid[i + 1]) / 2);
  }
  for (uint32_t special : {0x00000000u, 0x80000000u, 0x00000001u, 0x007fffffu, 0x00800000u,
                           0x7f7fffffu, 0x7f800000u, 0xff800000u, 0x7fc00000u, 0x7f800001u,
                           0xffffffffu})
    in.push_back(special);
  std::mt19937_64 rng(seed);
  for (int i = 0; i < random_count; ++i) {
    uint32_t b = static_cast<uint32_t>(rng());
    if (i % 2) b = (b & 0x807fffffu) | ((100u + static_cast<uint32_t>(rng() % 60)) << 23);
    in.push_back(b);
  }
  return in;
}

std::vector<double> minifloat_grid(const MinifloatParams& p) {
  std::vector<double> grid;
  for (uint32_t code = 0; code < (1u << (p.total_bits() - 1)); ++code) {
    double v = decode_minifloat(p, code);
    if (std::isfinite(v)) grid.push_back(v);
  }
  grid.push_back(std::ldexp(1.0, p.max_exp() + 1));  // beyond the largest finite value
  return grid;
}

// The minifloat encoder of a generated core, one conversion per cycle.
void check_minifloat_encoder(const std::string& spec, const MinifloatParams& p, bool saturate) {
  SCOPED_TRACE(spec);
  GeneratedDesign core = generate_design(DesignPoint::parse(spec));
  VerilatorBuildSpec build;
  build.top = "quant_probe";
  build.sources = {{"gsqhw_quant_mf.v", file_text(core, "gsqhw_quant_mf.v")},
                   {"quant_probe.v", fmt::format(R"(module quant_probe (
  input  wire clk, input wire rst, input wire [31:0] x,
  output wire valid, output wire [{}:0] code);
  wire unused = clk | rst;
  assign valid = 1'b1;
  gsqhw_quant_mf encoder (.x(x), .code(code));
endmodule
)",
                                                 p.total_bits() - 1)}};
  build.ports = {{"x", true, 32}, {"valid", false, 1}, {"code", false, p.total_bits()}};
  build.valid_port = "valid";
  build.label = "quantizer probe " + spec;
  std::vector<uint32_t> xs = conversion_inputs(minifloat_grid(p), 7, 60000);
  std::vector<std::vector<uint64_t>> inputs;
  for (uint32_t x : xs) inputs.push_back({x});
  auto beats = simulate_cycles(build, inputs, cache_dir());
  ASSERT_EQ(beats.size(), xs.size());
  int failures = 0;
  for (size_t i = 0; i < xs.size(); ++i) {
    uint32_t want = encode_minifloat(p, float_from(xs[i]), saturate);
    if (beats[i].outputs[1] != want && failures++ < 10)
      ADD_FAILURE() << fmt::format("{}: FP32 {:08x} ({}) -> RTL {:02x}, golden {:02x}", spec,
                                   xs[i], float_from(xs[i]), beats[i].outputs[1], want);
  }
  EXPECT_EQ(failures, 0) << "of " << xs.size() << " conversions";
}

TEST(CoreQuantizer, Fp8ConversionsMatchTheGoldenEncoder) {
  if (!have_verilator()) GTEST_SKIP() << "verilator not installed (apt-get install verilator)";
  check_minifloat_encoder("fp8:e4m3@core2x2,acc=fp32", e4m3_params(), true);
  check_minifloat_encoder("fp8:e5m2,sat=nonsat@core2x2,acc=fp32", e5m2_params(), false);
  check_minifloat_encoder("fp8:e4m3,sat=nonsat@core2x2,acc=fp32", e4m3_params(), false);
}

// The GSE element and scale leaves: for every exponent code, values on the element grid, its
// midpoints and their neighbours, plus random values; the scale from single values.
void check_gse_leaves(const std::string& spec) {
  SCOPED_TRACE(spec);
  DesignPoint d = DesignPoint::parse(spec);
  GseParams g = GseParams::parse(d.format);
  GeneratedDesign core = generate_design(d);
  VerilatorBuildSpec build;
  build.top = "gse_probe";
  build.sources = {{"gsqhw_quant_gse_scale.v", file_text(core, "gsqhw_quant_gse_scale.v")},
                   {"gsqhw_quant_gse_elem.v", file_text(core, "gsqhw_quant_gse_elem.v")},
                   {"gse_probe.v", fmt::format(R"(module gse_probe (
  input  wire clk, input wire rst, input wire [31:0] x, input wire [{0}:0] exp_code,
  output wire valid, output wire [{1}:0] code, output wire [{0}:0] scale_code);
  wire unused = clk | rst;
  assign valid = 1'b1;
  gsqhw_quant_gse_elem element (.x(x), .exp_code(exp_code), .code(code));
  gsqhw_quant_gse_scale scale (.amax(x[30:0]), .nonfinite(x[30:23] == 8'hff), .exp_code(scale_code));
endmodule
)",
                                               g.e - 1, g.b - 1)}};
  build.ports = {{"x", true, 32},
                 {"exp_code", true, g.e},
                 {"valid", false, 1},
                 {"code", false, g.b},
                 {"scale_code", false, g.e}};
  build.valid_port = "valid";
  build.label = "GSE quantizer probe " + spec;
  std::vector<std::vector<uint64_t>> inputs;
  std::mt19937_64 rng(11);
  for (int e = 0; e <= g.nan_code(); ++e) {
    std::vector<double> grid;
    if (e != g.nan_code())
      for (int m = -(1 << (g.b - 1)) - 2; m <= (1 << (g.b - 1)) + 2; ++m)
        grid.push_back(gse_element_value(g, m, e));
    for (uint32_t x : conversion_inputs(grid, 100 + e, 300))
      inputs.push_back({x, static_cast<uint64_t>(e)});
  }
  auto beats = simulate_cycles(build, inputs, cache_dir());
  ASSERT_EQ(beats.size(), inputs.size());
  const uint32_t mask = (1u << g.b) - 1;
  int failures = 0;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const float x = float_from(static_cast<uint32_t>(inputs[i][0]));
    const int e = static_cast<int>(inputs[i][1]);
    // A NaN or Inf makes its group a NaN group, so the element converter never sees one with
    // another exponent code: its code is only checked for finite x (and the NaN code: 0).
    const bool code_defined = std::isfinite(x) || e == g.nan_code();
    uint32_t want_code =
        e == g.nan_code() || !code_defined
            ? 0u
            : static_cast<uint32_t>(gse_quantize_element(g, x, e, 0)) & mask;
    int want_scale = gse_choose_exponent(g, &x, 1);
    const bool code_ok = !code_defined || beats[i].outputs[1] == want_code;
    if ((!code_ok || static_cast<int>(beats[i].outputs[2]) != want_scale) && failures++ < 10)
      ADD_FAILURE() << fmt::format(
          "{}: x {:08x} ({}) exponent code {}: RTL code {} scale {}, golden code {} scale {}",
          spec, inputs[i][0], x, e, beats[i].outputs[1], beats[i].outputs[2], want_code,
          want_scale);
  }
  EXPECT_EQ(failures, 0) << "of " << inputs.size() << " conversions";
}

TEST(CoreQuantizer, GseConversionsMatchTheGoldenQuantizer) {
  if (!have_verilator()) GTEST_SKIP() << "verilator not installed (apt-get install verilator)";
  check_gse_leaves("gse:b=6,g=32,e=5@core2x2,acc=fixed32.16");
  check_gse_leaves("gse:b=4,g=8,e=8,scale=ceil,round=rna,range=full@core2x2,acc=fixed32.16");
  check_gse_leaves("gse:b=8,g=4,e=4,round=trunc@core2x2,acc=fixed32.16");
}

// The fixed-point dequantizer over edge accumulators, for formats where results are normal,
// subnormal (large F) and overflow to Inf (negative F).
void check_dequantizer(const std::string& spec) {
  SCOPED_TRACE(spec);
  DesignPoint d = DesignPoint::parse(spec);
  const int w = d.acc.width;
  GeneratedDesign core = generate_design(d);
  VerilatorBuildSpec build;
  build.top = "deq_probe";
  build.sources = {{"gsqhw_dequantizer.v", file_text(core, "gsqhw_dequantizer.v")},
                   {"deq_probe.v", fmt::format(R"(module deq_probe (
  input  wire clk, input wire rst, input wire [{}:0] acc, input wire [1:0] flags,
  output wire valid, output wire [31:0] value);
  wire unused = clk | rst;
  assign valid = 1'b1;
  gsqhw_dequantizer dequantizer (.acc(acc), .flags(flags), .value(value));
endmodule
)",
                                               w - 1)}};
  build.ports = {{"acc", true, w}, {"flags", true, 2}, {"valid", false, 1}, {"value", false, 32}};
  build.valid_port = "valid";
  build.label = "dequantizer probe " + spec;
  const uint64_t mask = w == 64 ? ~uint64_t{0} : (uint64_t{1} << w) - 1;
  std::vector<std::vector<uint64_t>> inputs;
  std::mt19937_64 rng(5);
  for (int bit = 0; bit < w; ++bit)
    for (int64_t delta : {-1, 0, 1})
      for (uint64_t flags : {0, 0, 1}) {
        uint64_t v = (uint64_t{1} << bit) + static_cast<uint64_t>(delta);
        inputs.push_back({v & mask, flags});
        inputs.push_back({(~v + 1) & mask, flags});
      }
  for (int i = 0; i < 20000; ++i) {
    uint64_t v = rng() >> (rng() % 64);  // magnitudes of every size
    if (rng() % 7 == 0) v |= (uint64_t{1} << 24) - 1;  // long runs of ones: rounding carries
    if (rng() % 2) v = ~v + 1;
    inputs.push_back({v & mask, i % 50 == 0 ? 2u : 0u});
  }
  auto beats = simulate_cycles(build, inputs, cache_dir());
  ASSERT_EQ(beats.size(), inputs.size());
  int failures = 0;
  for (size_t i = 0; i < inputs.size(); ++i) {
    uint64_t raw = inputs[i][0];
    int64_t acc = w == 64 ? static_cast<int64_t>(raw)
                          : static_cast<int64_t>(raw << (64 - w)) >> (64 - w);  // sign-extend
    uint32_t want = inputs[i][1] & 2 ? 0x7fc00000u
                                     : fp32_bits(scaled_int_to_fp32(acc, -d.acc.frac_bits));
    if (beats[i].outputs[1] != want && failures++ < 10)
      ADD_FAILURE() << fmt::format("{}: acc {} flags {} -> RTL {:08x}, golden {:08x}", spec, acc,
                                   inputs[i][1], beats[i].outputs[1], want);
  }
  EXPECT_EQ(failures, 0) << "of " << inputs.size() << " conversions";
}

TEST(CoreDequantizer, FixedAccumulatorsMatchTheGoldenConversion) {
  if (!have_verilator()) GTEST_SKIP() << "verilator not installed (apt-get install verilator)";
  check_dequantizer("gse:b=6@core2x2,acc=fixed24.20");  // W < 26: the frame is zero-padded
  check_dequantizer("gse:b=6@core2x2,acc=fixed64.170");  // results down in the subnormals
  check_dequantizer("gse:b=6@core2x2,acc=fixed64.-90");  // results beyond FLT_MAX: Inf
}

// ---- whole GEMMs through gsqhw_core

std::vector<CoreCosimGemm> random_gemms(const DesignPoint& d, uint64_t seed) {
  // shapes: partial tiles, K below R (padded steps), K = 1, partial groups, full capacity rows
  const std::vector<std::array<int64_t, 3>> shapes = {{3, 3, 45}, {2, 2, 1}, {4, 1, 70}, {1, 5, 33}};
  std::vector<CoreCosimGemm> gemms;
  for (size_t i = 0; i < shapes.size(); ++i) {
    CoreCosimGemm g;
    g.m = shapes[i][0];
    g.n = shapes[i][1];
    g.k = shapes[i][2];
    g.name = fmt::format("random{} {}x{}x{}", i, g.m, g.n, g.k);
    g.a = core_random_operand(g.m, g.k, 32, seed + 2 * i, true);
    g.b = core_random_operand(g.n, g.k, 32, seed + 2 * i + 1, true);
    gemms.push_back(std::move(g));
  }
  (void)d;
  return gemms;
}

void expect_core_cosim_passes(const std::string& spec, uint64_t seed) {
  SCOPED_TRACE(spec);
  DesignPoint d = DesignPoint::parse(spec);
  GeneratedDesign core = generate_design(d);
  CoreCosimOptions options;
  options.seed = seed;
  options.cache_dir = cache_dir();
  CosimResult r = run_core_cosim_gemms(core, random_gemms(d, seed), options);
  EXPECT_TRUE(r.pass) << cosim_result_text(r);
  EXPECT_EQ(r.gemms, 4);
}

TEST(CoreCosim, GseFixedCoreIsBitExactUnderBackpressure) {
  if (!have_verilator()) GTEST_SKIP() << "verilator not installed (apt-get install verilator)";
  expect_core_cosim_passes("gse:b=6@core2x2,acc=fixed32.16", 21);
}

TEST(CoreCosim, Fp8Fp32CoreIsBitExactUnderBackpressure) {
  if (!have_verilator()) GTEST_SKIP() << "verilator not installed (apt-get install verilator)";
  expect_core_cosim_passes("fp8:e4m3@core2x2,acc=fp32", 22);
}

// Without stalls the core takes exactly the cycles its manifest states.
TEST(CoreCosim, CycleCountWithoutStallsMatchesTheManifest) {
  if (!have_verilator()) GTEST_SKIP() << "verilator not installed (apt-get install verilator)";
  for (const char* spec : {"gse:b=6@core2x2,acc=fixed32.16", "fp8:e4m3@core2x2,acc=fp32"}) {
    SCOPED_TRACE(spec);
    DesignPoint d = DesignPoint::parse(spec);
    GeneratedDesign core = generate_design(d);
    CoreCosimOptions options;
    options.cache_dir = cache_dir();
    options.in_rate = 1;
    options.out_rate = 1;
    auto gemms = random_gemms(d, 31);
    CosimResult r = run_core_cosim_gemms(core, gemms, options);
    ASSERT_TRUE(r.pass) << cosim_result_text(r);
    for (size_t i = 0; i < gemms.size(); ++i)
      EXPECT_EQ(r.per_gemm[i].measured_cycles,
                core_cycles_without_stalls(core.manifest, gemms[i].m, gemms[i].n, gemms[i].k))
          << gemms[i].name;
  }
}

TEST(CoreCosim, ReportsAFaultInTheQuantizerWithItsPlace) {
  if (!have_verilator()) GTEST_SKIP() << "verilator not installed (apt-get install verilator)";
  DesignPoint d = DesignPoint::parse("gse:b=6@core2x2,acc=fixed32.16");
  GeneratedDesign core = generate_design(d);
  bool edited = false;
  for (auto& [name, text] : core.files) {
    if (name != "gsqhw_quant_gse_elem.v") continue;
    // one line edited: round to nearest, ties away from zero, instead of ties to even
    const std::string line = "round_bit && (sticky || kept[0])";
    auto at = text.find(line);
    ASSERT_NE(at, std::string::npos);
    text.replace(at, line.size(), "round_bit");
    edited = true;
  }
  ASSERT_TRUE(edited);
  CoreCosimOptions options;
  options.cache_dir = cache_dir();
  CosimResult r = run_core_cosim_gemms(core, random_gemms(d, 23), options);
  ASSERT_FALSE(r.pass);
  ASSERT_GT(r.mismatch_count, 0);
  const Mismatch& m = r.mismatches.front();
  EXPECT_EQ(m.design, d.str());
  EXPECT_NE(m.trace.find("random"), std::string::npos);
  EXPECT_NE(m.expected_acc, m.actual_acc);
  EXPECT_GT(m.cycle, 0);
  std::string text = cosim_result_text(r);
  EXPECT_NE(text.find(fmt::format("output ({}, {})", m.gemm_row, m.gemm_col)), std::string::npos)
      << text;
}

TEST(CoreCosim, RefusesGemmsBeyondTheCapacity) {
  GeneratedDesign core = generate_design(DesignPoint::parse("gse:b=6@core2x2,acc=fixed32.16"));
  CoreCosimGemm g;
  g.name = "too big";
  g.m = 9;  // capacity: 4 tile rows x R = 2
  g.n = 1;
  g.k = 1;
  g.a.assign(9, 1.0f);
  g.b.assign(1, 1.0f);
  EXPECT_THROW(run_core_cosim_gemms(core, {g}, CoreCosimOptions{}), UsageError);
}

TEST(CoreCosim, RunsTheTinyLoraTraceOperands) {
  if (!have_verilator()) GTEST_SKIP() << "verilator not installed (apt-get install verilator)";
  DesignPoint d = DesignPoint::parse("gse:b=6@core2x2,acc=fixed32.16");
  auto traces = ensure_builtin_tiny_traces(cache_dir() / "traces", d.format, d.acc);
  ASSERT_FALSE(traces.empty());
  std::vector<fs::path> two(traces.begin(), traces.begin() + std::min<size_t>(2, traces.size()));
  CosimOptions options;
  options.cache_dir = cache_dir();
  CosimResult r = run_cosim_traces(cosim_design_generate(d), two, options);
  EXPECT_TRUE(r.pass) << cosim_result_text(r);
  EXPECT_EQ(r.gemms, static_cast<int64_t>(two.size()));
}

TEST(CoreCosim, CliRunsACoreAndExitsZero) {
  if (!have_verilator()) GTEST_SKIP() << "verilator not installed (apt-get install verilator)";
  fs::path log = fs::temp_directory_path() / fmt::format("gsqhw_core_cli_{}.log", getpid());
  int status = std::system(fmt::format("{} cosim --design 'gse:b=6@core2x2,acc=fixed32.16' "
                                       "--cache {} >{} 2>&1",
                                       GSQHW_CLI, cache_dir().string(), log.string())
                               .c_str());
  std::ifstream in(log);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << text;
  EXPECT_NE(text.find("PASS gse:b=6"), std::string::npos) << text;
  status = std::system(fmt::format("{} cosim --design 'gse:b=6@core2x2' --engine fast --cache {} "
                                   ">{} 2>&1",
                                   GSQHW_CLI, cache_dir().string(), log.string())
                           .c_str());
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 2) << "the fast engine is for arrays";
}

}  // namespace
}  // namespace gsqhw
