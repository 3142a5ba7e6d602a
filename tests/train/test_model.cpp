// The LLaMA training engine: tokenizer and FP32 forward against llama2.c's reference outputs on
// the real stories260K model (and the same model converted to HF safetensors with the q/k
// permutation), backward against finite differences on small random models.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <numeric>
#include <fstream>
#include <random>

#include <fmt/format.h>

#include "shared_model.h"
#include "test_util.h"
#include "workloads/safetensors.h"
#include "base/errors.h"
#include "workloads/checkpoint.h"
#include "workloads/train/finetune.h"
#include "workloads/train/llama.h"
#include "workloads/train/tokenizer.h"

namespace gsqhw::train {
namespace {

using test::shared_models;

std::vector<int> greedy(LlamaModel& model, GemmEngine& engine, std::vector<int> tokens, int64_t steps,
                        int64_t vocab) {
  while (static_cast<int64_t>(tokens.size()) < steps + 1) {
    const auto logits = model.logits(tokens, engine);
    const float* row = &logits[(tokens.size() - 1) * static_cast<size_t>(vocab)];
    int best = 0;
    for (int j = 1; j < vocab; ++j)
      if (row[j] > row[best]) best = j;
    if (best == Tokenizer::kBos) break;
    tokens.push_back(best);
  }
  return tokens;
}

std::vector<int> ids(std::initializer_list<int> l) { return std::vector<int>(l); }

TEST(Tokenizer, EncodesLikeLlama2c) {
  GSQHW_REQUIRE_SHARED_MODEL();
  const Tokenizer tok(shared_models() / "tok512.bin", 512);
  EXPECT_EQ(tok.encode("Once upon a time", true, false), ids({1, 403, 407, 261, 378}));
  EXPECT_EQ(tok.encode("Lily wanted to", true, false), ids({1, 317, 391, 266, 267}));
  EXPECT_EQ(tok.encode("", true, true), ids({1, 2}));
  // Byte fallback: a code point with no piece becomes its UTF-8 bytes + 3.
  const auto smile = tok.encode("\xf0\x9f\x98\x80", false, false);  // U+1F600, no piece
  ASSERT_GE(smile.size(), 4u);
  EXPECT_EQ(std::vector<int>(smile.end() - 4, smile.end()), ids({0xf0 + 3, 0x9f + 3, 0x98 + 3, 0x80 + 3}));
  EXPECT_EQ(tok.decode_all(tok.encode("Once upon a time", true, false)), "Once upon a time");
  EXPECT_EQ(tok.decode_all(tok.encode("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", true, false)),
            "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
}

TEST(Tokenizer, RejectsTokenizerOfAnotherVocabulary) {
  GSQHW_REQUIRE_SHARED_MODEL();
  EXPECT_THROW(Tokenizer(shared_models() / "tok512.bin", 32000), UsageError);
  EXPECT_THROW(Tokenizer(shared_models() / "tok512.bin", 256), UsageError);
}

TEST(LlamaForward, GreedyGenerationMatchesLlama2cRunC) {
  GSQHW_REQUIRE_SHARED_MODEL();
  const auto ck = open_checkpoint(shared_models() / "stories260K.bin");
  const LlamaWeights w = LlamaWeights::load(*ck);
  LlamaModel model(w, nullptr);
  auto engine = make_fp32_engine();
  // ../shared/models/README.md: run.c, temperature 0, 40 steps.
  EXPECT_EQ(greedy(model, *engine, {1, 403, 407, 261, 378}, 40, 512),
            ids({1,   403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315, 421, 395, 317, 426, 338, 401, 396, 267,
                 337, 410, 408, 419, 292, 411, 322, 265, 282, 295, 433, 426, 385, 328, 432, 358, 394, 261, 370, 432, 352}));
  EXPECT_EQ(greedy(model, *engine, {1, 317, 391, 266, 267}, 40, 512),
            ids({1,   317, 391, 266, 267, 298, 414, 353, 261, 273, 421, 433, 426, 338, 394, 261, 370, 268, 414, 444,
                 335, 261, 370, 268, 414, 444, 426, 338, 391, 266, 267, 262, 411, 411, 263, 415, 294, 286, 322, 419, 292}));
}

// ---------------------------------------------------------------------------------------------
// Finite differences

LlamaConfig small_config(bool shared, Checkpoint::Rope rope) {
  LlamaConfig c;
  c.shape.name = "fd";
  c.shape.dim = 16;
  c.shape.hidden_dim = 24;
  c.shape.n_layers = 2;
  c.shape.n_heads = 4;
  c.shape.n_kv_heads = 2;
  c.shape.vocab_size = 32;
  c.shape.seq_len = 8;
  c.shape.shared_classifier = shared;
  c.rope = rope;
  return c;
}

struct FdCase {
  bool shared;
  Checkpoint::Rope rope;
};

class FiniteDifferences : public ::testing::TestWithParam<FdCase> {};

// Central differences of the loss against the analytic gradient, on the entries of each tensor
// with the largest analytic gradient (and a few random ones).
void check_tensor(const std::string& what, std::vector<float>& param, const std::vector<float>& grad,
                  const std::function<double()>& loss) {
  ASSERT_EQ(param.size(), grad.size()) << what;
  std::vector<size_t> order(param.size());
  std::iota(order.begin(), order.end(), 0);
  std::partial_sort(order.begin(), order.begin() + std::min<size_t>(3, order.size()), order.end(),
                    [&](size_t a, size_t b) { return std::fabs(grad[a]) > std::fabs(grad[b]); });
  order.resize(std::min<size_t>(3, order.size()));
  std::mt19937 rng(7);
  for (int i = 0; i < 2; ++i) order.push_back(rng() % param.size());
  double gmax = 0;
  for (float g : grad) gmax = std::max(gmax, static_cast<double>(std::fabs(g)));
  ASSERT_GT(gmax, 1e-6) << what << ": gradient is all zero";
  for (size_t idx : order) {
    const float orig = param[idx];
    const float h = 2e-3f * std::max(1.0f, std::fabs(orig));
    param[idx] = orig + h;
    const double up = loss();
    param[idx] = orig - h;
    const double down = loss();
    param[idx] = orig;
    const double numeric = (up - down) / (2.0 * h);
    EXPECT_NEAR(grad[idx], numeric, 0.03 * gmax + 2e-4) << what << " element " << idx;
  }
}

TEST_P(FiniteDifferences, EveryParameterKind) {
  const LlamaConfig cfg = small_config(GetParam().shared, GetParam().rope);
  LlamaWeights w = LlamaWeights::random(cfg, 11, 0.3f);
  LoraConfig lc;
  lc.targets = all_projections();
  lc.rank = 2;
  lc.alpha = 4;
  LoraWeights lora = LoraWeights::init(cfg, lc, 3);
  std::mt19937 rng(5);
  std::normal_distribution<float> nd(0, 0.3f);
  for (auto* t : lora.tensors())
    for (float& x : *t) x = nd(rng);  // B = 0 at init would hide dA
  const int64_t batch = 2, seq = 6;
  std::vector<int> tokens(batch * seq), targets(batch * seq);
  for (auto& t : tokens) t = static_cast<int>(rng() % 32);
  for (auto& t : targets) t = static_cast<int>(rng() % 32);
  auto engine = make_fp32_engine();
  Gradients g;
  g.want_base = true;
  {
    LlamaModel model(w, &lora);
    model.step(tokens, targets, batch, seq, *engine, &g, 1.0f);
  }
  auto loss = [&] {
    LlamaModel model(w, &lora);
    return model.step(tokens, targets, batch, seq, *engine, nullptr).loss;
  };
  check_tensor("embedding", w.embedding, g.base.embedding, loss);
  check_tensor("final_norm", w.final_norm, g.base.final_norm, loss);
  if (!cfg.shape.shared_classifier) check_tensor("classifier", w.classifier, g.base.classifier, loss);
  for (size_t l = 0; l < w.layers.size(); ++l) {
    check_tensor(fmt::format("L{}.attn_norm", l), w.layers[l].attn_norm, g.base.layers[l].attn_norm, loss);
    check_tensor(fmt::format("L{}.ffn_norm", l), w.layers[l].ffn_norm, g.base.layers[l].ffn_norm, loss);
    for (int p = 0; p < 7; ++p) {
      const std::string name(proj_name(all_projections()[p]));
      check_tensor(fmt::format("L{}.{}", l, name), w.layers[l].proj[p], g.base.layers[l].proj[p], loss);
      check_tensor(fmt::format("L{}.{}.lora_A", l, name), lora.adapters[l][p].a, g.lora.adapters[l][p].a, loss);
      check_tensor(fmt::format("L{}.{}.lora_B", l, name), lora.adapters[l][p].b, g.lora.adapters[l][p].b, loss);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Kinds, FiniteDifferences,
                         ::testing::Values(FdCase{true, Checkpoint::Rope::interleaved},
                                           FdCase{false, Checkpoint::Rope::rotate_half}),
                         [](const auto& info) {
                           return std::string(info.param.shared ? "Shared" : "Separate") +
                                  (info.param.rope == Checkpoint::Rope::interleaved ? "Interleaved" : "RotateHalf");
                         });

}  // namespace
}  // namespace gsqhw::train

namespace gsqhw::train {
namespace {

nlohmann::json run(const std::string& spec, const std::string& formats, double loss, bool complete = true) {
  return {{"run", spec}, {"formats", formats}, {"final_val_loss", loss}, {"complete", complete}};
}

TEST(IsoAccuracy, SmallestGseWidthNoWorseThanFp8WithinSpread) {
  const std::string fp8 = "act=fp8:e4m3,weight=fp8:e4m3,grad=fp8:e5m2,storage=nf4:block=64";
  nlohmann::json results = {{"fp32_spread", 0.01},
                            {"runs", {run("fp32", "fp32", 2.00), run("fp8", fp8, 2.10),
                                      run("gse:b=4", "act=gse:b=4,...", 2.30), run("gse:b=5", "act=gse:b=5,...", 2.105),
                                      run("gse:b=6", "act=gse:b=6,...", 2.05)}}};
  auto j = iso_accuracy(results);
  EXPECT_EQ(j["b_star"], 5);  // 2.105 <= 2.10 + 0.01: a tie counts
  results["fp32_spread"] = nullptr;
  j = iso_accuracy(results);
  EXPECT_EQ(j["b_star"], 6);  // no spread known: strictly no worse
  results["runs"][4]["complete"] = false;
  j = iso_accuracy(results);
  EXPECT_TRUE(j["b_star"].is_null());  // incomplete runs do not count
  results["runs"].erase(1);
  j = iso_accuracy(results);
  EXPECT_TRUE(j["b_star"].is_null());
  EXPECT_NE(j["note"].get<std::string>().find("FP8"), std::string::npos);
}

}  // namespace
}  // namespace gsqhw::train

namespace gsqhw::train {
namespace {

// HF's convert_llama_weights_to_hf permutation of q/k rows: within each head, interleaved pair
// (2i, 2i+1) goes to rows (i, i + head_dim/2), so rotate-half RoPE computes the same rotation.
std::vector<float> hf_permute(const std::vector<float>& w, int64_t heads, int64_t rows, int64_t cols) {
  const int64_t hd = rows / heads, half = hd / 2;
  std::vector<float> out(w.size());
  for (int64_t h = 0; h < heads; ++h)
    for (int64_t i = 0; i < half; ++i)
      for (int64_t j = 0; j < 2; ++j)
        std::copy_n(&w[(h * hd + 2 * i + j) * cols], cols, &out[(h * hd + j * half + i) * cols]);
  return out;
}

TEST(LlamaForward, HfSafetensorsConversionGivesTheSameLogits) {
  GSQHW_REQUIRE_SHARED_MODEL();
  const auto ck = open_checkpoint(shared_models() / "stories260K.bin");
  const LlamaWeights w = LlamaWeights::load(*ck);
  const ModelShape& m = w.config.shape;
  test::ScratchDir dir("hf");
  std::vector<std::vector<float>> keep;  // the writer holds pointers
  safetensors::Writer wr;
  auto add = [&](const std::string& name, std::vector<float> v, std::vector<int64_t> shape) {
    keep.push_back(std::move(v));
    wr.add(name, "F32", shape, keep.back().data());
  };
  keep.reserve(64);
  add("model.embed_tokens.weight", w.embedding, {m.vocab_size, m.dim});
  add("model.norm.weight", w.final_norm, {m.dim});
  for (int64_t l = 0; l < m.n_layers; ++l) {
    const auto& lw = w.layers[l];
    const std::string p = fmt::format("model.layers.{}.", l);
    add(p + "input_layernorm.weight", lw.attn_norm, {m.dim});
    add(p + "post_attention_layernorm.weight", lw.ffn_norm, {m.dim});
    for (int i = 0; i < 7; ++i) {
      const Proj proj = all_projections()[i];
      const ProjDims d = proj_dims(m, proj);
      std::vector<float> t = lw.proj[i];
      if (proj == Proj::q) t = hf_permute(t, m.n_heads, d.out, d.in);
      if (proj == Proj::k) t = hf_permute(t, m.n_kv_heads, d.out, d.in);
      const bool attn = i < 4;
      add(p + (attn ? "self_attn." : "mlp.") + std::string(proj_name(proj)) + "_proj.weight", t, {d.out, d.in});
    }
  }
  std::filesystem::create_directories(dir / "hf");
  wr.write(dir / "hf" / "model.safetensors");
  {
    std::ofstream cfg(dir / "hf" / "config.json");
    cfg << fmt::format(R"({{"num_attention_heads": {}, "num_key_value_heads": {}, "rms_norm_eps": 1e-5,
                           "rope_theta": 10000.0, "max_position_embeddings": {}}})",
                       m.n_heads, m.n_kv_heads, m.seq_len);
  }
  const auto hf = open_checkpoint(dir / "hf");
  EXPECT_EQ(hf->kind(), "safetensors");
  EXPECT_EQ(hf->rope(), Checkpoint::Rope::rotate_half);
  const LlamaWeights wh = LlamaWeights::load(*hf);
  auto engine = make_fp32_engine();
  LlamaModel a(w, nullptr), b(wh, nullptr);
  const std::vector<int> tokens = {1, 403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315};
  const auto la = a.logits(tokens, *engine), lb = b.logits(tokens, *engine);
  ASSERT_EQ(la.size(), lb.size());
  double max_diff = 0;
  for (size_t i = 0; i < la.size(); ++i) max_diff = std::max(max_diff, std::fabs(double(la[i]) - lb[i]));
  EXPECT_LT(max_diff, 1e-4) << "llama2.c vs HF-converted logits";
}

}  // namespace
}  // namespace gsqhw::train
