// A private scratch folder below the system temp directory, removed with everything in it when
// the object goes out of scope (the co-simulations write, build and run testbenches there).
#pragma once

#include <filesystem>
#include <string>

namespace gsqhw {

class ScratchDir {
 public:
  // Named <prefix>-<process id>-<random>, so that parallel runs never share a folder.
  explicit ScratchDir(const std::string& prefix);
  ~ScratchDir();
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;

  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

}  // namespace gsqhw
