// `gsqhw formats` and `gsqhw quantize`, run as the real binary.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "numerics/format.h"
#include "base/npy.h"
#include "tests/numerics/numerics_test_util.h"
#include "tests/support/cli_run.h"

namespace gsqhw {
namespace {

using test::run_cli;

class SimCli : public testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("gsqhw_sim_cli_" + std::to_string(::getpid()) + "_" +
            testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  void write_bytes(const std::string& name, const std::vector<uint8_t>& bytes) const {
    std::ofstream(path(name), std::ios::binary)
        .write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  }
  std::filesystem::path dir_;
};

TEST_F(SimCli, FormatsListsEveryFamily) {
  test::CliRun text = run_cli("formats");
  ASSERT_EQ(text.exit_code, 0) << text.out;
  for (const auto& info : registered_formats()) EXPECT_NE(text.out.find(info.example), std::string::npos);
  test::CliRun json = run_cli("formats --json");
  ASSERT_EQ(json.exit_code, 0) << json.out;
  auto list = nlohmann::json::parse(json.out);
  ASSERT_EQ(list.size(), registered_formats().size());
  EXPECT_EQ(list[0]["family"], "gse");
  EXPECT_EQ(run_cli("formats --help").exit_code, 0);
}

TEST_F(SimCli, QuantizeWritesWhatTheLibraryComputes) {
  std::vector<float> x = test::random_matrix(6, 40, 3, 3);
  x[7] = NAN;  // row 0, group 0 becomes a NaN group
  write_npy(path("x.npy"), make_npy_f32({2, 3, 40}, x.data()));
  const std::string spec = "gse:b=6,g=16,e=5,scale=floor,round=rne,range=symmetric";
  test::CliRun r = run_cli("quantize --format gse:b=6,g=16 --input " + path("x.npy") + " --output " +
                        path("y.npy") + " --codes " + path("c.npy") + " --exponents " +
                        path("e.npy") + " --json");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  auto summary = nlohmann::json::parse(r.out);
  EXPECT_EQ(summary["format"], spec);
  EXPECT_EQ(summary["rows"], 6);
  EXPECT_EQ(summary["cols"], 40);
  EXPECT_EQ(summary["groups"], 18);
  EXPECT_EQ(summary["error"]["nan_outputs"], 16);

  auto format = parse_format(spec);
  QuantizedTensor q = format->quantize(x.data(), 6, 40);
  std::vector<float> expected(x.size());
  format->dequantize(q, expected.data());
  NpyArray y = read_npy(path("y.npy")), c = read_npy(path("c.npy")), e = read_npy(path("e.npy"));
  EXPECT_EQ(y.shape, (std::vector<int64_t>{2, 3, 40}));
  EXPECT_EQ(e.shape, (std::vector<int64_t>{2, 3, 3}));
  std::vector<float> got = y.to_float();
  for (size_t i = 0; i < x.size(); ++i) EXPECT_EQ(test::bits_of(got[i]), test::bits_of(expected[i]));
  std::vector<int64_t> codes = c.to_int64(), exps = e.to_int64();
  for (size_t i = 0; i < q.codes.size(); ++i) EXPECT_EQ(codes[i], q.codes[i]);
  for (size_t i = 0; i < q.group_exponents.size(); ++i) EXPECT_EQ(exps[i], q.group_exponents[i]);
  EXPECT_EQ(exps[0], 31);

  test::CliRun plain = run_cli("quantize -f fp8:e5m2 -i " + path("x.npy") + " -o " + path("z.npy"));
  EXPECT_EQ(plain.exit_code, 0) << plain.out;
  EXPECT_NE(plain.out.find("fp8:e5m2,sat=satfinite,block=0"), std::string::npos);
  EXPECT_EQ(run_cli("quantize --help").exit_code, 0);
}

TEST_F(SimCli, BadInputExitsTwoWithAClearMessage) {
  std::vector<float> x = {1, 2, 3, 4};
  write_npy(path("x.npy"), make_npy_f32({4}, x.data()));
  auto bytes = encode_npy(make_npy_f32({4}, x.data()));
  auto truncated = bytes;
  truncated.resize(bytes.size() - 3);
  write_bytes("truncated.npy", truncated);
  auto magic = bytes;
  magic[1] = 'X';
  write_bytes("magic.npy", magic);
  std::string f8 = "{'descr': '<c8', 'fortran_order': False, 'shape': (1,), }\n";  // complex64
  std::vector<uint8_t> wrong = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, static_cast<uint8_t>(f8.size()), 0};
  wrong.insert(wrong.end(), f8.begin(), f8.end());
  wrong.resize(wrong.size() + 8, 0);
  write_bytes("f8.npy", wrong);

  const std::string out = " --output " + path("y.npy");
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"quantize --format gse:b=1 --input " + path("x.npy") + out, "b=1 is outside 2..8"},
      {"quantize --format gse:g=24 --input " + path("x.npy") + out, "power of two"},
      {"quantize --format nosuch --input " + path("x.npy") + out, "unknown format family"},
      {"quantize --format gse --input " + path("truncated.npy") + out, "truncated"},
      {"quantize --format gse --input " + path("magic.npy") + out, "magic"},
      {"quantize --format gse --input " + path("f8.npy") + out, "unsupported .npy dtype"},
      {"quantize --format gse --input " + path("missing.npy") + out, "cannot open"},
      {"quantize --format int8 --input " + path("x.npy") + out + " --exponents " + path("e.npy"),
       "no per-group exponents"},
      {"quantize --format gse --input " + path("x.npy"), "--output"},
  };
  for (const auto& [args, message] : cases) {
    test::CliRun r = run_cli(args);
    EXPECT_EQ(r.exit_code, 2) << args << "\n" << r.out;
    EXPECT_NE(r.out.find(message), std::string::npos) << args << "\n" << r.out;
  }
}

}  // namespace
}  // namespace gsqhw
