// Verilog of gsqhw_core_cosim, the co-simulation wrapper around gsqhw_core (sim/core_cosim.h):
// not part of the design. It closes the valid/ready loops that the cycle-by-cycle replay
// harness cannot (an operand FIFO, a held descriptor, gated out_ready) and reports what to
// record each cycle.
#pragma once

#include <string>
#include <vector>

#include "gen/verilog/module.h"

namespace gsqhw::gen {

// The wrapper's ports after clk and rst, in the order of the harness' stimulus records
// (inputs) and result records (outputs).
std::vector<verilog::Port> core_cosim_wrapper_ports();

// The wrapper for a core of design `design` whose operand FIFO holds `fifo_words` words
// (at least (max_m + max_n) * max_k).
std::string core_cosim_wrapper_verilog(const std::string& design, int64_t fifo_words);

}  // namespace gsqhw::gen
