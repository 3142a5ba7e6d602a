// Engine options of #13 through the real CLI binary: the one-layer training benchmark
// (`gsqhw bench --train-layer`) and tracing a fine-tuning run at a saved step
// (`gsqhw trace --step N`), on the real stories260K model (../shared/models) where a model is needed.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <algorithm>
#include <map>
#include <tuple>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <string>

#include "shared_model.h"
#include "tests/support/cli_run.h"
#include "test_util.h"
#include "workloads/checkpoint.h"
#include "workloads/safetensors.h"
#include "workloads/train/llama.h"
#include "workloads/train/run_spec.h"
#include "workloads/train/tokenizer.h"

namespace gsqhw {
namespace {

using test::ScratchDir;
using test::shared_models;

using Run = test::CliRun;
using test::run_cli;

nlohmann::json json_of(const Run& r) { return nlohmann::json::parse(r.out.substr(r.out.find('{'))); }

std::string model_args() {
  return "--checkpoint " + (shared_models() / "stories260K.bin").string() + " --tokenizer " +
         (shared_models() / "tok512.bin").string();
}

void write_stories(const std::filesystem::path& file, int lines) {
  const char* names[] = {"Lily", "Tom", "Max", "Sue", "Ben", "Anna"};
  const char* things[] = {"ball", "cat", "tree", "box", "kite", "park"};
  std::mt19937 rng(7);
  std::ofstream out(file);
  for (int i = 0; i < lines; ++i)
    out << "One day, " << names[rng() % 6] << " saw a little " << things[rng() % 6] << " and said hello to "
        << names[rng() % 6] << ".\n";
}

// The benchmark runs each spec in a process of its own and reports time and peak memory side by
// side (a small layer here; docs/training.md has the LLaMA-7B-shaped figures).
TEST(BenchTrainLayer, TimesEachRunWithItsPeakMemory) {
  const auto r = run_cli("bench --train-layer dim=128,hidden=344,heads=4 --tokens 64 --formats fp32 gse:b=6 bf16 "
                         "--steps 2 --json");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  const auto j = json_of(r);
  EXPECT_EQ(j["weights"], "synthetic");
  ASSERT_EQ(j["runs"].size(), 3u);
  double fp32_loss = 0;
  for (const auto& run : j["runs"]) {
    ASSERT_EQ(run["step_seconds"].size(), 2u) << run.dump();
    for (const auto& s : run["step_seconds"]) EXPECT_GT(s.get<double>(), 0);
    // A child's peak resident set holds at least its FP32 weights (7 projections, 4 bytes each).
    const double weights_mib = 4.0 * (4 * 128 * 128 + 3 * 128 * 344) / (1 << 20);
    EXPECT_GT(run["peak_rss_mib"].get<double>(), weights_mib) << run.dump();
    EXPECT_GE(run["peak_rss_mib"].get<double>(), run["setup_peak_rss_mib"].get<double>() - 1) << run.dump();
    // The linear-layer GEMMs of one step: fwd (7 base + 2 x 2 LoRA) and bwd (7 + 2 x 5).
    EXPECT_GT(run["linear_macs_per_step"].get<double>(), 2.0 * 64 * (4 * 128 * 128 + 3 * 128 * 344));
    const double loss = run["loss"];
    ASSERT_TRUE(std::isfinite(loss));
    if (run["run"] == "fp32") fp32_loss = loss;
  }
  // Same weights and tokens in every run: the quantized losses stay near FP32's.
  for (const auto& run : j["runs"]) EXPECT_NEAR(run["loss"].get<double>(), fp32_loss, 0.05) << run.dump();
  // The text table names the runs and the machine load.
  const auto t = run_cli("bench --train-layer dim=64,hidden=172,heads=4 --tokens 16 --formats fp32 gse:b=6 --steps 1");
  ASSERT_EQ(t.exit_code, 0) << t.out;
  EXPECT_NE(t.out.find("gse:b=6"), std::string::npos) << t.out;
  EXPECT_NE(t.out.find("peak MiB"), std::string::npos) << t.out;
  EXPECT_NE(t.out.find("load"), std::string::npos) << t.out;
  // Bad input: exit 2 with the reason.
  for (const auto& [args, needle] : std::vector<std::pair<std::string, std::string>>{
           {"--train-layer dim=100,hidden=64,heads=3", "multiple"},
           {"--train-layer dim=64,hidden=172,heads=4,bogus=1", "unknown key"},
           {"--train-layer llama-99b", "llama-7b"},
           {"--train-layer dim=64,hidden=172,heads=4 --formats gse:b=99", "gse"},
           {"--train-layer dim=64,hidden=172,heads=4 --rank 100", "rank"}}) {
    const auto b = run_cli("bench " + args + " --tokens 8");
    EXPECT_EQ(b.exit_code, 2) << args << "\n" << b.out;
    EXPECT_NE(b.out.find(needle), std::string::npos) << args << "\n" << b.out;
  }
}

// `trace --step N` traces the model as it was after step N of a fine-tuning run: at the last
// step it equals tracing the saved adapter, at an earlier step it differs, and the metadata says
// which step it is.
TEST(TraceStep, TracesAFineTuningRunAtASavedStep) {
  GSQHW_REQUIRE_SHARED_MODEL();
  ScratchDir dir("trace-step");
  write_stories(dir / "stories.txt", 150);
  const std::string data = " --data " + (dir / "stories.txt").string();
  const auto ft = run_cli("finetune " + model_args() + data +
                          " --formats fp32 --steps 4 --save-every 2 --batch 2 --seq 32 --eval-every 4 "
                          "--eval-windows 2 --lr 1e-2 --rank 4 --targets q,v --out " + (dir / "ft").string());
  ASSERT_EQ(ft.exit_code, 0) << ft.out;
  const auto run_dir = dir / "ft" / "runs" / "fp32";
  EXPECT_TRUE(std::filesystem::exists(run_dir / "states" / "step-2.safetensors"));
  EXPECT_TRUE(std::filesystem::exists(run_dir / "states" / "step-4.safetensors"));
  auto trace = [&](const std::string& lora, const std::string& step, const std::string& out) {
    return run_cli("trace " + model_args() + data + " --lora " + lora + step +
                   " --layer 1 --proj v --tokens 32 --formats gse:b=6 --threads 1 --json --out " + (dir / out).string());
  };
  const auto at4 = trace(run_dir.string(), " --step 4", "t4");
  const auto at2 = trace(run_dir.string(), " --step 2", "t2");
  const auto at0 = trace((run_dir / "adapter").string(), " --step 0", "t0");
  const auto final_adapter = trace((run_dir / "adapter").string(), "", "tf");
  for (const auto* r : {&at4, &at2, &at0, &final_adapter}) ASSERT_EQ(r->exit_code, 0) << r->out;
  const auto j4 = json_of(at4), j2 = json_of(at2), j0 = json_of(at0), jf = json_of(final_adapter);
  EXPECT_EQ(j4["lora_step"], 4);
  EXPECT_EQ(j4["rank"], 4);
  ASSERT_EQ(j4["gemms"].size(), 8u);
  // Every operand and output statistic of step 4 equals the final adapter's; step 2's differ.
  int differs_at_2 = 0;
  for (size_t g = 0; g < 8; ++g) {
    for (const char* side : {"a", "b"}) {
      EXPECT_EQ(j4["gemms"][g][side]["error"], jf["gemms"][g][side]["error"]) << g << side;
      differs_at_2 += j4["gemms"][g][side]["error"] != j2["gemms"][g][side]["error"];
    }
    EXPECT_EQ(j4["gemms"][g]["out"]["error"], jf["gemms"][g]["out"]["error"]) << g;
  }
  EXPECT_GT(differs_at_2, 0);
  // Step 0 is the initial adapter: B = 0, so fwd.lora_b's B operand (the LoRA master B) is all zeros.
  EXPECT_EQ(j0["gemms"][2]["gemm"], "fwd.lora_b");
  // The metadata of a LoRA-side trace says which step of which run it holds.
  const auto info = run_cli("trace-info --json " + j2["gemms"][7]["file"].get<std::string>());
  ASSERT_EQ(info.exit_code, 0) << info.out;
  const auto meta = json_of(info)["metadata"];
  EXPECT_NE(meta["activations"].get<std::string>().find("at step 2 of the fine-tuning run"), std::string::npos)
      << meta.dump();
  EXPECT_NE(meta["output_grad"].get<std::string>().find("at step 2"), std::string::npos) << meta.dump();
  const auto info0 = run_cli("trace-info --json " + j0["gemms"][1]["file"].get<std::string>());
  ASSERT_EQ(info0.exit_code, 0) << info0.out;
  EXPECT_NE(json_of(info0)["metadata"]["weights"].get<std::string>().find("initial adapter (step 0"), std::string::npos)
      << info0.out;
  // Bad input: an unsaved step lists the saved ones; --step without a run; a folder that is no run.
  const auto missing = trace(run_dir.string(), " --step 3", "t3");
  EXPECT_EQ(missing.exit_code, 2) << missing.out;
  EXPECT_NE(missing.out.find("saved steps: 2, 4"), std::string::npos) << missing.out;
  const auto no_run = run_cli("trace " + model_args() + data + " --step 2 --layer 1 --proj v --tokens 32 --out " +
                              (dir / "t5").string());
  EXPECT_EQ(no_run.exit_code, 2) << no_run.out;
  EXPECT_NE(no_run.out.find("--step N needs --lora"), std::string::npos) << no_run.out;
  const auto not_run = trace(dir.path().string(), " --step 2", "t6");
  EXPECT_EQ(not_run.exit_code, 2) << not_run.out;
  EXPECT_NE(not_run.out.find("not a `gsqhw finetune` run folder"), std::string::npos) << not_run.out;
}

}  // namespace
}  // namespace gsqhw

namespace gsqhw {
namespace {

// One training step of the real model on a fixed batch; the loss and every LoRA gradient.
struct StepOut {
  double loss;
  std::vector<float> grads;
  std::map<std::string, train::GemmCounters> counters;
};

class RealStep {
 public:
  RealStep() {
    checkpoint_ = open_checkpoint(shared_models() / "stories260K.bin");
    weights_ = train::LlamaWeights::load(*checkpoint_, "nf4:block=64");
    train::LoraConfig lc;
    lc.targets = {Proj::q, Proj::v};
    lc.rank = 4;
    lora_ = train::LoraWeights::init(weights_.config, lc, 3);
    std::mt19937_64 rng(5);
    std::normal_distribution<float> nd(0.0f, 0.05f);
    for (auto* t : lora_.tensors())
      for (float& x : *t) x += nd(rng);  // B != 0, so that every LoRA GEMM carries values
    const train::Tokenizer tok(shared_models() / "tok512.bin", weights_.config.shape.vocab_size);
    std::vector<int> ids = tok.encode(
        "Once upon a time, there was a little girl named Lily. She loved to play outside in the park with her "
        "friend Tom. One day they found a big red ball under a tree and they were very happy.", true, false);
    ids.resize(2 * kSeq + 1, 1);
    tokens_.assign(ids.begin(), ids.end() - 1);
    targets_.assign(ids.begin() + 1, ids.end());
  }
  StepOut run(const std::string& spec, bool quantize_attention, int threads = 1) {
    auto engine = train::make_engine_for(spec, "natural", threads);
    train::LlamaModel model(weights_, &lora_);
    model.set_quantize_attention(quantize_attention);
    train::Gradients g;
    StepOut out;
    out.loss = model.step(tokens_, targets_, 2, kSeq, *engine, &g, 1024.0f, 77).loss;
    for (auto* t : g.lora.tensors()) out.grads.insert(out.grads.end(), t->begin(), t->end());
    out.counters = engine->counters();
    return out;
  }
  static constexpr int64_t kSeq = 24;

 private:
  std::unique_ptr<Checkpoint> checkpoint_;
  train::LlamaWeights weights_;
  train::LoraWeights lora_;
  std::vector<int> tokens_, targets_;
};

// --quantize-attention: the six attention products per batch row and head go through a
// quantized engine (deterministic, stochastic rounding included, whatever the thread count, and
// different from FP32 attention); the FP32 engine computes bit for bit what it computes without.
TEST(QuantizeAttention, QuantizesOnlyQuantizedRunsDeterministically) {
  GSQHW_REQUIRE_SHARED_MODEL();
  RealStep step;
  const StepOut fp32_off = step.run("fp32", false), fp32_on = step.run("fp32", true);
  EXPECT_EQ(fp32_off.loss, fp32_on.loss);
  EXPECT_EQ(fp32_off.grads, fp32_on.grads);
  EXPECT_EQ(fp32_on.counters.count("att.scores"), 0u);
  const StepOut off = step.run("gse:b=6", false), on = step.run("gse:b=6", true),
                again = step.run("gse:b=6", true, 2);
  EXPECT_EQ(on.loss, again.loss);
  EXPECT_EQ(on.grads, again.grads);
  EXPECT_NE(on.loss, off.loss);
  EXPECT_NE(on.grads, off.grads);
  // The path computes attention, not noise: at 8 bits it stays near the FP32 attention (measured
  // 1.815 -> 1.836; GSE-INT6, whose groups of 32 share one exponent across a row of softmax
  // probabilities, moves this batch's loss from 1.67 to 2.04).
  EXPECT_NEAR(step.run("gse:b=8", true).loss, step.run("gse:b=8", false).loss, 0.05);
  // 5 layers x 2 batch rows x 8 heads, once per step for each product.
  for (const char* kind : {"att.scores", "att.values", "att.bwd.dp", "att.bwd.dv", "att.bwd.dq", "att.bwd.dk"}) {
    ASSERT_EQ(on.counters.count(kind), 1u) << kind;
    EXPECT_EQ(on.counters.at(kind).calls, 5 * 2 * 8) << kind;
    EXPECT_EQ(on.counters.at(kind).nonfinite, 0) << kind;
  }
  EXPECT_EQ(on.counters.at("att.scores").outputs, 5 * 2 * 8 * RealStep::kSeq * RealStep::kSeq);
  EXPECT_EQ(off.counters.count("att.scores"), 0u);
  // The BF16 baseline rounds attention operands too; FP8 runs the products as well.
  EXPECT_NE(step.run("bf16", true).loss, step.run("bf16", false).loss);
  EXPECT_TRUE(std::isfinite(step.run("fp8", true).loss));
}

}  // namespace
}  // namespace gsqhw

namespace gsqhw {
namespace {

// `finetune --optimizer tsignsgd`: LoTA-QAF's ternary adapters trained with t-SignSGD lower the
// validation loss of the real model on an in-domain text, in FP32 and GSE-INT6 runs alike; a run
// is deterministic (a killed and resumed run computes the same numbers) and its state holds
// ternary values only. --quantize-attention reaches the runs through the CLI.
TEST(TSignSgd, LowersTheLossDeterministically) {
  GSQHW_REQUIRE_SHARED_MODEL();
  ScratchDir dir("tsignsgd");
  write_stories(dir / "stories.txt", 150);
  const std::string common = "finetune " + model_args() + " --data " + (dir / "stories.txt").string() +
                             " --formats gse:b=6 --optimizer tsignsgd:n=4,g=64,omega=1,fraction=0.05 --steps 8 "
                             "--batch 2 --seq 32 --eval-every 4 --save-every 4 --eval-windows 4 --rank 4 "
                             "--targets q,v,down";
  const auto full = run_cli(common + " --threads 1 --out " + (dir / "a").string());
  ASSERT_EQ(full.exit_code, 0) << full.out;
  const auto j = nlohmann::json::parse(std::ifstream(dir / "a" / "results.json"));
  EXPECT_EQ(j["optimizer"], "tsignsgd:n=4,g=64,omega=1,fraction=0.05");
  ASSERT_EQ(j["runs"].size(), 2u);
  for (const auto& run : j["runs"]) {
    ASSERT_EQ(run["evals"].size(), 3u) << run.dump();
    const double v0 = run["evals"][0]["val_loss"], v8 = run["evals"][2]["val_loss"];
    EXPECT_LT(v8, v0 - 0.3) << run.dump();  // measured: 2.70 -> 1.36 (FP32), 2.76 -> 1.32 (GSE-INT6)
    EXPECT_TRUE(run["adapter"].is_null());  // ternary adapters act through the merge, not as PEFT LoRA
    // The weight gradient of each trained projection went through the engine once per step:
    // 5 layers x 3 targets x 8 steps.
    EXPECT_EQ(run["gemm_counters"]["bwd.dw"]["calls"].get<double>(), 5 * 3 * 8) << run.dump();
    EXPECT_EQ(run["gemm_counters"].count("fwd.lora_a"), 0u);
  }
  // Killed after 3 steps and resumed on two threads: the same numbers; the state holds ternaries.
  const auto part = run_cli(common + " --threads 1 --stop-after 3 --out " + (dir / "b").string());
  ASSERT_EQ(part.exit_code, 0) << part.out;
  const auto rest = run_cli(common + " --threads 2 --out " + (dir / "b").string());
  ASSERT_EQ(rest.exit_code, 0) << rest.out;
  const auto jb = nlohmann::json::parse(std::ifstream(dir / "b" / "results.json"));
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(jb["runs"][i]["evals"], j["runs"][i]["evals"]) << i;
    EXPECT_EQ(jb["runs"][i]["final_train_loss"], j["runs"][i]["final_train_loss"]) << i;
  }
  const auto h = safetensors::read_header(dir / "a" / "runs" / "gse_b_6" / "state.safetensors");
  const auto* b = h.find("base_model.model.model.layers.2.self_attn.v_proj.lora_B.weight");
  ASSERT_NE(b, nullptr);
  std::vector<float> values(static_cast<size_t>(b->numel()));
  safetensors::read_bytes(h, *b, values.data());
  int nonzero = 0;
  for (float v : values) {
    EXPECT_TRUE(v == -1.0f || v == 0.0f || v == 1.0f) << v;
    nonzero += v != 0;
  }
  EXPECT_GT(nonzero, 0);  // B started at 0 and moved
  // Its ternaries are no LoRA masters: `trace --step` refuses them.
  const auto tr = run_cli("trace " + model_args() + " --data " + (dir / "stories.txt").string() + " --lora " +
                          (dir / "a" / "runs" / "gse_b_6").string() + " --step 4 --layer 1 --proj v --tokens 32 --out " +
                          (dir / "t").string());
  EXPECT_EQ(tr.exit_code, 2) << tr.out;
  EXPECT_NE(tr.out.find("ternary adapters act through the merge"), std::string::npos) << tr.out;
  // Bad input: exit 2 naming the part.
  const std::string base = "finetune " + model_args() + " --data " + (dir / "stories.txt").string() +
                           " --steps 2 --batch 2 --seq 32 --rank 4 --out " + (dir / "bad").string();
  for (const auto& [opt, needle] : std::vector<std::pair<std::string, std::string>>{
           {"--optimizer sgd", "adamw"},
           {"--optimizer tsignsgd:n=5", "bits"},
           {"--optimizer tsignsgd:omega=4", "omega"},
           {"--optimizer tsignsgd:fraction=0", "fraction"},
           {"--optimizer tsignsgd:rate=1", "unknown key"}}) {
    const auto r = run_cli(base + " " + opt);
    EXPECT_EQ(r.exit_code, 2) << opt << "\n" << r.out;
    EXPECT_NE(r.out.find(needle), std::string::npos) << opt << "\n" << r.out;
  }
}

// --quantize-attention through `gsqhw finetune`: the QCD run counts the attention GEMMs and ends
// elsewhere than without; the FP32 run is the same bit for bit.
TEST(QuantizeAttention, FinetuneOption) {
  GSQHW_REQUIRE_SHARED_MODEL();
  ScratchDir dir("quantize-attention");
  write_stories(dir / "stories.txt", 150);
  const std::string common = "finetune " + model_args() + " --data " + (dir / "stories.txt").string() +
                             " --formats gse:b=6 --steps 2 --batch 2 --seq 16 --eval-every 2 --eval-windows 2 "
                             "--rank 4 --lr 1e-2 --threads 1";
  const auto off = run_cli(common + " --out " + (dir / "off").string());
  const auto on = run_cli(common + " --quantize-attention --out " + (dir / "on").string());
  ASSERT_EQ(off.exit_code, 0) << off.out;
  ASSERT_EQ(on.exit_code, 0) << on.out;
  const auto joff = nlohmann::json::parse(std::ifstream(dir / "off" / "results.json"));
  const auto jon = nlohmann::json::parse(std::ifstream(dir / "on" / "results.json"));
  EXPECT_EQ(jon["quantize_attention"], true);
  EXPECT_EQ(jon["runs"][0]["evals"], joff["runs"][0]["evals"]);  // fp32
  EXPECT_NE(jon["runs"][1]["evals"], joff["runs"][1]["evals"]);  // gse:b=6
  EXPECT_GT(jon["runs"][1]["gemm_counters"]["att.bwd.dk"]["calls"].get<double>(), 0);
  EXPECT_EQ(joff["runs"][1]["gemm_counters"].count("att.scores"), 0u);
  // generate takes the option too: FP32 ids unchanged.
  const std::string gen = "generate " + model_args() + " --prompt 'Lily wanted to' --steps 12 --ids";
  const auto g0 = run_cli(gen), g1 = run_cli(gen + " --quantize-attention"),
             g2 = run_cli(gen + " --formats gse:b=8 --quantize-attention");
  ASSERT_EQ(g0.exit_code, 0) << g0.out;
  EXPECT_EQ(g1.out, g0.out);
  EXPECT_EQ(g2.exit_code, 0) << g2.out;
}

}  // namespace
}  // namespace gsqhw

namespace gsqhw {
namespace {

// tok512.bin's pieces and scores (llama2.c's format: max length, then score, length, bytes).
std::vector<std::pair<std::string, float>> read_llama2c_tokenizer(const std::filesystem::path& file, int vocab) {
  std::ifstream in(file, std::ios::binary);
  int32_t max_len = 0;
  in.read(reinterpret_cast<char*>(&max_len), 4);
  std::vector<std::pair<std::string, float>> out;
  for (int i = 0; i < vocab; ++i) {
    float score = 0;
    int32_t len = 0;
    in.read(reinterpret_cast<char*>(&score), 4);
    in.read(reinterpret_cast<char*>(&len), 4);
    std::string s(static_cast<size_t>(len), '\0');
    in.read(s.data(), len);
    out.emplace_back(s, score);
  }
  return out;
}

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  for (size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size())) s.replace(at, from.size(), to);
  return s;
}

// The tokenizer.json Hugging Face's converter (LlamaConverter / SentencePieceExtractor) makes
// from a sentencepiece BPE model, written from tok512.bin: pieces with "\u2581" for space;
// merges = every split of a piece into two pieces, ordered by the merged piece's score
// (highest first), then by the ids of its parts. `metaspace` picks the newer layout (a
// Metaspace pre-tokenizer and [left, right] merges) over the older one (a Prepend/Replace
// normalizer and "left right" merges).
void write_tokenizer_json(const std::filesystem::path& file, bool metaspace) {
  const std::string meta = "\xe2\x96\x81";
  const auto pieces = read_llama2c_tokenizer(shared_models() / "tok512.bin", 512);
  nlohmann::json vocab = nlohmann::json::object();
  std::map<std::string, int> id_of;
  for (int i = 0; i < 512; ++i) {
    std::string p = i == 1 ? "<s>" : i == 2 ? "</s>" : replace_all(pieces[static_cast<size_t>(i)].first, " ", meta);
    vocab[p] = i;
    id_of[p] = i;
  }
  struct Merge {
    float score;
    int left, right;
    std::string l, r;
  };
  std::vector<Merge> merges;
  for (int i = 259; i < 512; ++i) {  // past <unk>, <s>, </s> and the 256 byte pieces
    const std::string p = replace_all(pieces[static_cast<size_t>(i)].first, " ", meta);
    std::vector<Merge> local;
    for (size_t k = 1; k < p.size(); ++k) {
      if ((static_cast<unsigned char>(p[k]) & 0xC0) == 0x80) continue;  // split between characters only
      const std::string l = p.substr(0, k), r = p.substr(k);
      if (id_of.count(l) && id_of.count(r)) local.push_back({pieces[static_cast<size_t>(i)].second, id_of[l], id_of[r], l, r});
    }
    std::sort(local.begin(), local.end(), [](const Merge& a, const Merge& b) {
      return std::tie(a.left, a.right) < std::tie(b.left, b.right);
    });
    merges.insert(merges.end(), local.begin(), local.end());
  }
  std::stable_sort(merges.begin(), merges.end(), [](const Merge& a, const Merge& b) { return a.score > b.score; });
  nlohmann::json m = nlohmann::json::array();
  for (const auto& x : merges) m.push_back(metaspace ? nlohmann::json::array({x.l, x.r}) : nlohmann::json(x.l + " " + x.r));
  nlohmann::json j = {
      {"version", "1.0"},
      {"added_tokens", nlohmann::json::array({{{"id", 0}, {"content", "<unk>"}, {"special", true}},
                                              {{"id", 1}, {"content", "<s>"}, {"special", true}},
                                              {{"id", 2}, {"content", "</s>"}, {"special", true}}})},
      {"model", {{"type", "BPE"}, {"dropout", nullptr}, {"unk_token", "<unk>"}, {"continuing_subword_prefix", nullptr},
                 {"end_of_word_suffix", nullptr}, {"fuse_unk", true}, {"byte_fallback", true}, {"vocab", vocab},
                 {"merges", m}}}};
  if (metaspace) {
    j["normalizer"] = nullptr;
    j["pre_tokenizer"] = {{"type", "Metaspace"}, {"replacement", meta}, {"prepend_scheme", "first"}, {"split", false}};
  } else {
    j["normalizer"] = {{"type", "Sequence"},
                       {"normalizers", nlohmann::json::array({{{"type", "Prepend"}, {"prepend", meta}},
                                                              {{"type", "Replace"}, {"pattern", {{"String", " "}}},
                                                               {"content", meta}}})}};
    j["pre_tokenizer"] = nullptr;
  }
  std::ofstream(file) << j.dump(1);
}

// Real text: the fortunes-min literature file when installed, plus stories and non-ASCII text.
std::vector<std::string> real_lines() {
  std::vector<std::string> lines = {
      "Once upon a time, there was a little girl named Lily. She loved to play outside in the park.",
      "Tom and his mom went to the store to buy a big red ball.",
      "Caf\xc3\xa9 na\xc3\xafve r\xc3\xa9sum\xc3\xa9 \xe2\x80\x94 \xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e, emoji \xf0\x9f\x98\x80!",
      "   indented  with   several spaces\tand a tab", "a", "x"};
  std::ifstream in("/usr/share/games/fortunes/literature");
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// The tokenizer.json reader gives llama2.c's ids on real text, in both tokenizer.json layouts,
// and through the CLI; bad files exit 2.
TEST(TokenizerJson, SameIdsAsTheLlama2cTokenizer) {
  GSQHW_REQUIRE_SHARED_MODEL();
  ScratchDir dir("tokenizer-json");
  write_tokenizer_json(dir / "tokenizer.json", false);
  write_tokenizer_json(dir / "metaspace.json", true);
  const train::Tokenizer ref(shared_models() / "tok512.bin", 512);
  const train::Tokenizer hf(dir / "tokenizer.json", 512), hf_meta(dir / "metaspace.json", 512);
  const auto lines = real_lines();
  size_t tokens = 0, compared_meta = 0;
  for (const auto& line : lines) {
    const auto want = ref.encode(line, true, true);
    ASSERT_EQ(hf.encode(line, true, true), want) << line;
    tokens += want.size();
    EXPECT_EQ(hf.decode_all(hf.encode(line, true, false)), ref.decode_all(want.size() > 1 ? std::vector<int>(want.begin(), want.end() - 1) : want));
    // Metaspace prepends no second "\u2581" to a line that starts with a space (sentencepiece
    // and the older layout do): compare the others.
    if (!line.empty() && line[0] != ' ') {
      EXPECT_EQ(hf_meta.encode(line, false, false), ref.encode(line, false, false)) << line;
      ++compared_meta;
    }
  }
  std::printf("compared %zu lines (%zu tokens); %zu with the Metaspace layout\n", lines.size(), tokens, compared_meta);
  EXPECT_GT(tokens, 50u);
  // Through the CLI: generation from a prompt gives the same ids with either tokenizer file.
  const std::string ck = "--checkpoint " + (shared_models() / "stories260K.bin").string();
  const auto a = run_cli("generate " + ck + " --tokenizer " + (shared_models() / "tok512.bin").string() +
                         " --prompt 'Lily wanted to' --steps 12 --ids");
  const auto b = run_cli("generate " + ck + " --tokenizer " + (dir / "tokenizer.json").string() +
                         " --prompt 'Lily wanted to' --steps 12 --ids");
  ASSERT_EQ(a.exit_code, 0) << a.out;
  EXPECT_EQ(b.exit_code, 0) << b.out;
  EXPECT_EQ(a.out, b.out);
  // Bad files: exit 2 with the reason.
  auto bad = [&](const std::string& name, const std::string& text, const std::string& needle) {
    std::ofstream(dir / name) << text;
    const auto r = run_cli("generate " + ck + " --tokenizer " + (dir / name).string() + " --prompt 'Lily' --steps 2");
    EXPECT_EQ(r.exit_code, 2) << name << "\n" << r.out;
    EXPECT_NE(r.out.find(needle), std::string::npos) << name << "\n" << r.out;
  };
  bad("broken.json", "{\"model\": ", "not valid JSON");
  bad("wordpiece.json", R"({"model": {"type": "WordPiece", "vocab": {}}})", "WordPiece");
  bad("small.json", R"({"model": {"type": "BPE", "vocab": {"<unk>": 0, "<s>": 1, "</s>": 2}, "merges": []}})",
      "do not belong together");
  nlohmann::json j = nlohmann::json::parse(std::ifstream(dir / "tokenizer.json"));
  j["model"]["merges"].push_back("zzq qzz");
  bad("badmerge.json", j.dump(), "outside the vocabulary");
  j = nlohmann::json::parse(std::ifstream(dir / "tokenizer.json"));
  j["normalizer"] = {{"type", "NFKC"}};
  bad("nfkc.json", j.dump(), "NFKC");
}

}  // namespace
}  // namespace gsqhw
