// Co-simulation of generated RTL against the golden model: every format family's PE and small
// arrays, on random and adversarial operands and on the tiny model's LoRA traces, in lockstep
// with the fast cycle model; a deliberately broken design must be caught with an exact
// first-mismatch report; switching activity on RTL and on a gate-level netlist.
//
// Each design is one Verilator build (cached in the build folder across test runs), so the
// designs below are few and each test reuses its design for many GEMMs.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <regex>
#include <set>

#include "sim/activity.h"
#include "tests/cosim/cosim_faults.h"
#include "sim/cosim.h"
#include "base/errors.h"
#include "numerics/format.h"
#include "sim/verilator_build.h"
#include "workloads/lora.h"

namespace fs = std::filesystem;

namespace gsqhw {
namespace {

fs::path test_cache() { return fs::path(GSQHW_TEST_BINARY_DIR) / "cosim-test-cache"; }

CosimOptions options(CosimOptions::Engine engine = CosimOptions::Engine::lockstep) {
  CosimOptions o;
  o.engine = engine;
  o.cache_dir = test_cache();
  return o;
}

// Random operands whose rows span many binades (so group exponents vary).
QuantizedTensor random_operand(const std::string& spec, int64_t rows, int64_t cols,
                               uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> dist(0, 1);
  std::uniform_int_distribution<int> binade(-6, 6);
  std::vector<float> x(static_cast<size_t>(rows * cols));
  for (int64_t r = 0; r < rows; ++r) {
    float scale = std::ldexp(1.0f, binade(rng));
    for (int64_t c = 0; c < cols; ++c) x[r * cols + c] = dist(rng) * scale;
  }
  return parse_format(spec)->quantize(x.data(), rows, cols, seed);
}

CosimGemm random_gemm(const std::string& spec, int64_t m, int64_t n, int64_t k, uint64_t seed) {
  CosimGemm g;
  g.name = fmt::format("random{}x{}x{}#{}", m, n, k, seed);
  g.a = random_operand(spec, m, k, seed);
  g.b = random_operand(spec, n, k, seed + 1000);
  return g;
}

// Shapes that exercise partial tiles, K shorter than a tile's minimum steps, partial groups.
std::vector<CosimGemm> random_gemms(const std::string& spec) {
  std::vector<CosimGemm> gemms;
  uint64_t seed = 1;
  for (auto [m, n, k] : {std::tuple{1, 1, 1}, {3, 4, 7}, {5, 7, 19}, {4, 6, 64}, {2, 3, 33}})
    gemms.push_back(random_gemm(spec, m, n, k, seed++));
  return gemms;
}

// A hand-built operand: codes row-major, exponents per group.
QuantizedTensor tensor(const std::string& spec, int64_t rows, int64_t cols,
                       std::vector<int32_t> codes, std::vector<int32_t> exps = {}) {
  QuantizedTensor q = random_operand(spec, rows, cols, 7);  // shape, group size, spec
  q.codes = std::move(codes);
  if (!exps.empty()) q.group_exponents = std::move(exps);
  return q;
}

// GSE edge cases: saturated elements, NaN groups, zero groups, the largest and smallest
// exponents, and the most negative element of range=full.
std::vector<CosimGemm> gse_adversarial(const std::string& spec, int b, int G, int E, bool full) {
  const int max = (1 << (b - 1)) - 1, min = full ? -(1 << (b - 1)) : -max;
  const int nan_exp = (1 << E) - 1, max_exp = nan_exp - 1;
  const int K = 3 * G;  // three groups per row
  const int rows = 4;
  std::vector<int32_t> a_codes, b_codes, a_exps, b_exps;
  for (int r = 0; r < rows; ++r) {
    for (int k = 0; k < K; ++k) {
      a_codes.push_back(r % 2 ? min : max);
      b_codes.push_back((k + r) % 3 == 0 ? min : max);
    }
    // Row 0: largest exponents (saturates a fixed accumulator); row 1: a NaN group in A;
    // row 2: a zero group and the smallest exponent; row 3: mixed.
    const int ea[4][3] = {{max_exp, max_exp, max_exp}, {3, nan_exp, 3}, {0, 0, 1}, {max_exp, 0, 7}};
    const int eb[4][3] = {{max_exp, max_exp, 1}, {2, 2, 2}, {0, 5, 0}, {nan_exp, 1, max_exp}};
    for (int j = 0; j < 3; ++j) {
      a_exps.push_back(ea[r][j]);
      b_exps.push_back(eb[r][j]);
    }
  }
  // Zero group: row 2, group 1 of A is all zeros.
  for (int k = G; k < 2 * G; ++k) a_codes[2 * K + k] = 0;
  CosimGemm g;
  g.name = "gse-adversarial";
  g.a = tensor(spec, rows, K, a_codes, a_exps);
  g.b = tensor(spec, rows, K, b_codes, b_exps);
  return {g};
}

// Minifloat edge cases: every code of the format against a handful of special B codes.
std::vector<CosimGemm> minifloat_adversarial(const std::string& spec, int bits) {
  const int codes = 1 << bits;
  const int K = bits == 8 ? 256 : 64;
  std::vector<int32_t> a_codes, b_codes;
  std::mt19937 rng(5);
  const int rows = bits == 8 ? 1 : 8;
  for (int r = 0; r < rows; ++r)
    for (int k = 0; k < K; ++k)
      a_codes.push_back(bits == 8 ? k : static_cast<int32_t>(rng() % codes));
  // B rows: ones (0x38 e4m3 / 0x3c e5m2 ...), the largest code, a subnormal, all random.
  for (int n = 0; n < 4; ++n)
    for (int k = 0; k < K; ++k) {
      int32_t v;
      switch (n) {
        case 0: v = 1; break;                   // smallest subnormal
        case 1: v = (codes / 2) - 2; break;     // a large positive code
        case 2: v = codes - 2; break;           // a large negative code
        default: v = static_cast<int32_t>(rng() % codes);
      }
      b_codes.push_back(v);
    }
  CosimGemm g;
  g.name = "minifloat-all-codes";
  g.a = tensor(spec, rows, K, a_codes);
  g.b = tensor(spec, 4, K, b_codes);
  // Also: finite values only, so that fixed accumulators see magnitudes rather than NaN.
  CosimGemm finite = random_gemm(spec, 3, 5, 40, 77);
  finite.name = "minifloat-random";
  return {g, finite};
}

std::vector<CosimGemm> int8_adversarial(const std::string& spec) {
  const int K = 300;
  std::vector<int32_t> a_codes, b_codes;
  for (int r = 0; r < 3; ++r)
    for (int k = 0; k < K; ++k) {
      a_codes.push_back(r == 0 ? 127 : r == 1 ? -127 : (k % 2 ? 127 : 0));
      b_codes.push_back(r == 2 ? -127 : 127);
    }
  CosimGemm g;
  g.name = "int8-saturation";
  g.a = tensor(spec, 3, K, a_codes);
  g.b = tensor(spec, 3, K, b_codes);
  return {g};
}

std::string describe(const CosimResult& r) { return cosim_result_text(r); }

void expect_pass(const CosimDesign& d, const std::vector<CosimGemm>& gemms,
                 CosimOptions::Engine engine = CosimOptions::Engine::lockstep) {
  CosimResult r = run_cosim_gemms(d, gemms, options(engine));
  EXPECT_TRUE(r.pass) << describe(r);
  EXPECT_EQ(r.gemms, static_cast<int64_t>(gemms.size()));
  // The RTL took exactly the cycles the manifest's timing predicts, per GEMM.
  for (const auto& g : r.per_gemm) EXPECT_EQ(g.measured_cycles, g.timing.cycles) << g.trace;
}

// The format's random GEMMs followed by `adversarial` ones.
std::vector<CosimGemm> with_random_gemms(const std::string& format_spec,
                                         const std::vector<CosimGemm>& adversarial) {
  auto gemms = random_gemms(format_spec);
  gemms.insert(gemms.end(), adversarial.begin(), adversarial.end());
  return gemms;
}

// The tiny model's LoRA layer (56 GEMMs, quantized with the design's format): bit-exact, in
// exactly the cycles the manifest's timing predicts.
CosimResult expect_tiny_traces_pass(const CosimDesign& d) {
  auto traces = ensure_builtin_tiny_traces(test_cache() / "traces", d.design.format, d.design.acc);
  CosimResult r = run_cosim_traces(d, traces, options());
  EXPECT_TRUE(r.pass) << describe(r);
  EXPECT_EQ(r.gemms, static_cast<int64_t>(traces.size()));
  for (const auto& g : r.per_gemm) EXPECT_EQ(g.measured_cycles, g.timing.cycles) << g.trace;
  return r;
}

// ---- one test per design ----

TEST(CosimRtl, GsePeRandomAndAdversarial) {
  CosimDesign d = cosim_design_generate(DesignPoint::parse("gse:b=6,g=8,e=5@pe,acc=fixed32.16"));
  expect_pass(d, with_random_gemms(d.design.format, gse_adversarial(d.design.format, 6, 8, 5, false)));
}

TEST(CosimRtl, GseArrayPipelinedNarrowAccumulatorAndTinyTraces) {
  CosimDesign d = cosim_design_generate(DesignPoint::parse(
      "gse:b=4,g=4,e=4,scale=floor,round=rne,range=full@array2x3,acc=fixed20.6,pipe=2"));
  expect_pass(d, with_random_gemms(d.design.format, gse_adversarial(d.design.format, 4, 4, 4, true)));
  EXPECT_GT(expect_tiny_traces_pass(d).macs, 0);
}

// The shared-column GSE arrays (align=shared): groups shorter than R, partial last groups and
// short tiles are padded by the driver (timing.min_steps_per_group = R); the RTL must take
// exactly the padded cycle count and stay bit-exact, on random, adversarial and LoRA GEMMs.
void expect_shared_column_pass(const std::string& spec, int b, int G, int E) {
  SCOPED_TRACE(spec);
  CosimDesign d = cosim_design_generate(DesignPoint::parse(spec));
  ASSERT_EQ(d.manifest["architecture"], "shared-column");
  ASSERT_EQ(d.array.min_steps_per_group, d.array.rows);
  expect_pass(d, with_random_gemms(d.design.format, gse_adversarial(d.design.format, b, G, E, false)));
  auto traces = ensure_builtin_tiny_traces(test_cache() / "traces", d.design.format, d.design.acc);
  CosimResult r = run_cosim_traces(d, traces, options());
  EXPECT_TRUE(r.pass) << describe(r);
  EXPECT_EQ(r.gemms, static_cast<int64_t>(traces.size()));
  for (const auto& g : r.per_gemm) EXPECT_EQ(g.measured_cycles, g.timing.cycles) << g.trace;
}

TEST(CosimRtl, SharedColumnGseArrayFixedAccumulator) {
  expect_shared_column_pass("gse:b=6@array4x4,acc=fixed32.16,align=shared", 6, 32, 5);
}

TEST(CosimRtl, SharedColumnGseArrayFp32Accumulator) {
  expect_shared_column_pass("gse:b=6@array4x4,acc=fp32,pipe=2,align=shared", 6, 32, 5);
}

TEST(CosimRtl, SharedColumnGseArrayGroupsShorterThanRows) {
  // G = 4 < R = 6: every group is padded to 6 steps.
  expect_shared_column_pass("gse:b=4,g=4,e=4@array6x2,acc=fixed24.8,align=shared", 4, 4, 4);
}

// The shared-column FP8 arrays (align=shared on fp8:e4m3): exact group sums in the PEs, one
// accumulation per group per column (docs/formats.md, "FP8 group sums"). Random GEMMs with
// partial groups (K = 1, 7, 19, 33, 64 against G), every code against special B rows (groups
// holding NaN codes), runs of the largest magnitudes (+-448: saturation of a narrow fixed
// accumulator, fp32 sums far from zero), groups shorter than R and the tiny-model LoRA traces;
// the RTL takes exactly the padded cycle count.
CosimGemm fp8_extremes(const std::string& spec) {
  const int K = 100;  // three full groups of 32 and a partial one
  std::vector<int32_t> a_codes, b_codes;
  for (int r = 0; r < 3; ++r)
    for (int k = 0; k < K; ++k) {
      a_codes.push_back(r == 0 ? 0x7e : r == 1 ? 0xfe : (k % 2 ? 0x7e : 0x01));
      b_codes.push_back(r == 2 ? 0xfe : (k % 5 ? 0x7e : 0x80));  // 0x80: -0
    }
  CosimGemm g;
  g.name = "fp8-extremes";
  g.a = tensor(spec, 3, K, a_codes);
  g.b = tensor(spec, 3, K, b_codes);
  return g;
}

void expect_fp8_shared_pass(const std::string& spec, bool traces) {
  SCOPED_TRACE(spec);
  CosimDesign d = cosim_design_generate(DesignPoint::parse(spec));
  ASSERT_EQ(d.manifest["architecture"], "shared-column");
  ASSERT_EQ(d.array.min_steps_per_group, d.array.rows);
  ASSERT_EQ(d.array.group_size, d.design.acc.group);
  auto adversarial = minifloat_adversarial(d.design.format, 8);
  adversarial.push_back(fp8_extremes(d.design.format));
  expect_pass(d, with_random_gemms(d.design.format, adversarial));
  if (traces) EXPECT_GT(expect_tiny_traces_pass(d).macs, 0);
}

TEST(CosimRtl, SharedColumnFp8ArrayFp32Accumulator) {
  expect_fp8_shared_pass("fp8:e4m3@array4x4,acc=fp32,pipe=2,align=shared", true);
}

TEST(CosimRtl, SharedColumnFp8ArrayFixedAccumulatorGroupsShorterThanRows) {
  // G = 3 < R = 4: every group is padded to 4 steps; fixed32.10 saturates on the extremes.
  expect_fp8_shared_pass("fp8:e4m3@array4x3,acc=fixed32.10,pipe=4,align=shared,group=3", false);
  expect_fp8_shared_pass("fp8:e4m3@array3x2,acc=fixed49.18,pipe=3,align=shared", false);
}

// Weight-stationary arrays (flow=ws): the driver loads weights a chunk ahead and streams A rows;
// bit-exact on random, adversarial and tiny-model LoRA GEMMs, RTL and fast model in lockstep.
void expect_ws_pass(const std::string& spec, const std::vector<CosimGemm>& adversarial) {
  SCOPED_TRACE(spec);
  CosimDesign d = cosim_design_generate(DesignPoint::parse(spec));
  ASSERT_TRUE(d.array.weight_stationary);
  expect_pass(d, with_random_gemms(d.design.format, adversarial));
  expect_tiny_traces_pass(d);
}

TEST(CosimRtl, WeightStationaryGseArray) {
  const std::string spec = "gse:b=6,g=32,e=5@array4x3,acc=fixed32.16,flow=ws,pipe=2";
  expect_ws_pass(spec, gse_adversarial(DesignPoint::parse(spec).format, 6, 32, 5, false));
}

TEST(CosimRtl, WeightStationaryFp8ArrayFp32Accumulator) {
  const std::string spec = "fp8:e4m3@array3x4,acc=fp32,flow=ws";
  expect_ws_pass(spec, minifloat_adversarial(DesignPoint::parse(spec).format, 8));
}

TEST(CosimRtl, WeightStationaryInt8Array) {
  const std::string spec = "int8@array4x4,acc=fixed32.0,flow=ws,pipe=3";
  expect_ws_pass(spec, int8_adversarial(DesignPoint::parse(spec).format));
}

TEST(CosimRtl, Fp8E4m3PeFp32Accumulator) {
  CosimDesign d = cosim_design_generate(DesignPoint::parse("fp8:e4m3@pe,acc=fp32"));
  expect_pass(d, with_random_gemms(d.design.format, minifloat_adversarial(d.design.format, 8)));
}

TEST(CosimRtl, Fp8E5m2ArrayFixedAccumulator) {
  CosimDesign d = cosim_design_generate(DesignPoint::parse("fp8:e5m2@array3x2,acc=fixed32.16"));
  expect_pass(d, with_random_gemms(d.design.format, minifloat_adversarial(d.design.format, 8)));
}

// The fair FP8 baseline of the scale sweep (synth/scale.h): exact FP8 E4M3 products into a
// fixed-point register wide enough for every K = 4096 sum (fixed49.18), rounded once at the end.
TEST(CosimRtl, Fp8E4m3ArrayWideFixedAccumulator) {
  CosimDesign d = cosim_design_generate(DesignPoint::parse("fp8:e4m3@array2x2,acc=fixed49.18"));
  expect_pass(d, with_random_gemms(d.design.format, minifloat_adversarial(d.design.format, 8)));
}

TEST(CosimRtl, Int8ArraySaturatingAccumulator) {
  CosimDesign d = cosim_design_generate(DesignPoint::parse("int8@array2x2,acc=fixed24.0"));
  expect_pass(d, with_random_gemms(d.design.format, int8_adversarial(d.design.format)));
}

TEST(CosimRtl, Bf16AndFp16Pes) {
  for (const char* spec : {"bf16@pe,acc=fp32", "fp16@pe,acc=fixed32.16"}) {
    SCOPED_TRACE(spec);
    CosimDesign d = cosim_design_generate(DesignPoint::parse(spec));
    expect_pass(d, with_random_gemms(d.design.format, minifloat_adversarial(d.design.format, 16)));
  }
}

TEST(CosimRtl, SystemCTestbenchGivesTheSameVerdict) {
  CosimDesign d = cosim_design_generate(DesignPoint::parse("gse:b=6,g=8,e=5@pe,acc=fixed32.16"));
  auto gemms = with_random_gemms(d.design.format, gse_adversarial(d.design.format, 6, 8, 5, false));
  CosimOptions o = options();
  o.systemc = true;
  CosimResult r = run_cosim_gemms(d, gemms, o);
  EXPECT_TRUE(r.pass) << describe(r);
  for (const auto& g : r.per_gemm) EXPECT_EQ(g.measured_cycles, g.timing.cycles) << g.trace;
}

// ---- fault injection ----

TEST(CosimRtl, BrokenDesignIsCaughtWithAnExactFirstMismatch) {
  CosimDesign good = cosim_design_generate(
      DesignPoint::parse("gse:b=4,g=4,e=4,scale=floor,round=rne,range=full@array2x3,acc=fixed20.6,pipe=2"));
  const int C = 3, CW = good.array.code_width;  // a 2 x 3 array
  // GEMM 3 x 5 x 10 on 2x3: tiles (0,0) (0,1) (1,0) (1,1), 10 steps each (min steps 2).
  CosimGemm g = random_gemm(good.design.format, 3, 5, 10, 42);
  const GemmTiming t = gemm_timing(good.array, 3, 5, 10, g.a.group_size);
  // Fault: tile 1 = (0, 1), step k = 6, lane (row) 1: the LSB of A[1][6] as tile 1 sees it.
  const int64_t tile = 1, k = 6, lane = 1;
  const int step = static_cast<int>(tile * t.steps_per_tile + k);
  CosimDesign bad = inject_operand_fault(good, step, static_cast<int>(lane * CW));

  // What the fault must do: outputs of row 1 in tile column 1 become golden(A', B).
  QuantizedTensor faulty_a = g.a;
  faulty_a.codes[1 * 10 + k] ^= 1;
  const GemmResult clean = golden_gemm(g.a, g.b, good.design.acc);
  const GemmResult faulty = golden_gemm(faulty_a, g.b, good.design.acc);
  std::set<int64_t> differing;
  for (int64_t n = C; n < std::min<int64_t>(5, 2 * C); ++n)
    if (clean.acc_raw[1 * 5 + n] != faulty.acc_raw[1 * 5 + n] ||
        clean.flags[1 * 5 + n] != faulty.flags[1 * 5 + n])
      differing.insert(1 * 5 + n);
  ASSERT_FALSE(differing.empty()) << "the chosen fault must change an output";

  CosimOptions o = options(CosimOptions::Engine::rtl);
  o.waves = fs::temp_directory_path() / fmt::format("gsqhw-test-fault-{}.vcd", ::getpid());
  CosimResult r = run_cosim_gemms(bad, {g}, o);
  EXPECT_FALSE(r.pass);
  EXPECT_EQ(r.mismatch_count, static_cast<int64_t>(differing.size())) << describe(r);
  ASSERT_FALSE(r.mismatches.empty());
  for (const Mismatch& mm : r.mismatches) {
    const int64_t out = mm.gemm_row * 5 + mm.gemm_col;
    EXPECT_TRUE(differing.count(out)) << describe(r);
    EXPECT_EQ(mm.gemm_row, 1);
    EXPECT_EQ(mm.tile_row, 0);
    EXPECT_EQ(mm.tile_col, 1);
    EXPECT_EQ(mm.pe_row, 1);
    EXPECT_EQ(mm.pe_col, mm.gemm_col - C);
    EXPECT_EQ(mm.cycle, beat_cycle(good.array, t.steps_per_tile, tile, 1));
    EXPECT_EQ(mm.expected_acc, clean.acc_raw[out]);
    EXPECT_EQ(mm.actual_acc, faulty.acc_raw[out]);
    EXPECT_EQ(mm.expected_flags, clean.flags[out]);
    EXPECT_EQ(mm.design, good.design.str());
    EXPECT_EQ(mm.trace, g.name);
    EXPECT_EQ(mm.engine, "rtl");
  }
  // A waveform of the window around the first mismatch, with that cycle in it.
  ASSERT_TRUE(r.waves_written.has_value());
  std::ifstream in(*r.waves_written);
  std::string vcd((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_NE(vcd.find("$enddefinitions"), std::string::npos);
  EXPECT_NE(vcd.find(fmt::format("\n#{}\n", (r.mismatches[0].cycle + 2) * 10)), std::string::npos);
  fs::remove(*r.waves_written);

  // The fast model has no fault: in lockstep the RTL/fast disagreement is reported too.
  CosimResult lock = run_cosim_gemms(bad, {g}, options());
  EXPECT_FALSE(lock.pass);
  bool lockstep_error = false;
  for (const auto& e : lock.errors) lockstep_error |= e.find("lockstep") != std::string::npos;
  EXPECT_TRUE(lockstep_error) << describe(lock);
  if (lock.waves_written) fs::remove(*lock.waves_written);
}

// ---- switching activity ----

TEST(CosimActivity, RtlActivityCoversEveryCycleOfTheRun) {
  CosimDesign d = cosim_design_generate(DesignPoint::parse("gse:b=6,g=8,e=5@pe,acc=fixed32.16"));
  std::vector<CosimGemm> gemms = {random_gemm(d.design.format, 3, 2, 20, 9),
                                  random_gemm(d.design.format, 2, 2, 9, 10)};
  CosimOptions o = options(CosimOptions::Engine::rtl);
  o.activity = fs::temp_directory_path() / fmt::format("gsqhw-test-activity-{}.json", ::getpid());
  CosimResult r = run_cosim_gemms(d, gemms, o);
  ASSERT_TRUE(r.pass) << describe(r);
  ASSERT_TRUE(r.activity_written.has_value());
  std::ifstream in(*r.activity_written);
  SwitchingActivity a = SwitchingActivity::from_json(nlohmann::json::parse(in));
  fs::remove(*r.activity_written);
  int64_t cycles = 0, valid_steps = 0;
  for (const auto& g : r.per_gemm) {
    cycles += g.timing.cycles;
    valid_steps += g.timing.tiles * g.timing.steps_per_tile;
  }
  EXPECT_EQ(a.cycles, cycles);
  EXPECT_EQ(a.top, d.array.top);
  EXPECT_EQ(a.design, d.design.str());
  // The driver holds in_valid high for exactly the valid steps; the clock toggles twice a cycle.
  EXPECT_DOUBLE_EQ(a.nets.at("in_valid").high_cycles, static_cast<double>(valid_steps));
  EXPECT_EQ(a.nets.at("clk").toggles, 2 * cycles);
  EXPECT_DOUBLE_EQ(a.nets.at("clk").high_cycles, cycles / 2.0);
  // Internal nets are there and some of them switch.
  int64_t internal_toggles = 0;
  for (const auto& [name, net] : a.nets)
    if (name.find('.') != std::string::npos) internal_toggles += net.toggles;
  EXPECT_GT(internal_toggles, 0);
}

// Maps the design with Yosys onto the OSU 0.18um cells; returns the netlist path.
fs::path synthesize_osu018(const CosimDesign& d, const fs::path& dir) {
  fs::create_directories(dir);
  std::string reads;
  for (const auto& [name, text] : d.sources) {
    std::ofstream(dir / name) << text;
    reads += "read_verilog " + (dir / name).string() + "; ";
  }
  const std::string lib = "/usr/share/qflow/tech/osu018/osu018_stdcells.lib";
  fs::path netlist = dir / "netlist.v";
  std::string script = fmt::format(
      "{} synth -flatten -top {}; dfflibmap -liberty {}; abc -liberty {}; opt_clean; "
      "write_verilog -noattr {}",
      reads, d.array.top, lib, lib, netlist.string());
  int rc = run_logged({"yosys", "-q", "-p", script}, dir / "yosys.log");
  EXPECT_EQ(rc, 0) << "yosys failed, see " << (dir / "yosys.log");
  return netlist;
}

TEST(CosimActivity, GateLevelNetlistWithLibertyCellModels) {
  if (find_program("yosys").empty()) GTEST_SKIP() << "yosys is not installed";
  if (!fs::exists("/usr/share/qflow/tech/osu018/osu018_stdcells.lib"))
    GTEST_SKIP() << "qflow-tech-osu018 is not installed";
  // A small PE keeps the gate-level Verilator build short.
  CosimDesign d = cosim_design_generate(DesignPoint::parse("gse:b=4,g=4,e=4@pe,acc=fixed16.4"));
  fs::path dir = test_cache() / "gate-level-gse4-pe";
  fs::path netlist = synthesize_osu018(d, dir);
  fs::path models = cell_models_from_liberty("/usr/share/qflow/tech/osu018/osu018_stdcells.lib",
                                             test_cache());
  CosimOptions o = options(CosimOptions::Engine::rtl);
  o.netlist_files = {netlist, models};
  o.activity = dir / "activity.json";
  std::vector<CosimGemm> gemms = {random_gemm(d.design.format, 2, 2, 16, 11)};
  for (auto& g : gse_adversarial(d.design.format, 4, 4, 4, false)) gemms.push_back(g);
  CosimResult r = run_cosim_gemms(d, gemms, o);
  // The mapped netlist computes exactly what the RTL does.
  EXPECT_TRUE(r.pass) << describe(r);
  std::ifstream in(dir / "activity.json");
  SwitchingActivity a = SwitchingActivity::from_json(nlohmann::json::parse(in));
  int64_t cycles = 0;
  for (const auto& g : r.per_gemm) cycles += g.timing.cycles;
  EXPECT_EQ(a.cycles, cycles);
  int64_t toggles = 0;
  for (const auto& [name, net] : a.nets) toggles += net.toggles;
  EXPECT_GT(toggles, 0);
  // Yosys's internal nets (_123_) of the mapped logic are traced and switch.
  int64_t gate_nets = 0, gate_toggles = 0;
  for (const auto& [name, net] : a.nets)
    if (name.rfind("_", 0) == 0) ++gate_nets, gate_toggles += net.toggles;
  EXPECT_GT(gate_nets, 50);
  EXPECT_GT(gate_toggles, 0);
}

}  // namespace
}  // namespace gsqhw
