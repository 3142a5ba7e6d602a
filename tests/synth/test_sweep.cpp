// The sweep through the real CLI: resume after kill -9 (nothing lost, nothing duplicated),
// Ctrl-C, the warm re-run, exports and the report; and the headline comparison logic.
#include <gtest/gtest.h>

#include <signal.h>
#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include "base/errors.h"
#include "synth/report.h"
#include "synth/results_db.h"
#include "synth/sweep.h"
#include "test_util.h"

namespace gsqhw::synth {
namespace {
namespace fs = std::filesystem;
using nlohmann::json;
using test::read_file;
using test::scratch_dir;
using test::spawn;
using test::wait_exit;

// Eight quick points (baselines synthesize in about a second each, no co-simulation).
const std::vector<std::string> kDesigns = {
    "baseline:bare,b=3,w=24", "baseline:intmac,b=3,w=24", "baseline:bare,b=4,w=24", "baseline:intmac,b=4,w=24",
    "baseline:bare,b=5,w=24", "baseline:intmac,b=5,w=24", "baseline:bare,b=6,w=24", "baseline:intmac,b=6,w=24"};

std::vector<std::string> sweep_argv(const fs::path& out, bool report) {
  std::vector<std::string> argv = {GSQHW_CLI, "sweep", "--jobs", "2", "--quiet", "--out", out.string(), "--designs"};
  argv.insert(argv.end(), kDesigns.begin(), kDesigns.end());
  if (!report) argv.push_back("--no-report");
  return argv;
}

int rows_in(const fs::path& db) {
  if (!fs::exists(db)) return 0;
  sqlite3* handle = nullptr;
  int count = 0;
  if (sqlite3_open_v2(db.c_str(), &handle, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK) {
    sqlite3_busy_timeout(handle, 2000);
    sqlite3_stmt* stmt = nullptr;
    if (sqlite3_prepare_v2(handle, "SELECT count(*) FROM results", -1, &stmt, nullptr) == SQLITE_OK &&
        sqlite3_step(stmt) == SQLITE_ROW)
      count = sqlite3_column_int(stmt, 0);
    sqlite3_finalize(stmt);
  }
  sqlite3_close(handle);
  return count;
}

// Starts a sweep, waits until at least one point is stored, then sends `signal_number`.
int interrupt_after_first_point(const fs::path& out, int signal_number) {
  pid_t pid = spawn(sweep_argv(out, false), out.parent_path() / (out.filename().string() + ".log"));
  EXPECT_GT(pid, 0);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (rows_in(out / "results.sqlite") < 1 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  kill(pid, signal_number);
  return wait_exit(pid);
}

TEST(Sweep, ResumesAfterKillNineWithNothingLostOrDuplicated) {
  fs::path base = scratch_dir("sweep_kill");
  fs::path out = base / "sweep";
  EXPECT_EQ(interrupt_after_first_point(out, SIGKILL), 128 + SIGKILL);
  std::map<std::string, std::string> before;  // key -> finished_at
  {
    ResultsDb db(out / "results.sqlite");
    for (const auto& row : db.all()) before[row.key] = row.finished_at;
  }
  ASSERT_GE(before.size(), 1u);
  ASSERT_LT(before.size(), kDesigns.size()) << "the sweep finished before it could be killed";

  pid_t pid = spawn(sweep_argv(out, false), base / "resume.log");
  ASSERT_EQ(wait_exit(pid), 0) << read_file(base / "resume.log");
  std::string log = read_file(base / "resume.log");
  EXPECT_NE(log.find(fmt::format("{} reused", before.size())), std::string::npos) << log;

  ResultsDb db(out / "results.sqlite");
  auto rows = db.all();
  ASSERT_EQ(rows.size(), kDesigns.size());
  std::set<std::string> designs;
  for (const auto& row : rows) {
    designs.insert(row.design);
    EXPECT_EQ(row.status, "ok") << row.result.dump();
    EXPECT_GT(row.result.value("area_um2", 0.0), 0);
    if (before.count(row.key)) {
      EXPECT_EQ(before[row.key], row.finished_at) << "a stored point was redone";
    }
  }
  EXPECT_EQ(designs.size(), kDesigns.size());

  // Warm re-run: everything reused, well within 5 s, and the report and exports written.
  auto start = std::chrono::steady_clock::now();
  pid = spawn(sweep_argv(out, true), base / "warm.log");
  ASSERT_EQ(wait_exit(pid), 0) << read_file(base / "warm.log");
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_LT(seconds, 5.0);
  EXPECT_NE(read_file(base / "warm.log").find(fmt::format("{} reused", kDesigns.size())), std::string::npos);
  EXPECT_EQ(db.all().size(), kDesigns.size());

  std::string csv = read_file(out / "results.csv");
  EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), static_cast<long>(kDesigns.size() + 1));
  EXPECT_EQ(json::parse(read_file(out / "results.json")).size(), kDesigns.size());
  std::string report = read_file(out / "report.md");
  EXPECT_NE(report.find("GSE-INT PE vs a plain INT-b MAC PE"), std::string::npos);
  EXPECT_NE(report.find("INT4 MAC PE (baseline)"), std::string::npos);
  EXPECT_TRUE(fs::exists(out / "report.html"));
  EXPECT_GT(fs::file_size(out / "plots/area_vs_bits.png"), 1000u);
  EXPECT_TRUE(fs::exists(out / "plots/area_vs_bits.svg"));
}

TEST(Sweep, CtrlCStopsCleanlyAndKeepsFinishedPoints) {
  fs::path base = scratch_dir("sweep_int");
  fs::path out = base / "sweep";
  EXPECT_EQ(interrupt_after_first_point(out, SIGINT), 130);
  int stored = rows_in(out / "results.sqlite");
  EXPECT_GE(stored, 1);
  // No worker survives its sweep.
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_EQ(rows_in(out / "results.sqlite"), stored);
}

TEST(Sweep, GridAndArguments) {
  SweepGrid grid;
  // The amortisation check is an option (its three 8x8 points were 40% of the default sweep's time).
  EXPECT_TRUE(grid.amortisation_array.empty());
  EXPECT_EQ(sweep_designs(grid, 5).size(), 10u + 1u + 2u + 12u + 2u + 1u + 2u);
  grid.amortisation_array = "8x8";
  // Headline width 5: 10 PEs, GSE-INT5 with fp32, the pair at 2x2, 12 baselines, 2 siblings.
  auto designs = sweep_designs(grid, 5);
  // ... the shared-column GSE-INT5 2x2 array, the plain INT-5 2x2 arrays (fixed32.0 and
  // fixed32.16), and the amortisation check at 8x8 (shared-column GSE-INT5, both INT-5 arrays).
  EXPECT_EQ(designs.size(), 10u + 1u + 2u + 12u + 2u + 1u + 2u + 3u);
  for (const std::string amortisation :
       {"gse:b=5,g=32,e=5,scale=floor,round=rne,range=symmetric@array8x8,acc=fixed32.16,flow=os,pipe=1,align=shared",
        "baseline:intarray,b=5,w=32,f=0,array=8x8", "baseline:intarray,b=5,w=32,f=16,array=8x8"})
    EXPECT_NE(std::find(designs.begin(), designs.end(), amortisation), designs.end()) << amortisation;
  EXPECT_NE(std::find(designs.begin(), designs.end(), "baseline:intarray,b=5,w=32,f=0,array=2x2"), designs.end());
  EXPECT_NE(std::find(designs.begin(), designs.end(),
                      "gse:b=5,g=32,e=5,scale=floor,round=rne,range=symmetric@array2x2,acc=fixed32.16,flow=os,pipe=1,"
                      "align=shared"),
            designs.end());
  EXPECT_NE(std::find(designs.begin(), designs.end(), "baseline:intarray,b=5,w=32,f=16,array=2x2"), designs.end());
  EXPECT_NE(std::find(designs.begin(), designs.end(),
                      "fp8:e4m3,sat=satfinite,block=0@array2x2,acc=fp32,flow=os,pipe=1"), designs.end());
  EXPECT_NE(std::find(designs.begin(), designs.end(),
                      "gse:b=5,g=32,e=5,scale=floor,round=rne,range=symmetric@pe,acc=fp32,flow=os,pipe=1"),
            designs.end());
  EXPECT_EQ(std::find(designs.begin(), designs.end(), "int8:per=channel@array2x2,acc=fixed32.0,flow=os,pipe=1"),
            designs.end());
  // PE points come first, the arrays (and their INT-b array references) last.
  EXPECT_NE(designs.back().find("array=8x8"), std::string::npos);
  EXPECT_NE(designs[designs.size() - 3].find("@array8x8"), std::string::npos);
  // No amortisation points without a shape, or when the shape is a level of the grid anyway.
  SweepGrid without = grid;
  without.amortisation_array.clear();
  EXPECT_EQ(sweep_designs(without, 5).size(), designs.size() - 3);
  SweepGrid at_level = grid;
  at_level.levels = {"pe", "array8x8"};
  EXPECT_EQ(sweep_designs(at_level, 5).size(), designs.size() - 3);
  grid.array_all_formats = grid.all_iso = true;
  // Everything: 10 formats at 2 levels, 6 fp32 GSE PEs, 12 baselines, 2 siblings, 6 shared-column
  // arrays, 12 INT-b arrays, and the 3 amortisation points.
  EXPECT_EQ(sweep_designs(grid, 5).size(), 20u + 6u + 12u + 2u + 6u + 12u + 3u);
  EXPECT_EQ(natural_accumulator("gse:b=4"), "fixed32.16");
  EXPECT_EQ(natural_accumulator("int8"), "fixed32.0");
  EXPECT_EQ(natural_accumulator("bf16"), "fp32");
  EXPECT_EQ(parse_bit_range("3..5"), (std::vector<int>{3, 4, 5}));
  EXPECT_EQ(parse_bit_range("4,6"), (std::vector<int>{4, 6}));
  EXPECT_THROW(parse_bit_range("9..3"), UsageError);
  EXPECT_THROW(parse_bit_range("x"), UsageError);
  EXPECT_THROW(parse_bit_range("1..4"), UsageError);
}

TEST(Sweep, CliRejectsBadArguments) {
  fs::path base = scratch_dir("sweep_bad");
  for (std::vector<std::string> argv : {
           std::vector<std::string>{GSQHW_CLI, "sweep", "--bits", "9", "--out", (base / "a").string()},
           std::vector<std::string>{GSQHW_CLI, "sweep", "--jobs", "0", "--out", (base / "b").string()},
           std::vector<std::string>{GSQHW_CLI, "sweep", "--designs", "nonsense", "--out", (base / "c").string()},
           std::vector<std::string>{GSQHW_CLI, "sweep", "--liberty", "/no/such.lib", "--out", (base / "d").string()},
           std::vector<std::string>{GSQHW_CLI, "report", "--db", (base / "missing.sqlite").string()}}) {
    EXPECT_EQ(wait_exit(spawn(argv, base / "bad.log")), 2) << argv[1] << " " << argv[2] << "\n" << read_file(base / "bad.log");
    EXPECT_NE(read_file(base / "bad.log").find("error"), std::string::npos) << read_file(base / "bad.log");
  }
}

// Only the headline PE pair gets the headline activity source; every other point, baselines
// and sibling units included, keeps the sweep's own.
TEST(Sweep, HeadlinePePairAloneUsesTheHeadlineActivitySource) {
  SweepOptions options;
  // The defaults: vectorless everywhere (RTL activity is not quoted, gate level costs minutes a point).
  EXPECT_EQ(options.activity, "none");
  EXPECT_EQ(options.headline_activity, "none");
  EXPECT_EQ(point_activity(options, "fp8:e4m3@pe,acc=fp32", 7), "none");
  options.activity = "rtl";
  options.headline_activity = "gate";
  std::vector<std::string> designs = sweep_designs(SweepGrid{}, 7);
  std::set<std::string> gate;
  for (const auto& d : designs)
    if (point_activity(options, d, 7) == "gate") gate.insert(d);
  EXPECT_EQ(gate, (std::set<std::string>{
                      "gse:b=7,g=32,e=5,scale=floor,round=rne,range=symmetric@pe,acc=fixed32.16,flow=os,pipe=1",
                      "fp8:e4m3,sat=satfinite,block=0@pe,acc=fp32,flow=os,pipe=1"}));
  EXPECT_EQ(point_activity(options, "gse:b=6,g=32,e=5,scale=floor,round=rne,range=symmetric@pe,acc=fixed32.16", 7), "rtl");
  EXPECT_EQ(point_activity(options, "gse:b=7,g=32,e=5,scale=floor,round=rne,range=symmetric@pe,acc=fp32", 7), "rtl");
  EXPECT_EQ(point_activity(options, "fp8:e4m3@array2x2,acc=fp32", 7), "rtl");
  EXPECT_EQ(point_activity(options, "baseline:intmac,b=7,w=32", 7), "rtl");
  EXPECT_EQ(point_activity(options, "lota:n=4,g=64,r=8,omega=2,seed=1@pe", 7), "rtl");
  EXPECT_EQ(point_activity(options, "fp8:e4m3@pe,acc=fp32", 0), "rtl") << "no headline width, no pair";
  // The amortisation points (`--amortisation-array 8x8`) are there for their area: vectorless.
  options.grid.amortisation_array = "8x8";
  EXPECT_EQ(point_activity(options, "baseline:intarray,b=7,w=32,f=0,array=8x8", 7), "none");
  EXPECT_EQ(point_activity(options, "gse:b=7@array8x8,acc=fixed32.16,align=shared", 7), "none");
  EXPECT_EQ(point_activity(options, "baseline:intarray,b=7,w=32,f=0,array=2x2", 7), "rtl");
  options.headline_activity.clear();
  EXPECT_EQ(point_activity(options, "fp8:e4m3@pe,acc=fp32", 7), "rtl") << "empty: same as --activity";
}

TEST(Sweep, CliRejectsAnUnknownHeadlineActivity) {
  fs::path base = scratch_dir("sweep_bad_headline");
  EXPECT_EQ(wait_exit(spawn({GSQHW_CLI, "sweep", "--headline-activity", "spice", "--out", (base / "o").string()},
                            base / "bad.log")),
            2)
      << read_file(base / "bad.log");
  EXPECT_NE(read_file(base / "bad.log").find("--headline-activity"), std::string::npos) << read_file(base / "bad.log");
}

json point(const std::string& family, const std::string& variant, int bits, const std::string& level,
           const std::string& acc_kind, double sqnr, double area, double power) {
  // The format spec as the sweep stores it: reports label a row by its format unit.
  std::string format = family;
  if (family == "gse") format = fmt::format("gse:b={}", bits);
  if (family == "fp8") format = "fp8:" + variant.substr(variant.find('-') + 1);
  return {{"status", "ok"}, {"family", family}, {"variant", variant}, {"format", format}, {"bits", bits},
          {"level", level}, {"rows", level == "pe" ? 1 : 4}, {"cols", level == "pe" ? 1 : 4}, {"acc_kind", acc_kind},
          {"sqnr_db", sqnr}, {"area_um2", area}, {"power_mw", power}};
}

std::string format_key(const json& r) {
  return fmt::format("{}-{}-{}-{}-{}-{}", r.value("variant", ""), r.value("bits", 0), r.value("level", ""),
                     r.value("acc_kind", ""), r.value("architecture", ""), r.value("area_um2", 0.0));
}

TEST(Headline, SmallestAccurateWidthAtTheLargestCommonLevel) {
  std::vector<json> results = {
      point("fp8", "fp8-e4m3", 8, "pe", "fp32", 30.0, 1000, 2.0),
      point("fp8", "fp8-e4m3", 8, "array", "fp32", 30.0, 16000, 32.0),
      point("gse", "gse", 4, "pe", "fixed", 25.0, 300, 0.5),
      point("gse", "gse", 5, "pe", "fixed", 31.0, 400, 0.8),
      point("gse", "gse", 6, "pe", "fixed", 37.0, 500, 1.0),
      point("gse", "gse", 5, "array", "fixed", 31.0, 4000, 8.0),
      point("gse", "gse", 5, "pe", "fp32", 31.5, 800, 1.6),
  };
  Headline h = compute_headline(results);
  ASSERT_TRUE(h.found);
  EXPECT_EQ(h.bits, 5);
  EXPECT_EQ(h.natural_level, "array4x4");
  EXPECT_DOUBLE_EQ(h.natural_area_ratio, 4.0);
  EXPECT_DOUBLE_EQ(h.natural_power_ratio, 4.0);
  EXPECT_EQ(h.natural_power_source, "vectorless");
  ASSERT_TRUE(h.iso_available);
  EXPECT_DOUBLE_EQ(h.iso_area_ratio, 1000.0 / 800.0);

  // No GSE width as accurate as FP8: said plainly, no numbers.
  results[3]["sqnr_db"] = 29.0;
  results[4]["sqnr_db"] = 29.5;
  Headline none = compute_headline(results);
  EXPECT_FALSE(none.found);
  EXPECT_NE(none.explanation.find("no GSE-INT width"), std::string::npos);
}

// RTL-activity power overstated an FP8 PE's power 3.5x against gate-level activity (OpenSTA
// propagates the port activity through the datapath), so only gate-level activity is quoted.
TEST(Headline, QuotesGateLevelActivityPowerButNotRtlActivityPower) {
  auto with_activity = [](json r, const std::string& source, double activity_mw) {
    r["activity_source"] = source;
    r["power_activity_mw"] = activity_mw;
    return r;
  };
  std::vector<json> results = {point("fp8", "fp8-e4m3", 8, "pe", "fp32", 30.0, 1000, 2.0),
                               point("gse", "gse", 5, "pe", "fixed", 31.0, 400, 0.5)};
  results[0] = with_activity(results[0], "rtl", 40.0);
  results[1] = with_activity(results[1], "rtl", 1.0);
  Headline rtl = compute_headline(results);
  ASSERT_TRUE(rtl.found);
  EXPECT_EQ(rtl.natural_power_source, "vectorless");
  EXPECT_DOUBLE_EQ(rtl.natural_power_ratio, 2.0 / 0.5);

  results[0] = with_activity(results[0], "gate", 6.0);
  results[1] = with_activity(results[1], "gate", 1.0);
  Headline gate = compute_headline(results);
  ASSERT_TRUE(gate.found);
  EXPECT_EQ(gate.natural_power_source, "gate-level activity");
  EXPECT_DOUBLE_EQ(gate.natural_power_ratio, 6.0);
}

// A results file holding `results` as one sweep.
void store(const fs::path& db_path, const std::vector<json>& results) {
  ResultsDb db(db_path);
  std::vector<std::string> keys;
  for (const auto& r : results) {
    std::string key = ResultsDb::make_key(r.value("design", format_key(r)), r.value("liberty_hash", "h"), "t", "s");
    keys.push_back(key);
    db.put({key, r.value("design", format_key(r)), "h", "t", "s", r.value("status", "ok"), r, ""});
  }
  db.begin_sweep(json::object(), keys);
}

TEST(Report, ArrayAgainstThePlainIntArrayPerPe) {
  json shared = point("gse", "gse", 5, "array", "fixed", 31.0, 16 * 110.0, 8.0);
  shared["architecture"] = "shared-column";
  shared["acc"] = "fixed32.16";
  json per_pe = point("gse", "gse", 5, "array", "fixed", 31.0, 16 * 200.0, 9.0);
  per_pe["architecture"] = "per-PE";
  per_pe["acc"] = "fixed32.16";
  json plain = point("baseline", "int-array", 5, "array", "fixed", 0, 16 * 100.0, 7.0);
  plain.erase("sqnr_db");
  plain["acc"] = "fixed32.0";
  json plain16 = point("baseline", "int-array", 5, "array", "fixed", 0, 16 * 80.0, 6.0);
  plain16.erase("sqnr_db");
  plain16["acc"] = "fixed32.16";
  json bare = point("baseline", "bare-mac", 5, "pe", "fixed", 0, 50.0, 0.1);
  bare.erase("sqnr_db");
  std::vector<json> results = {point("fp8", "fp8-e4m3", 8, "pe", "fp32", 30.0, 1000, 2.0),
                               point("gse", "gse", 5, "pe", "fixed", 31.0, 400, 0.8), shared, per_pe, plain, plain16, bare};
  fs::path dir = scratch_dir("report_array");
  store(dir / "results.sqlite", results);
  std::string md = read_file(write_report(dir / "results.sqlite", dir));
  EXPECT_NE(md.find("GSE-INT array vs a plain INT-b array of the same shape"), std::string::npos) << md;
  // Against the 32-bit integer accumulator (100 per PE) 110 meets the target and 200 does not;
  // the fixed32.16 INT array (80 per PE) and the bare MAC (50) are shown beside.
  EXPECT_NE(md.find("| 4x4 | 5 | fixed32.16 | shared-column | 110 | 100 | 1.10 | yes | 80 | 1.38 | 50 | 2.20 |"),
            std::string::npos) << md;
  EXPECT_NE(md.find("| 4x4 | 5 | fixed32.16 | per-PE | 200 | 100 | 2.00 | **no** | 80 | 2.50 | 50 | 4.00 |"),
            std::string::npos) << md;
  EXPECT_NE(md.find("4x4 shared-column GSE-INT5: 1.100x the INT-5 array with a 32-bit integer accumulator "
                    "(meets 1.15x), 1.375x the one with fixed32.16"),
            std::string::npos) << md;
}

TEST(Report, CombinesResultFilesOfSeveralLibraries) {
  auto library = [](std::vector<json> results, const std::string& name) {
    for (auto& r : results) r["liberty"] = name, r["liberty_hash"] = name;
    return results;
  };
  std::vector<json> base = {point("fp8", "fp8-e4m3", 8, "pe", "fp32", 30.0, 1000, 2.0),
                            point("gse", "gse", 5, "pe", "fixed", 31.0, 400, 0.5),
                            point("gse", "gse", 5, "pe", "fp32", 31.0, 800, 1.0)};
  fs::path dir = scratch_dir("report_libraries");
  store(dir / "a.sqlite", library(base, "osu018"));
  auto other = library(base, "asap7");
  other[1]["area_um2"] = 250.0;  // 4x on this library
  store(dir / "b.sqlite", other);
  std::string md = read_file(write_report(std::vector<fs::path>{dir / "a.sqlite", dir / "b.sqlite"}, dir));
  EXPECT_NE(md.find("Headline on every library"), std::string::npos) << md;
  EXPECT_NE(md.find("| osu018 | 5 | natural accumulators | pe | 4.00x | 2.50x | vectorless | 5x / 11x |"),
            std::string::npos) << md;
  EXPECT_NE(md.find("| asap7 | 5 | natural accumulators | pe | 4.00x | 4.00x | vectorless | 5x / 11x |"),
            std::string::npos) << md;
  EXPECT_NE(md.find("| asap7 | 5 | both fp32 | pe | 2.00x | 1.25x |"), std::string::npos) << md;
}

// The headline as one table: a row per claim and setting (library, array, accumulators, power
// source, clock), one verdict per row, power compared within one source, the trace set named
// next to the SQNR figures, INT8 on the Pareto front discussed, and plots from one power source.
TEST(Report, HeadlineIsOneTableWithAVerdictPerClaimAndSetting) {
  auto at = [](json r, double clock_ns = 30) {
    r["liberty"] = "osu018";
    r["clock_ns"] = clock_ns;
    r["trace_set"] = "builtin-tiny";
    r["traces"] = 56;
    r["pj_per_mac_vectorless"] = r["power_mw"].get<double>() * 30;  // any number of the same order
    return r;
  };
  auto gate = [](json r, double mw) {
    r["activity_source"] = "gate";
    r["power_activity_mw"] = mw;
    return r;
  };
  json fp8_pe = gate(at(point("fp8", "fp8-e4m3", 8, "pe", "fp32", 30.0, 1000, 2.0)), 6.0);
  fp8_pe["acc"] = "fp32";
  json gse_pe = gate(at(point("gse", "gse", 5, "pe", "fixed", 31.0, 400, 0.5)), 1.0);
  gse_pe["acc"] = "fixed32.16";
  json gse_fp32 = at(point("gse", "gse", 5, "pe", "fp32", 31.0, 1250, 2.5));
  json fp8_array = at(point("fp8", "fp8-e4m3", 8, "array", "fp32", 30.0, 16000, 30.0));
  json gse_array = at(point("gse", "gse", 5, "array", "fixed", 31.0, 8000, 10.0));
  gse_array["architecture"] = "shared-column";
  json int8 = at(point("int8", "int8", 8, "pe", "fixed", 33.0, 300, 0.4));
  json ptq = at(point("ptq161", "ptq1.61", 1, "pe", "fixed", 20.0, 900, 0.3));
  ptq["bits_per_weight"] = 1.61;
  ptq["format"] = "ptq161";
  std::vector<json> results = {fp8_pe, gse_pe, gse_fp32, fp8_array, gse_array, int8, ptq};
  fs::path dir = scratch_dir("report_headline");
  store(dir / "results.sqlite", results);
  std::string md = read_file(write_report(dir / "results.sqlite", dir));

  // The SQNR figures with the traces they are over.
  EXPECT_NE(md.find("**b = 5** (trace SQNR 31.00 dB vs FP8 E4M3 30.00 dB, over all 56 GEMMs (forward and backward) "
                    "of the built-in synthetic tiny LoRA traces"),
            std::string::npos) << md;
  EXPECT_NE(md.find("| claim (paper) | FP8 / GSE-INT | verdict | library | array | accumulators | activity (power source) "
                    "| clock |"),
            std::string::npos) << md;
  const std::string natural = "GSE-INT5 fixed32.16 vs FP8 E4M3 fp32";
  // Power: gate-level on both PEs (6 / 1); the 4x4 arrays vectorless on both (30 / 10), not
  // FP8's gate-level figure over GSE-INT's vectorless one; both on fp32: 2 / 2.5.
  for (const std::string& row :
       {"| power (5x less) | 6.00x | **reproduced** | osu018 | single PE | " + natural + " | gate-level activity | 30 ns |",
        "| power (5x less) | 3.00x | **not reproduced** (60% of the claimed 5x) | osu018 | 4x4 array | " + natural +
            " | vectorless | 30 ns |",
        std::string("| power (5x less) | 0.80x | **reversed**: GSE-INT is 1.25x FP8's | osu018 | single PE | "
                    "GSE-INT5 fp32 vs FP8 E4M3 fp32 | vectorless | 30 ns |"),
        "| area (11x less) | 2.50x | **not reproduced** (23% of the claimed 11x) | osu018 | single PE | " + natural +
            " | - | 30 ns |",
        "| area (11x less) | 2.00x | **not reproduced** (18% of the claimed 11x) | osu018 | 4x4 array | " + natural +
            " | - | 30 ns |",
        std::string("| area (11x less) | 0.80x | **reversed**: GSE-INT is 1.25x FP8's | osu018 | single PE | "
                    "GSE-INT5 fp32 vs FP8 E4M3 fp32 | - | 30 ns |")})
    EXPECT_NE(md.find(row), std::string::npos) << row << "\n" << md;
  // One sentence per claim, naming where it holds and where not; never "reproduced" for a
  // claim in a setting whose row says otherwise.
  EXPECT_NE(md.find("Power (5x): reproduced in single PE, " + natural + ", gate-level activity (6.00x); not in 4x4 array, " +
                    natural + ", vectorless (3.00x)"),
            std::string::npos) << md;
  EXPECT_NE(md.find("Area (11x): reproduced in no measured setting."), std::string::npos) << md;
  EXPECT_NE(md.find("the gap reverses"), std::string::npos) << md;
  EXPECT_EQ(md.find("gap shrinks"), std::string::npos) << md;
  // INT8 is more accurate and smaller than both: on the front, and said so in the headline.
  EXPECT_NE(md.find("INT8 is on the PE-level Pareto front of trace SQNR against area"), std::string::npos) << md;
  EXPECT_NE(md.find("INT8 is both more accurate and smaller than GSE-INT b* and FP8 E4M3 here"), std::string::npos) << md;
  // A vectorless figure is marked (v) in every column it is in: power, pJ/MAC and their ratios.
  EXPECT_NE(md.find("| 0.4 (v) | 12 (v) | 0.30 | 0.20 (v) | 0.20 (v) |"), std::string::npos) << md;
  // With gate-level power on the PE pair, the headline does not call every ratio vectorless; the
  // largest GSE-INT array is 4x4, so the report says how to add the 8-row amortisation check.
  EXPECT_EQ(md.find("Every power ratio here is vectorless"), std::string::npos) << md;
  EXPECT_NE(md.find("`gsqhw sweep --amortisation-array 8x8` adds the check"), std::string::npos) << md;
  {
    // The default sweep's case: no gate-level activity anywhere. The headline says so, and how to add it.
    std::vector<json> vectorless = results;
    for (auto& r : vectorless) r.erase("activity_source");
    fs::path vdir = scratch_dir("report_headline_vectorless");
    store(vdir / "results.sqlite", vectorless);
    const std::string vmd = read_file(write_report(vdir / "results.sqlite", vdir));
    EXPECT_NE(vmd.find("Every power ratio here is vectorless on both sides"), std::string::npos) << vmd;
    EXPECT_NE(vmd.find("`gsqhw sweep --headline-activity gate` adds it"), std::string::npos) << vmd;
    EXPECT_NE(vmd.find("| power (5x less) | 4.00x | **reproduced** | osu018 | single PE | " + natural + " | vectorless |"),
              std::string::npos) << vmd;
  }

  // The power plot holds vectorless figures only (FP8 E4M3's 2 mW, not its gate-level 6 mW),
  // and PTQ1.61 stands at its 1.61 bits per weight, inside the bits axis.
  std::string power_points, area_points;
  for (const auto& entry : fs::directory_iterator(dir / "plots")) {
    const std::string name = entry.path().filename().string();
    if (name.rfind("power_vs_bits_", 0) == 0) power_points += read_file(entry.path());
    if (name.rfind("area_vs_bits_", 0) == 0) area_points += read_file(entry.path());
  }
  EXPECT_NE(power_points.find("8 2 \"FP8 E4M3\""), std::string::npos) << power_points;
  EXPECT_EQ(power_points.find("8 6 "), std::string::npos) << power_points;
  EXPECT_NE(area_points.find("1.61 900 \"ptq161\""), std::string::npos) << area_points;
  EXPECT_NE(read_file(dir / "plots" / "plots.gp").find("set xrange [0:17]"), std::string::npos);
}

// results.csv: pj_per_mac holds only the gate-level figure the report quotes, a column names
// what it holds, and an RTL-activity figure goes to its own untrusted column.
TEST(Sweep, CsvEnergyColumnNamesItsSource) {
  json gate = point("gse", "gse", 5, "pe", "fixed", 31.0, 400, 0.5);
  gate["activity_source"] = "gate";
  gate["pj_per_mac"] = 1.25;
  json rtl = point("fp8", "fp8-e4m3", 8, "pe", "fp32", 30.0, 1000, 2.0);
  rtl["activity_source"] = "rtl";
  rtl["pj_per_mac"] = 9.5;
  json none = point("int8", "int8", 8, "pe", "fixed", 33.0, 300, 0.4);
  none["pj_per_mac_vectorless"] = 0.75;
  fs::path dir = scratch_dir("csv_energy");
  store(dir / "results.sqlite", {gate, rtl, none});
  export_results(dir / "results.sqlite", dir / "results.csv", dir / "results.json");
  std::istringstream lines(read_file(dir / "results.csv"));
  std::string header_line;
  std::getline(lines, header_line);
  auto fields = [](const std::string& line) {  // no quoted commas in these rows
    std::vector<std::string> out;
    std::stringstream ss(line);
    for (std::string f; std::getline(ss, f, ',');) out.push_back(f);
    if (!line.empty() && line.back() == ',') out.push_back("");
    return out;
  };
  const auto header = fields(header_line);
  auto column = [&](const std::string& name) {
    return static_cast<size_t>(std::find(header.begin(), header.end(), name) - header.begin());
  };
  std::map<std::string, std::vector<std::string>> by_family;
  for (std::string line; std::getline(lines, line);) {
    auto row = fields(line);
    row.resize(header.size());
    by_family[row[column("family")]] = row;
  }
  ASSERT_EQ(by_family.size(), 3u);
  EXPECT_EQ(by_family["gse"][column("pj_per_mac")], "1.25");
  EXPECT_EQ(by_family["gse"][column("pj_per_mac_source")], "gate-level activity");
  EXPECT_EQ(by_family["fp8"][column("pj_per_mac")], "");
  EXPECT_EQ(by_family["fp8"][column("pj_per_mac_rtl_activity_untrusted")], "9.5");
  EXPECT_NE(by_family["fp8"][column("pj_per_mac_source")].find("RTL activity is not trusted"), std::string::npos);
  EXPECT_EQ(by_family["int8"][column("pj_per_mac")], "");
  EXPECT_EQ(by_family["int8"][column("pj_per_mac_vectorless")], "0.75");
  EXPECT_NE(by_family["int8"][column("pj_per_mac_source")].find("vectorless only"), std::string::npos);
}

}  // namespace
}  // namespace gsqhw::synth
