// Small shared machinery for the LoTA-QAF and PTQ1.61 units (gen/lota.h, gen/ptq161.h):
// a bundle of generated Verilog, a self-checking testbench built from golden vectors, and
// runners for Icarus Verilog, `verilator --lint-only -Wall` and Yosys `hierarchy; proc; check`.
//
// Testbench contract: vector v is presented (inputs driven) in cycle v; the DUT's registered
// outputs after the next rising edge must equal the expected fields of vector v. The testbench
// counts checks and mismatches and prints one line
//   GSQHW_TB checked=<vectors> errors=<mismatches>
// which the runner parses; a missing line (crash, timeout) is a failure too.
#pragma once

#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

namespace gsqhw::rtlcheck {

struct RtlBundle {
  std::string top;
  std::vector<std::pair<std::string, std::string>> files;  // leaves first, the top last
  nlohmann::json manifest;
};

// Writes every file and manifest.json into dir (created if needed), each via a temporary name.
void write_bundle(const RtlBundle& bundle, const std::filesystem::path& dir);

// A port of the DUT that the vectors drive (input) or check (output).
struct Port {
  Port(std::string port_name, int port_width = 1, bool signed_port = false)
      : name(std::move(port_name)), width(port_width), is_signed(signed_port) {}
  std::string name;
  int width = 1;
  bool is_signed = false;
};

struct Check {
  Check(Port output, std::string condition) : port(std::move(output)), when(std::move(condition)) {}
  Port port;         // DUT output, compared with the vector's exp_<name>
  std::string when;  // Verilog condition over exp_* fields; empty = every vector
};

// Field values are bit strings, MSB first ('0'/'1'), exactly `width` long.
std::string bits(int64_t value, int width);  // two's complement, truncated to width

class VectorTable {
 public:
  VectorTable(std::vector<Port> inputs, std::vector<Check> checks);
  // One vector: a value per input, then one expected value per check, in declaration order.
  void add(const std::vector<std::string>& input_bits, const std::vector<std::string>& expect_bits);
  int64_t size() const { return static_cast<int64_t>(rows_.size()); }

  std::string hex() const;  // one line per vector, for $readmemh
  // A self-checking testbench for module `dut` (ports clk, rst plus the declared ones).
  // `vcd_file` not empty: dump the DUT's signals there from reset release on.
  std::string testbench(const std::string& dut, const std::string& hex_file,
                        const std::string& vcd_file = "") const;

 private:
  int row_width() const;
  std::vector<Port> inputs_;
  std::vector<Check> checks_;
  std::vector<std::string> rows_;  // concatenated bits, MSB first
};

// One mismatch the testbench printed (it prints the first 10): vector v was presented in cycle
// v after reset; `port` is the DUT output, the values are hex of the whole port.
struct TbMismatch {
  int64_t vector = 0;
  std::string port, expected_hex, actual_hex;
};

struct TbResult {
  int64_t checked = 0;
  int64_t errors = 0;
  std::string log;  // the simulator's output (first mismatches are printed there)
  std::vector<TbMismatch> mismatches;  // parsed from the log
};

// How to run the testbench.
struct SimOptions {
  // When set, the testbench dumps every signal below the DUT (scope "dut") into this VCD file
  // from reset release to the end, for switching activity (sim/activity.h).
  std::filesystem::path vcd;
};
// The testbench's clock period and reset release time in ns (its `timescale is 1ns/1ps).
inline constexpr int64_t kTbClockPeriodNs = 10;
inline constexpr int64_t kTbResetReleaseNs = 16;

// Writes the RTL, the testbench and the vectors into dir, compiles with iverilog, runs vvp.
// Throws MismatchError when compilation fails or the testbench prints no result line.
TbResult simulate(const RtlBundle& rtl, const VectorTable& vectors, const std::filesystem::path& dir,
                  const SimOptions& options = {});

// Hex digits (as printed by %h; x/z digits count as 0) to the bits [lsb, lsb + width) of the
// value, as a signed (or unsigned) integer; width <= 63.
int64_t hex_field(const std::string& hex, int lsb, int width, bool is_signed);

// verilator --lint-only -Wall and yosys "hierarchy -check; proc; check -assert" on the bundle.
// Throws MismatchError with the tool's messages on any warning or error.
void lint(const RtlBundle& rtl, const std::filesystem::path& dir);

// ceil(log2(n)) for n >= 1; the bits needed to count 0..n-1.
int clog2(int64_t n);
// Bits of a two's-complement number holding every value in [-max_abs, max_abs].
int signed_width(int64_t max_abs);

}  // namespace gsqhw::rtlcheck
