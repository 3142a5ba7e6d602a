// The fast cycle model, the GEMM driver's stimulus and the results decoder (sim/cycle_model.h),
// on hand-written manifests (no Verilator needed).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>

#include "sim/cycle_model.h"
#include "base/errors.h"
#include "numerics/format.h"

namespace fs = std::filesystem;

namespace gsqhw {
namespace {

nlohmann::json port(const std::string& name, const std::string& dir, int width) {
  return {{"name", name}, {"dir", dir}, {"width", width}};
}

// The manifest of an R x C GSE array with code width 6, exponent width 5, 32-bit accumulators.
nlohmann::json gse_manifest(int R, int C, int latency, int min_steps) {
  nlohmann::json ports = nlohmann::json::array(
      {port("clk", "in", 1), port("rst", "in", 1), port("in_valid", "in", 1),
       port("in_first", "in", 1), port("in_last", "in", 1), port("in_group_last", "in", 1),
       port("in_a", "in", R * 6), port("in_b", "in", C * 6), port("in_a_exp", "in", R * 5),
       port("in_b_exp", "in", C * 5), port("out_valid", "out", 1),
       port("out_row", "out", std::max(1, static_cast<int>(std::ceil(std::log2(R))))),
       port("out_acc", "out", C * 32), port("out_flags", "out", C * 2)});
  return {{"design", "gse:b=6,g=8,e=5,scale=floor,round=rne,range=symmetric@array2x3,acc=fixed32.16,flow=os,pipe=1"},
          {"level", "array"},
          {"top", "gsqhw_array"},
          {"files", {"gsqhw_array.v"}},
          {"format", "gse:b=6,g=8,e=5,scale=floor,round=rne,range=symmetric"},
          {"acc", "fixed32.16"},
          {"rows", R},
          {"cols", C},
          {"widths", {{"code", 6}, {"exp", 5}, {"acc", 32}, {"flags", 2}}},
          {"ports", ports},
          {"timing",
           {{"latency", latency}, {"drain_beats", R}, {"min_steps_per_tile", min_steps},
            {"macs_per_cycle", R * C}}}};
}

QuantizedTensor random_gse(int64_t rows, int64_t cols, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0, 1);
  std::vector<float> x(rows * cols);
  for (auto& v : x) v = dist(rng);
  return parse_format("gse:b=6,g=8,e=5")->quantize(x.data(), rows, cols);
}

TEST(CycleModel, TimingFollowsTheManifestFormula) {
  ArrayManifest array = ArrayManifest::from_json(gse_manifest(4, 2, 7, 4));
  // M=5, N=3, K=2 on 4x2: 2 x 2 tiles, K padded to 4 steps: 16 + 7 + 4 - 1 cycles.
  GemmTiming t = gemm_timing(array, 5, 3, 2, 8);
  EXPECT_EQ(t.tiles, 4);
  EXPECT_EQ(t.steps_per_tile, 4);
  EXPECT_EQ(t.padded_steps, 2);
  EXPECT_EQ(t.cycles, 26);
  EXPECT_EQ(t.macs, 30);
  EXPECT_DOUBLE_EQ(t.pe_utilisation, 30.0 / (26 * 8));
  EXPECT_EQ(t.a_buffer_reads, 4 * 4 * 4);
  EXPECT_EQ(t.b_buffer_reads, 4 * 2 * 4);
  EXPECT_EQ(t.a_buffer_writes, 2 * 4 * 2);
  EXPECT_EQ(t.b_buffer_writes, 3 * 2);
  EXPECT_EQ(t.exponent_reads, 4 * 6 * 1);
  // The last beat of the last tile is on the GEMM's last cycle.
  EXPECT_EQ(beat_cycle(array, t.steps_per_tile, t.tiles - 1, 3), t.cycles - 1);
}

// A shared-column manifest: every group needs at least `min_group` steps.
ArrayManifest shared_manifest(int R, int C, int latency, int min_group) {
  nlohmann::json j = gse_manifest(R, C, latency, R);
  j["timing"]["min_steps_per_group"] = min_group;
  return ArrayManifest::from_json(j);
}

TEST(CycleModel, ShortGroupsArePaddedToTheManifestMinimum) {
  // R = 4, G = 8 >= 4: only a partial last group shorter than 4 grows.
  ArrayManifest array = shared_manifest(4, 2, 7, 4);
  EXPECT_EQ(array.min_steps_per_group, 4);
  EXPECT_EQ(steps_per_tile(array, 16, 8), 16);      // two full groups
  EXPECT_EQ(steps_per_tile(array, 18, 8), 8 + 8 + 4);  // partial group of 2 padded to 4
  EXPECT_EQ(steps_per_tile(array, 21, 8), 8 + 8 + 5);  // partial group of 5 is long enough
  EXPECT_EQ(steps_per_tile(array, 1, 8), 4);         // one element, padded up to R
  // G = 2 < R = 4 (a g=2 format on this array): every group grows to 4 steps.
  EXPECT_EQ(steps_per_tile(array, 7, 2), 4 * 4);
  // The timing formula uses the padded S.
  GemmTiming t = gemm_timing(array, 5, 3, 18, 8);
  EXPECT_EQ(t.steps_per_tile, 20);
  EXPECT_EQ(t.padded_steps, 2);
  EXPECT_EQ(t.cycles, 4 * 20 + 7 + 4 - 1);
  EXPECT_EQ(beat_cycle(array, t.steps_per_tile, t.tiles - 1, 3), t.cycles - 1);
  // Without a group minimum the same GEMM is not padded.
  EXPECT_EQ(gemm_timing(ArrayManifest::from_json(gse_manifest(4, 2, 7, 4)), 5, 3, 18, 8)
                .steps_per_tile,
            18);

  // The step plan: padding steps carry their group's exponent and the group ends on the last.
  std::vector<TileStep> plan = tile_steps(array, 7, 2);
  ASSERT_EQ(plan.size(), 16u);
  for (int g = 0; g < 4; ++g) {
    for (int s = 0; s < 4; ++s) {
      const TileStep& step = plan[g * 4 + s];
      EXPECT_EQ(step.group, g) << "step " << g * 4 + s;
      const int element = g * 2 + s;
      const bool real = s < 2 && element < 7;
      EXPECT_EQ(step.element, real ? element : -1) << "step " << g * 4 + s;
      EXPECT_EQ(step.group_last, s == 3) << "step " << g * 4 + s;
    }
  }
  // A tile shorter than min_steps_per_tile extends its last group (R = 6, groups of >= 2).
  nlohmann::json j = gse_manifest(6, 2, 7, 6);
  j["timing"]["min_steps_per_group"] = 2;
  plan = tile_steps(ArrayManifest::from_json(j), 3, 8);
  ASSERT_EQ(plan.size(), 6u);
  for (int s = 0; s < 6; ++s) {
    EXPECT_EQ(plan[s].group, 0);
    EXPECT_EQ(plan[s].element, s < 3 ? s : -1);
    EXPECT_EQ(plan[s].group_last, s == 5);
  }
  // Per-PE designs (minimum 1): padding is its own group with exponent codes 0.
  plan = tile_steps(ArrayManifest::from_json(gse_manifest(4, 2, 7, 4)), 2, 8);
  ASSERT_EQ(plan.size(), 4u);
  EXPECT_TRUE(plan[1].group_last);
  EXPECT_EQ(plan[2].group, -1);
  EXPECT_FALSE(plan[2].group_last);
  EXPECT_TRUE(plan[3].group_last);
}

TEST(CycleModel, ManifestErrorsAreUsageErrors) {
  auto j = gse_manifest(2, 2, 3, 2);
  j.erase("timing");
  EXPECT_THROW(ArrayManifest::from_json(j), UsageError);
  j = gse_manifest(2, 2, 3, 2);
  j["timing"]["drain_beats"] = 3;
  EXPECT_THROW(ArrayManifest::from_json(j), UsageError);
  j = gse_manifest(2, 2, 3, 2);
  j["ports"][6]["width"] = 7;  // in_a disagrees with rows * code width
  EXPECT_THROW(ArrayManifest::from_json(j), UsageError);
  j = gse_manifest(2, 2, 3, 2);
  j["timing"]["min_steps_per_group"] = 0;
  EXPECT_THROW(ArrayManifest::from_json(j), UsageError);
}

TEST(CycleModel, FastModelBeatsHoldTheGoldenOutputsOnSchedule) {
  ArrayManifest array = ArrayManifest::from_json(gse_manifest(2, 3, 5, 2));
  QuantizedTensor a = random_gse(5, 19, 1), b = random_gse(7, 19, 2);
  AccumulatorSpec acc = AccumulatorSpec::parse("fixed32.16");
  GemmResult golden = golden_gemm(a, b, acc);
  for (int threads : {1, 2}) {
    Beats beats = fast_model_run(array, a, b, acc, threads);
    GemmTiming t = gemm_timing(array, 5, 7, 19, 8);
    ASSERT_EQ(beats.size(), static_cast<size_t>(t.tiles * 2));
    EXPECT_EQ(beats.cycle.back() + 1, t.cycles);
    for (size_t i = 0; i < beats.size(); ++i) {
      int64_t tile = i / 2, tr = tile / t.tiles_n, tc = tile % t.tiles_n;
      int r = static_cast<int>(i % 2);
      EXPECT_EQ(beats.row[i], r);
      EXPECT_EQ(beats.cycle[i], tile * 19 + 18 + 5 + r);
      for (int j = 0; j < 3; ++j) {
        int64_t m = tr * 2 + r, n = tc * 3 + j;
        int64_t want = (m < 5 && n < 7) ? golden.acc_raw[m * 7 + n] : 0;
        EXPECT_EQ(beats.acc[i * 3 + j], want) << "beat " << i << " lane " << j;
      }
    }
  }
}

// Reads cycle `c` of a stimulus file back into its port words.
std::vector<uint64_t> stimulus_record(const fs::path& file, int64_t c, uint32_t* words,
                                      uint64_t* cycles) {
  std::ifstream in(file, std::ios::binary);
  char magic[8];
  uint32_t version;
  in.read(magic, 8);
  in.read(reinterpret_cast<char*>(&version), 4);
  in.read(reinterpret_cast<char*>(words), 4);
  in.read(reinterpret_cast<char*>(cycles), 8);
  EXPECT_EQ(std::string(magic, 8), "GSQHWSTI");
  std::vector<uint64_t> rec(*words);
  in.seekg(24 + c * 8 * *words);
  in.read(reinterpret_cast<char*>(rec.data()), 8 * *words);
  return rec;
}

uint64_t bits(const uint64_t* w, int bit, int width) {
  uint64_t v = 0;
  for (int i = 0; i < width; ++i) v |= ((w[(bit + i) / 64] >> ((bit + i) % 64)) & 1) << i;
  return v;
}

TEST(CycleModel, StimulusPresentsTilesStepByStep) {
  ArrayManifest array = ArrayManifest::from_json(gse_manifest(2, 3, 5, 12));
  QuantizedTensor a = random_gse(3, 10, 3), b = random_gse(4, 10, 4);
  fs::path file = fs::temp_directory_path() / "gsqhw-test-stimulus.bin";
  int64_t n = write_stimulus(array, a, b, 8, file);
  GemmTiming t = gemm_timing(array, 3, 4, 10, 8);
  EXPECT_EQ(n, t.cycles + 8);
  // Record layout: in_valid, in_first, in_last, in_group_last (1 word each), in_a (12 bits),
  // in_b (18), in_a_exp (10), in_b_exp (15): one word each.
  // Tile 3 = (tile row 1, tile col 1), step k = 9 (last real step, group 1, last of group).
  uint32_t words;
  uint64_t cycles;
  auto rec = stimulus_record(file, 3 * 12 + 9, &words, &cycles);
  ASSERT_EQ(words, 8u);
  EXPECT_EQ(cycles, static_cast<uint64_t>(n));
  EXPECT_EQ(rec[0], 1u);
  EXPECT_EQ(rec[1], 0u);
  EXPECT_EQ(rec[2], 0u);
  EXPECT_EQ(rec[3], 1u);  // k = 9 ends the partial group 8..9
  EXPECT_EQ(bits(&rec[4], 0, 6), static_cast<uint64_t>(a.codes[2 * 10 + 9]) & 63);
  EXPECT_EQ(bits(&rec[4], 6, 6), 0u);  // row 3 is padding
  EXPECT_EQ(bits(&rec[5], 0, 6), static_cast<uint64_t>(b.codes[3 * 10 + 9]) & 63);
  EXPECT_EQ(bits(&rec[5], 6, 6), 0u);  // column 4 is padding
  EXPECT_EQ(bits(&rec[6], 0, 5), static_cast<uint64_t>(a.group_exponents[2 * 2 + 1]));
  EXPECT_EQ(bits(&rec[7], 0, 5), static_cast<uint64_t>(b.group_exponents[3 * 2 + 1]));
  // Step 11 is the last padding step: zeros, in_last and in_group_last.
  rec = stimulus_record(file, 3 * 12 + 11, &words, &cycles);
  EXPECT_EQ(rec[2], 1u);
  EXPECT_EQ(rec[3], 1u);
  EXPECT_EQ(rec[4] | rec[5] | rec[6] | rec[7], 0u);
  // Step 0 of tile 1.
  rec = stimulus_record(file, 12, &words, &cycles);
  EXPECT_EQ(rec[1], 1u);
  EXPECT_EQ(bits(&rec[4], 6, 6), static_cast<uint64_t>(a.codes[1 * 10 + 0]) & 63);
  // After the last tile: idle.
  rec = stimulus_record(file, 4 * 12, &words, &cycles);
  EXPECT_EQ(rec[0], 0u);
  fs::remove(file);
}

// The manifest of an R x C weight-stationary GSE array (code width 6, exponent width 5).
ArrayManifest ws_manifest(int R, int C, int latency) {
  nlohmann::json ports = nlohmann::json::array(
      {port("clk", "in", 1), port("rst", "in", 1), port("in_valid", "in", 1),
       port("in_first", "in", 1), port("in_last", "in", 1), port("in_group_first", "in", 1),
       port("in_group_last", "in", 1), port("in_a", "in", R * 6), port("in_a_exp", "in", 5),
       port("in_b_exp", "in", C * 5), port("in_w_valid", "in", 1), port("in_w_row", "in", 1),
       port("in_w", "in", C * 6), port("out_valid", "out", 1), port("out_row", "out", 1),
       port("out_acc", "out", C * 32), port("out_flags", "out", C * 2)});
  nlohmann::json j = gse_manifest(R, C, latency, R);
  j["ports"] = ports;
  j["dataflow"] = "ws";
  j["timing"]["chunk_steps"] = R;
  j["timing"]["weight_preload"] = R;
  return ArrayManifest::from_json(j);
}

TEST(CycleModel, WeightStationaryChunksPadGroupsAndTheReduction) {
  ArrayManifest array = ws_manifest(4, 2, 3);
  EXPECT_TRUE(array.weight_stationary);
  EXPECT_EQ(steps_per_tile(array, 18, 8), (2 + 2 + 1) * 4);  // groups 8, 8, 2
  EXPECT_EQ(steps_per_tile(array, 18, 0), 5 * 4);            // no groups: ceil(18 / 4) chunks
  EXPECT_EQ(steps_per_tile(array, 16, 0), 16);
  EXPECT_EQ(steps_per_tile(array, 7, 2), 4 * 4);  // G = 2 < R = 4: one chunk per group
  std::vector<WsChunk> chunks = ws_chunks(array, 7, 2);
  ASSERT_EQ(chunks.size(), 4u);
  for (int g = 0; g < 4; ++g) {
    SCOPED_TRACE(g);
    EXPECT_EQ(chunks[g].group, g);
    EXPECT_EQ(chunks[g].elements[0], 2 * g);
    EXPECT_EQ(chunks[g].elements[1], g < 3 ? 2 * g + 1 : -1);
    EXPECT_EQ(chunks[g].elements[2], -1);
    EXPECT_TRUE(chunks[g].group_first && chunks[g].group_last);
    EXPECT_EQ(chunks[g].first, g == 0);
    EXPECT_EQ(chunks[g].last, g == 3);
  }
  chunks = ws_chunks(array, 18, 8);  // group 0 = chunks 0, 1: first on both, group_first on 0
  ASSERT_EQ(chunks.size(), 5u);
  EXPECT_TRUE(chunks[1].first && !chunks[1].group_first && chunks[1].group_last);
  EXPECT_TRUE(chunks[4].last && chunks[3].last == false);
  EXPECT_EQ(chunks[4].elements, (std::vector<int64_t>{16, 17, -1, -1}));
  // The weight preload is in front of everything.
  GemmTiming t = gemm_timing(array, 5, 3, 18, 8);
  EXPECT_EQ(t.tiles, 4);
  EXPECT_EQ(t.cycles, 4 + 4 * 20 + 3 + 4 - 1);
  EXPECT_EQ(beat_cycle(array, t.steps_per_tile, t.tiles - 1, 3), t.cycles - 1);
  EXPECT_EQ(beat_cycle(array, t.steps_per_tile, 0, 0), 4 + 20 - 1 + 3);
}

TEST(CycleModel, WeightStationaryStimulusLoadsTheNextChunkWhileStreaming) {
  ArrayManifest array = ws_manifest(2, 3, 4);
  QuantizedTensor a = random_gse(3, 10, 7), b = random_gse(4, 10, 8);  // groups 8, 2
  fs::path file = fs::temp_directory_path() / "gsqhw-test-stimulus-ws.bin";
  const int64_t n = write_stimulus(array, a, b, 4, file);
  GemmTiming t = gemm_timing(array, 3, 4, 10, 8);
  EXPECT_EQ(t.steps_per_tile, 10);  // chunks {0,1} {2,3} {4,5} {6,7} {8,9}
  EXPECT_EQ(n, t.cycles + 4);
  // Words: valid, first, last, group_first, group_last, a, a_exp, b_exp, w_valid, w_row, w.
  uint32_t words;
  uint64_t cycles;
  auto rec = stimulus_record(file, 1, &words, &cycles);  // preload: weight row 1 of chunk 0
  ASSERT_EQ(words, 11u);
  EXPECT_EQ(rec[0], 0u);
  EXPECT_EQ(rec[8], 1u);
  EXPECT_EQ(rec[9], 1u);
  for (int j = 0; j < 3; ++j)
    EXPECT_EQ(bits(&rec[10], 6 * j, 6), static_cast<uint64_t>(b.codes[j * 10 + 1]) & 63);
  // Tile 0, chunk 0, row 1: A[1][0..1]; meanwhile weight row 1 of chunk 1 (element 3).
  rec = stimulus_record(file, 2 + 1, &words, &cycles);
  EXPECT_EQ(rec[0] + rec[1] + rec[3], 3u);  // valid, first (group 0), group_first
  EXPECT_EQ(rec[2] + rec[4], 0u);
  EXPECT_EQ(bits(&rec[5], 0, 6), static_cast<uint64_t>(a.codes[1 * 10 + 0]) & 63);
  EXPECT_EQ(bits(&rec[5], 6, 6), static_cast<uint64_t>(a.codes[1 * 10 + 1]) & 63);
  EXPECT_EQ(bits(&rec[6], 0, 5), static_cast<uint64_t>(a.group_exponents[1 * 2 + 0]));
  EXPECT_EQ(bits(&rec[7], 10, 5), static_cast<uint64_t>(b.group_exponents[2 * 2 + 0]));
  EXPECT_EQ(rec[8], 1u);
  EXPECT_EQ(rec[9], 1u);
  EXPECT_EQ(bits(&rec[10], 12, 6), static_cast<uint64_t>(b.codes[2 * 10 + 3]) & 63);
  // Tile 0's last chunk loads tile 1's first chunk (columns 3..5: only column 3 is real).
  rec = stimulus_record(file, 2 + 8, &words, &cycles);
  EXPECT_EQ(rec[2] + rec[3] + rec[4], 3u);  // last, group_first, group_last (group 1)
  EXPECT_EQ(bits(&rec[10], 0, 6), static_cast<uint64_t>(b.codes[3 * 10 + 0]) & 63);
  EXPECT_EQ(bits(&rec[10], 6, 12), 0u);
  // Tile 3 (rows 2..3, columns 3..5), last chunk, row 1 = A row 3: padding, no next weights.
  rec = stimulus_record(file, 2 + 3 * 10 + 9, &words, &cycles);
  EXPECT_EQ(rec[0], 1u);
  EXPECT_EQ(rec[5] | rec[6] | rec[8] | rec[10], 0u);
  EXPECT_EQ(bits(&rec[7], 0, 5), static_cast<uint64_t>(b.group_exponents[3 * 2 + 1]));
  // After the last step: idle.
  rec = stimulus_record(file, 2 + 4 * 10, &words, &cycles);
  EXPECT_EQ(rec[0] | rec[8], 0u);
  fs::remove(file);
}

TEST(CycleModel, StimulusPadsShortGroupsWithTheirExponent) {
  // R = 2, G = 8, K = 9: groups 0..7 and a partial group {8} padded to 2 steps.
  ArrayManifest array = shared_manifest(2, 3, 5, 2);
  QuantizedTensor a = random_gse(2, 9, 5), b = random_gse(3, 9, 6);
  fs::path file = fs::temp_directory_path() / "gsqhw-test-stimulus-groups.bin";
  int64_t n = write_stimulus(array, a, b, 4, file);
  EXPECT_EQ(n, gemm_timing(array, 2, 3, 9, 8).cycles + 4);
  uint32_t words;
  uint64_t cycles;
  auto rec = stimulus_record(file, 8, &words, &cycles);  // element 8, not yet the group end
  EXPECT_EQ(rec[3], 0u);
  EXPECT_EQ(bits(&rec[4], 0, 6), static_cast<uint64_t>(a.codes[8]) & 63);
  rec = stimulus_record(file, 9, &words, &cycles);  // padding: zero codes, group 1's exponents
  EXPECT_EQ(rec[2], 1u);
  EXPECT_EQ(rec[3], 1u);
  EXPECT_EQ(rec[4] | rec[5], 0u);
  EXPECT_EQ(bits(&rec[6], 0, 5), static_cast<uint64_t>(a.group_exponents[1]));
  EXPECT_EQ(bits(&rec[6], 5, 5), static_cast<uint64_t>(a.group_exponents[2 + 1]));
  EXPECT_EQ(bits(&rec[7], 10, 5), static_cast<uint64_t>(b.group_exponents[2 * 2 + 1]));
  fs::remove(file);
}

TEST(CycleModel, ResultsDecodeSignExtendsAndRejectsTruncation) {
  ArrayManifest array = ArrayManifest::from_json(gse_manifest(2, 3, 5, 2));
  fs::path file = fs::temp_directory_path() / "gsqhw-test-results.bin";
  // Output ports: out_valid (1 word), out_row (1), out_acc (96 bits: 2 words), out_flags (1).
  auto write = [&](bool trailer) {
    std::ofstream out(file, std::ios::binary);
    uint32_t version = 1, words = 5;
    out.write("GSQHWRES", 8);
    out.write(reinterpret_cast<char*>(&version), 4);
    out.write(reinterpret_cast<char*>(&words), 4);
    uint64_t beat[6] = {42, 1, 1, 0, 0, 0};
    // lanes: 0xFFFFFFFF (-1), 5, 0x80000000 (INT32_MIN); flags lane 0 = 2, lane 2 = 1
    beat[3] = 0xFFFFFFFFull | (5ull << 32);
    beat[4] = 0x80000000ull;
    beat[5] = 2 | (1 << 4);
    out.write(reinterpret_cast<char*>(beat), sizeof beat);
    if (trailer) {
      uint64_t cycles = 50;
      out.write("GSQHWEND", 8);
      out.write(reinterpret_cast<char*>(&cycles), 8);
    }
  };
  write(true);
  Beats beats = read_results(array, true, file);
  ASSERT_EQ(beats.size(), 1u);
  EXPECT_EQ(beats.cycle[0], 42);
  EXPECT_EQ(beats.row[0], 1);
  EXPECT_EQ(beats.acc[0], -1);
  EXPECT_EQ(beats.acc[1], 5);
  EXPECT_EQ(beats.acc[2], INT32_MIN);
  EXPECT_EQ(beats.flags[0], 2);
  EXPECT_EQ(beats.flags[2], 1);
  EXPECT_EQ(beats.simulated_cycles, 50);
  EXPECT_EQ(read_results(array, false, file).acc[0], 0xFFFFFFFFll);
  write(false);
  EXPECT_THROW(read_results(array, true, file), UsageError);
  fs::remove(file);
}

}  // namespace
}  // namespace gsqhw
