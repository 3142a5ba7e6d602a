// The folders are layers (README "Layout", ../shared/docs/architecture.md):
//   base < numerics < {gen, workloads} < sim < synth < cli
// A file may include headers of its own folder and of the layers below it, never of a layer
// above or beside it. This test reads every source file and names each include that breaks
// the rule, so an upward edge cannot creep back in unnoticed.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <string>
#include <vector>

namespace fs = std::filesystem;

namespace {

// What each layer may include besides itself.
const std::map<std::string, std::set<std::string>>& allowed() {
  static const std::map<std::string, std::set<std::string>> rules = {
      {"base", {}},
      {"numerics", {"base"}},
      {"gen", {"numerics", "base"}},
      {"workloads", {"numerics", "base"}},
      {"sim", {"gen", "workloads", "numerics", "base"}},
      {"synth", {"sim", "gen", "workloads", "numerics", "base"}},
      {"cli", {"synth", "sim", "gen", "workloads", "numerics", "base"}},
  };
  return rules;
}

struct Edge {
  std::string file;
  int line;
  std::string include;
};

std::vector<Edge> upward_includes(const fs::path& root) {
  const std::regex include_re(R"(^\s*#\s*include\s*"([a-z_]+)/[^"]+")");
  std::vector<Edge> bad;
  for (const auto& [layer, may] : allowed()) {
    const fs::path dir = root / layer;
    if (!fs::is_directory(dir)) continue;
    for (const auto& entry : fs::recursive_directory_iterator(dir)) {
      const std::string ext = entry.path().extension().string();
      if (!entry.is_regular_file() || (ext != ".h" && ext != ".cpp")) continue;
      std::ifstream in(entry.path());
      std::string text;
      for (int n = 1; std::getline(in, text); ++n) {
        std::smatch m;
        if (!std::regex_search(text, m, include_re)) continue;
        const std::string target = m[1];
        if (target == layer || !allowed().count(target) || may.count(target)) continue;
        bad.push_back({fs::relative(entry.path(), root).string(), n, text});
      }
    }
  }
  return bad;
}

TEST(Layers, IncludesOnlyPointDown) {
  const fs::path root = GSQHW_TEST_SOURCE_DIR;
  ASSERT_TRUE(fs::is_directory(root / "numerics")) << root;
  const std::vector<Edge> bad = upward_includes(root);
  for (const Edge& e : bad)
    ADD_FAILURE() << e.file << ":" << e.line << ": includes a layer above or beside it: " << e.include;
  EXPECT_TRUE(bad.empty());
}

// The check itself works: a planted upward include is found.
TEST(Layers, APlantedUpwardIncludeIsFound) {
  const fs::path root = fs::temp_directory_path() / "gsqhw_layers_test";
  fs::remove_all(root);
  fs::create_directories(root / "numerics");
  fs::create_directories(root / "gen");
  std::ofstream(root / "numerics" / "bad.cpp") << "#include \"numerics/ok.h\"\n#include \"sim/cosim.h\"\n";
  std::ofstream(root / "gen" / "ok.cpp") << "#include \"numerics/gemm.h\"\n#include <vector>\n";
  const std::vector<Edge> bad = upward_includes(root);
  fs::remove_all(root);
  ASSERT_EQ(bad.size(), 1u);
  EXPECT_EQ(bad[0].file, "numerics/bad.cpp");
  EXPECT_EQ(bad[0].line, 2);
}

}  // namespace
