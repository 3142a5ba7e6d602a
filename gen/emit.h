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

// Width of the exponent of a significand's leading bit inside the fp32 accumulator: every
// reachable value (fp32 accumulators, BF16 x BF16 products, GSE groups with E = 8) lies
// within +-2^10.
constexpr int kTopWidth = 12;

// One signal of a pipeline stage (see stage_cut).
struct Signal {
  std::string name;
  int width = 1;
  bool is_signed = false;
  bool is_control = false;  // reset to 0; data registers load only on valid steps
};

// Stage boundary between signals <from>_x and <to>_x: plain wires, or (registered) a register
// stage whose data registers load when <from>_valid is high and whose controls reset.
std::string stage_cut(const std::string& from, const std::string& to,
                      const std::vector<Signal>& signals, bool registered,
                      const std::string& comment);

// Significand width of the fp32 accumulator's datapath: at least binary32's 24 bits.
int fp32_mant_width(const PeSpec& pe);

// The leaves of every PE: the format's product module and the accumulator's addend and adder
// modules (gsqhw_product, gsqhw_addend_fixed|fp32, gsqhw_acc_fixed|fp32).
std::vector<VerilogFile> emit_leaf_files(const DesignPoint& design, const PeSpec& pe);

// gsqhw_delay (data) and gsqhw_delay_clear (controls) delay lines.
std::vector<VerilogFile> emit_delay_files(const DesignPoint& design);

// GSE arrays with the alignment hardware shared per column (align=shared):
// gsqhw_pe_gsum, gsqhw_group_acc, the delay lines and gsqhw_array.
std::vector<VerilogFile> emit_shared_array_files(const DesignPoint& design, const PeSpec& pe);
int shared_array_latency(const DesignPoint& design, const PeSpec& pe);

// The column unit of the shared-column GSE array (gsqhw_group_acc): exponent add, alignment
// and accumulation of one finished group sum per cycle into a ring of R accumulators.
std::string group_acc_file(const DesignPoint& design, const PeSpec& pe);

// Weight-stationary arrays (flow=ws, gen/ws_emit.cpp): leaves, gsqhw_pe_ws, (GSE)
// gsqhw_group_acc, the delay lines and gsqhw_array.
std::vector<VerilogFile> emit_ws_array_files(const DesignPoint& design, const PeSpec& pe);
int ws_array_latency(const DesignPoint& design, const PeSpec& pe);

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
