// Internal interface between the generator's emitters (not part of the public contract).
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "gen/pe_spec.h"
#include "gen/verilog/module.h"
#include "numerics/design.h"

namespace gsqhw::gen {

using VerilogFile = std::pair<std::string, std::string>;  // (file name, text)

// The manifest fields that identify any generated design (docs/array-protocol.md): generator,
// design, slug, level, top, files (in `files` order), format, acc, rows, cols, dataflow, pipeline.
nlohmann::json manifest_identity(const DesignPoint& design, const std::string& level,
                                 const std::string& top, const std::vector<VerilogFile>& files);

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
void stage_cut(verilog::Block& body, const std::string& from, const std::string& to,
               const std::vector<Signal>& signals, bool registered, const std::string& comment);

// Significand width of the fp32 accumulator's datapath: at least binary32's 24 bits.
int fp32_mant_width(const PeSpec& pe);

// --- PE datapath stages (gen/stage_emit.cpp), shared by gsqhw_pe, gsqhw_pe_ws, gsqhw_pe_gsum
// and gsqhw_group_acc. Each adds its items to `body` and appends the data signals it drives to
// the caller's list for the next stage_cut.

// The format's gsqhw_product (instance u_product) on the element codes `a` and `b`: declares
// its outputs p_* (minifloats: sign, magnitude, exp_code, nan[, inf]; GSE and integers: the
// two's-complement product).
void product_instance(verilog::Block& body, const PeSpec& pe, const std::string& a,
                      const std::string& b, std::vector<Signal>& signals);

// The addend unit (gsqhw_addend_fixed|fp32, instance u_prepare) with the input connections
// `inputs` (e.g. {{"value", "a_sum"}, {"exp_code", "a_exp_code"}}): declares its outputs q_*.
using Pins = std::vector<std::pair<std::string, std::string>>;
void addend_unit(verilog::Block& body, const PeSpec& pe, const Pins& inputs,
                 std::vector<Signal>& q_signals);

// A PE's prepare stage: the addend unit fed from the stage signals <from>_* (GSE <from>_value,
// minifloats <from>_sign/_magnitude, integers <from>_product, and <from>_exp_code), plus the
// NaN/Inf flags q_nan/q_inf the format needs.
void prepare_addend_stage(verilog::Block& body, const PeSpec& pe, const std::string& from,
                          std::vector<Signal>& q_signals);

// The accumulator adder (gsqhw_acc_fixed|fp32, instance u_adder) adding the prepared addend
// r_* to `acc_in`/`flags_in`, or to zero with clear flags while `restart` is high: declares
// acc_base, flags_base, acc_sum (fixed: sum_overflow).
void accumulator_adder(verilog::Block& body, const PeSpec& pe, const std::string& restart,
                       const std::string& acc_in, const std::string& flags_in);

// Where a PE's accumulate stage reads and writes its running sum.
struct AccumulateWiring {
  std::string restart;   // high: start from zero with clear flags (r_first / r_restart)
  std::string acc_in;    // the running sum and its flags before this step
  std::string flags_in;
  std::string acc_out;   // the register written (the flags always go to out_flags)
  bool tile_end_valid;   // also drive out_valid the cycle after a tile's last step
};

// A PE's accumulate stage: accumulator_adder plus the registers it loads on r_valid.
void accumulate_stage(verilog::Block& body, const PeSpec& pe, const AccumulateWiring& wiring);

// The accumulator's leaf modules (gen/accumulator_emit.cpp), submodules first:
// gsqhw_addend_fixed|fp32 and gsqhw_acc_fixed|fp32 with their exponent-path (gsqhw_exp_*),
// alignment (gsqhw_align_*), adder (gsqhw_add_*) and normalisation/rounding or saturation
// (gsqhw_norm_*, gsqhw_sat_*) parts, split so that synthesis can measure each part.
std::vector<VerilogFile> emit_accumulator_files(const DesignPoint& design, const PeSpec& pe);
// GSE only: gsqhw_exp_add (the group's exponent e_a + e_b and NaN-group mark) and
// gsqhw_add_group (the exact group-sum adder).
std::vector<VerilogFile> emit_group_files(const DesignPoint& design, const PeSpec& pe);

// GSE: the group's exponent code and NaN mark from the two exponent codes (gsqhw_exp_add,
// instance u_exponent): declares the wires `exp_code` and `nan`.
void group_exponent(verilog::Block& body, const PeSpec& pe, const std::string& a_exp,
                    const std::string& b_exp, const std::string& exp_code, const std::string& nan);
// GSE: `sum` = (restart ? 0 : base) + product, the exact group-sum adder (gsqhw_add_group,
// instance u_group_add): declares `sum` (and `<sum>_base`).
void group_sum_adder(verilog::Block& body, const PeSpec& pe, const std::string& restart,
                     const std::string& base, const std::string& product, const std::string& sum);

// The leaves of every PE: the format's product module and the accumulator's addend and adder
// modules (gsqhw_product, gsqhw_addend_fixed|fp32, gsqhw_acc_fixed|fp32).
std::vector<VerilogFile> emit_leaf_files(const DesignPoint& design, const PeSpec& pe);

// gsqhw_delay (data) and gsqhw_delay_clear (controls) delay lines.
std::vector<VerilogFile> emit_delay_files(const DesignPoint& design);

// GSE arrays with the alignment hardware shared per column (align=shared):
// gsqhw_pe_gsum, gsqhw_group_acc, the delay lines and gsqhw_array.
std::vector<VerilogFile> emit_shared_array_files(const DesignPoint& design, const PeSpec& pe);

// Minifloat arrays with group sums accumulated per column (align=shared on fp8/fp6,
// gen/minifloat_shared_emit.cpp): gsqhw_product, the column's addend and adder,
// gsqhw_pe_gsum, gsqhw_group_acc, the delay lines and gsqhw_array.
std::vector<VerilogFile> emit_minifloat_shared_array_files(const DesignPoint& design,
                                                           const PeSpec& pe);

// The column unit of the shared-column GSE array (gsqhw_group_acc): exponent add, alignment
// and accumulation of one finished group sum per cycle into a ring of R accumulators.
std::string group_acc_file(const DesignPoint& design, const PeSpec& pe);

// --- Pieces of gsqhw_array shared by the OS, shared-column and WS arrays (gen/grid_emit.cpp).

// The ports of an output-stationary PE or array (docs/array-protocol.md) with `rows` A lanes
// and `cols` B lanes: clk, rst, the step controls, (GSE) in_group_last, in_a, in_b, (GSE)
// in_a_exp, in_b_exp, then out_valid, out_row, out_acc, out_flags. The same list gives the
// module header and the manifest's "ports".
std::vector<verilog::Port> os_array_ports(const PeSpec& pe, int rows, int cols);
// The weight-stationary array's ports (docs/array-protocol.md): a step is one row of A.
std::vector<verilog::Port> ws_array_ports(const DesignPoint& d, const PeSpec& pe);
// `ports` with the named outputs declared `output reg`.
std::vector<verilog::Port> with_regs(std::vector<verilog::Port> ports,
                                     const std::vector<std::string>& regs);

// The loops over PE(i,j) inside `generate` (genvars i, j; K = i*C + j) opening with the
// forwarding registers: controls (NC wide) and the A lane (`a_lane` wide, a localparam name)
// move one PE right per cycle; with a `b_lane` name the B lane moves one PE down per cycle.
// Returns the inner (column) block, where the caller adds the PE instance.
verilog::Block& grid_forwarding(verilog::Block& generate, const std::string& a_lane,
                                const std::string& b_lane);

// out_row's counter over the R = `rows` rows of a result wave, stepping while `valid`.
void result_row_counter(verilog::Block& block, int rows, const std::string& valid);

// Column j's unit results (result_valid/_acc/_flags) onto the outputs: the last column drives
// them directly (with out_valid), the others through a deskew line of C-1-j cycles so that all
// columns of a row leave together. Returns the last column's block (for the row counter).
verilog::Block& column_result_deskew(verilog::Block& column);

// Weight-stationary arrays (flow=ws, gen/ws_emit.cpp): leaves, gsqhw_pe_ws, (GSE)
// gsqhw_group_acc, the delay lines and gsqhw_array.
std::vector<VerilogFile> emit_ws_array_files(const DesignPoint& design, const PeSpec& pe);

// PE level: the format's product module, the accumulator's addend and adder modules and
// gsqhw_pe itself, leaves first.
std::vector<VerilogFile> emit_pe_files(const DesignPoint& design, const PeSpec& pe);

// Array level: gsqhw_delay and gsqhw_array (skew, forwarding registers, drain), to be used
// with the PE files.
std::vector<VerilogFile> emit_array_files(const DesignPoint& design, const PeSpec& pe);

// The NaN pattern written by the fp32 accumulator (numerics/gemm.h: quiet NaN).
constexpr unsigned kFp32QuietNaN = 0x7fc00000u;

}  // namespace gsqhw::gen
