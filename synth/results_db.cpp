// SQLite results store (synth/results_db.h), through the sqlite3 C API.
#include "synth/results_db.h"

#include <sqlite3.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>

#include <fmt/format.h>

#include "base/errors.h"

namespace gsqhw::synth {
namespace {

// The message for a failed SQLite call. A write that fails for lack of space says so plainly
// and names the file, since that is what the user fixes: SQLITE_FULL (ENOSPC), and
// SQLITE_IOERR_WRITE, which is what a write refused with EFBIG (a file-size limit) or EDQUOT
// becomes (SQLite keeps no reliable errno for it).
std::string sqlite_error(sqlite3* db) {
  const int code = sqlite3_extended_errcode(db);
  const int os_errno = sqlite3_system_errno(db);
  const char* file = sqlite3_db_filename(db, "main");
  std::string message = fmt::format("sqlite: {} (code {})", sqlite3_errmsg(db), code);
  if (os_errno != 0) message += fmt::format(" ({})", std::strerror(os_errno));
  const bool full = (code & 0xff) == SQLITE_FULL || os_errno == ENOSPC || os_errno == EDQUOT || os_errno == EFBIG;
  if (full || code == SQLITE_IOERR_WRITE)
    message = fmt::format("cannot write the results database {}: {}; {} (free space and re-run: stored points are kept)",
                          file && *file ? file : "?",
                          full ? "the disk is full" : "a write failed (disk full, file-size limit reached, or an I/O fault)",
                          message);
  return message;
}

// A prepared statement that finalizes itself.
class Statement {
 public:
  Statement(sqlite3* db, const char* sql) : db_(db) {
    if (sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr) != SQLITE_OK)
      throw std::runtime_error(fmt::format("{} in: {}", sqlite_error(db), sql));
  }
  ~Statement() { sqlite3_finalize(stmt_); }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  void bind(int index, const std::string& text) {
    sqlite3_bind_text(stmt_, index, text.c_str(), static_cast<int>(text.size()), SQLITE_TRANSIENT);
  }
  void bind(int index, int64_t value) { sqlite3_bind_int64(stmt_, index, value); }
  bool step() {
    int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    throw std::runtime_error(sqlite_error(db_));
  }
  std::string text(int column) const {
    const unsigned char* value = sqlite3_column_text(stmt_, column);
    return value ? reinterpret_cast<const char*>(value) : "";
  }
  int64_t integer(int column) const { return sqlite3_column_int64(stmt_, column); }

 private:
  sqlite3* db_;
  sqlite3_stmt* stmt_ = nullptr;
};

std::string now_utc() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buffer[32];
  std::strftime(buffer, sizeof buffer, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buffer;
}

ResultRow row_from(const Statement& s) {
  ResultRow row;
  row.key = s.text(0);
  row.design = s.text(1);
  row.liberty_hash = s.text(2);
  row.tools = s.text(3);
  row.settings = s.text(4);
  row.status = s.text(5);
  row.result = nlohmann::json::parse(s.text(6), nullptr, false);
  row.finished_at = s.text(7);
  return row;
}

}  // namespace

ResultsDb::ResultsDb(const std::filesystem::path& path) : path_(path) {
  if (path.has_parent_path()) std::filesystem::create_directories(path.parent_path());
  if (sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                      nullptr) != SQLITE_OK) {
    std::string message = db_ ? sqlite3_errmsg(db_) : "out of memory";
    sqlite3_close(db_);
    db_ = nullptr;
    throw UsageError(fmt::format("results database {} cannot be opened: {}", path.string(), message));
  }
  sqlite3_busy_timeout(db_, 10000);
  try {
    exec("PRAGMA journal_mode=WAL");
    exec("PRAGMA synchronous=NORMAL");
    exec("CREATE TABLE IF NOT EXISTS results ("
         " key TEXT PRIMARY KEY, design TEXT NOT NULL, liberty_hash TEXT NOT NULL,"
         " tools TEXT NOT NULL, settings TEXT NOT NULL, status TEXT NOT NULL,"
         " json TEXT NOT NULL, finished_at TEXT NOT NULL)");
    exec("CREATE TABLE IF NOT EXISTS sweeps ("
         " id INTEGER PRIMARY KEY AUTOINCREMENT, started_at TEXT NOT NULL,"
         " arguments TEXT NOT NULL, keys TEXT NOT NULL)");
  } catch (const std::exception& e) {
    sqlite3_close(db_);
    db_ = nullptr;
    throw UsageError(fmt::format("{} is not a gsqhw results database: {}", path.string(), e.what()));
  }
}

ResultsDb::~ResultsDb() {
  if (db_) sqlite3_close(db_);
}

void ResultsDb::exec(const char* sql) const {
  char* error = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &error) != SQLITE_OK) {
    sqlite3_free(error);
    throw std::runtime_error(fmt::format("{} in: {}", sqlite_error(db_), sql));
  }
}

std::string ResultsDb::make_key(const std::string& design, const std::string& liberty_hash,
                                const std::string& tools, const std::string& settings) {
  return design + " | " + liberty_hash + " | " + tools + " | " + settings;
}

std::optional<ResultRow> ResultsDb::find(const std::string& key) const {
  Statement s(db_, "SELECT key, design, liberty_hash, tools, settings, status, json, finished_at "
                   "FROM results WHERE key = ?1");
  s.bind(1, key);
  if (!s.step()) return std::nullopt;
  return row_from(s);
}

void ResultsDb::put(const ResultRow& row) {
  Statement s(db_, "INSERT OR REPLACE INTO results (key, design, liberty_hash, tools, settings, status, json, finished_at) "
                   "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)");
  s.bind(1, row.key);
  s.bind(2, row.design);
  s.bind(3, row.liberty_hash);
  s.bind(4, row.tools);
  s.bind(5, row.settings);
  s.bind(6, row.status);
  s.bind(7, row.result.dump());
  s.bind(8, row.finished_at.empty() ? now_utc() : row.finished_at);
  s.step();
}

std::vector<ResultRow> ResultsDb::all() const {
  Statement s(db_, "SELECT key, design, liberty_hash, tools, settings, status, json, finished_at "
                   "FROM results ORDER BY rowid");
  std::vector<ResultRow> rows;
  while (s.step()) rows.push_back(row_from(s));
  return rows;
}

int64_t ResultsDb::begin_sweep(const nlohmann::json& arguments, const std::vector<std::string>& keys) {
  Statement s(db_, "INSERT INTO sweeps (started_at, arguments, keys) VALUES (?1, ?2, ?3)");
  s.bind(1, now_utc());
  s.bind(2, arguments.dump());
  s.bind(3, nlohmann::json(keys).dump());
  s.step();
  return sqlite3_last_insert_rowid(db_);
}

std::vector<std::string> ResultsDb::last_sweep_keys() const {
  Statement s(db_, "SELECT keys FROM sweeps ORDER BY id DESC LIMIT 1");
  if (!s.step()) return {};
  return nlohmann::json::parse(s.text(0)).get<std::vector<std::string>>();
}

nlohmann::json ResultsDb::last_sweep_arguments() const {
  Statement s(db_, "SELECT arguments FROM sweeps ORDER BY id DESC LIMIT 1");
  if (!s.step()) return nlohmann::json::object();
  return nlohmann::json::parse(s.text(0), nullptr, false);
}

std::vector<ResultRow> ResultsDb::last_sweep_rows() const {
  std::vector<std::string> keys = last_sweep_keys();
  if (keys.empty()) return all();
  std::vector<ResultRow> rows;
  for (const auto& key : keys)
    if (auto row = find(key)) rows.push_back(std::move(*row));
  return rows;
}

}  // namespace gsqhw::synth
