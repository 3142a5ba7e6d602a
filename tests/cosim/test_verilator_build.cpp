// The Verilator build cache and the generic testbench (sim/verilator_build.h,
// sim/harness/tb_main.cpp) on a small hand-written module.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>

#include "base/errors.h"
#include "sim/verilator_build.h"

namespace fs = std::filesystem;

namespace gsqhw {
namespace {

fs::path test_cache() { return fs::path(GSQHW_TEST_BINARY_DIR) / "cosim-test-cache"; }

// Sums a 70-bit input while in_valid; presents the previous sum (100 bits) with out_valid one
// cycle later. Wide ports exercise the testbench's multi-word packing.
const char* kSummer = R"(
module summer(input clk, input rst, input in_valid, input [69:0] in_a,
              output reg out_valid, output reg [99:0] out_acc, output [1:0] out_flags);
  reg [99:0] acc;
  assign out_flags = acc[1:0];
  always @(posedge clk) begin
    if (rst) begin acc <= 0; out_valid <= 0; out_acc <= 0; end
    else begin
      out_valid <= in_valid;
      if (in_valid) acc <= acc + {30'd0, in_a};
      out_acc <= acc;
    end
  end
endmodule
)";

VerilatorBuildSpec summer_spec(const std::string& variant = "") {
  VerilatorBuildSpec spec;
  spec.top = "summer";
  spec.sources = {{"summer.v", std::string(kSummer) + variant}};
  spec.ports = {{"in_valid", true, 1},
                {"in_a", true, 70},
                {"out_valid", false, 1},
                {"out_acc", false, 100},
                {"out_flags", false, 2}};
  spec.label = "test summer";
  return spec;
}

TEST(VerilatorBuild, BuildsOnceThenHitsTheCache) {
  VerilatedModel first = build_verilated_model(summer_spec(), test_cache());
  ASSERT_TRUE(fs::exists(first.executable));
  VerilatedModel second = build_verilated_model(summer_spec(), test_cache());
  EXPECT_TRUE(second.cache_hit);
  EXPECT_EQ(second.key, first.key);
  EXPECT_EQ(second.executable, first.executable);
  // Any change of the sources is a different key.
  VerilatorBuildSpec other = summer_spec("// changed\n");
  EXPECT_NE(sha1_hex(other.sources[0].second), sha1_hex(summer_spec().sources[0].second));
}

TEST(VerilatorBuild, ConcurrentBuildsOfOneKeyShareOneResult) {
  // A private cache so that the key is certainly not built yet.
  fs::path cache = fs::temp_directory_path() / ("gsqhw-test-cache-" + std::to_string(::getpid()));
  fs::remove_all(cache);
  VerilatedModel a, b;
  std::thread t1([&] { a = build_verilated_model(summer_spec(), cache); });
  std::thread t2([&] { b = build_verilated_model(summer_spec(), cache); });
  t1.join();
  t2.join();
  EXPECT_EQ(a.executable, b.executable);
  EXPECT_NE(a.cache_hit, b.cache_hit);  // exactly one of them built it
  EXPECT_TRUE(fs::exists(a.executable));
  int leftovers = 0;
  for (const auto& e : fs::directory_iterator(cache / "verilator"))
    if (e.path().string().find(".tmp-") != std::string::npos) ++leftovers;
  EXPECT_EQ(leftovers, 0);
  fs::remove_all(cache);
}

TEST(VerilatorBuild, TestbenchReplaysStimulusAndRecordsBeats) {
  VerilatedModel model = build_verilated_model(summer_spec(), test_cache());
  fs::path dir = fs::temp_directory_path() / ("gsqhw-test-tb-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  // 4 cycles: in_valid 1,1,0,1 with in_a = all ones (70 bits), then 2, -, 5.
  const uint64_t ones_lo = ~0ull, ones_hi = 0x3f;
  uint64_t records[4][3] = {{1, ones_lo, ones_hi}, {1, 2, 0}, {0, 7, 0}, {1, 5, 0}};
  {
    std::ofstream st(dir / "s.bin", std::ios::binary);
    uint32_t version = 1, words = 3;
    uint64_t cycles = 4;
    st.write("GSQHWSTI", 8);
    st.write(reinterpret_cast<char*>(&version), 4);
    st.write(reinterpret_cast<char*>(&words), 4);
    st.write(reinterpret_cast<char*>(&cycles), 8);
    st.write(reinterpret_cast<char*>(records), sizeof records);
  }
  int rc = run_logged({model.executable.string(), "--stimulus", (dir / "s.bin").string(),
                       "--results", (dir / "r.bin").string()},
                      dir / "log");
  ASSERT_EQ(rc, 0);
  std::ifstream in(dir / "r.bin", std::ios::binary);
  std::vector<char> data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // Beats: cycle + 4 words (out_valid, out_acc 2 words, out_flags). out_valid is registered:
  // high on cycles 1, 2 (from valid on 0, 1) and 4 is past the end; cycle 3 has valid from 2 = 0.
  const size_t beat_bytes = 8 + 4 * 8;
  ASSERT_EQ(data.size(), 16 + 2 * beat_bytes + 16);
  auto word = [&](size_t beat, int w) {
    uint64_t v;
    std::memcpy(&v, data.data() + 16 + beat * beat_bytes + 8 * w, 8);
    return v;
  };
  EXPECT_EQ(word(0, 0), 1u);  // cycle
  EXPECT_EQ(word(0, 2), 0u);  // acc before the first add is registered
  EXPECT_EQ(word(1, 0), 2u);
  EXPECT_EQ(word(1, 2), ones_lo);  // the 70-bit all-ones sum, low word
  EXPECT_EQ(word(1, 3), ones_hi);
  EXPECT_EQ(word(1, 4), 1u);  // out_flags = acc[1:0] of acc = 2^70 + 1
  EXPECT_EQ(std::string(data.data() + data.size() - 16, 8), "GSQHWEND");
  fs::remove_all(dir);
}

TEST(VerilatorBuild, VerilogErrorsAreUsageErrorsWithTheLog) {
  VerilatorBuildSpec spec = summer_spec("module broken(input a; endmodule\n");
  try {
    build_verilated_model(spec, test_cache());
    FAIL() << "expected UsageError";
  } catch (const UsageError& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find("%Error"), std::string::npos) << msg;
    EXPECT_NE(msg.find("build.log"), std::string::npos) << msg;
  }
}

TEST(VerilatorBuild, MissingVerilatorIsToolMissingNamingThePackage) {
  std::string saved = std::getenv("PATH") ? std::getenv("PATH") : "";
  ::setenv("PATH", "/nonexistent-gsqhw-path", 1);
  try {
    build_verilated_model(summer_spec(), test_cache());
    ::setenv("PATH", saved.c_str(), 1);
    FAIL() << "expected ToolMissing";
  } catch (const ToolMissing& e) {
    ::setenv("PATH", saved.c_str(), 1);
    EXPECT_NE(std::string(e.what()).find("apt-get install verilator"), std::string::npos);
  }
}

TEST(VerilatorBuild, CellModelsFromLibertyAreVerilog) {
  fs::path lib = "/usr/share/qflow/tech/osu018/osu018_stdcells.lib";
  if (!fs::exists(lib)) GTEST_SKIP() << "qflow-tech-osu018 is not installed";
  fs::path models = cell_models_from_liberty(lib, test_cache());
  std::ifstream in(models);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_NE(text.find("module DFFPOSX1"), std::string::npos);
  EXPECT_NE(text.find("module NAND2X1"), std::string::npos);
  EXPECT_EQ(text.find("primitive"), std::string::npos);  // no UDPs: Verilator can read it
}

}  // namespace
}  // namespace gsqhw
