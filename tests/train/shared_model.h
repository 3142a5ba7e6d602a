// Where the tests find the real model (../shared/models beside the clone).
#pragma once

#include <gtest/gtest.h>

#include <filesystem>

namespace gsqhw::test {

inline std::filesystem::path shared_models() {
  return std::filesystem::path(GSQHW_TEST_SHARED_DIR) / "models";
}

// Skips the calling test with a clear message when stories260K.bin / tok512.bin are absent.
#define GSQHW_REQUIRE_SHARED_MODEL()                                                            \
  do {                                                                                          \
    if (!std::filesystem::exists(::gsqhw::test::shared_models() / "stories260K.bin") ||          \
        !std::filesystem::exists(::gsqhw::test::shared_models() / "tok512.bin"))                 \
      GTEST_SKIP() << "real model absent: " << ::gsqhw::test::shared_models().string()          \
                   << "/{stories260K.bin,tok512.bin} not found (see ../shared/models/README.md)"; \
  } while (0)

}  // namespace gsqhw::test
