// The RTL generator's entry point: a DesignPoint in, readable Verilog and a manifest out.
// The manifest's fields are specified in docs/array-protocol.md; co-simulation, the cycle
// model and synthesis read it and hard-code nothing it says.
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "numerics/design.h"

namespace gsqhw {

struct GeneratedDesign {
  DesignPoint design;
  std::string top;  // top module name ("gsqhw_pe", "gsqhw_array", "gsqhw_core")
  // (file name, Verilog text) in dependency order: leaves first, the top last.
  std::vector<std::pair<std::string, std::string>> files;
  nlohmann::json manifest;  // docs/array-protocol.md
};

// Throws UsageError naming the broken limit for impossible designs (b outside 2..8, R = 0,
// an accumulator too narrow for the group sum, ...). DesignPoint::alignment = shared_column
// builds the shared-column GSE array (gen/shared_emit.cpp; manifest "architecture":
// "shared-column", timing.min_steps_per_group = R).
GeneratedDesign generate_design(const DesignPoint& design);

// Generator choices that are not part of the design point (extension of the contract above).
struct GeneratorOptions {
  // The plain INT-b MAC comparison point: with an int8 design point, build INT-b PEs/arrays
  // (b = 2..8) instead of INT8, e.g. the baseline of a GSE-INT-b design. 0 = the format's own.
  // Recorded in the manifest as "int_bits"; only the generator and synthesis understand it
  // (the golden model's int8 family is b = 8).
  int int_bits = 0;
};
GeneratedDesign generate_design(const DesignPoint& design, const GeneratorOptions& options);

// Writes every Verilog file, manifest.json and files.f into dir (created if needed). files.f
// lists the Verilog files one per line, leaves first and the top module's file last (the
// manifest's order), relative to dir: `verilator -F dir/files.f`, `cd dir && iverilog -c
// files.f`. Files are written to a temporary name and renamed, so an interrupted write leaves
// no half file behind.
void write_design(const GeneratedDesign& generated, const std::filesystem::path& dir);

// The text of files.f (see write_design).
std::string file_list(const GeneratedDesign& generated);

}  // namespace gsqhw
