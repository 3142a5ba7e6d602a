// LoRA GEMM list, synthetic data, generated traces (checked against an independent double
// computation), the built-in tiny set, format assignments and the memory model.
#include <gtest/gtest.h>

#include <cmath>
#include <set>

#include "base/errors.h"
#include "test_util.h"
#include "workloads/checkpoint.h"
#include "workloads/lora.h"
#include "workloads/memory_model.h"
#include "workloads/synthetic.h"
#include "workloads/trace.h"

namespace gsqhw {
namespace {

using test::ScratchDir;

TEST(Models, BuiltinShapesMatchPublishedConfigs) {
  const auto& l3 = builtin_model("llama3-8b");
  EXPECT_EQ(l3.kv_dim(), 1024);
  EXPECT_EQ(proj_dims(l3, Proj::k).out, 1024);
  EXPECT_EQ(proj_dims(l3, Proj::gate).out, 14336);
  EXPECT_EQ(proj_dims(l3, Proj::down).in, 14336);
  EXPECT_EQ(l3.vocab_size, 128256);
  const auto& l13 = builtin_model("llama2-13b");
  EXPECT_EQ(proj_dims(l13, Proj::v).out, 5120);
  EXPECT_EQ(proj_dims(l13, Proj::up).out, 13824);
  EXPECT_EQ(builtin_model("llama2-7b").n_layers, 32);
  EXPECT_EQ(builtin_model("tiny").hidden_dim % 32, 0);
  EXPECT_THROW(builtin_model("gpt2"), UsageError);
  EXPECT_THROW(parse_proj("qkv"), UsageError);
  for (const auto& m : builtin_models()) EXPECT_NO_THROW(m.validate()) << m.name;
}

TEST(LoraGemmList, ShapesForEveryBuiltinModelAndProjection) {
  const int64_t T = 24, R = 8;
  for (const auto& model : builtin_models())
    for (Proj p : all_projections()) {
      SCOPED_TRACE(model.name + " " + std::string(proj_name(p)));
      const ProjDims d = proj_dims(model, p);
      const auto g = lora_gemm_shapes(model, p, R, T, 16.0);
      ASSERT_EQ(g.size(), 8u);
      auto expect = [&](size_t i, const char* name, int64_t m, int64_t n, int64_t k, const char* ra,
                        const char* rb, double scale) {
        EXPECT_EQ(g[i].gemm, name);
        EXPECT_EQ(g[i].m, m) << name;
        EXPECT_EQ(g[i].n, n) << name;
        EXPECT_EQ(g[i].k, k) << name;
        EXPECT_EQ(g[i].a_role, ra) << name;
        EXPECT_EQ(g[i].b_role, rb) << name;
        EXPECT_EQ(g[i].post_scale, scale) << name;
      };
      expect(0, "fwd.base", T, d.out, d.in, "act", "weight", 1);
      expect(1, "fwd.lora_a", T, R, d.in, "act", "weight", 1);
      expect(2, "fwd.lora_b", T, d.out, R, "act", "weight", 2);
      expect(3, "bwd.dx_base", T, d.in, d.out, "grad", "weight", 1);
      expect(4, "bwd.dh", T, R, d.out, "grad", "weight", 1);
      expect(5, "bwd.dx_lora", T, d.in, R, "grad", "weight", 2);
      expect(6, "bwd.da", R, d.in, T, "grad", "act", 2);
      expect(7, "bwd.db", d.out, R, T, "grad", "act", 2);
    }
}

TEST(FormatAssignment, ParsesRolesWithCommasInsideSpecs) {
  const auto f = FormatAssignment::parse("act=gse:b=4,g=16,weight=gse:b=8,g=16,e=6,grad=gse:b=5,g=16,round=stochastic");
  EXPECT_EQ(f.act, parse_format("gse:b=4,g=16")->spec());
  EXPECT_EQ(f.weight, parse_format("gse:b=8,g=16,e=6")->spec());
  EXPECT_EQ(f.grad, parse_format("gse:b=5,g=16,round=stochastic")->spec());
  EXPECT_EQ(f.storage, FormatAssignment::defaults().storage);
  EXPECT_EQ(FormatAssignment::parse(f.str()).str(), f.str());
  const auto all = FormatAssignment::parse("fp8:e4m3");
  EXPECT_EQ(all.act, all.weight);
  EXPECT_EQ(all.grad, all.weight);
  EXPECT_EQ(FormatAssignment::parse("all=fp8:e5m2,weight=fp8:e4m3").weight, parse_format("fp8:e4m3")->spec());
  EXPECT_THROW(FormatAssignment::parse("act=gse:b=6,act=gse:b=5"), UsageError);
  EXPECT_THROW(FormatAssignment::parse("act=nosuch"), UsageError);
  EXPECT_THROW(FormatAssignment::parse("act="), UsageError);
  // GSE activations cannot meet FP8 weights in one GEMM.
  EXPECT_THROW(FormatAssignment::parse("act=gse:b=6,weight=fp8:e4m3"), UsageError);
  // Different group sizes cannot meet either.
  EXPECT_THROW(FormatAssignment::parse("act=gse:b=6,g=16"), UsageError);
  EXPECT_THROW(FormatAssignment::parse("storage=nosuch"), UsageError);
}

TEST(Synthetic, ReproducibleSeededAndLlamaLike) {
  const auto& m = builtin_model("tiny");
  EXPECT_EQ(synthetic::activations(m, 1, Proj::q, 32, 5), synthetic::activations(m, 1, Proj::q, 32, 5));
  EXPECT_NE(synthetic::activations(m, 1, Proj::q, 32, 5), synthetic::activations(m, 1, Proj::q, 32, 6));
  EXPECT_NE(synthetic::base_weight(m, 0, Proj::q, 5), synthetic::base_weight(m, 1, Proj::q, 5));
  // Weights: near zero mean, std close to layer_scale/sqrt(in) (0.75/8 for layer 0 of tiny,
  // slightly more with the heavy tail).
  const auto w = synthetic::base_weight(m, 0, Proj::q, 5);
  double sum = 0, sum_sq = 0;
  for (float v : w) { sum += v; sum_sq += double(v) * v; }
  const double std_dev = std::sqrt(sum_sq / w.size());
  EXPECT_LT(std::abs(sum / w.size()), 0.02);
  EXPECT_NEAR(std_dev, 0.75 / 8 * std::sqrt(1 + 15.0 / 256), 0.012);
  // Activations: a few channels carry much larger magnitudes (outlier features).
  const int64_t T = 64, in = 64;
  const auto x = synthetic::activations(m, 0, Proj::q, T, 5);
  std::vector<double> channel_rms(in, 0);
  for (int64_t t = 0; t < T; ++t)
    for (int64_t c = 0; c < in; ++c) channel_rms[c] += double(x[t * in + c]) * x[t * in + c] / T;
  std::vector<double> sorted = channel_rms;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_GT(std::sqrt(sorted.back()) / std::sqrt(sorted[in / 2]), 4.0);
}

// Exact value of the dequantized product, in long double: the independent check of golden.out.
std::vector<long double> exact_product(const Trace& t) {
  std::vector<float> a(t.a.codes.size()), b(t.b.codes.size());
  parse_format(t.a.format_spec)->dequantize(t.a, a.data());
  parse_format(t.b.format_spec)->dequantize(t.b, b.data());
  std::vector<long double> c(static_cast<size_t>(t.m() * t.n()));
  for (int64_t i = 0; i < t.m(); ++i)
    for (int64_t j = 0; j < t.n(); ++j) {
      long double s = 0;
      for (int64_t k = 0; k < t.k(); ++k) s += static_cast<long double>(a[i * t.k() + k]) * b[j * t.k() + k];
      c[i * t.n() + j] = s;
    }
  return c;
}

std::vector<float> transposed(const std::vector<float>& x, int64_t rows, int64_t cols) {
  std::vector<float> t(x.size());
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) t[c * rows + r] = x[r * cols + c];
  return t;
}

TEST(LoraTraces, TinyLayerGoldenMatchesIndependentComputation) {
  ScratchDir dir("tiny");
  LoraTraceRequest r;
  r.model = builtin_model("tiny");
  r.layer = 1;
  r.proj = Proj::k;  // GQA: out 32 != in 64
  r.rank = 8;
  r.tokens = 20;     // not a multiple of the group size: partial groups when K = T
  r.threads = 1;
  const auto reports = generate_lora_traces(r, dir.path());
  ASSERT_EQ(reports.size(), 8u);
  const auto shapes = lora_gemm_shapes(r.model, r.proj, r.rank, r.tokens, r.alpha);
  std::map<std::string, Trace> traces;
  for (size_t i = 0; i < reports.size(); ++i) {
    SCOPED_TRACE(reports[i].name);
    Trace t = read_trace(reports[i].file);
    EXPECT_EQ(t.m(), shapes[i].m);
    EXPECT_EQ(t.n(), shapes[i].n);
    EXPECT_EQ(t.k(), shapes[i].k);
    EXPECT_EQ(t.metadata["gemm"], shapes[i].gemm);
    EXPECT_EQ(t.metadata["data"], "synthetic");
    EXPECT_EQ(reports[i].overflow_outputs, 0);
    // Fixed-point accumulation is exact except for the floor of each group's addend below 2^-F,
    // and the final FP32 rounding: |golden - exact| <= groups * 2^-16 + |exact| * 2^-24.
    const auto exact = exact_product(t);
    const int64_t groups = (t.k() + 31) / 32;
    for (size_t o = 0; o < exact.size(); ++o) {
      const long double bound = groups * std::ldexp(1.0L, -16) + std::fabs(exact[o]) * std::ldexp(1.0L, -24);
      ASSERT_LE(std::fabs(t.golden.out[o] - exact[o]), bound) << "output " << o;
    }
    // Against the unquantized FP32 product, the error is that of 6-bit GSE operands: a few percent.
    EXPECT_EQ(t.reference_fp32.size(), t.golden.out.size());
    EXPECT_GT(reports[i].out_error.sqnr_db, 18.0);
    EXPECT_LT(reports[i].out_error.rel_rms, 0.12);
    EXPECT_GT(reports[i].out_error.rel_rms, 0.0);
    // fixed32.16 loses little next to 6-bit operands.
    EXPECT_LT(reports[i].acc_error.rel_rms, 2e-3);
    traces[shapes[i].gemm] = std::move(t);
  }
  // The pipeline: later GEMMs consume earlier outputs and transposed operands.
  const int64_t T = r.tokens, R = r.rank, in = 64, out = 32;
  EXPECT_TRUE(test::same_bits(traces["fwd.lora_b"].a_fp32, traces["fwd.lora_a"].golden.out));
  EXPECT_TRUE(test::same_bits(traces["bwd.dx_lora"].a_fp32, traces["bwd.dh"].golden.out));
  EXPECT_TRUE(test::same_bits(traces["bwd.da"].a_fp32, transposed(traces["bwd.dh"].golden.out, T, R)));
  EXPECT_TRUE(test::same_bits(traces["bwd.da"].b_fp32, transposed(traces["fwd.base"].a_fp32, T, in)));
  EXPECT_TRUE(test::same_bits(traces["bwd.dx_base"].b_fp32, transposed(traces["fwd.base"].b_fp32, out, in)));
  EXPECT_TRUE(test::same_bits(traces["bwd.db"].b_fp32, transposed(traces["fwd.lora_a"].golden.out, T, R)));
  EXPECT_TRUE(test::same_bits(traces["bwd.db"].a_fp32, transposed(traces["bwd.dh"].a_fp32, T, out)));
  // The base weight went through NF4 (block 64 along `in`): at most 16 distinct values per block.
  const auto& w = traces["fwd.base"].b_fp32;
  for (int64_t blk = 0; blk < out * in / 64; ++blk) {
    std::set<float> levels(w.begin() + blk * 64, w.begin() + (blk + 1) * 64);
    EXPECT_LE(levels.size(), 16u);
  }
  // Stochastic rounding on the grad role, reproducibly: generating again gives the same bytes.
  ScratchDir again("tiny2");
  generate_lora_traces(r, again.path());
  for (const auto& rep : reports)
    EXPECT_EQ(test::read_all(rep.file), test::read_all(again / rep.file.filename().string())) << rep.name;
}

TEST(LoraTraces, FixedAccumulatorOverflowIsCountedAndFp32AccumulatorWorks) {
  ScratchDir dir("acc");
  LoraTraceRequest r;
  r.model = builtin_model("tiny");
  r.tokens = 16;
  r.acc = AccumulatorSpec::parse("fixed12.10");  // range +-2: the forward outputs saturate
  const auto narrow = generate_lora_traces(r, dir / "narrow");
  EXPECT_GT(narrow[0].overflow_outputs, 0);
  const Trace t = read_trace(narrow[0].file);
  EXPECT_TRUE(std::any_of(t.golden.flags.begin(), t.golden.flags.end(), [](uint8_t f) { return f & kFlagOverflow; }));
  r.acc = AccumulatorSpec::parse("fp32");
  r.formats = FormatAssignment::parse("fp8:e4m3");
  for (const auto& rep : generate_lora_traces(r, dir / "fp8")) {
    EXPECT_EQ(rep.overflow_outputs, 0);
    EXPECT_GT(rep.out_error.sqnr_db, 15.0) << rep.name;
  }
}

// A tiny llama2.c checkpoint with the shape of the built-in "tiny" model.
void write_tiny_llama2c(const std::filesystem::path& file) {
  const ModelShape& m = builtin_model("tiny");
  int32_t header[7] = {int32_t(m.dim), int32_t(m.hidden_dim), int32_t(m.n_layers), int32_t(m.n_heads),
                       int32_t(m.n_kv_heads), int32_t(m.vocab_size), int32_t(m.seq_len)};
  std::vector<char> bytes;
  test::append(bytes, header, 7);
  const int64_t L = m.n_layers, d = m.dim, h = m.hidden_dim, kv = m.kv_dim();
  const int64_t floats = m.vocab_size * d + L * d + L * d * d + 2 * L * kv * d + L * d * d + L * d +
                         3 * L * h * d + d;
  std::vector<float> v(static_cast<size_t>(floats));
  for (int64_t i = 0; i < floats; ++i) v[i] = 0.05f * std::sin(0.001f * i * i);
  test::append(bytes, v.data(), v.size());
  test::write_all(file, bytes);
}

TEST(LoraTraces, CheckpointWeightsFeedTheBaseGemms) {
  ScratchDir dir("ckpt");
  write_tiny_llama2c(dir / "tiny.bin");
  const auto ck = open_checkpoint(dir / "tiny.bin");
  LoraTraceRequest r;
  r.model = ck->shape();
  r.checkpoint = ck.get();
  r.layer = 1;
  r.proj = Proj::up;
  const auto reports = generate_lora_traces(r, dir / "out");
  const Trace base = read_trace(reports[0].file);
  EXPECT_EQ(base.metadata["data"], (dir / "tiny.bin").string());
  EXPECT_EQ(base.metadata["weights"], "checkpoint");
  // The GEMM's weight is the checkpoint's, stored NF4 and dequantized.
  auto w = ck->read_projection(1, Proj::up);
  const auto nf4 = parse_format("nf4:block=64");
  std::vector<float> expected(w.size());
  nf4->dequantize(nf4->quantize(w.data(), 192, 64), expected.data());
  EXPECT_TRUE(test::same_bits(base.b_fp32, expected));
  // A checkpoint whose dims differ from the model is refused.
  r.model = builtin_model("llama2-7b");
  r.layer = 0;
  EXPECT_THROW(generate_lora_traces(r, dir / "out2"), UsageError);
}

TEST(LoraTraces, BadRequestsAreUsageErrors) {
  ScratchDir dir("badreq");
  LoraTraceRequest r;
  r.model = builtin_model("tiny");
  auto expect_bad = [&](auto edit) {
    LoraTraceRequest x = r;
    edit(x);
    EXPECT_THROW(generate_lora_traces(x, dir.path()), UsageError);
  };
  expect_bad([](auto& x) { x.layer = 2; });
  expect_bad([](auto& x) { x.layer = -1; });
  expect_bad([](auto& x) { x.rank = 0; });
  expect_bad([](auto& x) { x.tokens = 0; });
  expect_bad([](auto& x) { x.alpha = -1; });
  expect_bad([](auto& x) { x.alpha = NAN; });
  expect_bad([](auto& x) { x.threads = -1; });
  expect_bad([](auto& x) { x.formats.act = "fp8:e4m3,sat=satfinite,block=0"; });
  test::write_all(dir / "file", {'x'});
  EXPECT_THROW(generate_lora_traces(r, dir / "file" / "sub"), UsageError);
}

TEST(BuiltinTinyTraces, GeneratedOnceThenReused) {
  ScratchDir dir("builtin");
  const auto acc = AccumulatorSpec::parse("fixed32.16");
  const auto files = ensure_builtin_tiny_traces(dir.path(), "gse:b=6", acc);
  ASSERT_EQ(files.size(), 56u);
  EXPECT_TRUE(std::is_sorted(files.begin(), files.end()));
  const auto stamp = std::filesystem::last_write_time(files[0]);
  const auto again = ensure_builtin_tiny_traces(dir.path(), "gse:b=6,g=32,e=5", acc);
  EXPECT_EQ(again, files);
  EXPECT_EQ(std::filesystem::last_write_time(files[0]), stamp);
  for (const auto& f : files) {
    const Trace t = read_trace(f);
    EXPECT_EQ(t.a.format_spec, parse_format("gse:b=6")->spec());
    EXPECT_EQ(t.acc, acc);
    EXPECT_LE(t.m() * t.n() * t.k(), 16 * 192 * 64);
  }
  // Another format or accumulator lands in another folder.
  const auto other = ensure_builtin_tiny_traces(dir.path(), "gse:b=4", acc);
  EXPECT_NE(other[0].parent_path(), files[0].parent_path());
  // A deleted file is regenerated identically.
  const auto bytes = test::read_all(files[3]);
  std::filesystem::remove(files[3]);
  ensure_builtin_tiny_traces(dir.path(), "gse:b=6", acc);
  EXPECT_EQ(test::read_all(files[3]), bytes);
}

TEST(MemoryModel, CountsAddUpAndQuantizedStorageSaves) {
  const auto& m = builtin_model("llama2-7b");
  const auto r = memory_model(m, 512, 64, FormatAssignment::defaults());
  double total = 0, baseline = 0;
  for (const auto& it : r.items) {
    total += it.bytes;
    baseline += it.baseline_bytes;
  }
  EXPECT_DOUBLE_EQ(total, r.total_bytes);
  EXPECT_DOUBLE_EQ(baseline, r.baseline_total_bytes);
  // 6.48e9 linear parameters: BF16 = 2 bytes each, NF4 block 64 with an FP32 absmax = 4.5 bits.
  const double linear = 32.0 * (4.0 * 4096 * 4096 + 3.0 * 4096 * 11008);
  EXPECT_DOUBLE_EQ(r.items[0].baseline_bytes, linear * 2);
  EXPECT_DOUBLE_EQ(r.items[0].bytes, linear * 4.5 / 8);
  EXPECT_GT(r.ratio(), 1.5);
  EXPECT_FALSE(r.assumptions.empty());
  // With BF16 everywhere there is nothing to save.
  const auto same = memory_model(m, 512, 64, FormatAssignment::parse("all=bf16,storage=bf16"));
  EXPECT_DOUBLE_EQ(same.ratio(), 1.0);
  EXPECT_THROW(memory_model(m, 0, 64, FormatAssignment::defaults()), UsageError);
  EXPECT_THROW(memory_model(m, 512, 64, FormatAssignment::defaults(), "bogus"), UsageError);
}

}  // namespace
}  // namespace gsqhw
