// Checkpoint loaders on small generated files: llama2.c and Hugging Face safetensors.
#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "base/errors.h"
#include "test_util.h"
#include "workloads/checkpoint.h"
#include "workloads/safetensors.h"

namespace gsqhw {
namespace {

using test::ScratchDir;

// Value of element i of a named tensor: distinct per tensor, exactly representable in BF16 and F16
// (small integers times 1/64), so every dtype round-trips exactly.
float tensor_value(int tensor_id, int64_t i) {
  return static_cast<float>(((tensor_id * 37 + i * 13) % 201) - 100) / 64.0f;
}

// Shape of the generated checkpoints: dim 16, hidden 32, 2 layers, 4 heads, 2 KV heads (GQA),
// vocab 10, seq_len 8.
ModelShape small_shape() { return {"small", 16, 32, 2, 4, 2, 10, 8, true}; }

// Options of a test checkpoint: the defaults with one lambda's edits (l2c, hf below).
template <typename Options, typename Edit>
Options edited(Edit edit) {
  Options o;
  edit(o);
  return o;
}

struct Llama2cOptions {
  bool shared = true;
  bool legacy_freq = true;
  int32_t header_override_index = -1;
  int32_t header_override_value = 0;
  int64_t drop_bytes = 0;
  bool nan_in_wk = false;
};
template <typename Edit>
Llama2cOptions l2c(Edit edit) { return edited<Llama2cOptions>(edit); }

// Writes a llama2.c checkpoint; tensor t (in file order) holds tensor_value(t, i).
void write_llama2c(const std::filesystem::path& file, const Llama2cOptions& o = {}) {
  const ModelShape m = small_shape();
  int32_t header[7] = {16, 32, 2, 4, 2, o.shared ? 10 : -10, 8};
  if (o.header_override_index >= 0) header[o.header_override_index] = o.header_override_value;
  std::vector<char> bytes;
  test::append(bytes, header, 7);
  const int64_t L = m.n_layers, dim = m.dim, hid = m.hidden_dim, kv = m.kv_dim(), head = m.head_dim();
  std::vector<int64_t> sizes = {m.vocab_size * dim, L * dim, L * dim * dim, L * kv * dim, L * kv * dim,
                                L * dim * dim, L * dim, L * hid * dim, L * dim * hid, L * hid * dim, dim};
  if (o.legacy_freq) {
    sizes.push_back(m.seq_len * head / 2);
    sizes.push_back(m.seq_len * head / 2);
  }
  if (!o.shared) sizes.push_back(m.vocab_size * dim);
  for (size_t t = 0; t < sizes.size(); ++t) {
    std::vector<float> v(static_cast<size_t>(sizes[t]));
    for (int64_t i = 0; i < sizes[t]; ++i) v[i] = tensor_value(static_cast<int>(t), i);
    if (o.nan_in_wk && t == 3) v[kv * dim + 5] = std::nanf("");  // layer 1 of wk
    test::append(bytes, v.data(), v.size());
  }
  bytes.resize(bytes.size() - static_cast<size_t>(o.drop_bytes));
  test::write_all(file, bytes);
}

TEST(Llama2cCheckpoint, ReadsEveryProjectionInFileOrder) {
  ScratchDir dir("l2c");
  for (bool shared : {true, false})
    for (bool freq : {true, false}) {
      SCOPED_TRACE(std::string(shared ? "shared" : "unshared") + (freq ? " legacy" : ""));
      const auto file = dir / "model.bin";
      write_llama2c(file, l2c([&](auto& o) { o.shared = shared; o.legacy_freq = freq; }));
      const auto ck = open_checkpoint(file);
      EXPECT_EQ(ck->kind(), "llama2c");
      EXPECT_TRUE(ck->shape().same_dims(small_shape()));
      EXPECT_EQ(ck->shape().shared_classifier, shared);
      EXPECT_EQ(ck->shape().kv_dim(), 8);
      // File order: emb 0, rms_att 1, wq 2, wk 3, wv 4, wo 5, rms_ffn 6, w1 7, w2 8, w3 9.
      const std::pair<Proj, int> ids[] = {{Proj::q, 2}, {Proj::k, 3}, {Proj::v, 4}, {Proj::o, 5},
                                          {Proj::gate, 7}, {Proj::down, 8}, {Proj::up, 9}};
      for (auto [p, id] : ids) {
        const ProjDims d = proj_dims(ck->shape(), p);
        const auto w = ck->read_projection(1, p);
        ASSERT_EQ(static_cast<int64_t>(w.size()), d.in * d.out);
        for (int64_t i = 0; i < d.in * d.out; ++i)
          ASSERT_EQ(w[i], tensor_value(id, d.in * d.out + i)) << proj_name(p) << " element " << i;
      }
      EXPECT_THROW(ck->read_projection(2, Proj::q), UsageError);
    }
}

TEST(Llama2cCheckpoint, RejectsTruncatedAndInconsistentFiles) {
  ScratchDir dir("l2cbad");
  const auto file = dir / "model.bin";
  write_llama2c(file, l2c([&](auto& o) { o.drop_bytes = 4; }));
  EXPECT_THROW(open_checkpoint(file), UsageError);
  write_llama2c(file, l2c([&](auto& o) { o.shared = false; o.legacy_freq = false; o.drop_bytes = 4 * 160; }));  // no wcls
  EXPECT_THROW(open_checkpoint(file), UsageError);
  write_llama2c(file, l2c([&](auto& o) { o.header_override_index = 3; o.header_override_value = 5; }));  // 16 % 5 != 0
  EXPECT_THROW(open_checkpoint(file), UsageError);
  write_llama2c(file, l2c([&](auto& o) { o.header_override_index = 0; o.header_override_value = -16; }));
  EXPECT_THROW(open_checkpoint(file), UsageError);
  write_llama2c(file, l2c([&](auto& o) { o.header_override_index = 2; o.header_override_value = 3; }));  // claims 3 layers
  EXPECT_THROW(open_checkpoint(file), UsageError);
  // Huge sizes that would overflow the layout arithmetic.
  write_llama2c(file, l2c([&](auto& o) { o.header_override_index = 2; o.header_override_value = 1 << 24; }));
  EXPECT_THROW(open_checkpoint(file), UsageError);
  test::write_all(file, {1, 2, 3});
  EXPECT_THROW(open_checkpoint(file), UsageError);
  EXPECT_THROW(open_checkpoint(dir / "missing.bin"), UsageError);
}

TEST(Llama2cCheckpoint, NonFiniteWeightsAreRejectedWhenRead) {
  ScratchDir dir("l2cnan");
  const auto file = dir / "model.bin";
  write_llama2c(file, l2c([&](auto& o) { o.nan_in_wk = true; }));
  const auto ck = open_checkpoint(file);
  EXPECT_NO_THROW(ck->read_projection(0, Proj::k));
  EXPECT_THROW(ck->read_projection(1, Proj::k), UsageError);
}

// ---------------------------------------------------------------------------------------------

uint16_t to_bf16(float f) {
  uint32_t b;
  std::memcpy(&b, &f, 4);
  return static_cast<uint16_t>(b >> 16);  // exact for the values used here
}

uint16_t to_f16(float f) {  // exact for k/64 with |k| <= 100 and 0
  if (f == 0) return 0;
  const uint16_t sign = f < 0 ? 0x8000 : 0;
  int e;
  const float m = std::frexp(std::fabs(f), &e);  // f = m * 2^e, m in [0.5, 1)
  const int exp = e - 1 + 15;
  const auto mant = static_cast<uint16_t>(std::lround((m * 2 - 1) * 1024));
  return static_cast<uint16_t>(sign | (exp << 10) | mant);
}

struct HfOptions {
  std::string dtype = "F32";
  std::string extra_name;           // an additional tensor
  bool drop_q1 = false;             // layer 1 without q_proj
  bool wrong_k_shape = false;
  bool nan_in_up = false;
  int64_t truncate = 0;
  bool config = false;
};
template <typename Edit>
HfOptions hf(Edit edit) { return edited<HfOptions>(edit); }

// Writes a Hugging Face LLaMA checkpoint; tensor t (in name order) holds tensor_value(t, i).
void write_hf(const std::filesystem::path& file, const HfOptions& o = {}) {
  const ModelShape m = small_shape();
  std::vector<std::pair<std::string, std::vector<int64_t>>> tensors = {
      {"model.embed_tokens.weight", {m.vocab_size, m.dim}},
      {"model.norm.weight", {m.dim}},
      {"lm_head.weight", {m.vocab_size, m.dim}},
  };
  for (int l = 0; l < 2; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    for (Proj pr : all_projections()) {
      if (o.drop_q1 && l == 1 && pr == Proj::q) continue;
      const ProjDims d = proj_dims(m, pr);
      const bool attn = pr == Proj::q || pr == Proj::k || pr == Proj::v || pr == Proj::o;
      std::vector<int64_t> shape = {d.out, d.in};
      if (o.wrong_k_shape && pr == Proj::k && l == 1) shape = {d.in, d.out};
      tensors.push_back({p + (attn ? "self_attn." : "mlp.") + std::string(proj_name(pr)) + "_proj.weight", shape});
    }
    tensors.push_back({p + "input_layernorm.weight", {m.dim}});
    tensors.push_back({p + "post_attention_layernorm.weight", {m.dim}});
  }
  if (!o.extra_name.empty()) tensors.push_back({o.extra_name, {2}});
  std::vector<std::vector<char>> data;
  safetensors::Writer w;
  for (size_t t = 0; t < tensors.size(); ++t) {
    int64_t n = 1;
    for (int64_t d : tensors[t].second) n *= d;
    std::vector<char> bytes;
    for (int64_t i = 0; i < n; ++i) {
      float v = tensor_value(static_cast<int>(t), i);
      if (o.nan_in_up && tensors[t].first == "model.layers.0.mlp.up_proj.weight" && i == 3) v = INFINITY;
      if (o.dtype == "F32") test::append(bytes, &v, 1);
      else if (o.dtype == "BF16") { const uint16_t h = to_bf16(v); test::append(bytes, &h, 1); }
      else if (o.dtype == "F16") { const uint16_t h = to_f16(v); test::append(bytes, &h, 1); }
      else { const int32_t x = static_cast<int32_t>(v); test::append(bytes, &x, 1); }
    }
    data.push_back(std::move(bytes));
    w.add(tensors[t].first, o.dtype, tensors[t].second, data.back().data());
  }
  w.set_metadata("format", "pt");
  w.write(file);
  if (o.truncate) {
    auto bytes = test::read_all(file);
    bytes.resize(bytes.size() - static_cast<size_t>(o.truncate));
    test::write_all(file, bytes);
  }
  if (o.config)
    test::write_all(file.parent_path() / "config.json",
                    [] { std::string s = R"({"num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 8})";
                         return std::vector<char>(s.begin(), s.end()); }());
}

// Index of a projection tensor in write_hf's order.
int hf_tensor_id(int layer, Proj p) {
  return 3 + layer * 9 + static_cast<int>(std::find(all_projections().begin(), all_projections().end(), p) -
                                          all_projections().begin());
}

TEST(HfCheckpoint, ReadsF32F16Bf16) {
  for (const std::string dtype : {"F32", "F16", "BF16"}) {
    SCOPED_TRACE(dtype);
    ScratchDir dir("hf" + dtype);
    const auto file = dir / "model.safetensors";
    write_hf(file, hf([&](auto& o) { o.dtype = dtype; o.config = true; }));
    const auto ck = open_checkpoint(file);
    EXPECT_EQ(ck->kind(), "safetensors");
    EXPECT_TRUE(ck->shape().same_dims(small_shape())) << ck->shape().n_heads << " heads";
    EXPECT_FALSE(ck->shape().shared_classifier);
    for (int layer : {0, 1})
      for (Proj p : all_projections()) {
        const auto w = ck->read_projection(layer, p);
        const ProjDims d = proj_dims(ck->shape(), p);
        ASSERT_EQ(static_cast<int64_t>(w.size()), d.in * d.out);
        for (int64_t i = 0; i < d.in * d.out; ++i)
          ASSERT_EQ(w[i], tensor_value(hf_tensor_id(layer, p), i)) << proj_name(p) << " " << i;
      }
  }
}

TEST(HfCheckpoint, InfersHeadsWithoutConfigAndReadsShardFolders) {
  ScratchDir dir("hfshard");
  write_hf(dir / "model-00001.safetensors");
  const auto ck = open_checkpoint(dir / "model-00001.safetensors");
  // No config.json: head_dim = gcd(16, 8) = 8, so 2 heads and 1 KV head; projection dims agree.
  EXPECT_EQ(ck->shape().kv_dim(), 8);
  EXPECT_EQ(ck->shape().dim, 16);
  const auto folder = open_checkpoint(dir.path());
  EXPECT_EQ(folder->read_projection(1, Proj::down), ck->read_projection(1, Proj::down));
}

TEST(HfCheckpoint, RejectsBadFiles) {
  ScratchDir dir("hfbad");
  const auto file = dir / "model.safetensors";
  auto expect_rejected = [&](const HfOptions& o, const std::string& needle) {
    write_hf(file, o);
    try {
      open_checkpoint(file);
      ADD_FAILURE() << "accepted (expected '" << needle << "')";
    } catch (const UsageError& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  expect_rejected(hf([&](auto& o) { o.extra_name = "model.layers.0.self_attn.q_proj.bias"; }), "unknown tensor name");
  expect_rejected(hf([&](auto& o) { o.extra_name = "vision_tower.weight"; }), "unknown tensor name");
  expect_rejected(hf([&](auto& o) { o.dtype = "I32"; }), "dtype I32");
  expect_rejected(hf([&](auto& o) { o.drop_q1 = true; }), "missing tensor 'model.layers.1.self_attn.q_proj.weight'");
  expect_rejected(hf([&](auto& o) { o.wrong_k_shape = true; }), "has shape");
  expect_rejected(hf([&](auto& o) { o.truncate = 10; }), "truncated");
  write_hf(file, hf([&](auto& o) { o.nan_in_up = true; }));
  const auto ck = open_checkpoint(file);
  EXPECT_THROW(ck->read_projection(0, Proj::up), UsageError);
  EXPECT_NO_THROW(ck->read_projection(1, Proj::up));
}

}  // namespace
}  // namespace gsqhw
