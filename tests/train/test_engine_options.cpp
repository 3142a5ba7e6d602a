// Engine options of #13 through the real CLI binary: the one-layer training benchmark
// (`gsqhw bench --train-layer`) and tracing a fine-tuning run at a saved step
// (`gsqhw trace --step N`), on the real stories260K model (../shared/models) where a model is needed.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <string>

#include "shared_model.h"
#include "test_util.h"

namespace gsqhw {
namespace {

using test::ScratchDir;
using test::shared_models;

struct Run {
  int exit_code;
  std::string out;
};

Run run_cli(const std::string& args) {
  const std::string cmd = std::string(GSQHW_CLI) + " " + args + " 2>&1";
  FILE* pipe = ::popen(cmd.c_str(), "r");
  if (!pipe) return {-1, ""};
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, pipe)) > 0) out.append(buf, n);
  const int status = ::pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

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
