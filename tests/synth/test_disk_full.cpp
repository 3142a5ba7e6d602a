// A full disk, made real with a file-size limit (RLIMIT_FSIZE: a write past it fails with EFBIG,
// as a write to a full disk fails with ENOSPC): the point that hits it is stored as an error
// naming the cause, the sweep goes on with the others, the report marks it, and neither a
// half-written result file nor a broken results database is left behind.
#include <gtest/gtest.h>

#include <signal.h>
#include <sqlite3.h>
#include <sys/resource.h>
#include <unistd.h>

#include "synth/liberty.h"
#include "base/process.h"
#include "synth/results_db.h"
#include "test_util.h"
#include "tests/support/file_size_limit.h"

namespace gsqhw::synth {
namespace {
namespace fs = std::filesystem;
using nlohmann::json;
using test::read_file;
using test::scratch_dir;

using gsqhw::test::FileSizeLimit;

std::string integrity(const fs::path& db) {
  sqlite3* handle = nullptr;
  std::string answer = "cannot open";
  if (sqlite3_open_v2(db.c_str(), &handle, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK) {
    sqlite3_stmt* stmt = nullptr;
    if (sqlite3_prepare_v2(handle, "PRAGMA integrity_check", -1, &stmt, nullptr) == SQLITE_OK &&
        sqlite3_step(stmt) == SQLITE_ROW)
      answer = reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0));
    sqlite3_finalize(stmt);
  }
  sqlite3_close(handle);
  return answer;
}

TEST(DiskFull, ResultsDatabaseWriteFailsClearlyAndTheFileStaysValid) {
  fs::path dir = scratch_dir("disk_full_db");
  fs::path path = dir / "results.sqlite";
  ResultsDb db(path);
  db.put({"small", "small", "h", "t", "s", "ok", json{{"status", "ok"}}, ""});
  json big = {{"status", "ok"}, {"padding", std::string(1 << 20, 'x')}};
  {
    FileSizeLimit limit(256 * 1024);  // the 1 MB row cannot be written
    try {
      db.put({"big", "big", "h", "t", "s", "ok", big, ""});
      ADD_FAILURE() << "a 1 MB row was stored under a 256 KB file-size limit";
    } catch (const std::runtime_error& e) {
      std::string message = e.what();
      EXPECT_NE(message.find("cannot write the results database"), std::string::npos) << message;
      EXPECT_NE(message.find("file-size limit"), std::string::npos) << message;
      EXPECT_NE(message.find(path.string()), std::string::npos) << message;
      EXPECT_TRUE(mentions_full_disk(message)) << message;
    }
  }
  // The failed transaction left nothing behind; the file is intact and takes new rows.
  EXPECT_FALSE(db.find("big").has_value());
  EXPECT_TRUE(db.find("small").has_value());
  db.put({"after", "after", "h", "t", "s", "ok", json{{"status", "ok"}}, ""});
  EXPECT_EQ(db.all().size(), 2u);
  EXPECT_EQ(integrity(path), "ok");
}

TEST(DiskFull, CauseIsNamedForAFileAtTheLimit) {
  fs::path dir = scratch_dir("disk_full_cause");
  EXPECT_EQ(disk_full_cause(dir), "");  // no limit, space to spare: nothing to blame
  EXPECT_NE(disk_full_cause(dir, 1000).find("a file-size limit of 1000 bytes"), std::string::npos);
  std::ofstream(dir / "netlist.v") << std::string(1000, 'x');
  std::string cause = disk_full_cause(dir, 1000);
  EXPECT_NE(cause.find("netlist.v reached the file-size limit of 1000 bytes"), std::string::npos) << cause;
  EXPECT_TRUE(mentions_full_disk(cause));
  EXPECT_TRUE(mentions_full_disk("cannot write x: No space left on device"));
  EXPECT_FALSE(mentions_full_disk("yosys failed: syntax error"));
}

TEST(DiskFull, APointThatFillsItsDiskFailsAloneAndIsMarked) {
  resolve_library({});  // the library cache is written now, not under the limit
  fs::path base = scratch_dir("disk_full_sweep");
  fs::path out = base / "sweep";
  // The bare 3-bit MAC writes files of at most ~30 KB; the 2x3 INT-4 array's Yosys log and
  // netlist are several times larger, so a 100 KB cap stops only the array.
  const std::string small = "baseline:bare,b=3,w=24", large = "baseline:intarray,b=4,w=20,f=4,array=2x3";
  const std::vector<std::string> argv = {GSQHW_CLI, "sweep", "--jobs", "2", "--quiet", "--max-file-size", "0.1",
                                         "--out", out.string(), "--designs", small, large};
  int exit_code = test::wait_exit(test::spawn(argv, base / "sweep.log"));
  EXPECT_EQ(exit_code, 0) << read_file(base / "sweep.log");  // a failed point is not a failed sweep
  EXPECT_NE(read_file(base / "sweep.log").find("1 failed"), std::string::npos) << read_file(base / "sweep.log");

  ResultsDb db(out / "results.sqlite");
  auto rows = db.all();
  ASSERT_EQ(rows.size(), 2u);
  for (const auto& row : rows) {
    if (row.design == small) {
      EXPECT_EQ(row.status, "ok") << row.result.dump();
      EXPECT_GT(row.result.value("area_um2", 0.0), 0);
    } else {
      EXPECT_EQ(row.status, "error") << row.result.dump();
      std::string error = row.result.value("error", "");
      EXPECT_NE(error.find("file-size limit of 104857 bytes"), std::string::npos) << error;
      EXPECT_FALSE(row.result.contains("area_um2")) << "a point that ran out of disk has no numbers";
    }
  }
  EXPECT_EQ(integrity(out / "results.sqlite"), "ok");
  // No half-written result: either the whole result.json or none, and no temporary left over.
  for (const auto& entry : fs::recursive_directory_iterator(out / "points"))
    EXPECT_NE(entry.path().extension(), ".tmp") << entry.path();
  std::string report = read_file(out / "report.md");
  EXPECT_NE(report.find("**error (disk full)**"), std::string::npos) << report;
}

}  // namespace
}  // namespace gsqhw::synth
