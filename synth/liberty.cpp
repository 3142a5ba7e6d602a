// Liberty resolution: default/user/PDK libraries -> plain files in a content-addressed cache.
#include "synth/liberty.h"

#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include <fmt/format.h>

#include "base/errors.h"
#include "base/files.h"
#include "base/process.h"

namespace gsqhw::synth {
namespace fs = std::filesystem;

namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Reads a .lib or a .lib.gz (zlib's gz reader also passes plain files through).
std::string read_liberty_text(const fs::path& path) {
  gzFile file = gzopen(path.c_str(), "rb");
  if (!file) throw UsageError(fmt::format("liberty file {} cannot be opened", path.string()));
  std::string text;
  std::vector<char> chunk(1 << 16);
  while (true) {
    int got = gzread(file, chunk.data(), static_cast<unsigned>(chunk.size()));
    if (got < 0) {
      int err = 0;
      std::string message = gzerror(file, &err);
      gzclose(file);
      throw UsageError(fmt::format("liberty file {} is corrupt: {}", path.string(), message));
    }
    if (got == 0) break;
    text.append(chunk.data(), static_cast<size_t>(got));
  }
  gzclose(file);
  return text;
}

uint64_t fnv1a(const std::string& bytes, uint64_t hash = 1469598103934665603ull) {
  for (unsigned char ch : bytes) hash = (hash ^ ch) * 1099511628211ull;
  return hash;
}

std::string normalise_space(const std::string& s) {
  std::string out;
  bool space = false;
  for (char ch : s) {
    if (std::isspace(static_cast<unsigned char>(ch))) {
      space = !out.empty();
      continue;
    }
    if (space) out += ' ';
    space = false;
    out += ch;
  }
  return out;
}

// "1ps" -> 0.001 (ns); unknown units give 0.
double time_unit_in_ns(const std::string& unit) {
  static const std::pair<const char*, double> units[] = {
      {"1ps", 1e-3}, {"10ps", 1e-2}, {"100ps", 1e-1}, {"1ns", 1.0}, {"1fs", 1e-6}, {"1us", 1e3}};
  for (auto& [name, scale] : units)
    if (unit == name) return scale;
  return 0;
}

struct PdkFiles {
  std::string name;
  std::vector<std::string> files;
};

PdkFiles pdk_files(const std::string& pdk) {
  if (pdk == "sky130") return {"sky130", {"sky130_fd_sc_hd__tt_025C_1v80.lib.gz"}};
  if (pdk == "asap7")
    // SEQ first: its header (time unit ps, operating conditions) heads the merged library.
    return {"asap7",
            {"asap7sc7p5t_SEQ_RVT_SS_nldm_220123.lib.gz", "asap7sc7p5t_SIMPLE_RVT_SS_nldm_211120.lib.gz",
             "asap7sc7p5t_AO_RVT_SS_nldm_211120.lib.gz", "asap7sc7p5t_OA_RVT_SS_nldm_211120.lib.gz",
             "asap7sc7p5t_INVBUF_RVT_SS_nldm_220122.lib.gz"}};
  throw UsageError(fmt::format("pdk '{}' is not one of sky130, asap7 (or give --liberty FILE...)", pdk));
}

fs::path find_pdk_file(const fs::path& dir, const std::string& name) {
  for (const auto& candidate : {dir / name, dir / name.substr(0, name.size() - 3)})
    if (fs::exists(candidate)) return candidate;
  throw UsageError(fmt::format("--pdk-dir {} lacks {} (nor its uncompressed form)", dir.string(), name));
}

}  // namespace

LibertyFile split_liberty(const std::string& text, const std::string& what) {
  LibertyFile file;
  enum class State { code, block_comment, line_comment, string };
  State state = State::code;
  int depth = 0;
  size_t statement_start = std::string::npos;  // start of the current depth-1 statement
  size_t group_start = 0;
  std::string group_head;
  size_t body_start = 0, first_cell = std::string::npos;
  bool seen_library = false;

  for (size_t i = 0; i < text.size(); ++i) {
    char ch = text[i];
    char next = i + 1 < text.size() ? text[i + 1] : '\0';
    switch (state) {
      case State::block_comment:
        if (ch == '*' && next == '/') state = State::code, ++i;
        continue;
      case State::line_comment:
        if (ch == '\n') state = State::code;
        continue;
      case State::string:
        if (ch == '\\') ++i;
        else if (ch == '"') state = State::code;
        continue;
      case State::code:
        break;
    }
    if (ch == '/' && next == '*') { state = State::block_comment; ++i; continue; }
    if (ch == '/' && next == '/') { state = State::line_comment; ++i; continue; }
    if (depth == 1 && statement_start == std::string::npos && !std::isspace(static_cast<unsigned char>(ch)))
      statement_start = i;
    if (ch == '"') { state = State::string; continue; }
    if (ch == ';' && depth == 1) { statement_start = std::string::npos; continue; }
    if (ch == '{') {
      if (depth == 0) {
        if (seen_library) throw UsageError(fmt::format("{}: more than one top-level group", what));
        size_t keyword = text.rfind("library", i);
        if (keyword == std::string::npos)
          throw UsageError(fmt::format("{} is not a Liberty file (no library group)", what));
        file.library_head = normalise_space(text.substr(keyword, i - keyword));
        seen_library = true;
        body_start = i + 1;
      } else if (depth == 1) {
        group_start = statement_start == std::string::npos ? i : statement_start;
        group_head = normalise_space(text.substr(group_start, i - group_start));
      }
      ++depth;
      continue;
    }
    if (ch == '}') {
      if (depth == 0) throw UsageError(fmt::format("{}: unbalanced '}}'", what));
      --depth;
      if (depth == 1) {
        LibertyGroup group{group_head, text.substr(group_start, i + 1 - group_start)};
        bool is_cell = group_head.rfind("cell", 0) == 0 &&
                       (group_head.size() > 4 && (group_head[4] == '(' || group_head[4] == ' '));
        if (is_cell) {
          if (first_cell == std::string::npos) first_cell = group_start;
          file.cells.push_back(std::move(group));
        } else {
          file.top_groups.push_back(std::move(group));
        }
        statement_start = std::string::npos;
      }
      continue;
    }
  }
  if (!seen_library || file.library_head.rfind("library", 0) != 0)
    throw UsageError(fmt::format("{} is not a Liberty file (no library (...) {{ ... }} group)", what));
  if (depth != 0) throw UsageError(fmt::format("{}: truncated (unbalanced braces)", what));
  if (state == State::block_comment || state == State::string)
    throw UsageError(fmt::format("{}: truncated inside a comment or string", what));
  file.header = text.substr(body_start, (first_cell == std::string::npos ? text.size() : first_cell) - body_start);
  return file;
}

std::string merge_liberty(const std::vector<LibertyFile>& files) {
  if (files.empty()) throw UsageError("merge_liberty: no files");
  const LibertyFile& first = files.front();
  std::string out = first.library_head + " {\n" + first.header + "\n";
  // Groups of the first file that precede its first cell are already in its header.
  std::set<std::string> present;
  for (const auto& group : first.top_groups)
    if (first.header.find(group.text) != std::string::npos) present.insert(group.head);
  for (const auto& file : files)
    for (const auto& group : file.top_groups)
      if (present.insert(group.head).second) out += "  " + group.text + "\n";
  std::set<std::string> cells;
  for (const auto& file : files)
    for (const auto& cell : file.cells)
      if (cells.insert(cell.head).second) out += "  " + cell.text + "\n";
  out += "}\n";
  return out;
}

fs::path default_liberty_path() {
  return "/usr/share/qflow/tech/osu018/osu018_stdcells.lib";
}

fs::path liberty_cache_root() {
  if (const char* cache = std::getenv("GSQHW_CACHE"); cache && *cache) return fs::path(cache) / "liberty";
  if (const char* home = std::getenv("HOME"); home && *home) return fs::path(home) / ".cache/gsqhw/liberty";
  return fs::temp_directory_path() / "gsqhw-cache/liberty";
}

LibrarySet resolve_library(const LibraryChoice& choice) {
  std::vector<fs::path> inputs;
  std::string name;
  if (!choice.pdk.empty()) {
    if (!choice.files.empty()) throw UsageError("give either --pdk or --liberty, not both");
    PdkFiles pdk = pdk_files(choice.pdk);
    if (choice.pdk_dir.empty())
      throw UsageError(fmt::format("--pdk {} needs --pdk-dir DIR holding {}", pdk.name, pdk.files.front()));
    name = pdk.name;
    for (const auto& f : pdk.files) inputs.push_back(find_pdk_file(choice.pdk_dir, f));
  } else if (!choice.files.empty()) {
    inputs = choice.files;
    std::string stem = inputs.front().filename().string();
    for (const char* suffix : {".gz", ".lib"})
      if (ends_with(stem, suffix)) stem.resize(stem.size() - std::strlen(suffix));
    name = stem;
  } else {
    inputs.push_back(default_liberty_path());
    name = "osu018";
    if (!fs::exists(inputs.front()))
      throw ToolMissing(fmt::format(
          "the default liberty {} is missing; install it with `apt-get install qflow-tech-osu018` "
          "or give --liberty FILE",
          inputs.front().string()));
  }

  // Content hash over every input (in order, with its size as a separator).
  uint64_t hash = 1469598103934665603ull;
  std::vector<std::string> raws;
  for (const auto& input : inputs) {
    if (!fs::is_regular_file(input))
      throw UsageError(fmt::format("liberty file {} does not exist or is not a file", input.string()));
    raws.push_back(read_file(input));
    hash = fnv1a(raws.back(), hash);
    hash = fnv1a(std::to_string(raws.back().size()), hash);
  }
  LibrarySet set;
  set.name = name;
  set.hash = fmt::format("{:016x}", hash);
  fs::path dir = liberty_cache_root() / fmt::format("{}-{}", name, set.hash);
  fs::create_directories(dir);

  for (const auto& input : inputs) {
    std::string base = input.filename().string();
    if (ends_with(base, ".gz")) base.resize(base.size() - 3);
    if (!ends_with(base, ".lib")) base += ".lib";
    set.sta_files.push_back(dir / base);
  }
  set.yosys_file = inputs.size() == 1 ? set.sta_files.front() : dir / (name + "_merged.lib");
  set.cell_models = dir / "cells.v";

  fs::path meta = dir / "library.json";
  if (fs::exists(meta) && fs::exists(set.yosys_file)) {
    std::ifstream in(meta);
    std::string unit;
    std::getline(in, unit);
    set.time_unit = unit;
    set.time_unit_ns = time_unit_in_ns(unit);
    return set;
  }

  std::vector<LibertyFile> parsed;
  for (size_t i = 0; i < inputs.size(); ++i) {
    std::string text = read_liberty_text(inputs[i]);
    parsed.push_back(split_liberty(text, inputs[i].string()));
    if (parsed.back().cells.empty())
      throw UsageError(fmt::format("liberty file {} defines no cells", inputs[i].string()));
    write_file_atomically(set.sta_files[i], text);
  }
  if (inputs.size() > 1) write_file_atomically(set.yosys_file, merge_liberty(parsed));

  std::smatch match;
  static const std::regex unit_re(R"re(time_unit\s*:\s*"?\s*([0-9.]+\s*[a-z]+)\s*"?\s*;)re");
  if (std::regex_search(parsed.front().header, match, unit_re)) {
    set.time_unit = match[1].str();
    set.time_unit.erase(std::remove(set.time_unit.begin(), set.time_unit.end(), ' '), set.time_unit.end());
  }
  set.time_unit_ns = time_unit_in_ns(set.time_unit);
  if (set.time_unit_ns == 0)
    throw UsageError(fmt::format("liberty {}: unsupported time_unit '{}'", inputs.front().string(), set.time_unit));
  write_file_atomically(meta, set.time_unit + "\n");
  return set;
}

fs::path ensure_cell_models(const LibrarySet& library) {
  if (fs::exists(library.cell_models)) return library.cell_models;
  fs::path yosys = require_program("yosys", "yosys");
  fs::path tmp = library.cell_models;
  tmp += fmt::format(".tmp{}.v", unique_name_suffix());
  fs::path log = library.cell_models.parent_path() / fmt::format("cells.{}.log", unique_name_suffix());
  // Without -lib, read_liberty builds a functional model of each cell (combinational functions,
  // ff and latch groups); cells whose function it cannot read become black boxes.
  ProcessResult run = run_process(
      {yosys.string(), "-q", "-p",
       fmt::format("read_liberty -ignore_miss_func -ignore_miss_dir {}; write_verilog -noattr {}",
                   library.yosys_file.string(), tmp.string())},
      library.cell_models.parent_path(), log, 600);
  if (run.exit_code != 0)
    throw std::runtime_error(fmt::format("yosys could not build cell models from {}:\n{}",
                                         library.yosys_file.string(), tail_lines(run.output, 15)));
  fs::rename(tmp, library.cell_models);
  fs::remove(log);
  return library.cell_models;
}

}  // namespace gsqhw::synth
