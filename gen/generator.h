// The RTL generator's entry point: a DesignPoint in, readable Verilog and a manifest out.
// The manifest's fields are specified in docs/array-protocol.md; co-simulation, the cycle
// model and synthesis read it and hard-code nothing it says.
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "sim/design.h"

namespace gsqhw {

struct GeneratedDesign {
  DesignPoint design;
  std::string top;  // top module name ("gsqhw_pe", "gsqhw_array", "gsqhw_core")
  // (file name, Verilog text) in dependency order: leaves first, the top last.
  std::vector<std::pair<std::string, std::string>> files;
  nlohmann::json manifest;  // docs/array-protocol.md
};

// Throws UsageError naming the broken limit for impossible designs (b outside 2..8, R = 0,
// an accumulator too narrow for the group sum, ...).
GeneratedDesign generate_design(const DesignPoint& design);

// Writes every Verilog file and manifest.json into dir (created if needed). Files are written
// to a temporary name and renamed, so an interrupted write leaves no half file behind.
void write_design(const GeneratedDesign& generated, const std::filesystem::path& dir);

}  // namespace gsqhw
