// `gsqhw generate` and `gsqhw finetune` through the real CLI binary on the real stories260K
// model (../shared/models), with a text the test writes: a few steps each, seconds in all.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <string>

#include "shared_model.h"
#include "tests/support/cli_run.h"
#include "test_util.h"
#include "workloads/safetensors.h"

namespace gsqhw {
namespace {

using test::run_cli;
using test::ScratchDir;
using test::shared_models;

std::string model_args() {
  return "--checkpoint " + (shared_models() / "stories260K.bin").string() + " --tokenizer " +
         (shared_models() / "tok512.bin").string();
}

// A small story text in the model's domain, from seeded templates.
void write_stories(const std::filesystem::path& file, int lines) {
  const char* names[] = {"Lily", "Tom", "Max", "Sue", "Ben", "Anna"};
  const char* things[] = {"ball", "cat", "tree", "box", "kite", "park"};
  const char* feelings[] = {"happy", "sad", "excited", "scared"};
  std::mt19937 rng(42);
  std::ofstream out(file);
  for (int i = 0; i < lines; ++i)
    out << "Once upon a time, " << names[rng() % 6] << " found a big " << things[rng() % 6] << ". "
        << names[rng() % 6] << " was very " << feelings[rng() % 4] << " and played with the "
        << things[rng() % 6] << " all day.\n";
}

nlohmann::json read_json(const std::filesystem::path& p) {
  std::ifstream in(p);
  return nlohmann::json::parse(in);
}

TEST(CliGenerate, GreedyContinuationOfTheReference) {
  GSQHW_REQUIRE_SHARED_MODEL();
  const auto r = run_cli("generate " + model_args() + " --prompt 'Once upon a time' --steps 40 --temperature 0");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("Once upon a time, there was a little girl named Lily. She loved to play outside in the park."),
            std::string::npos) << r.out;
  const auto ids = run_cli("generate " + model_args() + " --prompt 'Lily wanted to' --steps 12 --ids");
  ASSERT_EQ(ids.exit_code, 0) << ids.out;
  EXPECT_EQ(ids.out, "1 317 391 266 267 298 414 353 261 273 421 433 426\n");
  // The quantized engine runs too (GSE-INT8 through the golden GEMM) and stays on topic.
  const auto q = run_cli("generate " + model_args() + " --prompt 'Once upon a time' --steps 12 --formats gse:b=8");
  ASSERT_EQ(q.exit_code, 0) << q.out;
  EXPECT_EQ(q.out.rfind("Once upon a time", 0), 0u) << q.out;
}

TEST(CliFinetune, RunsFormatsResumesAndSavesAdapters) {
  GSQHW_REQUIRE_SHARED_MODEL();
  ScratchDir dir("finetune");
  write_stories(dir / "stories.txt", 120);
  const std::string common = "finetune " + model_args() + " --data " + (dir / "stories.txt").string() +
                             " --formats fp8 gse:b=6 --steps 4 --batch 2 --seq 32 --eval-every 2 --save-every 2 "
                             "--eval-windows 4 --lr 1e-2 --rank 4 --targets q,v,down";
  const auto full = run_cli(common + " --out " + (dir / "full").string());
  ASSERT_EQ(full.exit_code, 0) << full.out;
  const auto j = read_json(dir / "full" / "results.json");
  ASSERT_EQ(j["runs"].size(), 3u);
  EXPECT_EQ(j["runs"][0]["label"], "fp32");
  for (const auto& run : j["runs"]) {
    EXPECT_TRUE(run["complete"].get<bool>()) << run.dump();
    const double v = run["final_val_loss"];
    EXPECT_TRUE(std::isfinite(v) && v > 0.1 && v < 8) << run.dump();
    ASSERT_EQ(run["evals"].size(), 3u);  // steps 0, 2, 4
  }
  // Fine-tuning on in-domain text lowers the FP32 validation loss within 4 steps.
  EXPECT_LT(j["runs"][0]["evals"][2]["val_loss"].get<double>(), j["runs"][0]["evals"][0]["val_loss"].get<double>());
  // The QCD runs counted their GEMMs: 5 layers x (q, v, down adapted: 8 GEMMs; k, o, gate, up: 2).
  const auto& gse = j["runs"][2];
  EXPECT_EQ(gse["formats"].get<std::string>().find("act=gse:b=6"), 0u);
  // Forward passes: 4 training steps + 3 evaluations of 4 windows in batches of 2 = 10;
  // backward passes: 4. Per pass 5 layers x 3 adapted and 7 base projections.
  const auto& c = gse["gemm_counters"];
  EXPECT_EQ(c["fwd.base"]["calls"].get<double>(), 10 * 5 * 7);
  EXPECT_EQ(c["fwd.lora_a"]["calls"].get<double>(), 10 * 5 * 3);
  EXPECT_EQ(c["bwd.dx_base"]["calls"].get<double>(), 4 * 5 * 7);
  EXPECT_EQ(c["bwd.db"]["calls"].get<double>(), 4 * 5 * 3);
  EXPECT_TRUE(c["bwd.db"].contains("underflow"));
  EXPECT_TRUE(j["iso_accuracy"].contains("fp8_val_loss"));
  EXPECT_TRUE(std::filesystem::exists(dir / "full" / "losses.csv"));
  EXPECT_TRUE(std::filesystem::exists(dir / "full" / "summary.md"));
  EXPECT_NE(full.out.find("| fp32 |"), std::string::npos) << full.out;
  // Adapters with PEFT names and shapes (dim 64, rank 4).
  const auto h = safetensors::read_header(dir / "full" / "runs" / "fp32" / "adapter" / "adapter_model.safetensors");
  const auto* a = h.find("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->shape, (std::vector<int64_t>{4, 64}));
  const auto* b = h.find("base_model.model.model.layers.4.mlp.down_proj.lora_B.weight");
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->shape, (std::vector<int64_t>{64, 4}));
  // generate --lora loads them.
  const auto g = run_cli("generate " + model_args() + " --prompt 'Once' --steps 8 --lora " +
                         (dir / "full" / "runs" / "fp32" / "adapter").string());
  EXPECT_EQ(g.exit_code, 0) << g.out;

  // Real traces of the fine-tuned layer: X and dY from the model on the text, A and B from the adapter.
  const auto tr = run_cli("trace " + model_args() + " --data " + (dir / "stories.txt").string() + " --lora " +
                          (dir / "full" / "runs" / "gse_b_6" / "adapter").string() +
                          " --layer 1 --proj v --tokens 32 --formats gse:b=6 --json --out " + (dir / "traces").string());
  ASSERT_EQ(tr.exit_code, 0) << tr.out;
  const auto tj = nlohmann::json::parse(tr.out.substr(tr.out.find('{')));
  EXPECT_EQ(tj["data"], "real");
  EXPECT_EQ(tj["rank"], 4);  // taken from the adapter
  ASSERT_EQ(tj["gemms"].size(), 8u);
  const auto info = run_cli("trace-info --json " + tj["gemms"][7]["file"].get<std::string>());
  ASSERT_EQ(info.exit_code, 0) << info.out;
  const auto ij = nlohmann::json::parse(info.out.substr(info.out.find('{')));
  EXPECT_EQ(ij["metadata"]["activations"].get<std::string>().rfind("real:", 0), 0u) << ij["metadata"].dump();
  EXPECT_EQ(ij["metadata"]["output_grad"].get<std::string>().rfind("real:", 0), 0u);
  EXPECT_EQ(ij["metadata"]["weights"].get<std::string>().rfind("real:", 0), 0u);  // bwd.db's B operand is H (LoRA path)

  // The sweep takes b* from these runs only when they decide it: here no GSE-INT width of 4
  // steps need reach FP8, and a results file without runs is refused; both before any synthesis.
  {
    std::ofstream bad(dir / "bad.json");
    bad << "{\"runs\": []}";
  }
  const auto sw = run_cli("sweep --finetune-results " + (dir / "bad.json").string() + " --out " + (dir / "sweep").string());
  EXPECT_EQ(sw.exit_code, 2) << sw.out;
  EXPECT_NE(sw.out.find("b* not decided"), std::string::npos) << sw.out;

  // Killed after 1 step, then continued (on one thread instead of all): the same numbers.
  const auto part = run_cli(common + " --threads 1 --stop-after 1 --out " + (dir / "resumed").string());
  ASSERT_EQ(part.exit_code, 0) << part.out;
  EXPECT_FALSE(read_json(dir / "resumed" / "results.json")["complete"].get<bool>());
  const auto rest = run_cli(common + " --threads 1 --out " + (dir / "resumed").string());
  ASSERT_EQ(rest.exit_code, 0) << rest.out;
  const auto jr = read_json(dir / "resumed" / "results.json");
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(jr["runs"][i]["final_val_loss"], j["runs"][i]["final_val_loss"]) << i;
    EXPECT_EQ(jr["runs"][i]["final_train_loss"], j["runs"][i]["final_train_loss"]) << i;
  }
  // Other settings in the same folder are refused.
  const auto other = run_cli(common + " --weight-decay 0.1 --out " + (dir / "resumed").string());
  EXPECT_EQ(other.exit_code, 2) << other.out;
  EXPECT_NE(other.out.find("other settings"), std::string::npos) << other.out;
}

TEST(CliFinetune, BadInputExitsTwo) {
  GSQHW_REQUIRE_SHARED_MODEL();
  ScratchDir dir("finetune-bad");
  write_stories(dir / "stories.txt", 60);
  {
    std::ofstream shortf(dir / "short.txt");
    shortf << "Once upon a time.\n";
    std::ofstream bin(dir / "binary.txt", std::ios::binary);
    bin << "abc\xff\xfe def";
  }
  const std::string base = "finetune " + model_args() + " --steps 2 --batch 2 --seq 32 --out " + (dir / "o").string();
  auto expect_usage = [&](const std::string& args, const std::string& needle) {
    const auto r = run_cli(args);
    EXPECT_EQ(r.exit_code, 2) << args << "\n" << r.out;
    EXPECT_NE(r.out.find(needle), std::string::npos) << args << "\n" << r.out;
  };
  expect_usage(base + " --data " + (dir / "short.txt").string(), "too short");
  expect_usage(base + " --data " + (dir / "binary.txt").string(), "not UTF-8");
  expect_usage(base + " --data " + (dir / "missing.txt").string(), "cannot read");
  expect_usage(base + " --data " + (dir / "stories.txt").string() + " --formats gse:b=99", "gse");
  expect_usage(base + " --data " + (dir / "stories.txt").string() + " --rank 100", "rank");
  expect_usage(base + " --data " + (dir / "stories.txt").string() + " --targets q,x", "x");
  // A tokenizer of another vocabulary (the first 300 pieces of tok512.bin).
  {
    std::ifstream in(shared_models() / "tok512.bin", std::ios::binary);
    std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    size_t pos = 4;
    for (int i = 0; i < 300; ++i) {
      int32_t len;
      std::memcpy(&len, &bytes[pos + 4], 4);
      pos += 8 + static_cast<size_t>(len);
    }
    bytes.resize(pos);
    test::write_all(dir / "tok300.bin", bytes);
  }
  expect_usage("finetune --checkpoint " + (shared_models() / "stories260K.bin").string() + " --tokenizer " +
                   (dir / "tok300.bin").string() + " --data " + (dir / "stories.txt").string() +
                   " --steps 2 --out " + (dir / "o2").string(),
               "do not belong together");
  // A diverging run stops at the step and GEMM where the NaN/Inf appeared; its last good state stays.
  const auto r = run_cli("finetune " + model_args() + " --data " + (dir / "stories.txt").string() +
                         " --formats gse:b=6 --acc fp32 --steps 6 --batch 2 --seq 16 --lr 1e38 --save-every 1 --out " +
                         (dir / "nan").string());
  EXPECT_EQ(r.exit_code, 2) << r.out;
  EXPECT_NE(r.out.find("diverged at step"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("GEMM"), std::string::npos) << r.out;
  EXPECT_TRUE(std::filesystem::exists(dir / "nan" / "runs" / "fp32" / "state.safetensors"));
}

}  // namespace
}  // namespace gsqhw
