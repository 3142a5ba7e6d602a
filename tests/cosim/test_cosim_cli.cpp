// `gsqhw cosim` and `gsqhw bench` end to end: verdicts and exit codes, bad input -> exit 2,
// a broken generated design -> exit 1 with the first-mismatch report.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <unistd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <regex>

#include "gen/generator.h"
#include "numerics/format.h"
#include "workloads/trace.h"

namespace fs = std::filesystem;

namespace gsqhw {
namespace {

const char* kDesign = "gse:b=6,g=8,e=5@pe,acc=fixed32.16";

fs::path scratch() {
  static fs::path dir = [] {
    fs::path d = fs::temp_directory_path() / fmt::format("gsqhw-test-cosim-cli-{}", ::getpid());
    fs::create_directories(d);
    return d;
  }();
  return dir;
}

struct CliRun {
  int code = -1;
  std::string out;
};

// Runs the CLI with the test cache; `env` is prepended (e.g. "PATH=/nowhere").
CliRun cli(const std::string& args, const std::string& env = "") {
  fs::path out = scratch() / "out.txt";
  std::string cmd = fmt::format("{} {} {} --cache {} > {} 2>&1", env.empty() ? "" : "env " + env,
                                GSQHW_CLI, args,
                                (fs::path(GSQHW_TEST_BINARY_DIR) / "cosim-test-cache").string(),
                                out.string());
  int status = std::system(cmd.c_str());
  CliRun r;
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  std::ifstream in(out);
  r.out.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  return r;
}

// A trace of an M x N x K GEMM in `spec`, golden computed with `acc`.
fs::path write_test_trace(const std::string& name, const std::string& spec, int64_t m,
                          int64_t n, int64_t k, const std::string& acc = "fixed32.16") {
  Trace t;
  t.name = name;
  t.metadata = {{"source", "synthetic"}, {"test", "test_cosim_cli"}};
  std::mt19937 rng(3);
  std::normal_distribution<float> dist(0, 1);
  t.a_fp32.resize(m * k);
  t.b_fp32.resize(n * k);
  for (auto& v : t.a_fp32) v = dist(rng);
  for (auto& v : t.b_fp32) v = dist(rng);
  auto format = parse_format(spec);
  t.a = format->quantize(t.a_fp32.data(), m, k);
  t.b = format->quantize(t.b_fp32.data(), n, k);
  t.acc = AccumulatorSpec::parse(acc);
  t.golden = golden_gemm(t.a, t.b, t.acc);
  fs::path path = scratch() / (name + ".safetensors");
  write_trace(t, path);
  return path;
}

TEST(CosimCli, FastEnginePassesWithSummary) {
  fs::path trace = write_test_trace("ok", "gse:b=6,g=8,e=5", 3, 4, 20);
  CliRun r = cli(fmt::format("cosim --design '{}' --trace {} --engine fast", kDesign, trace.string()));
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("PASS"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("1 GEMMs, 240 MACs"), std::string::npos) << r.out;
}

TEST(CosimCli, RtlEngineJsonReport) {
  fs::path trace = write_test_trace("ok-json", "gse:b=6,g=8,e=5", 2, 3, 17);
  CliRun r = cli(fmt::format("cosim --design '{}' --trace {} --engine rtl --json", kDesign,
                          trace.string()));
  ASSERT_EQ(r.code, 0) << r.out;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_TRUE(j["pass"].get<bool>());
  EXPECT_EQ(j["gemms"], 1);
  EXPECT_EQ(j["macs"], 2 * 3 * 17);
  EXPECT_EQ(j["per_gemm"][0]["measured_cycles"], j["per_gemm"][0]["cycles"]);
}

TEST(CosimCli, MismatchedTraceFormatIsExit2) {
  fs::path trace = write_test_trace("fp8", "fp8:e4m3", 2, 2, 8, "fp32");
  CliRun r = cli(fmt::format("cosim --design '{}' --trace {} --engine fast", kDesign, trace.string()));
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find("format"), std::string::npos) << r.out;
}

TEST(CosimCli, TruncatedTraceIsExit2) {
  fs::path trace = write_test_trace("cut", "gse:b=6,g=8,e=5", 3, 3, 16);
  fs::resize_file(trace, fs::file_size(trace) / 2);
  CliRun r = cli(fmt::format("cosim --design '{}' --trace {} --engine fast", kDesign, trace.string()));
  EXPECT_EQ(r.code, 2) << r.out;
}

TEST(CosimCli, MissingVerilatorIsExit2NamingThePackage) {
  fs::path trace = write_test_trace("noverilator", "gse:b=6,g=8,e=5", 2, 2, 8);
  CliRun r = cli(fmt::format("cosim --design '{}' --trace {} --engine rtl", kDesign, trace.string()),
              "PATH=/nonexistent-gsqhw");
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find("apt-get install verilator"), std::string::npos) << r.out;
}

TEST(CosimCli, BadArgumentsAreExit2) {
  EXPECT_EQ(cli("cosim --engine rtl").code, 2);  // no design
  EXPECT_EQ(cli(fmt::format("cosim --design '{}' --engine warp", kDesign)).code, 2);
  EXPECT_EQ(cli(fmt::format("cosim --design '{}' --trace /nonexistent.safetensors", kDesign)).code, 2);
  EXPECT_EQ(cli("cosim --generated /nonexistent-dir").code, 2);
}

TEST(CosimCli, BrokenGeneratedDesignIsExit1WithReport) {
  // A generated folder with a fault that works on any generated Verilog: the top is wrapped so
  // that out_acc's lowest bit is forced to 1 (every even accumulator comes out wrong).
  fs::path dir = scratch() / "broken";
  GeneratedDesign g = generate_design(DesignPoint::parse(kDesign));
  write_design(g, dir);
  fs::path top = dir / (g.top + ".v");
  std::ifstream in(top);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  in.close();
  const std::regex decl("\\bmodule\\s+" + g.top + "\\b");
  text = std::regex_replace(text, decl, "module " + g.top + "_inner");
  int acc_width = 0;
  std::string ports = "clk, rst", decls = "  input clk;\n  input rst;\n", conns = ".clk(clk), .rst(rst)";
  for (const auto& p : g.manifest["ports"]) {
    std::string name = p["name"], dir_s = p["dir"];
    int width = p["width"];
    if (name == "clk" || name == "rst") continue;
    if (name == "out_acc") acc_width = width;
    ports += ", " + name;
    decls += fmt::format("  {} [{}:0] {};\n", dir_s == "in" ? "input" : "output", width - 1, name);
    conns += fmt::format(", .{}({})", name, name == "out_acc" ? "acc_inner" : name);
  }
  text += fmt::format(
      "module {0}({1});\n{2}  wire [{3}:0] acc_inner;\n  assign out_acc = acc_inner | {4}'d1;\n"
      "  {0}_inner inner({5});\nendmodule\n",
      g.top, ports, decls, acc_width - 1, acc_width, conns);
  std::ofstream(top) << text;

  fs::path trace = write_test_trace("even", "gse:b=6,g=8,e=5", 2, 2, 16);
  fs::path waves = scratch() / "mismatch.vcd";
  CliRun r = cli(fmt::format("cosim --generated {} --trace {} --engine rtl --waves {}",
                          dir.string(), trace.string(), waves.string()));
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.out.find("FAIL"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("PE (0, 0) cycle"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("outputs differ from golden_gemm"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("waveform"), std::string::npos) << r.out;
  EXPECT_TRUE(fs::exists(waves));
}

TEST(CosimCli, BenchLayerFiguresForLlama7b) {
  CliRun r = cli("bench --design 'gse:b=8,g=32,e=5@array16x16,acc=fixed32.16' --layer llama-7b "
              "--tokens 512 --json");
  ASSERT_EQ(r.code, 0) << r.out;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["gemms"].size(), 56u);
  EXPECT_GT(j["cycles"].get<int64_t>(), 0);
  const double util = j["pe_utilisation"];
  EXPECT_GT(util, 0.5);
  EXPECT_LE(util, 1.0);
}

}  // namespace
}  // namespace gsqhw
