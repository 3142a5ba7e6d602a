// Trace files: bit-exact round trip and rejection of malformed files (workloads/trace.h).
#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "base/errors.h"
#include "numerics/format.h"
#include "numerics/gemm.h"
#include "test_util.h"
#include "workloads/safetensors.h"
#include "workloads/trace.h"

namespace gsqhw {
namespace {

using test::ScratchDir;

// A small but complete trace: K = 40 gives a partial last group, a NaN in A gives a NaN group.
Trace make_trace(const std::string& a_spec, const std::string& b_spec, bool with_nan) {
  const int64_t m = 3, n = 5, k = 40;
  Trace t;
  t.name = "unit." + a_spec.substr(0, 3);
  t.metadata = {{"model", "unit"}, {"note", "round trip"}, {"nested", {{"x", 1}}}};
  t.acc = AccumulatorSpec::parse("fixed32.16");
  for (int64_t i = 0; i < m * k; ++i) t.a_fp32.push_back(std::sin(0.37f * i) * (i % 7 == 0 ? 9.0f : 1.0f));
  for (int64_t i = 0; i < n * k; ++i) t.b_fp32.push_back(std::cos(0.11f * i) * 0.05f);
  if (with_nan) t.a_fp32[5] = std::nanf("");
  t.a = parse_format(a_spec)->quantize(t.a_fp32.data(), m, k, 7);
  t.b = parse_format(b_spec)->quantize(t.b_fp32.data(), n, k, 8);
  t.golden = golden_gemm(t.a, t.b, t.acc, 1);
  t.reference_fp32.assign(static_cast<size_t>(m * n), 0.25f);
  return t;
}

void expect_identical(const Trace& x, const Trace& y) {
  EXPECT_EQ(x.name, y.name);
  EXPECT_EQ(x.metadata, y.metadata);
  EXPECT_EQ(x.acc, y.acc);
  for (auto [p, q] : {std::pair{&x.a, &y.a}, std::pair{&x.b, &y.b}}) {
    EXPECT_EQ(p->format_spec, q->format_spec);
    EXPECT_EQ(p->rows, q->rows);
    EXPECT_EQ(p->cols, q->cols);
    EXPECT_EQ(p->group_size, q->group_size);
    EXPECT_EQ(p->codes, q->codes);
    EXPECT_EQ(p->group_exponents, q->group_exponents);
    EXPECT_TRUE(test::same_bits(p->scales, q->scales));
  }
  EXPECT_TRUE(test::same_bits(x.a_fp32, y.a_fp32));
  EXPECT_TRUE(test::same_bits(x.b_fp32, y.b_fp32));
  EXPECT_EQ(x.golden.m, y.golden.m);
  EXPECT_EQ(x.golden.n, y.golden.n);
  EXPECT_TRUE(test::same_bits(x.golden.out, y.golden.out));
  EXPECT_EQ(x.golden.acc_raw, y.golden.acc_raw);
  EXPECT_EQ(x.golden.flags, y.golden.flags);
  EXPECT_TRUE(test::same_bits(x.reference_fp32, y.reference_fp32));
}

TEST(TraceFile, RoundTripsBitForBitAcrossFormats) {
  ScratchDir dir("rt");
  const std::vector<std::pair<std::string, std::string>> pairs = {
      {"gse:b=6,g=32,e=5", "gse:b=6,g=32,e=5"},
      {"gse:b=8,g=8,e=8,round=stochastic", "gse:b=4,g=8,e=4"},
      {"fp8:e4m3", "fp8:e5m2"},
      {"fp8:e4m3,block=32", "fp8:e4m3,block=32"},
      {"int8:per=channel", "int8:per=tensor"},
      {"bf16", "fp16"},
  };
  for (const auto& [as, bs] : pairs) {
    for (bool nan : {false, true}) {
      if (nan && as.starts_with("int8")) continue;  // int8 refuses NaN inputs by design
      SCOPED_TRACE(as + " x " + bs + (nan ? " with NaN" : ""));
      const Trace t = make_trace(as, bs, nan);
      const auto file = dir / "t.safetensors";
      write_trace(t, file);
      const Trace back = read_trace(file);
      expect_identical(t, back);
      // Writing what was read gives the same bytes.
      write_trace(back, dir / "u.safetensors");
      EXPECT_EQ(test::read_all(file), test::read_all(dir / "u.safetensors"));
    }
  }
}

TEST(TraceFile, EmptyReferenceIsOptionalAndListSortsByName) {
  ScratchDir dir("list");
  Trace t = make_trace("gse:b=6", "gse:b=6", false);
  t.reference_fp32.clear();
  t.a_fp32.clear();
  write_trace(t, dir / "b.safetensors");
  write_trace(t, dir / "a.safetensors");
  test::write_all(dir / "notes.txt", {'x'});
  const auto files = list_traces(dir.path());
  ASSERT_EQ(files.size(), 2u);
  EXPECT_EQ(files[0].filename(), "a.safetensors");
  const Trace back = read_trace(files[1]);
  EXPECT_TRUE(back.reference_fp32.empty());
  EXPECT_TRUE(back.a_fp32.empty());
  EXPECT_EQ(back.golden.acc_raw, t.golden.acc_raw);
  EXPECT_THROW(list_traces(dir / "missing"), UsageError);
}

TEST(TraceFile, WriteIsAtomicAndLeavesNothingOnError) {
  ScratchDir dir("atomic");
  const Trace good = make_trace("gse:b=6", "gse:b=6", false);
  write_trace(good, dir / "t.safetensors");
  const auto before = test::read_all(dir / "t.safetensors");
  Trace bad = good;
  bad.golden.flags.pop_back();  // inconsistent: refused before touching the disk
  EXPECT_THROW(write_trace(bad, dir / "t.safetensors"), UsageError);
  EXPECT_EQ(test::read_all(dir / "t.safetensors"), before);
  EXPECT_THROW(write_trace(good, dir / "no-such-folder" / "t.safetensors"), UsageError);
  int files = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(dir.path())) ++files;
  EXPECT_EQ(files, 1) << "a temporary file was left behind";
}

// Rewrites the header of a valid trace with `edit` applied to its JSON, keeping the data.
void rewrite_header(const std::filesystem::path& file, const std::function<void(nlohmann::json&)>& edit) {
  const auto bytes = test::read_all(file);
  uint64_t n;
  std::memcpy(&n, bytes.data(), 8);
  auto header = nlohmann::json::parse(std::string(bytes.begin() + 8, bytes.begin() + 8 + static_cast<long>(n)));
  edit(header);
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');
  std::vector<char> out;
  const uint64_t len = text.size();
  test::append(out, &len, 1);
  out.insert(out.end(), text.begin(), text.end());
  out.insert(out.end(), bytes.begin() + 8 + static_cast<long>(n), bytes.end());
  test::write_all(file, out);
}

class MalformedTrace : public ::testing::Test {
 protected:
  void SetUp() override { write_trace(make_trace("gse:b=6", "gse:b=6", false), file_); }
  void expect_rejected(const std::string& needle) {
    try {
      read_trace(file_);
      ADD_FAILURE() << "accepted a malformed trace (expected an error mentioning '" << needle << "')";
    } catch (const UsageError& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  }
  ScratchDir dir_{"bad"};
  std::filesystem::path file_ = dir_ / "t.safetensors";
};

TEST_F(MalformedTrace, Truncated) {
  auto bytes = test::read_all(file_);
  bytes.resize(bytes.size() - 3);
  test::write_all(file_, bytes);
  expect_rejected("truncated");
}

TEST_F(MalformedTrace, TooShortForALength) {
  test::write_all(file_, {1, 2, 3});
  expect_rejected("shorter than the 8-byte length");
}

TEST_F(MalformedTrace, HeaderLengthBeyondFile) {
  auto bytes = test::read_all(file_);
  const uint64_t huge = bytes.size();
  std::memcpy(bytes.data(), &huge, 8);
  test::write_all(file_, bytes);
  expect_rejected("header length");
}

TEST_F(MalformedTrace, HeaderNotJson) {
  auto bytes = test::read_all(file_);
  bytes[8] = '[';
  bytes[9] = '!';
  test::write_all(file_, bytes);
  expect_rejected("not valid JSON");
}

TEST_F(MalformedTrace, MetadataNotJson) {
  rewrite_header(file_, [](nlohmann::json& h) { h["__metadata__"]["gsqhw"] = "{not json"; });
  expect_rejected("'gsqhw' metadata is not valid JSON");
}

TEST_F(MalformedTrace, MetadataMissing) {
  rewrite_header(file_, [](nlohmann::json& h) { h.erase("__metadata__"); });
  expect_rejected("no 'gsqhw' key");
}

TEST_F(MalformedTrace, MetadataValueNotString) {
  rewrite_header(file_, [](nlohmann::json& h) { h["__metadata__"]["other"] = 3; });
  expect_rejected("not a string");
}

TEST_F(MalformedTrace, BadFormatSpecInMetadata) {
  rewrite_header(file_, [](nlohmann::json& h) {
    auto meta = nlohmann::json::parse(h["__metadata__"]["gsqhw"].get<std::string>());
    meta["operands"]["a"]["format"] = "gse:b=99";
    h["__metadata__"]["gsqhw"] = meta.dump();
  });
  expect_rejected("operand 'a'");
}

TEST_F(MalformedTrace, ShapeDisagreesWithMetadata) {
  rewrite_header(file_, [](nlohmann::json& h) {
    auto meta = nlohmann::json::parse(h["__metadata__"]["gsqhw"].get<std::string>());
    meta["operands"]["b"]["rows"] = 4;
    h["__metadata__"]["gsqhw"] = meta.dump();
  });
  expect_rejected("shape");
}

TEST_F(MalformedTrace, OffsetsOverlap) {
  rewrite_header(file_, [](nlohmann::json& h) {
    h["golden.flags"]["data_offsets"][0] = h["golden.flags"]["data_offsets"][0].get<uint64_t>() - 1;
  });
  expect_rejected("offsets");
}

TEST_F(MalformedTrace, OffsetsBeyondData) {
  rewrite_header(file_, [](nlohmann::json& h) {
    const uint64_t end = h["reference.fp32"]["data_offsets"][1].get<uint64_t>();
    h["reference.fp32"]["data_offsets"] = {end, end + 60};
  });
  expect_rejected("");
}

TEST_F(MalformedTrace, DtypeMismatch) {
  rewrite_header(file_, [](nlohmann::json& h) {
    // Same byte size, wrong type: I64 acc_raw declared as F64.
    h["golden.acc_raw"]["dtype"] = "F64";
  });
  expect_rejected("dtype F64, expected I64");
}

TEST_F(MalformedTrace, UnknownDtype) {
  rewrite_header(file_, [](nlohmann::json& h) { h["golden.out"]["dtype"] = "F33"; });
  expect_rejected("unknown dtype");
}

TEST_F(MalformedTrace, MissingTensor) {
  rewrite_header(file_, [](nlohmann::json& h) {
    // Rename so the data stays tiled but the required name is gone.
    h["golden.renamed"] = h["golden.out"];
    h.erase("golden.out");
  });
  expect_rejected("golden.out");
}

TEST(TraceFile, MissingFileIsAUsageError) {
  EXPECT_THROW(read_trace("/nonexistent/gsqhw/trace.safetensors"), UsageError);
}

}  // namespace
}  // namespace gsqhw
