// base/files.h: whole-file reads and atomic writes, including the failures (missing folder,
// file-size limit as a stand-in for a full disk, a throwing writer) and concurrent writers.
#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "base/errors.h"
#include "base/files.h"
#include "base/process.h"
#include "base/scratch_dir.h"
#include "tests/support/file_size_limit.h"

namespace gsqhw {
namespace {
namespace fs = std::filesystem;

std::vector<fs::path> leftovers(const fs::path& dir) {
  std::vector<fs::path> found;
  for (const auto& entry : fs::directory_iterator(dir))
    if (entry.path().filename().string().find(".tmp") != std::string::npos) found.push_back(entry.path());
  return found;
}

TEST(Files, WriteThenReadGivesTheSameBytes) {
  ScratchDir dir("gsqhw-test-files");
  const std::string bytes = std::string("head\0mid\r\n\xff tail", 16);
  write_file_atomically(dir.path() / "a.bin", bytes);
  EXPECT_EQ(read_file(dir.path() / "a.bin"), bytes);
  write_file_atomically(dir.path() / "a.bin", "shorter");  // replaces, does not append
  EXPECT_EQ(read_file(dir.path() / "a.bin"), "shorter");
  write_file_atomically(dir.path() / "empty", "", Durability::synced);
  EXPECT_EQ(read_file(dir.path() / "empty"), "");
  write_file_atomically(dir.path() / "streamed", [](std::ostream& out) { out << "x=" << 42 << "\n"; });
  EXPECT_EQ(read_file(dir.path() / "streamed"), "x=42\n");
  EXPECT_TRUE(leftovers(dir.path()).empty());
}

TEST(Files, AMissingFileIsAUsageErrorNamingIt) {
  ScratchDir dir("gsqhw-test-files");
  const fs::path missing = dir.path() / "missing.txt";
  try {
    read_file(missing);
    ADD_FAILURE() << "read_file of a missing file returned";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("cannot read " + missing.string()), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("No such file"), std::string::npos) << e.what();
  }
  EXPECT_EQ(read_file_if_present(missing), "");
  EXPECT_THROW(write_file_atomically(dir.path() / "no-such-folder" / "x", "text"), UsageError);
}

using test::FileSizeLimit;

TEST(Files, AFailedWriteKeepsTheOldFileAndLeavesNoTemporary) {
  ScratchDir dir("gsqhw-test-files");
  const fs::path path = dir.path() / "result.json";
  write_file_atomically(path, "old");
  for (Durability durability : {Durability::flushed, Durability::synced}) {
    FileSizeLimit limit(64 * 1024);
    try {
      write_file_atomically(path, std::string(1 << 20, 'x'), durability);
      ADD_FAILURE() << "a 1 MB write passed a 64 KB file-size limit";
    } catch (const UsageError& e) {
      ADD_FAILURE() << "a full disk is not a usage error: " << e.what();
    } catch (const std::runtime_error& e) {
      const std::string message = e.what();
      EXPECT_NE(message.find("cannot write " + path.string()), std::string::npos) << message;
      EXPECT_TRUE(mentions_full_disk(message)) << message;
    }
  }
  EXPECT_EQ(read_file(path), "old");
  EXPECT_TRUE(leftovers(dir.path()).empty());
}

TEST(Files, AThrowingWriterKeepsTheOldFileAndLeavesNoTemporary) {
  ScratchDir dir("gsqhw-test-files");
  const fs::path path = dir.path() / "set.json";
  write_file_atomically(path, "old");
  EXPECT_THROW(write_file_atomically(path,
                                     [](std::ostream& out) {
                                       out << "half";
                                       throw std::runtime_error("the writer failed");
                                     }),
               std::runtime_error);
  EXPECT_EQ(read_file(path), "old");
  EXPECT_TRUE(leftovers(dir.path()).empty());
}

TEST(Files, ConcurrentWritersNeverLeaveAMixedFile) {
  ScratchDir dir("gsqhw-test-files");
  const fs::path path = dir.path() / "shared.txt";
  std::vector<std::string> contents;
  for (int t = 0; t < 4; ++t) contents.push_back(std::string(100000 + t, static_cast<char>('a' + t)));
  std::vector<std::thread> writers;
  for (int t = 0; t < 4; ++t)
    writers.emplace_back([&, t] {
      for (int i = 0; i < 20; ++i) write_file_atomically(path, contents[t]);
    });
  bool whole = true;
  for (int i = 0; i < 200; ++i) {
    const std::string seen = read_file_if_present(path);
    if (!seen.empty() && std::find(contents.begin(), contents.end(), seen) == contents.end()) whole = false;
  }
  for (auto& w : writers) w.join();
  EXPECT_TRUE(whole) << "a reader saw a file no writer wrote";
  EXPECT_NE(std::find(contents.begin(), contents.end(), read_file(path)), contents.end());
  EXPECT_TRUE(leftovers(dir.path()).empty());
}

TEST(Files, UniqueSuffixesDiffer) {
  EXPECT_NE(unique_name_suffix(), unique_name_suffix());
  EXPECT_NE(unique_name_suffix().find(fmt::format("-{}-", ::getpid())), std::string::npos);
}

}  // namespace
}  // namespace gsqhw
