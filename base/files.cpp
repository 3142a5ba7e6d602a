// Whole-file reads and atomic writes (base/files.h).
#include "base/files.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include <fmt/format.h>

#include "base/errors.h"

namespace gsqhw {
namespace fs = std::filesystem;

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw UsageError(fmt::format("cannot read {}: {}", path.string(), std::strerror(errno)));
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string read_file_if_present(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return "";
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string unique_name_suffix() {
  static std::atomic<uint64_t> counter{0};
  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  return fmt::format("{}-{}-{}", host, static_cast<long>(::getpid()), counter++);
}

namespace {

// fsync of a closed file: reopened read-only, which is enough for fsync to flush its data.
bool sync_to_disk(const fs::path& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  const bool synced = ::fsync(fd) == 0;
  return ::close(fd) == 0 && synced;
}

}  // namespace

void write_file_atomically(const fs::path& path, const std::function<void(std::ostream&)>& body,
                           Durability durability) {
  fs::path tmp = path;
  tmp += ".tmp-" + unique_name_suffix();
  try {
    {
      std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
      if (!out)
        throw UsageError(fmt::format("cannot write {}: {} (does the folder exist and is it writable?)",
                                     path.string(), std::strerror(errno)));
      errno = 0;
      body(out);
      out.flush();
      out.close();
      if (!out)
        throw std::runtime_error(fmt::format("cannot write {}: {} (disk full?)", path.string(),
                                             errno ? std::strerror(errno) : "write failed"));
    }
    if (durability == Durability::synced && !sync_to_disk(tmp))
      throw std::runtime_error(fmt::format("cannot write {}: {} (disk full?)", path.string(), std::strerror(errno)));
    fs::rename(tmp, path);
  } catch (...) {
    std::error_code ignored;
    fs::remove(tmp, ignored);
    throw;
  }
}

void write_file_atomically(const fs::path& path, std::string_view text, Durability durability) {
  write_file_atomically(
      path, [&](std::ostream& out) { out.write(text.data(), static_cast<std::streamsize>(text.size())); },
      durability);
}

}  // namespace gsqhw
