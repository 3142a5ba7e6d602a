// `gsqhw lota` and `gsqhw ptq161` end to end: reports, RTL emission with --verify, and bad
// parameters refused with exit code 2 and a message naming the parameter.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "tests/support/cli_run.h"

namespace {

namespace fs = std::filesystem;
using gsqhw::test::CliRun;
using gsqhw::test::run_cli;

nlohmann::json run_json(const std::string& args) {
  CliRun r = run_cli(args + " --json");
  EXPECT_EQ(r.exit_code, 0) << r.out;
  return nlohmann::json::parse(r.out);
}

fs::path work_dir(const std::string& name) {
  fs::path dir = fs::path(GSQHW_TEST_BINARY_DIR) / "siblings_work" / name;
  fs::remove_all(dir);
  return dir;
}

TEST(LotaCli, ReportsBitsAndErrorsOnTheTinyModel) {
  auto j = run_json("lota --model tiny --proj up --steps 10 --rank 8");
  EXPECT_EQ(j["layer"]["d_in"], 64);
  EXPECT_EQ(j["layer"]["d_out"], 192);
  EXPECT_DOUBLE_EQ(j["bits_per_weight"].get<double>(), 4.5);  // 4 + 32/64
  EXPECT_EQ(j["params"]["omega"], 6.0);                        // default 0.75 r
  EXPECT_EQ(j["params"]["threshold"], 7);
  const double base_vs_w = j["weight_error_vs_fp32"]["base_vs_w"];
  EXPECT_GT(base_vs_w, 0.0);  // 4-bit min-max groups of a Gaussian layer: about 0.1
  EXPECT_LT(base_vs_w, 0.2);
  const double merged = j["weight_error_vs_fp32"]["merged"];
  EXPECT_GT(merged, 0.0);
  EXPECT_LT(merged, 0.6);
  const double out = j["output_error_vs_fp32"]["merged_int_gemm"];
  EXPECT_GT(out, 0.0);
  EXPECT_LT(out, 0.6);
}

// With a small omega the trained adapters move codes and bring the merged layer closer to
// the fine-tuned target than the quantized base.
TEST(LotaCli, TernaryTrainingMovesCodesTowardTheTarget) {
  auto j = run_json("lota --model tiny --proj q --rank 8 --omega 2 --steps 50 --update-fraction 0.1");
  EXPECT_GT(j["merge"]["changed"].get<int64_t>(), 0);
  EXPECT_LT(j["weight_error_vs_fp32"]["merged"].get<double>(),
            j["weight_error_vs_fp32"]["base"].get<double>());
}

TEST(LotaCli, RefusesBadParameters) {
  for (auto [args, needle] : std::vector<std::pair<std::string, std::string>>{
           {"lota --rank 8 --omega 8", "omega"},
           {"lota --rank 8 --omega 0", "omega"},
           {"lota --bits 5", "bits N"},
           {"lota --group 32", "group"},
           {"lota --verify", "--out"},
           {"lota --synth", "--out"},
           {"lota --proj nope", "nope"}}) {
    CliRun r = run_cli(args);
    EXPECT_EQ(r.exit_code, 2) << args << "\n" << r.out;
    EXPECT_NE(r.out.find(needle), std::string::npos) << args << "\n" << r.out;
  }
}

TEST(LotaCli, EmitsAndVerifiesTheRtl) {
  fs::path dir = work_dir("cli_lota");
  CliRun r = run_cli("lota --model tiny --proj q --steps 5 --rank 8 --out " + dir.string() + " --verify");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("bit-exact"), std::string::npos) << r.out;
  EXPECT_TRUE(fs::exists(dir / "lota_merge" / "gsqhw_lota_merge.v"));
  EXPECT_TRUE(fs::exists(dir / "lota_merge" / "manifest.json"));
  EXPECT_TRUE(fs::exists(dir / "lota_pe" / "gsqhw_lota_pe.v"));
}

TEST(Ptq161Cli, ReportsBitsAndErrorsOnTheTinyModel) {
  auto j = run_json("ptq161 --model tiny --proj down --salient 0.2");
  EXPECT_EQ(j["layer"]["d_in"], 192);
  EXPECT_EQ(j["salient_channels"], 38);  // round(0.2 * 192)
  const auto& b = j["bits_breakdown_per_weight"];
  const double sum = b["mask"].get<double>() + b["salient_codes"].get<double>() +
                     b["binary_codes"].get<double>() + b["row_params"].get<double>() +
                     b["col_params"].get<double>();
  EXPECT_NEAR(j["bits_per_weight"].get<double>(), sum, 1e-12);
  EXPECT_NEAR(b["salient_codes"].get<double>() + b["binary_codes"].get<double>(),
              (4.0 * 38 + 154) / 192, 1e-12);
  const double err = j["output_error_vs_fp32"], binary = j["output_error_vs_fp32_binary_only"];
  EXPECT_GT(err, 0.0);
  EXPECT_LT(err, binary);  // the salient channels are the point of the method
}

TEST(Ptq161Cli, RefusesBadParameters) {
  for (const char* args : {"ptq161 --salient 1.5", "ptq161 --salient -0.1"}) {
    CliRun r = run_cli(args);
    EXPECT_EQ(r.exit_code, 2) << args << "\n" << r.out;
    EXPECT_NE(r.out.find("salient fraction"), std::string::npos) << r.out;
  }
  CliRun r = run_cli("ptq161 --rows 0 --out " + work_dir("cli_ptq_bad").string());
  EXPECT_EQ(r.exit_code, 2) << r.out;
  EXPECT_NE(r.out.find("rows R"), std::string::npos) << r.out;
}

TEST(Ptq161Cli, EmitsAndVerifiesTheRtl) {
  fs::path dir = work_dir("cli_ptq161");
  CliRun r = run_cli("ptq161 --model tiny --proj q --rows 8 --out " + dir.string() +
                     " --verify --synth");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("bit-exact"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("synth gsqhw_ptq161_array (osu018"), std::string::npos) << r.out;
  for (const char* f : {"gsqhw_ptq161_array.v", "gsqhw_ptq161_pe.v", "gsqhw_ptq161_colsum.v",
                        "manifest.json"})
    EXPECT_TRUE(fs::exists(dir / "ptq161_array" / f)) << f;
}

}  // namespace
