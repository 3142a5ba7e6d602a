// LoTA-QAF and PTQ1.61 in the sweep: design strings (and their refusal), co-simulation on a
// LoRA-layer trace (bit-exact, an injected fault caught and reported with design, trace,
// cycle, PE and both values), switching activity, one point end to end on OSU018, and the
// one-table comparison written from a stored results file.
#include <gtest/gtest.h>

#include <fmt/format.h>
#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "gen/lota.h"
#include "base/errors.h"
#include "numerics/format.h"
#include "synth/report.h"
#include "synth/report_siblings.h"
#include "synth/results_db.h"
#include "synth/sibling_cosim.h"
#include "synth/sibling_design.h"
#include "synth/sibling_point.h"
#include "synth/sweep.h"
#include "tests/siblings/random_data.h"
#include "tests/siblings/work_dir.h"
#include "workloads/lora.h"

namespace gsqhw::synth {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

using test::work_dir;

std::string read_text(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A base-GEMM trace held in memory: X tokens x d_in, W d_out x d_in (FP32 originals only).
Trace tiny_trace(int64_t tokens, int64_t d_out, int64_t d_in, uint64_t seed) {
  test::Rng rng(seed);
  Trace t;
  t.name = "T0.q.fwd.base";
  t.a.rows = tokens;
  t.a.cols = d_in;
  t.b.rows = d_out;
  t.b.cols = d_in;
  t.a_fp32 = rng.normals(static_cast<size_t>(tokens * d_in), 1.0);
  t.b_fp32 = rng.normals(static_cast<size_t>(d_out * d_in), 0.05);
  for (int64_t i = 0; i < d_in; i += 7) t.a_fp32[static_cast<size_t>(i)] *= 8;  // a few loud channels
  return t;
}

TEST(SiblingDesign, ParsesCanonicalStringsWithDefaults) {
  SiblingDesign l = SiblingDesign::parse("lota:n=4,g=64,r=8,omega=2");
  EXPECT_EQ(l.str(), "lota:n=4,g=64,r=8,omega=2,seed=1@pe");
  EXPECT_EQ(SiblingDesign::parse(l.str()).str(), l.str());
  EXPECT_EQ(SiblingDesign::parse("lota:r=16").lota.omega, 12.0);  // 0.75 r by default
  SiblingDesign p = SiblingDesign::parse("ptq161:salient=0.25@array4x1");
  EXPECT_EQ(p.str(), "ptq161:salient=0.25,iters=2,k=4096@array4x1");
  EXPECT_EQ(p.macs_per_cycle(), 4);
  EXPECT_EQ(p.level(), "array");
  EXPECT_EQ(SiblingDesign::parse("ptq161:salient=0@pe").rows, 1);
  for (const auto& d : default_sibling_designs()) EXPECT_EQ(SiblingDesign::parse(d).str(), d);
  // The default sweep grid carries them (after the quick PE points, before arrays).
  auto designs = sweep_designs(SweepGrid{}, 6);
  for (const auto& d : default_sibling_designs())
    EXPECT_NE(std::find(designs.begin(), designs.end(), d), designs.end()) << d;
}

TEST(SiblingDesign, RefusesBadStrings) {
  for (const char* bad : {"lota:r=8,omega=8", "lota:r=8,omega=0", "lota:r=8,omega=-1", "lota:omega=nan",
                          "lota:n=5", "lota:g=32", "lota:r=0", "lota:bits=4", "lota:n=4,n=4", "lota:n=four",
                          "lota:n=4@array2x2", "ptq161:salient=1.5", "ptq161:salient=-0.1", "ptq161:rows=4",
                          "ptq161:iters=0", "ptq161:salient=0.2@array4x2", "ptq161:@array0x1", "ptq161:k=0",
                          "ptq161:salient"}) {
    EXPECT_THROW(SiblingDesign::parse(bad), UsageError) << bad;
  }
  try {
    SiblingDesign::parse("lota:r=8,omega=9");
    FAIL();
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("omega"), std::string::npos) << e.what();
  }
  try {
    SiblingDesign::parse("ptq161:salient=2");
    FAIL();
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("[0, 1]"), std::string::npos) << e.what();
  }
}

TEST(SiblingDesign, CliRefusesBadStringsWithExit2) {
  const fs::path dir = work_dir("cli_bad_design");
  for (const char* bad : {"lota:r=8,omega=9", "ptq161:salient=1.2", "lota:colour=red"}) {
    const std::string cmd = fmt::format("{} synth --design '{}' --out {} > {} 2>&1", GSQHW_CLI, bad,
                                        (dir / "out").string(), (dir / "log").string());
    const int status = std::system(cmd.c_str());
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 2) << bad << ": " << read_text(dir / "log");
  }
}

TEST(SiblingCosim, LotaPeBitExactOnATraceWithActivity) {
  const SiblingDesign d = SiblingDesign::parse("lota:n=4,g=64,r=4,omega=1@pe");
  const SiblingCase c = prepare_case(d, tiny_trace(3, 5, 96, 7));  // a partial second group
  EXPECT_GT(c.merged.changed, 0);  // the seeded adapters move codes at omega = 1
  const fs::path dir = work_dir("cosim_lota");
  SiblingSimResult r = simulate_case(d, d.generate(), c, dir / "pe", dir / "pe.vcd");
  EXPECT_TRUE(r.pass) << (r.mismatches.empty() ? "" : r.mismatches.front());
  EXPECT_EQ(r.vectors, 3 * 5 * 96);
  SiblingSimResult m = simulate_merge(d, c, dir / "merge");
  EXPECT_TRUE(m.pass);
  EXPECT_EQ(m.vectors, 5 * 96);

  SwitchingActivity a = activity_from_testbench_vcd(dir / "pe.vcd", "gsqhw_lota_pe");
  EXPECT_EQ(a.cycles, r.cycles);
  ASSERT_TRUE(a.nets.count("in_x[0]"));
  EXPECT_GT(a.nets["in_x[0]"].toggles, 0);
  EXPECT_LE(a.nets["in_valid"].toggles, 1);  // valid every cycle of the stream

  TraceError e;
  add_error(c, e);
  EXPECT_EQ(e.outputs, 15);
  EXPECT_GT(e.sqnr_db, 20);  // INT4 weights, INT8 activations: small error vs W + dW
}

TEST(SiblingCosim, Ptq161ArrayBitExactOnATrace) {
  const SiblingDesign d = SiblingDesign::parse("ptq161:salient=0.25,k=256@array4x1");
  const SiblingCase c = prepare_case(d, tiny_trace(2, 6, 40, 11));  // 6 rows: a padded block
  EXPECT_EQ(c.layer.salient_count(), 10);
  SiblingSimResult r = simulate_case(d, d.generate(), c, work_dir("cosim_ptq161"));
  EXPECT_TRUE(r.pass) << (r.mismatches.empty() ? "" : r.mismatches.front());
  EXPECT_EQ(r.vectors, 2 * 2 * 40);
  // mask 40 + salient codes 4*6*10 + binary codes 6*30 + row scales 6*68 + column scales 16*30
  EXPECT_DOUBLE_EQ(c.storage_bits, 40 + 240 + 180 + 408 + 480);
}

TEST(SiblingCosim, InjectedFaultIsReportedWithDesignTraceCyclePeAndValues) {
  const SiblingDesign lota = SiblingDesign::parse("lota:n=4,g=64,r=4,omega=1@pe");
  const SiblingCase lc = prepare_case(lota, tiny_trace(2, 3, 64, 5));
  rtlcheck::RtlBundle bad = lota.generate();
  auto& text = bad.files.at(0).second;
  const std::string anchor = "q_wide = {9'd0, in_q}";
  ASSERT_NE(text.find(anchor), std::string::npos);
  text.replace(text.find(anchor), anchor.size(), "q_wide = {{9{in_q[3]}}, in_q}");  // sign-extended code
  SiblingSimResult r = simulate_case(lota, bad, lc, work_dir("cosim_lota_fault"));
  ASSERT_FALSE(r.pass);
  ASSERT_FALSE(r.mismatches.empty());
  const std::string& m = r.mismatches.front();
  for (const char* part : {"design lota:n=4,g=64,r=4,omega=1,seed=1@pe", "trace T0.q.fwd.base", "cycle 63",
                           "PE 0", "expected", "got"})
    EXPECT_NE(m.find(part), std::string::npos) << part << " not in: " << m;

  const SiblingDesign ptq = SiblingDesign::parse("ptq161:salient=0.25,k=256@array4x1");
  const SiblingCase pc = prepare_case(ptq, tiny_trace(2, 6, 40, 11));
  rtlcheck::RtlBundle bad_array = ptq.generate();
  auto& pe = bad_array.files.at(0).second;
  const std::string sign = "(in_w[0] ? x9 : -x9)";
  ASSERT_NE(pe.find(sign), std::string::npos);
  pe.replace(pe.find(sign), sign.size(), "x9");  // a binary column that always adds
  SiblingSimResult pr = simulate_case(ptq, bad_array, pc, work_dir("cosim_ptq161_fault"));
  ASSERT_FALSE(pr.pass);
  const std::string& pm = pr.mismatches.front();
  for (const char* part : {"design ptq161:", "trace T0.q.fwd.base", "cycle 39", "PE ", "p_bin", "output", "expected"})
    EXPECT_NE(pm.find(part), std::string::npos) << part << " not in: " << pm;
}

TEST(SiblingPoint, LotaPointEndToEndOnOsu018) {
  // One small base-GEMM trace of the built-in set (k: 32 x 64, 16 tokens) keeps it quick.
  const fs::path cache = default_cache_dir();
  auto files = ensure_builtin_tiny_traces(cache / "traces", parse_format("int8")->spec(),
                                          AccumulatorSpec::parse("fixed32.0"));
  fs::path k_trace;
  for (const auto& f : files)
    if (f.filename() == "L0.k.fwd.base.safetensors") k_trace = f;
  ASSERT_FALSE(k_trace.empty());
  PointRequest request;
  request.design = "lota:n=4,g=64,r=8,omega=2@pe";
  request.traces = {k_trace};
  request.activity = "rtl";
  request.activity_traces = 1;
  request.out_dir = work_dir("point_lota");
  json r = evaluate_point(request);  // dispatches to evaluate_sibling_point
  ASSERT_EQ(r.value("status", ""), "ok") << r.dump(2);
  EXPECT_EQ(r["liberty"], "osu018");
  EXPECT_EQ(r["family"], "lota");
  EXPECT_TRUE(r["cosim_pass"].get<bool>());
  EXPECT_EQ(r["cosim_macs"].get<int64_t>(), 16 * 32 * 64);
  EXPECT_EQ(r["cosim_merge_vectors"].get<int64_t>(), 32 * 64);
  EXPECT_GT(r["area_um2"].get<double>(), 0);
  EXPECT_GT(r["fmax_mhz"].get<double>(), 0);
  EXPECT_GT(r["power_mw"].get<double>(), 0);
  EXPECT_GT(r["power_activity_mw"].get<double>(), 0);
  EXPECT_GT(r["pj_per_mac"].get<double>(), 0);
  EXPECT_GT(r["nets_annotated"].get<int64_t>(), 0);
  EXPECT_EQ(r["activity_cycles"].get<int64_t>(), 16 * 32 * 64);  // measured during the co-simulation
  EXPECT_DOUBLE_EQ(r["bits_per_weight"].get<double>(), 4.5);
  EXPECT_GT(r["sqnr_db"].get<double>(), 10);
  EXPECT_TRUE(fs::exists(request.out_dir / "result.json"));
}

// A stored sweep result: the figures are inputs of the table writer under test.
json stored_point(const std::string& design, const std::string& family, const std::string& variant, int bits,
                  const std::string& acc_kind, double area, double sqnr) {
  return {{"design", design}, {"status", "ok"}, {"family", family}, {"variant", variant}, {"bits", bits},
          {"level", "pe"}, {"rows", 1}, {"cols", 1}, {"acc_kind", acc_kind}, {"acc", acc_kind == "fp32" ? "fp32" : "fixed32.16"},
          {"format", design.substr(0, design.find('@'))}, {"macs_per_cycle", 1}, {"area_um2", area},
          {"power_mw", area / 1000}, {"pj_per_mac_vectorless", area / 100}, {"sqnr_db", sqnr},
          {"bits_per_element", bits + 0.2}, {"liberty", "osu018"}, {"clock_ns", 30}};
}

TEST(SiblingReport, OneTableFromAStoredResultsFile) {
  const fs::path dir = work_dir("report_table");
  {
    ResultsDb db(dir / "results.sqlite");
    std::vector<json> points = {
        stored_point("gse:b=6,g=32,e=5@pe,acc=fixed32.16", "gse", "gse", 6, "fixed", 3000, 31),
        stored_point("gse:b=5,g=32,e=5@pe,acc=fixed32.16", "gse", "gse", 5, "fixed", 2500, 25),
        stored_point("fp8:e4m3@pe,acc=fp32", "fp8", "fp8-e4m3", 8, "fp32", 9000, 30),
        stored_point("int8@pe,acc=fixed32.0", "int8", "int8", 8, "fixed", 4000, 38)};
    json lota = stored_point("lota:n=4,g=64,r=8,omega=2,seed=1@pe", "lota", "lota-qaf", 4, "fixed", 2000, 27);
    lota.update({{"trace_names", {"L0.q.fwd.base"}}, {"trace_files", {"/nonexistent/L0.q.fwd.base.safetensors"}},
                 {"bits_per_weight", 4.5}, {"bits_per_weight_4096", 4.5}, {"power_activity_mw", 0.5},
                 {"pj_per_mac", 0.7}, {"activity_source", "rtl"}});
    json ptq = stored_point("ptq161:salient=0.2,iters=2,k=4096@array8x1", "ptq161", "ptq1.61", 1, "fixed", 16000, 12);
    ptq.update({{"level", "array"}, {"rows", 8}, {"macs_per_cycle", 8}, {"trace_names", {"L0.q.fwd.base"}},
                {"bits_per_weight", 2.9}, {"bits_per_weight_4096", 1.62}});
    points.push_back(lota);
    points.push_back(ptq);
    std::vector<std::string> keys;
    for (const auto& p : points) {
      keys.push_back(ResultsDb::make_key(p["design"], "h", "t", "s"));
      db.put(ResultRow{keys.back(), p["design"], "h", "t", "s", "ok", p, ""});
    }
    db.begin_sweep(json::object(), keys);
  }
  write_report(dir / "results.sqlite", dir);
  const std::string md = read_text(dir / "report.md");
  EXPECT_NE(md.find("One table: GSE-INT, FP8 E4M3, INT8, LoTA-QAF, PTQ1.61"), std::string::npos);
  // GSE-INT6 is the narrowest width at least as accurate as FP8 E4M3 (31 >= 30 dB).
  EXPECT_NE(md.find("| GSE-INT6 (narrowest as accurate as FP8 E4M3) |"), std::string::npos) << md;
  EXPECT_NE(md.find("| LoTA-QAF merged INT4 |"), std::string::npos);
  EXPECT_NE(md.find("| array 8x1 | 8 | 16000 | 2000 |"), std::string::npos) << md;  // per MAC/cycle area
  EXPECT_NE(md.find("2.900 / 1.620"), std::string::npos);
  EXPECT_NE(read_text(dir / "report.html").find("LoTA-QAF merged INT4"), std::string::npos);

  const std::string csv = read_text(dir / "comparison.csv");
  EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 6) << csv;  // header + 5 rows
  EXPECT_NE(csv.find("PTQ1.61"), std::string::npos);
  const json j = json::parse(read_text(dir / "comparison.json"));
  ASSERT_EQ(j["rows"].size(), 5u);
  // RTL-activity power is not quoted (it overstates the datapath's activity): vectorless instead.
  EXPECT_EQ(j["rows"][3]["power_mw"], 2.0);
  EXPECT_EQ(j["rows"][3]["pj_per_mac"], 20.0);
  EXPECT_EQ(j["rows"][3]["power_source"], "vectorless");
  EXPECT_EQ(j["rows"][4]["area_um2_per_mac_per_cycle"], 2000.0);
  // The stored trace files are gone: the GSE/FP8/INT8 errors fall back to their sweep figures.
  EXPECT_EQ(j["rows"][0]["sqnr_traces"], "all sweep traces");
  EXPECT_EQ(j["rows"][0]["sqnr_db"], 31.0);
}

}  // namespace
}  // namespace gsqhw::synth
