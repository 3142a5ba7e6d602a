// Standard-cell libraries (Liberty files) for synthesis, timing and power.
//
// A LibrarySet is what the flow needs from a library, resolved into a local cache:
//   - the plain-text .lib files OpenSTA reads (each with read_liberty),
//   - ONE .lib for Yosys (dfflibmap/abc/stat take one file): for a library split over several
//     files (ASAP7) the files are merged: the header of the first file, every other top-level
//     group (table templates, ...) not yet present, then every cell group of all files,
//   - Verilog functional models of every cell (for gate-level co-simulation), built by Yosys
//     `read_liberty` (without -lib) + `write_verilog`, since not every library ships them,
//   - a content hash of the inputs: the cache key, and part of every sweep result's key.
// Compressed (.gz) inputs are decompressed into the cache. Nothing is copied into the repository.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace gsqhw::synth {

struct LibraryChoice {
  // One of: empty (the built-in default, OSU 0.18 um from Debian qflow-tech-osu018),
  // "sky130", "asap7" (both need pdk_dir), or empty with user `files`.
  std::string pdk;
  std::filesystem::path pdk_dir;
  std::vector<std::filesystem::path> files;  // user liberty files (.lib or .lib.gz)
};

struct LibrarySet {
  std::string name;                             // "osu018", "sky130", "asap7", or the first file's stem
  std::string hash;                             // 16 hex digits over the input files' contents
  std::vector<std::filesystem::path> sta_files;  // plain .lib files, in the cache
  std::filesystem::path yosys_file;             // the single (possibly merged) .lib for Yosys
  std::filesystem::path cell_models;            // Verilog models of every cell (built lazily)
  std::string time_unit = "1ns";                // the library's time_unit, e.g. "1ns", "1ps"
  double time_unit_ns = 1.0;                    // that unit in ns (0.001 for 1ps)
};

// The default OSU 0.18 um liberty path (Debian qflow-tech-osu018).
std::filesystem::path default_liberty_path();

// Where resolved libraries live: $GSQHW_CACHE/liberty or ~/.cache/gsqhw/liberty.
std::filesystem::path liberty_cache_root();

// Resolves a choice into the cache (idempotent and safe for concurrent callers: files are
// written under temporary names and renamed). Throws UsageError for a missing/unreadable file,
// an unknown pdk name, a pdk_dir lacking the expected files, or a file that is not Liberty.
LibrarySet resolve_library(const LibraryChoice& choice);

// Builds (once per cache entry) the Verilog cell models of a resolved library; needs yosys.
std::filesystem::path ensure_cell_models(const LibrarySet& library);

// Liberty text utilities, exposed for tests.
struct LibertyGroup {
  std::string head;  // e.g. "cell (DFFHQNx1_ASAP7_75t_R)" (whitespace-normalised)
  std::string text;  // the whole group, from its keyword to its closing brace
};
struct LibertyFile {
  std::string library_head;              // "library (name)"
  std::string header;                    // everything inside the library group before the first cell
  std::vector<LibertyGroup> top_groups;  // top-level non-cell groups (templates, conditions, ...)
  std::vector<LibertyGroup> cells;       // every top-level cell group, in file order
};
// Splits Liberty text at the library group's top level (comments and strings are respected).
LibertyFile split_liberty(const std::string& text, const std::string& what);
// The merged single-library text described above.
std::string merge_liberty(const std::vector<LibertyFile>& files);

}  // namespace gsqhw::synth
