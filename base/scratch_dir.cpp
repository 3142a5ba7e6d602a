// A private scratch folder (base/scratch_dir.h).
#include "base/scratch_dir.h"

#include <fmt/format.h>
#include <unistd.h>

#include <random>
#include <system_error>

namespace gsqhw {

ScratchDir::ScratchDir(const std::string& prefix) {
  std::random_device rd;
  path_ = std::filesystem::temp_directory_path() /
          fmt::format("{}-{}-{:08x}", prefix, ::getpid(), rd());
  std::filesystem::create_directories(path_);
}

ScratchDir::~ScratchDir() {
  std::error_code ec;  // best effort: a destructor must not throw
  std::filesystem::remove_all(path_, ec);
}

}  // namespace gsqhw
