// .npy reading and writing (base/npy.h).
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>

#include "base/errors.h"
#include "base/npy.h"

namespace gsqhw {
namespace {

std::vector<uint8_t> with_header(int major, const std::string& header, size_t data_bytes) {
  std::vector<uint8_t> out = {0x93, 'N', 'U', 'M', 'P', 'Y', static_cast<uint8_t>(major), 0};
  uint32_t len = static_cast<uint32_t>(header.size());
  out.push_back(len & 0xff);
  out.push_back((len >> 8) & 0xff);
  if (major >= 2) {
    out.push_back((len >> 16) & 0xff);
    out.push_back(len >> 24);
  }
  out.insert(out.end(), header.begin(), header.end());
  for (size_t i = 0; i < data_bytes; ++i) out.push_back(static_cast<uint8_t>(i));
  return out;
}

std::string usage_error_of(const std::vector<uint8_t>& bytes) {
  try {
    parse_npy(bytes.data(), bytes.size(), "t.npy");
  } catch (const UsageError& e) {
    return e.what();
  }
  return "";
}

TEST(Npy, RoundTripsEveryDtype) {
  for (NpyDtype dtype : {NpyDtype::f32, NpyDtype::i8, NpyDtype::i16, NpyDtype::i32,
                         NpyDtype::i64, NpyDtype::u8}) {
    for (const std::vector<int64_t>& shape :
         std::vector<std::vector<int64_t>>{{}, {5}, {2, 3}, {2, 0, 4}, {3, 1, 2, 2}}) {
      NpyArray a;
      a.dtype = dtype;
      a.shape = shape;
      a.data.resize(static_cast<size_t>(a.size() * npy_item_size(dtype)));
      for (size_t i = 0; i < a.data.size(); ++i) a.data[i] = static_cast<uint8_t>(i * 37 + 1);
      std::vector<uint8_t> bytes = encode_npy(a);
      EXPECT_EQ(bytes[6], 1);                    // version 1.0
      size_t header_end = 10 + (bytes[8] | (bytes[9] << 8));
      EXPECT_EQ(header_end % 64, 0u);            // data aligned as numpy does
      NpyArray b = parse_npy(bytes.data(), bytes.size());
      EXPECT_EQ(b.dtype, dtype);
      EXPECT_EQ(b.shape, shape);
      EXPECT_EQ(b.data, a.data);
    }
  }
}

TEST(Npy, ReadsHeadersAsNumpyWritesThem) {
  // numpy 1.x: "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }" + padding.
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }";
  header.append(118 - header.size(), ' ');
  header += '\n';
  std::vector<uint8_t> bytes = with_header(1, header, 0);
  float values[4] = {1.5f, -2.0f, 0.0f, 3.25f};
  bytes.insert(bytes.end(), reinterpret_cast<uint8_t*>(values), reinterpret_cast<uint8_t*>(values) + 16);
  NpyArray a = parse_npy(bytes.data(), bytes.size());
  EXPECT_EQ(a.to_float(), std::vector<float>(values, values + 4));
  // Version 2.0 (4-byte header length), 1-D shape "(3,)", int16.
  std::vector<uint8_t> v2 = with_header(2, "{'descr': '<i2', 'fortran_order': False, 'shape': (3,), }\n", 6);
  NpyArray b = parse_npy(v2.data(), v2.size());
  EXPECT_EQ(b.shape, std::vector<int64_t>{3});
  EXPECT_EQ(b.to_int64(), (std::vector<int64_t>{0x0100, 0x0302, 0x0504}));
  // Key order does not matter; a 0-d array holds one element.
  std::vector<uint8_t> scalar = with_header(1, "{'shape': (), 'fortran_order': False, 'descr': '|u1'}\n", 1);
  EXPECT_EQ(parse_npy(scalar.data(), scalar.size()).size(), 1);
}

TEST(Npy, RejectsBadFilesWithClearMessages) {
  const std::string good = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }\n";
  EXPECT_NE(usage_error_of({'P', 'K', 3, 4, 0, 0, 0, 0, 0, 0, 0}).find("magic"), std::string::npos);
  EXPECT_NE(usage_error_of({0x93, 'N', 'U'}).find("magic"), std::string::npos);
  auto truncated = with_header(1, good, 23);
  EXPECT_NE(usage_error_of(truncated).find("truncated"), std::string::npos);
  auto extra = with_header(1, good, 25);
  EXPECT_NE(usage_error_of(extra).find("mismatch"), std::string::npos);
  auto header_cut = with_header(1, good, 0);
  header_cut.resize(30);
  EXPECT_NE(usage_error_of(header_cut).find("truncated"), std::string::npos);
  auto c8 = with_header(1, "{'descr': '<c8', 'fortran_order': False, 'shape': (1,), }\n", 8);
  EXPECT_NE(usage_error_of(c8).find("unsupported .npy dtype '<c8'"), std::string::npos);
  auto big_endian = with_header(1, "{'descr': '>f4', 'fortran_order': False, 'shape': (1,), }\n", 4);
  EXPECT_NE(usage_error_of(big_endian).find("dtype"), std::string::npos);
  auto fortran = with_header(1, "{'descr': '<f4', 'fortran_order': True, 'shape': (1,), }\n", 4);
  EXPECT_NE(usage_error_of(fortran).find("fortran_order"), std::string::npos);
  auto version = with_header(1, good, 24);
  version[6] = 9;
  EXPECT_NE(usage_error_of(version).find("version"), std::string::npos);
  for (const char* bad : {"{'descr': '<f4', 'shape': (1,), }\n", "{'descr': '<f4', 'fortran_order': Fals, 'shape': (1,)}",
                          "['descr']", "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'x': 1}",
                          "{'descr': '<f4', 'fortran_order': False, 'shape': (a,)}",
                          "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999, 99999999999, 99999999999)}",
                          "{'descr: '<f4'}"}) {
    auto bytes = with_header(1, bad, 4);
    EXPECT_NE(usage_error_of(bytes), "") << bad;
  }
}

TEST(Npy, WritesAndReadsFiles) {
  auto path = std::filesystem::temp_directory_path() / "gsqhw_test_npy_roundtrip.npy";
  std::vector<float> values = {1, 2, 3, 4, 5, 6};
  write_npy(path, make_npy_f32({3, 2}, values.data()));
  NpyArray a = read_npy(path);
  EXPECT_EQ(a.shape, (std::vector<int64_t>{3, 2}));
  EXPECT_EQ(a.to_float(), values);
  std::filesystem::remove(path);
  EXPECT_THROW(read_npy(path), UsageError);  // missing file
}

}  // namespace
}  // namespace gsqhw
