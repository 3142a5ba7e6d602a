// base/process.h: the one process runner (run_process, run_logged, ChildProcess, find_program)
// on real programs from coreutils.
#include <gtest/gtest.h>

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <string>

#include "base/errors.h"
#include "base/files.h"
#include "base/process.h"
#include "base/scratch_dir.h"

namespace gsqhw {
namespace {
namespace fs = std::filesystem;

TEST(Process, FindProgramSearchesPathAndSkipsFolders) {
  EXPECT_FALSE(find_program("sh").empty());
  EXPECT_TRUE(fs::exists(find_program("sh")));
  EXPECT_TRUE(find_program("gsqhw-no-such-program").empty());
  EXPECT_EQ(find_program("/bin/sh"), fs::path("/bin/sh"));
  EXPECT_THROW(require_program("gsqhw-no-such-program", "gsqhw-pkg"), ToolMissing);
  try {
    require_program("gsqhw-no-such-program", "gsqhw-pkg");
  } catch (const ToolMissing& e) {
    EXPECT_NE(std::string(e.what()).find("apt-get install gsqhw-pkg"), std::string::npos) << e.what();
  }
}

TEST(Process, RunProcessCapturesOutputAndExitCodeInItsFolder) {
  ScratchDir dir("gsqhw-test-process");
  ProcessResult r = run_process({"sh", "-c", "pwd; echo to-stderr >&2; exit 3"}, dir.path(), dir.path() / "log", 60);
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_FALSE(r.timed_out);
  EXPECT_NE(r.output.find(fs::canonical(dir.path()).string()), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("to-stderr"), std::string::npos) << r.output;
  EXPECT_EQ(read_file(dir.path() / "log"), r.output);
  // A name with a space and a quote reaches the program as one argument (no shell).
  r = run_process({"printf", "%s|", "a b", "it's"}, dir.path(), dir.path() / "log", 60);
  EXPECT_EQ(r.output, "a b|it's|");
  r = run_process({"gsqhw-no-such-program"}, dir.path(), dir.path() / "log", 60);
  EXPECT_EQ(r.exit_code, 127);
}

TEST(Process, RunProcessKillsARunPastItsTimeoutOrOnCancel) {
  ScratchDir dir("gsqhw-test-process");
  auto start = std::chrono::steady_clock::now();
  ProcessResult r = run_process({"sleep", "30"}, dir.path(), dir.path() / "log", 0.3);
  EXPECT_TRUE(r.timed_out);
  EXPECT_EQ(r.exit_code, 128 + 9);
  std::atomic<bool> cancel{true};
  r = run_process({"sleep", "30"}, dir.path(), dir.path() / "log", 60, &cancel);
  EXPECT_FALSE(r.timed_out);
  EXPECT_EQ(r.exit_code, 128 + 9);
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(), 20);
}

TEST(Process, RunLoggedAppendsToItsLog) {
  ScratchDir dir("gsqhw-test-process");
  const fs::path log = dir.path() / "build.log";
  EXPECT_EQ(run_logged({"echo", "first"}, log), 0);
  EXPECT_EQ(run_logged({"sh", "-c", "echo second; exit 5"}, log, dir.path()), 5);
  EXPECT_EQ(read_file(log), "first\nsecond\n");
}

TEST(Process, ChildProcessStreamsStdinToStdout) {
  ScratchDir dir("gsqhw-test-process");
  ChildProcess child({"cat"}, dir.path() / "err.log", /*pipe_stdin=*/true, /*pipe_stdout=*/true);
  const std::string text = "beats\n";
  ASSERT_TRUE(child.write_stdin(text.data(), text.size()));
  child.close_stdin();
  std::string got;
  char buffer[64];
  for (ssize_t n; (n = ::read(child.stdout_fd(), buffer, sizeof buffer)) > 0;) got.append(buffer, static_cast<size_t>(n));
  EXPECT_EQ(got, text);
  EXPECT_EQ(child.wait(), 0);
}

TEST(Process, TailLinesKeepsTheEnd) {
  EXPECT_EQ(tail_lines("a\nb\nc\n", 2), "b\nc\n");
  EXPECT_EQ(tail_lines("a\nb", 5), "a\nb");
}

}  // namespace
}  // namespace gsqhw
