// A fresh folder under the build tree for one sibling test's tool runs.
#pragma once

#include <filesystem>
#include <string>

namespace gsqhw::test {

inline std::filesystem::path work_dir(const std::string& name) {
  std::filesystem::path dir = std::filesystem::path(GSQHW_TEST_BINARY_DIR) / "siblings_work" / name;
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

}  // namespace gsqhw::test
