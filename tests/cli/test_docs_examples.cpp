// Every cheap command example in README.md and docs/*.md runs as documented (issue #18), so the
// docs cannot drift from the tool again.
//
// What runs: the lines of fenced ```sh / ```bash / ```shell blocks whose command is `gsqhw` or
// `build/gsqhw` (a trailing `\` joins the next line; `NAME=value` lines of the same doc are kept
// as a prelude). Each doc runs in its own fresh folder laid out like a checkout (build/gsqhw is
// the built CLI, ../shared is the shared folder, `gsqhw` is on PATH), its examples in order, so
// a later example may use what an earlier one wrote. Each must exit 0 within kTimeoutSeconds.
// Expected output: a ```text block right after a command block lists lines the block's last
// command must print, in order; `...` in a line matches anything.
// Not run: synopses (`[--values]`, `...`), other tools' lines (iverilog, scripts/...), and the
// skip-list below (expensive, or needing what a test machine lacks). GSQHW_DOCS_ALL=1 runs the
// expensive ones too.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

namespace {
namespace fs = std::filesystem;

constexpr int kTimeoutSeconds = 90;

struct Skip {
  const char* doc;           // file name, e.g. "cosim.md"
  const char* command_part;  // a substring of the command
  bool expensive;            // true: runs with GSQHW_DOCS_ALL=1; false: needs what tests lack
  const char* why;
};

// The commented skip-list. Keep it short: prefer examples that are cheap enough to run.
const std::vector<Skip> kSkips = {
    // README quick start: Verilator builds and synthesis (a minute or more on a cold cache);
    // tests/cosim and tests/synth cover the same commands.
    {"README.md", "gsqhw cosim --generated out/", true, "Verilator build of a PE (15-20 s each)"},
    {"README.md", "gsqhw sweep --designs", true, "co-simulates and synthesizes two PEs (minutes)"},
    // co-simulation with Verilator builds of arrays, cores and netlists (minutes each, cold)
    {"cosim.md", "gsqhw cosim --design \"gse:b=6@array4x4", true, "Verilator build of a 4x4 array"},
    {"cosim.md", "--engine lockstep", true, "Verilator build (lockstep runs the RTL)"},
    {"cosim.md", "--waves w.fst", false, "needs out/gse6 and t.safetensors made elsewhere"},
    {"cosim.md", "--netlist mapped.v", false, "needs a mapped netlist and the OSU liberty file"},
    {"cosim.md", "gsqhw bench", true, "benchmark: a 16x16 array build and runs"},
    {"core.md", "gsqhw cosim", true, "Verilator build of a core"},
    // synthesis: Yosys + OpenSTA (+ gate-level simulation) per point, minutes; sweeps longer
    {"synthesis.md", "gsqhw synth", true, "Yosys/OpenSTA run"},
    {"synthesis.md", "gsqhw sweep", true, "a sweep (the default one takes about 6 minutes)"},
    {"synthesis.md", "gsqhw compose", true, "synthesizes an array's module kinds (about a minute at 2x2 with --flat, more at 16x16)"},
    {"synthesis.md", "gsqhw report", false, "needs the results of the sweeps above"},
    {"siblings.md", "--synth", true, "lint, RTL check and synthesis of the sibling units"},
    // traces of a full-size model: 373 MB and minutes; the checkpoint is not shipped
    {"traces.md", "--model llama2-7b --layer 0", true, "writes 373 MB of llama2-7b traces"},
    // Slurm: needs a cluster and storage the nodes share
    {"cluster.md", "--executor slurm", false, "needs a Slurm cluster"},
    {"cluster.md", "--attach", false, "needs a Slurm sweep to attach to"},
    // fine-tuning runs: several formats x steps of training
    {"training.md", "gsqhw finetune", true, "fine-tunes five runs (minutes)"},
    {"training.md", "--step 4", true, "traces a state of the fine-tuning run above (out/ft)"},
    {"training.md", "--train-layer llama-7b", true, "benchmark: a LLaMA-7B-shaped layer (minutes per run)"},
};

struct Example {
  std::string doc;
  int line = 0;
  std::string command;
  std::vector<std::string> expected;  // from a ```text block right after the command's block
};

bool is_gsqhw(const std::string& command) {
  return std::regex_search(command, std::regex("^(\\$ )?(build/)?gsqhw( |$)"));
}

// A usage pattern rather than a command: optional parts in brackets, or "...".
bool is_synopsis(const std::string& command) {
  return std::regex_search(command, std::regex(" \\[[-A-Za-z]| \\.\\.\\.( |$)"));
}

std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t"), e = s.find_last_not_of(" \t\r");
  return b == std::string::npos ? "" : s.substr(b, e - b + 1);
}

struct Doc {
  std::vector<Example> examples;
  std::vector<std::string> prelude;  // NAME=value lines
};

Doc extract(const fs::path& path) {
  Doc doc;
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string l; std::getline(in, l);) lines.push_back(l);
  const std::string name = path.filename().string();
  Example* last_of_block = nullptr;
  for (size_t i = 0; i < lines.size(); ++i) {
    if (lines[i].rfind("```", 0) != 0) continue;
    const std::string lang = trim(lines[i].substr(3));
    size_t end = i + 1;
    while (end < lines.size() && lines[end].rfind("```", 0) != 0) ++end;
    if (lang == "text" && last_of_block) {  // expected output of the block just before
      for (size_t j = i + 1; j < end; ++j)
        if (!trim(lines[j]).empty()) last_of_block->expected.push_back(trim(lines[j]));
      last_of_block = nullptr;
    } else if (lang == "sh" || lang == "bash" || lang == "shell") {
      last_of_block = nullptr;
      for (size_t j = i + 1; j < end; ++j) {
        const int first_line = static_cast<int>(j + 1);
        std::string command = trim(lines[j]);
        while (!command.empty() && command.back() == '\\' && j + 1 < end)
          command = trim(command.substr(0, command.size() - 1)) + " " + trim(lines[++j]);
        if (std::regex_search(command, std::regex("^[A-Za-z_][A-Za-z0-9_]*=")))
          doc.prelude.push_back(command);
        if (!is_gsqhw(command)) continue;
        if (command.rfind("$ ", 0) == 0) command = command.substr(2);
        doc.examples.push_back({name, first_line, command, {}});
      }
      if (!doc.examples.empty() && doc.examples.back().line > static_cast<int>(i))
        last_of_block = &doc.examples.back();
    } else {
      last_of_block = nullptr;
    }
    i = end;
  }
  return doc;
}

const Skip* skip_of(const Example& e) {
  for (const auto& s : kSkips)
    if (e.doc == s.doc && e.command.find(s.command_part) != std::string::npos) return &s;
  return nullptr;
}

struct Ran {
  int exit_code = -1;
  std::string output;
  double seconds = 0;
};

Ran run(const std::string& script, const fs::path& cwd) {
  const fs::path file = cwd / ".example.sh";
  std::ofstream(file) << script << "\n";
  const std::string command = "cd '" + cwd.string() + "' && timeout " + std::to_string(kTimeoutSeconds) +
                              " bash -o pipefail .example.sh 2>&1";
  const auto start = std::chrono::steady_clock::now();
  Ran r;
  FILE* pipe = popen(command.c_str(), "r");
  char buffer[4096];
  size_t n;
  while (pipe && (n = fread(buffer, 1, sizeof buffer, pipe)) > 0) r.output.append(buffer, n);
  const int status = pipe ? pclose(pipe) : -1;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  fs::remove(file);
  return r;
}

std::string tail(const std::string& text, size_t lines) {
  size_t pos = text.size();
  for (size_t n = 0; n <= lines && pos != std::string::npos && pos > 0; ++n) pos = text.rfind('\n', pos - 1);
  return pos == std::string::npos || pos == 0 ? text : "[...]\n" + text.substr(pos + 1);
}

// Each expected line, in order, matches one output line; "..." matches anything.
std::string missing_expected(const Example& e, const std::string& output) {
  std::istringstream out(output);
  std::vector<std::string> got;
  for (std::string l; std::getline(out, l);) got.push_back(l);
  size_t at = 0;
  for (const auto& want : e.expected) {
    std::string pattern;
    for (size_t i = 0; i < want.size();) {
      if (want.compare(i, 3, "...") == 0) {
        pattern += ".*";
        i += 3;
      } else if (want[i] == ' ') {
        pattern += " +";
        while (i < want.size() && want[i] == ' ') ++i;
      } else {
        if (std::string("\\^$.|?*+()[]{}").find(want[i]) != std::string::npos) pattern += '\\';
        pattern += want[i++];
      }
    }
    const std::regex re(pattern);
    while (at < got.size() && !std::regex_search(got[at], re)) ++at;
    if (at == got.size()) return want;
    ++at;
  }
  return "";
}

std::vector<fs::path> docs() {
  const fs::path root = GSQHW_TEST_SOURCE_DIR;
  std::vector<fs::path> files = {root / "README.md"};
  std::vector<fs::path> more;
  for (const auto& f : fs::directory_iterator(root / "docs"))
    if (f.path().extension() == ".md") more.push_back(f.path());
  std::sort(more.begin(), more.end());
  files.insert(files.end(), more.begin(), more.end());
  return files;
}

class DocsExamples : public testing::TestWithParam<std::string> {};

TEST_P(DocsExamples, RunAsDocumented) {
  const fs::path path = GetParam() == "README.md" ? fs::path(GSQHW_TEST_SOURCE_DIR) / "README.md"
                                                  : fs::path(GSQHW_TEST_SOURCE_DIR) / "docs" / GetParam();
  const Doc doc = extract(path);
  const bool all = std::getenv("GSQHW_DOCS_ALL") != nullptr;
  // A folder laid out like a checkout: build/gsqhw and ../shared resolve as in the docs.
  const fs::path base = fs::temp_directory_path() / ("gsqhw_docs_" + std::to_string(::getpid()) + "_" + GetParam());
  const fs::path cwd = base / "repo";
  fs::remove_all(base);
  fs::create_directories(cwd / "build");
  fs::create_symlink(GSQHW_CLI, cwd / "build" / "gsqhw");
  if (fs::exists(GSQHW_TEST_SHARED_DIR)) fs::create_directory_symlink(fs::absolute(GSQHW_TEST_SHARED_DIR), base / "shared");
  std::string prelude = "export PATH=\"" + (cwd / "build").string() + ":$PATH\"\n";
  for (const auto& p : doc.prelude) prelude += p + "\n";

  int ran = 0, skipped = 0;
  for (const Example& e : doc.examples) {
    const std::string where = e.doc + ":" + std::to_string(e.line);
    if (is_synopsis(e.command)) {
      std::printf("[ synopsis ] %s: %s\n", where.c_str(), e.command.c_str());
      ++skipped;
      continue;
    }
    if (const Skip* s = skip_of(e); s && !(all && s->expensive)) {
      std::printf("[ skipped  ] %s: %s  (%s)\n", where.c_str(), e.command.c_str(), s->why);
      ++skipped;
      continue;
    }
    const Ran r = run(prelude + e.command, cwd);
    ++ran;
    std::printf("[ %6.1f s ] %s: %s\n", r.seconds, where.c_str(), e.command.c_str());
    if (r.exit_code != 0) {
      ADD_FAILURE() << where << ": the documented command\n  " << e.command << "\nexited "
                    << (r.exit_code == 124 ? "by timeout after " + std::to_string(kTimeoutSeconds) + " s"
                                           : std::to_string(r.exit_code))
                    << " (run in " << cwd.string() << " after the doc's earlier examples); it printed:\n"
                    << tail(r.output, 30)
                    << "\nFix the doc (or the tool), or add the example to kSkips in "
                       "tests/cli/test_docs_examples.cpp with the reason.";
      continue;
    }
    if (std::string want = missing_expected(e, r.output); !want.empty())
      ADD_FAILURE() << where << ": the documented command\n  " << e.command
                    << "\ndid not print the line the doc's ```text block shows:\n  " << want
                    << "\n(in order after the lines before it; '...' matches anything); it printed:\n"
                    << tail(r.output, 30);
  }
  std::printf("%s: %d examples run, %d not run\n", GetParam().c_str(), ran, skipped);
  if (!HasFailure()) fs::remove_all(base);
}

std::vector<std::string> doc_names() {
  std::vector<std::string> names;
  for (const auto& d : docs()) names.push_back(d.filename().string());
  return names;
}

INSTANTIATE_TEST_SUITE_P(Docs, DocsExamples, testing::ValuesIn(doc_names()),
                         [](const testing::TestParamInfo<std::string>& info) {
                           std::string name = info.param.substr(0, info.param.find('.'));
                           for (char& c : name)
                             if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
                           return name;
                         });

// Every skip-list entry still names an example that exists (a stale entry hides nothing).
TEST(DocsExamples, SkipListEntriesMatchExamples) {
  std::vector<Example> all;
  for (const auto& d : docs())
    for (auto& e : extract(d).examples) all.push_back(e);
  for (const auto& s : kSkips) {
    bool found = false;
    for (const auto& e : all) found = found || (e.doc == s.doc && e.command.find(s.command_part) != std::string::npos);
    EXPECT_TRUE(found) << "kSkips entry {" << s.doc << ", \"" << s.command_part
                       << "\"} matches no example any more: remove it";
  }
}

}  // namespace
