// Helpers shared by the synth tests.
#pragma once

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <fmt/format.h>

namespace gsqhw::synth::test {

inline std::filesystem::path data_dir() { return std::filesystem::path(GSQHW_TEST_SOURCE_DIR) / "tests/synth/data"; }
inline std::filesystem::path pdk_dir() { return std::filesystem::path(GSQHW_TEST_SHARED_DIR) / "pdk"; }

inline std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

// A fresh folder under the build tree for one test.
inline std::filesystem::path scratch_dir(const std::string& name) {
  auto dir = std::filesystem::path(GSQHW_TEST_BINARY_DIR) / "synth-test-scratch" / name;
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

}  // namespace gsqhw::synth::test
