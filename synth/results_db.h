// The sweep's results store: one SQLite file (WAL journal), one row per finished point,
// committed the moment the point finishes, so that an interrupted sweep (Ctrl-C, kill -9, a
// crash, power loss) loses at most the points that were still running.
//
// A row's key is  design | liberty hash | tool versions | settings  (settings: clock, input
// activity, activity source and traces), so a changed library, tool or setting never reuses
// an old number. Each sweep run also records which keys it asked for (table `sweeps`), so the
// report shows exactly one sweep even when the file holds several.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

struct sqlite3;

namespace gsqhw::synth {

struct ResultRow {
  std::string key, design, liberty_hash, tools, settings, status;
  nlohmann::json result;  // the point's flat result object (synth/point.h)
  std::string finished_at;
};

class ResultsDb {
 public:
  // Opens or creates the file; UsageError when it cannot be opened or is not a results file.
  explicit ResultsDb(const std::filesystem::path& path);
  ~ResultsDb();
  ResultsDb(const ResultsDb&) = delete;
  ResultsDb& operator=(const ResultsDb&) = delete;

  static std::string make_key(const std::string& design, const std::string& liberty_hash,
                              const std::string& tools, const std::string& settings);

  std::optional<ResultRow> find(const std::string& key) const;
  // Inserts or replaces the row in its own transaction (durable when this returns).
  void put(const ResultRow& row);
  // Every row, in insertion order.
  std::vector<ResultRow> all() const;

  // Records a sweep (its arguments and the keys it covers); returns its id.
  int64_t begin_sweep(const nlohmann::json& arguments, const std::vector<std::string>& keys);
  // The keys of the most recent sweep (empty if none was recorded).
  std::vector<std::string> last_sweep_keys() const;
  nlohmann::json last_sweep_arguments() const;
  // The stored rows of the most recent sweep, in its order (every row when no sweep is
  // recorded); keys of that sweep without a stored row (interrupted) are left out.
  std::vector<ResultRow> last_sweep_rows() const;

 private:
  void exec(const char* sql) const;
  sqlite3* db_ = nullptr;
  std::filesystem::path path_;
};

}  // namespace gsqhw::synth
