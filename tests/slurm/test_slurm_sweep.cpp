// `gsqhw sweep --executor slurm` against a real single-node Slurm cluster (slurm_cluster.h):
// results equal the local executor's bit for bit; a task killed with scancel is recorded with
// its Slurm state and re-run by --retry-errors; a controller killed with SIGKILL and attached
// again finishes with nothing lost or duplicated; a second controller on the folder is refused.
// The cluster is started by each test and stopped after it, also on failure; when it cannot
// start, the test fails with the reason.
#include <gtest/gtest.h>

#include <signal.h>

#include <chrono>
#include <map>
#include <set>
#include <thread>

#include <nlohmann/json.hpp>

#include "../synth/test_util.h"
#include "../train/shared_model.h"
#include "slurm_cluster.h"
#include "synth/results_db.h"

namespace gsqhw::synth {
namespace {
namespace fs = std::filesystem;
using nlohmann::json;
using test::read_file;
using test::scratch_dir;
using test::spawn;
using test::wait_exit;

// Cheap points: baselines go through the real Yosys + OpenSTA flow (area, timing, vectorless
// power) in about a second each on a quiet machine; a design point would add a Verilator build
// and co-simulation (a minute on a cold cache), which the local sweep tests cover.
const std::vector<std::string> kDesigns = {"baseline:bare,b=3,w=24", "baseline:intmac,b=3,w=24",
                                           "baseline:bare,b=4,w=24"};

class SlurmSweep : public ::testing::Test {
 protected:
  void SetUp() override {
    try {
      cluster_.start();
    } catch (const std::exception& e) {
      FAIL() << "the Slurm test cluster cannot start, so the Slurm executor is untested: " << e.what();
    }
  }
  void TearDown() override { cluster_.stop(); }

  std::vector<std::string> sweep_argv(const fs::path& out, const std::vector<std::string>& designs,
                                      const std::vector<std::string>& extra) const {
    std::vector<std::string> argv = {GSQHW_CLI, "sweep", "--quiet", "--no-report", "--activity", "none",
                                     "--out", out.string(), "--cache", (out.parent_path() / "cache").string(),
                                     "--designs"};
    argv.insert(argv.end(), designs.begin(), designs.end());
    argv.insert(argv.end(), extra.begin(), extra.end());
    return argv;
  }

  int run(const std::vector<std::string>& argv, const fs::path& log) { return wait_exit(spawn(argv, log)); }

  gsqhw::test::SlurmCluster cluster_;
};

std::map<std::string, ResultRow> rows_by_key(const fs::path& db_path) {
  ResultsDb db(db_path);
  std::map<std::string, ResultRow> rows;
  for (auto& row : db.all()) rows.emplace(row.key, row);
  return rows;
}

// A result without its run times (wall-clock, different on every run) and with the output
// folder (different for the two sweeps, part of file paths such as the netlist's) as <out>.
json comparable(json result, const fs::path& out) {
  for (auto it = result.begin(); it != result.end();) {
    const std::string& key = it.key();
    if (key.size() >= 7 && key.compare(key.size() - 7, 7, "seconds") == 0) {
      it = result.erase(it);
      continue;
    }
    if (it->is_string()) {
      std::string text = it->get<std::string>();
      for (size_t at; (at = text.find(out.string())) != std::string::npos;) text.replace(at, out.string().size(), "<out>");
      *it = text;
    }
    ++it;
  }
  return result;
}

// The array tasks Slurm currently lists for jobs named gsqhw-sweep-*: "job_index state".
std::vector<std::pair<std::string, std::string>> queued_tasks() {
  std::string out = gsqhw::test::SlurmCluster::output_of({"squeue", "-h", "-r", "-o", "%j|%F_%K|%T"});
  std::vector<std::pair<std::string, std::string>> tasks;
  std::stringstream lines(out);
  std::string line;
  while (std::getline(lines, line)) {
    auto a = line.find('|'), b = line.rfind('|');
    if (a == std::string::npos || a == b || line.rfind("gsqhw-sweep-", 0) != 0) continue;
    tasks.emplace_back(line.substr(a + 1, b - a - 1), line.substr(b + 1));
  }
  return tasks;
}

TEST_F(SlurmSweep, ThreePointsEqualTheLocalExecutorsBitForBit) {
  fs::path base = scratch_dir("slurm_equal");
  ASSERT_EQ(run(sweep_argv(base / "local", kDesigns, {"--jobs", "2"}), base / "local.log"), 0)
      << read_file(base / "local.log");
  ASSERT_EQ(run(sweep_argv(base / "slurm", kDesigns, {"--executor", "slurm", "--max-parallel", "2", "--poll", "1"}),
                base / "slurm.log"),
            0)
      << read_file(base / "slurm.log");

  auto local = rows_by_key(base / "local/results.sqlite");
  auto slurm = rows_by_key(base / "slurm/results.sqlite");
  ASSERT_EQ(local.size(), kDesigns.size());
  ASSERT_EQ(slurm.size(), kDesigns.size()) << read_file(base / "slurm.log");
  for (const auto& [key, row] : local) {
    ASSERT_TRUE(slurm.count(key)) << "the Slurm sweep lacks " << key;
    EXPECT_EQ(row.status, "ok") << row.result.dump();
    EXPECT_EQ(slurm.at(key).status, row.status);
    // Every number and string of the result, bit for bit (JSON keeps doubles round-trip exact).
    EXPECT_EQ(comparable(slurm.at(key).result, fs::absolute(base / "slurm")).dump(),
              comparable(row.result, fs::absolute(base / "local")).dump())
        << key;
    EXPECT_GT(row.result.value("area_um2", 0.0), 0.0) << key;
  }
  // One job array of three tasks, each of which wrote its point's result file.
  EXPECT_TRUE(fs::exists(base / "slurm/slurm/submissions/0001.json"));
  EXPECT_FALSE(fs::exists(base / "slurm/slurm/submissions/0002.json"));
  int result_files = 0;
  for (const auto& entry : fs::directory_iterator(base / "slurm/slurm/results"))
    result_files += entry.path().extension() == ".json";
  EXPECT_EQ(result_files, 3);
  // A warm re-run submits nothing.
  ASSERT_EQ(run(sweep_argv(base / "slurm", kDesigns, {"--executor", "slurm", "--poll", "1"}), base / "rerun.log"), 0);
  EXPECT_FALSE(fs::exists(base / "slurm/slurm/submissions/0002.json")) << read_file(base / "rerun.log");
  EXPECT_NE(read_file(base / "rerun.log").find("3 reused"), std::string::npos) << read_file(base / "rerun.log");
}

TEST_F(SlurmSweep, ATaskKilledWithScancelIsRecordedAndRerunByRetryErrors) {
  fs::path base = scratch_dir("slurm_scancel");
  fs::path out = base / "sweep";
  // One task at a time: the 8-bit INT MAC (task 0) synthesizes for seconds, long enough to be
  // seen running and cancelled.
  const std::vector<std::string> designs = {"baseline:intmac,b=8,w=32", "baseline:bare,b=3,w=24"};
  const auto argv = sweep_argv(out, designs, {"--executor", "slurm", "--max-parallel", "1", "--poll", "1"});
  pid_t controller = spawn(argv, base / "first.log");
  ASSERT_GT(controller, 0);
  std::string cancelled;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (cancelled.empty() && std::chrono::steady_clock::now() < deadline) {
    for (const auto& [task, state] : queued_tasks())
      if (state == "RUNNING" && task.size() > 2 && task.compare(task.size() - 2, 2, "_0") == 0) cancelled = task;
    if (cancelled.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_FALSE(cancelled.empty()) << "task 0 never ran: " << read_file(base / "first.log");
  gsqhw::test::SlurmCluster::output_of({"scancel", cancelled});
  ASSERT_EQ(wait_exit(controller), 0) << read_file(base / "first.log");

  auto rows = rows_by_key(out / "results.sqlite");
  ASSERT_EQ(rows.size(), 2u) << read_file(base / "first.log");
  std::string survivor_finished_at;
  for (const auto& [key, row] : rows) {
    if (row.design.find("intmac") != std::string::npos) {
      EXPECT_EQ(row.status, "error");
      EXPECT_EQ(row.result.value("slurm_task", ""), cancelled);
      EXPECT_EQ(row.result.value("slurm_state", ""), "CANCELLED") << row.result.dump();
      EXPECT_NE(row.result.value("error", "").find("CANCELLED"), std::string::npos) << row.result.dump();
      EXPECT_NE(row.result.value("error", "").find("--retry-errors"), std::string::npos);
    } else {
      EXPECT_EQ(row.status, "ok") << row.result.dump();
      survivor_finished_at = row.finished_at;
    }
  }
  EXPECT_NE(read_file(base / "first.log").find("1 failed"), std::string::npos) << read_file(base / "first.log");

  // Without --retry-errors the error stands; with it only the cancelled point runs again.
  ASSERT_EQ(run(argv, base / "again.log"), 0);
  EXPECT_FALSE(fs::exists(out / "slurm/submissions/0002.json")) << read_file(base / "again.log");
  auto retry = argv;
  retry.push_back("--retry-errors");
  ASSERT_EQ(run(retry, base / "retry.log"), 0) << read_file(base / "retry.log");
  json second = json::parse(read_file(out / "slurm/submissions/0002.json"));
  ASSERT_EQ(second["points"].size(), 1u);
  EXPECT_NE(second["points"][0]["design"].get<std::string>().find("intmac"), std::string::npos);
  rows = rows_by_key(out / "results.sqlite");
  ASSERT_EQ(rows.size(), 2u);
  for (const auto& [key, row] : rows) {
    EXPECT_EQ(row.status, "ok") << row.result.dump();
    if (row.design.find("bare") != std::string::npos) {
      EXPECT_EQ(row.finished_at, survivor_finished_at);
    }
  }
}

TEST_F(SlurmSweep, AControllerKilledWithSigkillIsAttachedAgainWithNothingLostOrDuplicated) {
  fs::path base = scratch_dir("slurm_sigkill");
  fs::path out = base / "sweep";
  const auto argv = sweep_argv(out, kDesigns, {"--executor", "slurm", "--max-parallel", "1", "--poll", "1"});
  pid_t controller = spawn(argv, base / "first.log");
  ASSERT_GT(controller, 0);
  // A second controller on the same folder is refused while the first holds it (its job is
  // submitted once the first one's submission file exists).
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(90);
  while (std::chrono::steady_clock::now() < deadline && !fs::exists(out / "slurm/submissions/0001.job"))
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  int second = run(argv, base / "second.log");
  EXPECT_EQ(second, 2) << read_file(base / "second.log");
  EXPECT_NE(read_file(base / "second.log").find("another gsqhw sweep"), std::string::npos) << read_file(base / "second.log");
  // Wait for the first merged point, then kill the controller with tasks still queued.
  while (std::chrono::steady_clock::now() < deadline &&
         (!fs::exists(out / "results.sqlite") || rows_by_key(out / "results.sqlite").empty()))
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  ::kill(controller, SIGKILL);
  ASSERT_EQ(wait_exit(controller), 128 + SIGKILL);

  std::map<std::string, std::string> before;  // key -> finished_at of what the killed controller stored
  for (const auto& [key, row] : rows_by_key(out / "results.sqlite")) before[key] = row.finished_at;
  ASSERT_GE(before.size(), 1u);
  ASSERT_LT(before.size(), kDesigns.size()) << "the sweep finished before the controller could be killed";

  // Re-attach: the saved command follows the same job array.
  ASSERT_EQ(run({GSQHW_CLI, "sweep", "--attach", out.string()}, base / "attach.log"), 0) << read_file(base / "attach.log");
  auto rows = rows_by_key(out / "results.sqlite");
  ASSERT_EQ(rows.size(), kDesigns.size()) << read_file(base / "attach.log");
  for (const auto& [key, row] : rows) EXPECT_EQ(row.status, "ok") << row.result.dump();
  for (const auto& [key, finished_at] : before) EXPECT_EQ(rows.at(key).finished_at, finished_at) << key;
  // Nothing resubmitted: one job array, each of its three tasks run once.
  EXPECT_FALSE(fs::exists(out / "slurm/submissions/0002.json"));
  const std::string job = read_file(out / "slurm/submissions/0001.job");
  std::set<std::string> tasks;
  for (const auto& [key, row] : rows) {
    json file;
    for (const auto& entry : fs::directory_iterator(out / "slurm/results")) {
      json j = json::parse(read_file(entry.path()));
      if (j["key"] == key) file = j;
    }
    ASSERT_TRUE(file.is_object()) << "no result file for " << key;
    tasks.insert(file["task"].get<std::string>());
  }
  EXPECT_EQ(tasks.size(), kDesigns.size());
  int runs = 0;  // job-completion log lines of this job's tasks
  std::stringstream lines(read_file(cluster_.jobcomp_log()));
  std::string line;
  while (std::getline(lines, line))
    runs += line.find("ArrayJobId=" + job.substr(0, job.find('\n')) + " ") != std::string::npos;
  EXPECT_EQ(runs, static_cast<int>(kDesigns.size()));
}

TEST_F(SlurmSweep, ATaskOnANodeWithOtherToolVersionsFailsClearly) {
  fs::path base = scratch_dir("slurm_tools");
  fs::path out = base / "sweep";
  // Submit for real (held), then make the controller's recorded Yosys version differ from the
  // node's before the task starts: the task must refuse and say why.
  const auto argv = sweep_argv(out, {"baseline:bare,b=3,w=24"},
                               {"--executor", "slurm", "--detach", "--sbatch-arg=--hold"});
  ASSERT_EQ(run(argv, base / "submit.log"), 0) << read_file(base / "submit.log");
  fs::path submission = out / "slurm/submissions/0001.json";
  json j = json::parse(read_file(submission));
  j["tools"]["yosys"] = "Yosys 0.0 (a different build)";
  std::ofstream(submission) << j.dump(2);
  const std::string job = read_file(out / "slurm/submissions/0001.job");
  gsqhw::test::SlurmCluster::output_of({"scontrol", "release", job.substr(0, job.find('\n'))});
  // --collect takes one look and returns at once, with or without the result.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  std::map<std::string, ResultRow> rows;
  while (rows.empty() && std::chrono::steady_clock::now() < deadline) {
    ASSERT_EQ(run({GSQHW_CLI, "sweep", "--attach", out.string(), "--collect"}, base / "collect.log"), 0)
        << read_file(base / "collect.log");
    rows = rows_by_key(out / "results.sqlite");
    if (rows.empty()) {
      EXPECT_NE(read_file(base / "collect.log").find("still queued or running"), std::string::npos)
          << read_file(base / "collect.log");
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
    }
  }
  ASSERT_EQ(rows.size(), 1u) << read_file(base / "collect.log");
  EXPECT_TRUE(fs::exists(out / "results.csv"));
  const ResultRow& row = rows.begin()->second;
  EXPECT_EQ(row.status, "error");
  const std::string error = row.result.value("error", "");
  EXPECT_NE(error.find("yosys is"), std::string::npos) << error;
  EXPECT_NE(error.find("Yosys 0.0 (a different build)"), std::string::npos) << error;
  EXPECT_NE(error.find("not be comparable"), std::string::npos) << error;
}

// `gsqhw finetune --executor slurm`: one array task per run (FP32 and GSE-INT6) on the real
// stories260K model; the results equal a local run's bit for bit.
TEST_F(SlurmSweep, FinetuneRunsOneTaskPerRunAndEqualsTheLocalRun) {
  GSQHW_REQUIRE_SHARED_MODEL();
  fs::path base = scratch_dir("slurm_finetune");
  {
    std::ofstream text(base / "stories.txt");
    const char* names[] = {"Lily", "Tom", "Max", "Sue"};
    const char* things[] = {"ball", "cat", "tree", "kite"};
    for (int i = 0; i < 80; ++i)
      text << "Once upon a time, " << names[i % 4] << " found a big " << things[(i / 4) % 4] << ". "
           << names[(i + 1) % 4] << " was very happy and played with it all day.\n";
  }
  auto argv = [&](const fs::path& out) {
    return std::vector<std::string>{GSQHW_CLI, "finetune", "--checkpoint",
                                    (gsqhw::test::shared_models() / "stories260K.bin").string(), "--tokenizer",
                                    (gsqhw::test::shared_models() / "tok512.bin").string(), "--data",
                                    (base / "stories.txt").string(), "--formats", "gse:b=6", "--steps", "2",
                                    "--batch", "2", "--seq", "32", "--eval-every", "2", "--save-every", "2",
                                    "--eval-windows", "2", "--rank", "4", "--threads", "1", "--out", out.string()};
  };
  ASSERT_EQ(run(argv(base / "local"), base / "local.log"), 0) << read_file(base / "local.log");
  auto slurm_argv = argv(base / "slurm");
  slurm_argv.insert(slurm_argv.end(), {"--executor", "slurm", "--poll", "1"});
  ASSERT_EQ(run(slurm_argv, base / "slurm.log"), 0) << read_file(base / "slurm.log");

  json tasks = json::parse(read_file(base / "slurm/slurm/tasks.json"));
  ASSERT_EQ(tasks.size(), 2u) << tasks.dump();
  for (const auto& [name, task] : tasks.items()) EXPECT_EQ(task["state"], "COMPLETED") << name << task.dump();
  json local = json::parse(read_file(base / "local/results.json"));
  json slurm = json::parse(read_file(base / "slurm/results.json"));
  ASSERT_EQ(slurm["runs"].size(), local["runs"].size());
  for (size_t i = 0; i < local["runs"].size(); ++i) {
    EXPECT_TRUE(slurm["runs"][i]["complete"].get<bool>());
    EXPECT_EQ(slurm["runs"][i]["label"], local["runs"][i]["label"]);
    EXPECT_EQ(slurm["runs"][i]["evals"].dump(), local["runs"][i]["evals"].dump());
    EXPECT_EQ(slurm["runs"][i]["gemm_counters"].dump(), local["runs"][i]["gemm_counters"].dump());
  }
  EXPECT_EQ(slurm["iso_accuracy"].dump(), local["iso_accuracy"].dump());
  // Each run trained in its own task: its log says so.
  EXPECT_NE(read_file(base / "slurm.log").find("| fp32 |"), std::string::npos) << read_file(base / "slurm.log");
}

}  // namespace
}  // namespace gsqhw::synth
