// Verilating and compiling a design's testbench on the fly, with a build cache. (Spawning the
// testbench and streaming its output use base/process.h.)
//
// Cache: <cache_dir>/verilator/<key>/ holds the testbench binary `tb`, the Verilog it was built
// from, the generated port header and build.log. The key is a SHA-1 over the Verilator version,
// the testbench source (sim/harness/tb_main.cpp), the generated port header, the Verilator
// flags and every Verilog file's name and text, so any change rebuilds. Concurrent builds of
// one key are serialised with flock() on <key>.lock; a build happens in a private temporary
// folder that is renamed into place only when complete, so readers never see a half build.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "base/process.h"
#include "gen/schedule.h"

namespace gsqhw {

// Processes (find_program, run_logged, ChildProcess) are base/process.h's.

// ---- Verilator build cache -----------------------------------------------------------------

struct VerilatorBuildSpec {
  std::string top;  // top module name
  // Verilog sources, (file name, text), dependency order (leaves first).
  std::vector<std::pair<std::string, std::string>> sources;
  // The top's ports other than clk and rst, in the order the stimulus/results use.
  std::vector<PortSpec> ports;
  std::string valid_port = "out_valid";  // the output that marks a result beat
  bool fst = false;                      // trace format FST (else VCD)
  // SystemC testbench (sim/harness/tb_sc_main.cpp, Verilator --sc, no tracing) instead of the
  // plain C++ one; same stimulus/results files.
  bool systemc = false;
  std::string label;                     // human-readable (design string), stored beside the build
  // The fast build (plain C++ testbench only): no tracing compiled in, model and testbench at
  // -O3 -march=native. The default, traced build (-Os, --trace) is the one for waves and
  // activity. The two differ in flags and port header, so they are cached under separate keys.
  bool fast = false;
  // Verilator --threads for the model (fast build only; 1 = single-threaded evaluation).
  int threads = 1;
};

struct VerilatedModel {
  std::filesystem::path executable;  // the testbench binary
  std::filesystem::path dir;         // its cache folder
  std::string key;
  bool cache_hit = false;
  double build_seconds = 0;  // 0 on a cache hit
};

// $GSQHW_CACHE, else $XDG_CACHE_HOME/gsqhw, else ~/.cache/gsqhw.
std::filesystem::path default_cache_dir();

// `verilator --version`; throws ToolMissing (with the Debian package name) when absent.
std::string verilator_version();

// Checks that verilator and a C++ compiler exist; throws ToolMissing naming the packages.
void require_verilator_toolchain();

// Returns the cached testbench for `spec`, building it first if needed. Throws ToolMissing
// when verilator/g++ are missing, UsageError when Verilator rejects the sources (the message
// quotes the first errors and names the full log).
VerilatedModel build_verilated_model(const VerilatorBuildSpec& spec,
                                     const std::filesystem::path& cache_dir);

// Behavioural Verilog models of a Liberty library's cells, for simulating a mapped netlist
// with Verilator (which does not accept the UDP-based models that PDKs ship, e.g.
// osu018_stdcells.v): Yosys `read_liberty` (cell functions, flip-flops, latches) then
// `write_verilog`. Cached in <cache_dir>/cellmodels/<sha1 of the liberty>.v. Throws
// ToolMissing without yosys, UsageError when the file cannot be read.
std::filesystem::path cell_models_from_liberty(const std::filesystem::path& liberty,
                                               const std::filesystem::path& cache_dir);

// Hex SHA-1 of a byte string (cache keys).
std::string sha1_hex(const std::string& data);

}  // namespace gsqhw
