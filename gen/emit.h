// Internal interface between the generator's emitters (not part of the public contract).
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "gen/pe_spec.h"
#include "sim/design.h"

namespace gsqhw::gen {

using VerilogFile = std::pair<std::string, std::string>;  // (file name, text)

// The header every generated file starts with: generator version, design, module purpose.
std::string file_header(const DesignPoint& design, const std::string& module,
                        const std::string& purpose);

// PE level: the format's product module, the accumulator's addend and adder modules and
// gsqhw_pe itself, leaves first.
std::vector<VerilogFile> emit_pe_files(const DesignPoint& design, const PeSpec& pe);

// Array level: gsqhw_delay and gsqhw_array (skew, forwarding registers, drain), to be used
// with the PE files.
std::vector<VerilogFile> emit_array_files(const DesignPoint& design, const PeSpec& pe);

// Cycles from a step presented at gsqhw_pe's inputs to its out_valid beat (= pipeline depth).
int pe_latency(const PeSpec& pe);

// The NaN pattern written by the fp32 accumulator (sim/gemm.h: quiet NaN).
constexpr unsigned kFp32QuietNaN = 0x7fc00000u;

}  // namespace gsqhw::gen
