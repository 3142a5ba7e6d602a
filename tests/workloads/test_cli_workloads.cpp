// The trace, trace-info and memory commands through the real CLI binary (GSQHW_CLI).
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>

#include "test_util.h"
#include "tests/support/cli_run.h"

namespace gsqhw {
namespace {

using test::ScratchDir;

test::CliRun run_cli(const std::string& args) { return test::run_cli(args, test::Stderr::dropped); }


TEST(CliTrace, WritesTracesAndReportsJson) {
  ScratchDir dir("cli");
  const auto r = run_cli("trace --model tiny --layer 1 --proj gate --rank 4 --tokens 8 --json --out " +
                         dir.path().string());
  ASSERT_EQ(r.exit_code, 0) << r.out;
  const auto j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j["gemms"].size(), 8u);
  EXPECT_EQ(j["gemms"][0]["m"], 8);
  EXPECT_EQ(j["gemms"][0]["n"], 192);
  EXPECT_EQ(j["gemms"][0]["k"], 64);
  EXPECT_EQ(j["data"], "synthetic");
  EXPECT_TRUE(j["gemms"][0]["out"]["error"]["sqnr_db"].is_number());
  const std::string file = j["gemms"][7]["file"];
  const auto info = run_cli("trace-info --json " + file);
  ASSERT_EQ(info.exit_code, 0);
  const auto ij = nlohmann::json::parse(info.out);
  EXPECT_EQ(ij["name"], "L1.gate.bwd.db");
  EXPECT_EQ(ij["metadata"]["gemm"], "bwd.db");
  EXPECT_EQ(ij["m"], 192);
  // Error figures recomputed from the data equal those the generator reported.
  EXPECT_EQ(ij["golden"]["error"]["rel_rms"], j["gemms"][7]["out"]["error"]["rel_rms"]);
  EXPECT_EQ(ij["a"]["error"]["sqnr_db"], j["gemms"][7]["a"]["error"]["sqnr_db"]);
  EXPECT_EQ(ij["golden"]["acc_error"]["rel_rms"], j["gemms"][7]["out"]["acc_error"]["rel_rms"]);
  const auto text = run_cli("trace-info " + dir.path().string());
  EXPECT_EQ(text.exit_code, 0);
  EXPECT_NE(text.out.find("L1.gate.fwd.base"), std::string::npos);
}

TEST(CliTrace, AllProjectionsOfALayer) {
  ScratchDir dir("cliall");
  const auto r = run_cli("trace --model tiny --proj all --tokens 8 --json --out " + dir.path().string());
  ASSERT_EQ(r.exit_code, 0);
  EXPECT_EQ(nlohmann::json::parse(r.out)["gemms"].size(), 56u);
  const auto text = run_cli("trace --model tiny --proj all --tokens 8 --out " + dir.path().string());
  EXPECT_EQ(text.exit_code, 0);
  EXPECT_NE(text.out.find("down_proj (in 192, out 64)"), std::string::npos);
}

TEST(CliTrace, BadInputExitsTwo) {
  ScratchDir dir("clibad");
  const std::string out = " --out " + dir.path().string();
  const std::vector<std::string> bad = {
      "trace --model nosuch" + out,
      "trace --model tiny --proj qkv" + out,
      "trace --model tiny --layer 7" + out,
      "trace --model tiny --rank 0" + out,
      "trace --model tiny --tokens -3" + out,
      "trace --model tiny --alpha 0" + out,
      "trace --model tiny --formats act=gse:b=6,weight=fp8:e4m3" + out,
      "trace --model tiny --formats bogus=1" + out,
      "trace --model tiny --acc fixed99.1" + out,
      "trace --model tiny --checkpoint /nonexistent.bin" + out,
      "trace" + out,
      "trace --model tiny",
      "trace-info /nonexistent.safetensors",
      "trace-info " + dir.path().string(),  // empty folder
      "memory --model nosuch",
      "memory --model tiny --tokens 0",
      "memory --model tiny --formats act=nope",
  };
  for (const auto& args : bad) EXPECT_EQ(run_cli(args).exit_code, 2) << args;
  // A file that is not a trace.
  test::write_all(dir / "junk.safetensors", {'n', 'o', 'p', 'e', 0, 0, 0, 0, '{', '}'});
  EXPECT_EQ(run_cli("trace-info " + (dir / "junk.safetensors").string()).exit_code, 2);
}

TEST(CliMemory, PrintsRatioAndAssumptions) {
  const auto r = run_cli("memory --model llama2-7b --tokens 512 --rank 64");
  ASSERT_EQ(r.exit_code, 0);
  EXPECT_NE(r.out.find("1.85x"), std::string::npos);
  EXPECT_NE(r.out.find("assumptions"), std::string::npos);
  const auto j = nlohmann::json::parse(run_cli("memory --model llama3-8b --tokens 1024 --rank 16 --json").out);
  EXPECT_GT(j["ratio"].get<double>(), 1.0);
  EXPECT_EQ(j["paper_ratio"], 1.85);
}

}  // namespace
}  // namespace gsqhw
