// Generated LoTA-QAF and PTQ1.61 RTL: lint-clean (verilator -Wall, yosys check) and bit-exact
// against the golden models in Icarus Verilog self-checking testbenches; exhaustive where the
// space is small; an injected fault must be caught.
#include <gtest/gtest.h>

#include <filesystem>

#include "gen/lota.h"
#include "gen/ptq161.h"
#include "base/errors.h"
#include "tests/siblings/random_data.h"
#include "tests/siblings/work_dir.h"

namespace gsqhw {
namespace {

namespace fs = std::filesystem;
using lota::LotaParams;

using test::work_dir;

// Replaces `from` (which must occur) with `to` in the bundle's top file.
rtlcheck::RtlBundle mutate(rtlcheck::RtlBundle b, size_t file, const std::string& from,
                           const std::string& to) {
  auto& text = b.files.at(file).second;
  auto pos = text.find(from);
  EXPECT_NE(pos, std::string::npos) << "mutation anchor not found: " << from;
  if (pos != std::string::npos) text.replace(pos, from.size(), to);
  return b;
}

void expect_pass(const rtlcheck::TbResult& r, int64_t vectors) {
  EXPECT_EQ(r.checked, vectors);
  EXPECT_EQ(r.errors, 0) << r.log.substr(0, 2000);
}

TEST(LotaMergeRtl, LintCleanAcrossParameters) {
  for (LotaParams p : {LotaParams{4, 64, 16, 12.0}, LotaParams{2, 128, 1, 0.5},
                       LotaParams{3, 64, 64, 48.0}, LotaParams{4, 128, 7, 5.25}}) {
    SCOPED_TRACE(::testing::Message() << "r=" << p.rank << " N=" << p.bits);
    EXPECT_NO_THROW(rtlcheck::lint(lota::generate_merge_unit(p), work_dir("lota_merge_lint")));
    EXPECT_NO_THROW(rtlcheck::lint(lota::generate_integer_pe(p), work_dir("lota_pe_lint")));
  }
}

TEST(LotaMergeRtl, RefusesBadParameters) {
  EXPECT_THROW(lota::generate_merge_unit({4, 64, 16, 16.0}), UsageError);
  EXPECT_THROW(lota::generate_merge_unit({5, 64, 16, 12.0}), UsageError);
  EXPECT_THROW(lota::generate_integer_pe({4, 96, 16, 12.0}), UsageError);
}

// Every ternary pattern pair for r = 1..4 with every 4-bit code; 2- and 3-bit grids at r = 3;
// r = 5 with the codes cycled.
TEST(LotaMergeRtl, ExhaustiveSmallRanksBitExact) {
  std::vector<std::pair<LotaParams, bool>> cases = {
      {{4, 64, 1, 0.5}, true},  {{4, 64, 2, 1.0}, true},  {{4, 64, 3, 2.25}, true},
      {{4, 64, 4, 3.0}, true},  {{2, 128, 3, 1.5}, true}, {{3, 64, 3, 0.75}, true},
      {{4, 128, 5, 3.75}, false}};
  for (const auto& [p, every_code] : cases) {
    SCOPED_TRACE(::testing::Message() << "r=" << p.rank << " N=" << p.bits << " omega=" << p.omega);
    auto vectors = lota::exhaustive_merge_vectors(p, every_code);
    auto result = lota::check_merge_unit(lota::generate_merge_unit(p), p, vectors,
                                         work_dir("lota_merge_exhaustive"));
    expect_pass(result, static_cast<int64_t>(vectors.size()));
  }
}

TEST(LotaMergeRtl, LayerMergeBitExact) {
  const LotaParams p{4, 64, 16, 12.0};
  test::Rng rng(31);
  auto w = rng.normals(6 * 200, 0.02);
  auto base = lota::quantize_weights(w.data(), 6, 200, p.bits, p.group);
  lota::Adapters ad{200, 6, 16, {}, {}};
  for (int64_t i = 0; i < 200 * 16; ++i)  // strongly correlated so that many codes move
    ad.a.push_back(static_cast<int8_t>(rng.uniform() < 0.93 ? ((i / 16) % 3 ? 1 : -1) : rng.ternary()));
  for (int64_t k = 0; k < 16 * 6; ++k)
    ad.b.push_back(static_cast<int8_t>(rng.uniform() < 0.93 ? ((k % 6) % 2 ? 1 : -1) : rng.ternary()));
  auto golden = lota::merge(base, ad, p);
  ASSERT_GT(golden.changed, 50);
  ASSERT_GT(golden.clipped, 0);
  auto vectors = lota::layer_merge_vectors(base, ad);
  // The vectors' expectations are the scalar golden functions; they agree with merge().
  for (size_t k = 0; k < vectors.size(); ++k) {
    int dw = lota::ternary_dot(vectors[k].a.data(), vectors[k].b.data(), p.rank);
    ASSERT_EQ(dw, golden.dw[k]);
    ASSERT_EQ(lota::merge_code(vectors[k].q, dw, lota::threshold(p.omega), p.bits), golden.merged.q[k]);
  }
  auto result = lota::check_merge_unit(lota::generate_merge_unit(p), p, vectors,
                                       work_dir("lota_merge_layer"));
  expect_pass(result, static_cast<int64_t>(vectors.size()));
}

TEST(LotaMergeRtl, InjectedFaultsAreCaught) {
  const LotaParams p{4, 64, 3, 2.0};
  auto vectors = lota::exhaustive_merge_vectors(p, true);
  auto good = lota::generate_merge_unit(p);
  // Off-by-one threshold: |dW| >= omega instead of > omega.
  auto off_by_one = mutate(good, 0, "up = dw >= 3'sd3;", "up = dw >= 3'sd2;");
  auto r1 = lota::check_merge_unit(off_by_one, p, vectors, work_dir("lota_fault_threshold"));
  EXPECT_GT(r1.errors, 0);
  EXPECT_NE(r1.log.find("GSQHW_MISMATCH"), std::string::npos);
  // No saturation at the top of the grid: 15 + 1 wraps to 0.
  auto wraps = mutate(good, 0, "inc = up & ~(&in_q);", "inc = up;");
  EXPECT_GT(lota::check_merge_unit(wraps, p, vectors, work_dir("lota_fault_saturation")).errors, 0);
}

TEST(LotaPeRtl, RandomLayerAndEveryCodeTimesEveryActivationBitExact) {
  for (LotaParams p : {LotaParams{4, 64, 16, 12.0}, LotaParams{2, 128, 16, 12.0}}) {
    SCOPED_TRACE(::testing::Message() << "N=" << p.bits << " group=" << p.group);
    test::Rng rng(41 + p.bits);
    auto w = rng.normals(3 * 300, 0.02);
    auto base = lota::quantize_weights(w.data(), 3, 300, p.bits, p.group);
    auto xf = rng.normals(2 * 300, 1.0);
    auto x = lota::quantize_activations(xf.data(), 2, 300);
    auto rtl = lota::generate_integer_pe(p);
    expect_pass(lota::check_integer_pe(rtl, p, x, base, work_dir("lota_pe_layer")), 2 * 3 * 300);

    // Every N-bit code (one per row) against every INT8 code -128..127 (spread over tokens).
    const int codes = 1 << p.bits;
    lota::QuantizedWeights all;
    all.rows = codes;
    all.cols = p.group;
    all.bits = p.bits;
    all.group = p.group;
    for (int c = 0; c < codes; ++c) all.q.insert(all.q.end(), p.group, static_cast<uint8_t>(c));
    all.scale.assign(codes, 1.0f);
    all.zero.assign(codes, 0.0f);
    QuantizedTensor xs;
    xs.rows = 256 / p.group;
    xs.cols = p.group;
    for (int v = -128; v < 128; ++v) xs.codes.push_back(v);
    xs.scales.assign(xs.rows, 1.0f);
    expect_pass(lota::check_integer_pe(rtl, p, xs, all, work_dir("lota_pe_every_code")),
                xs.rows * codes * p.group);
  }
}

TEST(LotaPeRtl, InjectedFaultIsCaught) {
  const LotaParams p{4, 64, 16, 12.0};
  test::Rng rng(43);
  auto w = rng.normals(2 * 64, 0.02);
  auto base = lota::quantize_weights(w.data(), 2, 64, 4, 64);
  auto xf = rng.normals(64, 1.0);
  auto x = lota::quantize_activations(xf.data(), 1, 64);
  // The code sign-extended instead of zero-extended: codes >= 8 become negative.
  auto bad = mutate(lota::generate_integer_pe(p), 0, "q_wide = {9'd0, in_q}",
                    "q_wide = {{9{in_q[3]}}, in_q}");
  EXPECT_GT(lota::check_integer_pe(bad, p, x, base, work_dir("lota_pe_fault")).errors, 0);
}

TEST(Ptq161Rtl, LintCleanAndRefusesBadSpecs) {
  for (ptq161::ArraySpec spec : {ptq161::ArraySpec{1, 64}, ptq161::ArraySpec{4, 4096},
                                 ptq161::ArraySpec{8, 11008}}) {
    SCOPED_TRACE(::testing::Message() << "R=" << spec.rows << " K=" << spec.max_k);
    EXPECT_NO_THROW(rtlcheck::lint(ptq161::generate_array(spec), work_dir("ptq161_lint")));
  }
  EXPECT_THROW(ptq161::generate_array({0, 64}), UsageError);
  EXPECT_THROW(ptq161::generate_array({65, 64}), UsageError);
  EXPECT_THROW(ptq161::generate_array({4, 0}), UsageError);
}

struct PtqCase {
  ptq161::Ptq161Layer layer;
  QuantizedTensor x;
};

PtqCase random_ptq(int64_t d_out, int64_t d_in, int64_t tokens, uint64_t seed) {
  test::Rng rng(seed);
  auto w = rng.normals(d_out * d_in, 0.02);
  auto xf = rng.normals(tokens * d_in, 1.0);
  for (int64_t c = 0; c < d_in; c += 7)
    for (int64_t t = 0; t < tokens; ++t) xf[t * d_in + c] *= 6.0f;
  auto mask = ptq161::choose_salient(ptq161::channel_magnitudes(xf.data(), tokens, d_in), 0.2);
  PtqCase pc;
  pc.layer = ptq161::quantize(w.data(), d_out, d_in, mask, {0.2, 2});
  pc.x = ptq161::quantize_activations(xf.data(), tokens, pc.layer);
  return pc;
}

TEST(Ptq161Rtl, RandomLayerWithPaddedRowsAndIdleCyclesBitExact) {
  PtqCase pc = random_ptq(6, 100, 3, 51);  // 6 rows on a 4-row array: the second block is padded
  ptq161::ArraySpec spec{4, 128};
  auto rtl = ptq161::generate_array(spec);
  auto r = ptq161::check_array(rtl, spec, pc.layer, pc.x, work_dir("ptq161_layer"), 13);
  const int64_t steps = 3 * 2 * 100;
  expect_pass(r, steps + steps / 13);
}

// Every activation code -128..127 against every 4-bit code (one row per code) on a salient
// column and on a binary column (codes 0 and 1 mean -1 and +1 there).
TEST(Ptq161Rtl, EveryActivationTimesEveryCodeBitExact) {
  ptq161::ArraySpec spec{16, 1};
  auto rtl = ptq161::generate_array(spec);
  for (uint8_t salient : {uint8_t{0}, uint8_t{1}}) {
    ptq161::Ptq161Layer L;
    L.rows = 16;
    L.cols = 1;
    L.salient = {salient};
    for (int c = 0; c < 16; ++c) L.code.push_back(static_cast<uint8_t>(salient ? c : c % 2));
    L.s.assign(16, 1.0f);
    L.z.assign(16, 0);
    L.alpha.assign(16, 1.0f);
    L.mu.assign(16, 0.0f);
    L.r.assign(16, 1.0f);
    L.t.assign(1, 1.0f);
    QuantizedTensor x;
    x.rows = 256;
    x.cols = 1;
    for (int v = -128; v < 128; ++v) x.codes.push_back(v);
    x.scales.assign(256, 1.0f);
    auto r = ptq161::check_array(rtl, spec, L, x, work_dir("ptq161_exhaustive"));
    expect_pass(r, 256);
  }
}

TEST(Ptq161Rtl, InjectedFaultIsCaught) {
  PtqCase pc = random_ptq(4, 40, 2, 53);
  ptq161::ArraySpec spec{4, 64};
  // A binary column that always adds (the sign bit ignored).
  auto bad = mutate(ptq161::generate_array(spec), 0, "(in_w[0] ? x9 : -x9)", "x9");
  auto r = ptq161::check_array(bad, spec, pc.layer, pc.x, work_dir("ptq161_fault"));
  EXPECT_GT(r.errors, 0);
}

}  // namespace
}  // namespace gsqhw
