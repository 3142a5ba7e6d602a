// Keeps the tests' caches (liberty, traces, Verilator builds) inside the build tree, so a test
// run neither reads nor pollutes the user's ~/.cache/gsqhw.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>

namespace {
struct CacheEnvironment : ::testing::Environment {
  void SetUp() override {
    auto cache = std::filesystem::path(GSQHW_TEST_BINARY_DIR) / "synth-test-cache";
    std::filesystem::create_directories(cache);
    setenv("GSQHW_CACHE", cache.c_str(), 1);
  }
};
const auto* const kEnvironment = ::testing::AddGlobalTestEnvironment(new CacheEnvironment);
}  // namespace
