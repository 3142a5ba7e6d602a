// Error kinds shared by the whole code base. The CLI maps them to exit codes:
//   UsageError    -> 2  (bad parameters, malformed input files, impossible designs)
//   ToolMissing   -> 2  (a required external tool is not installed; message says how to install)
//   MismatchError -> 1  (a check ran and failed: RTL differs from the golden model, ...)
//   anything else -> 1
#pragma once

#include <stdexcept>
#include <string>

namespace gsqhw {

// The user gave us something we cannot work with. The message must name what was wrong
// and, where it helps, what would be accepted.
struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// An external program (verilator, yosys, sta, iverilog, gnuplot, ...) is not available.
struct ToolMissing : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// A verification ran to completion and found a difference.
struct MismatchError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

}  // namespace gsqhw
