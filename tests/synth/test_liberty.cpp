// Liberty splitting/merging on small hand-written libraries, and resolution of the default,
// user and PDK libraries into the content-addressed cache.
#include <gtest/gtest.h>

#include <zlib.h>

#include <cstring>

#include "base/errors.h"
#include "synth/liberty.h"
#include "test_util.h"

namespace gsqhw::synth {
namespace {
namespace fs = std::filesystem;
using test::pdk_dir;
using test::read_file;
using test::scratch_dir;

// Braces inside comments and strings must not confuse the splitter.
const char* kLibA = R"(/* header comment with a brace { */
library (liba) {
  time_unit : "1ns";
  comment : "a string with } a brace";
  lu_table_template (tmpl_a) { variable_1 : total_output_net_capacitance; }
  cell (INV_A) { area : 1; pin (A) { direction : input; } pin (Y) { direction : output; function : "!A"; } }
  cell (BUF_A) { area : 2; }
}
)";
const char* kLibB = R"(library (libb) {
  time_unit : "1ps";
  lu_table_template (tmpl_a) { variable_1 : total_output_net_capacitance; }
  lu_table_template (tmpl_b) { variable_1 : input_net_transition; }
  cell (NAND_B) { area : 3; }
}
)";

TEST(LibertySplit, FindsHeaderGroupsAndCells) {
  LibertyFile a = split_liberty(kLibA, "a.lib");
  EXPECT_EQ(a.library_head, "library (liba)");
  ASSERT_EQ(a.cells.size(), 2u);
  EXPECT_EQ(a.cells[0].head, "cell (INV_A)");
  EXPECT_EQ(a.cells[1].head, "cell (BUF_A)");
  ASSERT_EQ(a.top_groups.size(), 1u);
  EXPECT_EQ(a.top_groups[0].head, "lu_table_template (tmpl_a)");
  EXPECT_NE(a.header.find("a string with } a brace"), std::string::npos);
  EXPECT_EQ(a.header.find("cell (INV_A)"), std::string::npos);
}

TEST(LibertySplit, RejectsNonLibertyAndTruncatedText) {
  EXPECT_THROW(split_liberty("module top; endmodule\n", "x.v"), UsageError);
  EXPECT_THROW(split_liberty("library (x) { cell (A) { area : 1; ", "cut.lib"), UsageError);
  EXPECT_THROW(split_liberty("library (x) { comment : \"open string", "cut.lib"), UsageError);
}

TEST(LibertyMerge, HeaderOfFirstEveryTemplateEveryCellOnce) {
  std::string merged = merge_liberty({split_liberty(kLibA, "a"), split_liberty(kLibB, "b")});
  LibertyFile m = split_liberty(merged, "merged");
  EXPECT_EQ(m.library_head, "library (liba)");
  ASSERT_EQ(m.cells.size(), 3u);
  EXPECT_EQ(m.cells[2].head, "cell (NAND_B)");
  // tmpl_a once (from A's header), tmpl_b added from B.
  EXPECT_EQ(m.top_groups.size(), 2u);
  EXPECT_NE(merged.find("1ns"), std::string::npos);
  EXPECT_EQ(merged.find("1ps"), std::string::npos);  // only the first file's attributes
}

TEST(LibraryResolve, DefaultIsOsu018AndCached) {
  LibrarySet first = resolve_library({});
  LibrarySet again = resolve_library({});
  EXPECT_EQ(first.name, "osu018");
  EXPECT_EQ(first.hash.size(), 16u);
  EXPECT_EQ(first.hash, again.hash);
  EXPECT_EQ(first.yosys_file, again.yosys_file);
  EXPECT_TRUE(fs::exists(first.yosys_file));
  EXPECT_EQ(first.time_unit, "1ns");
  EXPECT_EQ(read_file(first.yosys_file), read_file(default_liberty_path()));
}

TEST(LibraryResolve, UserFileGzippedOrNotSameContentSameCells) {
  fs::path dir = scratch_dir("liberty_user");
  { std::ofstream(dir / "mine.lib") << kLibA; }
  gzFile gz = gzopen((dir / "mine.lib.gz").c_str(), "wb");
  gzwrite(gz, kLibA, static_cast<unsigned>(std::strlen(kLibA)));
  gzclose(gz);
  LibrarySet plain = resolve_library({"", {}, {dir / "mine.lib"}});
  LibrarySet packed = resolve_library({"", {}, {dir / "mine.lib.gz"}});
  EXPECT_EQ(plain.name, "mine");
  EXPECT_EQ(read_file(plain.sta_files[0]), read_file(packed.sta_files[0]));  // decompressed
  // A changed file is a new cache entry.
  { std::ofstream(dir / "mine.lib") << kLibB; }
  EXPECT_NE(resolve_library({"", {}, {dir / "mine.lib"}}).hash, plain.hash);
}

TEST(LibraryResolve, BadChoicesAreUsageErrors) {
  fs::path dir = scratch_dir("liberty_bad");
  { std::ofstream(dir / "not.lib") << "this is not liberty\n"; }
  EXPECT_THROW(resolve_library({"", {}, {dir / "missing.lib"}}), UsageError);
  EXPECT_THROW(resolve_library({"", {}, {dir / "not.lib"}}), UsageError);
  EXPECT_THROW(resolve_library({"tsmc5", pdk_dir(), {}}), UsageError);
  EXPECT_THROW(resolve_library({"sky130", {}, {}}), UsageError);      // no --pdk-dir
  EXPECT_THROW(resolve_library({"asap7", dir, {}}), UsageError);      // dir lacks the files
}

TEST(LibraryResolve, Sky130AndAsap7FromSharedPdk) {
  LibrarySet sky = resolve_library({"sky130", pdk_dir(), {}});
  EXPECT_EQ(sky.sta_files.size(), 1u);
  EXPECT_EQ(sky.time_unit_ns, 1.0);
  EXPECT_EQ(split_liberty(read_file(sky.yosys_file), "sky130").cells.size(), 428u);

  LibrarySet asap7 = resolve_library({"asap7", pdk_dir(), {}});
  ASSERT_EQ(asap7.sta_files.size(), 5u);
  EXPECT_EQ(asap7.time_unit, "1ps");
  EXPECT_DOUBLE_EQ(asap7.time_unit_ns, 1e-3);
  size_t cells = 0;
  for (const auto& f : asap7.sta_files) cells += split_liberty(read_file(f), f.string()).cells.size();
  LibertyFile merged = split_liberty(read_file(asap7.yosys_file), "merged");
  EXPECT_EQ(merged.cells.size(), cells);  // every cell of every file, each once
  EXPECT_EQ(cells, 202u);                 // as pdk/README.md says
  // The repository never receives PDK files: everything lives in the cache.
  EXPECT_NE(asap7.yosys_file.string().find("synth-test-cache"), std::string::npos);
}

}  // namespace
}  // namespace gsqhw::synth
