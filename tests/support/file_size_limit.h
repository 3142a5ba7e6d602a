// A full disk made real in a test: lowers this process's file-size limit (RLIMIT_FSIZE) for the
// object's lifetime, with SIGXFSZ ignored so that a write past it fails with EFBIG (as one to a
// full disk fails with ENOSPC) instead of killing the test; restores both after.
#pragma once

#include <signal.h>
#include <sys/resource.h>

namespace gsqhw::test {

class FileSizeLimit {
 public:
  explicit FileSizeLimit(rlim_t bytes) {
    getrlimit(RLIMIT_FSIZE, &saved_);
    old_handler_ = signal(SIGXFSZ, SIG_IGN);
    struct rlimit limit = {bytes, saved_.rlim_max};
    setrlimit(RLIMIT_FSIZE, &limit);
  }
  ~FileSizeLimit() {
    setrlimit(RLIMIT_FSIZE, &saved_);
    signal(SIGXFSZ, old_handler_);
  }
  FileSizeLimit(const FileSizeLimit&) = delete;
  FileSizeLimit& operator=(const FileSizeLimit&) = delete;

 private:
  struct rlimit saved_ {};
  void (*old_handler_)(int) = SIG_DFL;
};

}  // namespace gsqhw::test
