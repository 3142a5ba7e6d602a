// Co-simulation of a sibling design (synth/sibling_design.h) on traces of a LoRA layer: the
// base GEMM of each projection (traces named "*.fwd.base": X = tokens x d_in activations,
// W = d_out x d_in weights, both FP32 originals) is quantized the method's way, the golden
// model computes every integer the hardware must produce, and the generated RTL runs the same
// stream in Icarus Verilog, checked bit-exact on every output.
//
//   LoTA-QAF: W -> N-bit asymmetric group-wise codes (lota::quantize_weights); ternary adapters
//     A_T, B_T drawn from the design's seed and the trace name (each entry uniform over
//     {-1, 0, +1}); lota::merge; X -> INT8 per token; the integer PE is checked on every group
//     dot product P and activation sum X of lota::merged_gemm, and the merge unit on every
//     merged code, dW and group sum of lota::merge.
//   PTQ1.61: salient channels from the trace's activations (mean |x|), ptq161::quantize,
//     activations with t folded in, the array checked on every P_sal, P_bin, X_sal, X_bin.
//
// Trace error (same definition as synth::trace_error: SQNR of the dequantized outputs against
// the FP32 product, summed over the traces): PTQ1.61 against X W^T; LoTA-QAF against
// X (W + dW_merged)^T, where dW_merged = dequant(merged) - dequant(base) is the change the
// adapters make, so that the figure is the quantization error of the fine-tuned layer and not
// the size of the (random) fine-tuning update.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "sim/activity.h"
#include "synth/point.h"
#include "synth/sibling_design.h"
#include "workloads/trace.h"

namespace gsqhw::synth {

// The traces a sibling design runs on: those of `files` whose name ends in "fwd.base" (sorted
// by name as given). UsageError when there is none.
std::vector<std::filesystem::path> base_gemm_traces(const std::vector<std::filesystem::path>& files);

// One trace prepared for a design: the golden model's inputs and outputs.
struct SiblingCase {
  std::string trace;                 // trace name, e.g. "L0.q.fwd.base"
  int64_t tokens = 0, d_out = 0, d_in = 0;
  QuantizedTensor x;                 // INT8 per token (PTQ1.61: with t folded in)
  lota::QuantizedWeights base;       // LoTA-QAF
  lota::Adapters adapters;           // LoTA-QAF
  lota::MergeResult merged;          // LoTA-QAF
  ptq161::Ptq161Layer layer;         // PTQ1.61
  std::vector<float> out;            // golden outputs, tokens x d_out
  std::vector<double> reference;     // the FP32 product they are measured against
  double storage_bits = 0;           // bits to store the layer's weights and their metadata
  int64_t macs() const { return tokens * d_out * d_in; }
};
SiblingCase prepare_case(const SiblingDesign& design, const Trace& trace);

// Seeded ternary adapters for a d_in x d_out layer (documented in the file comment).
lota::Adapters seeded_adapters(int64_t d_in, int64_t d_out, int rank, uint64_t seed, const std::string& trace);

// Accumulates one case's outputs into a trace error.
void add_error(const SiblingCase& c, TraceError& error);

struct SiblingSimResult {
  bool pass = false;
  int64_t vectors = 0, errors = 0;   // checked cycles and mismatching outputs
  int64_t cycles = 0;                // cycles the stream took (vectors)
  std::vector<std::string> mismatches;  // readable: design, trace, cycle, PE, output, both values
};
// Runs the design's RTL on one case (work files in dir). With `vcd` set, the simulation also
// dumps the DUT's signals there for switching activity.
SiblingSimResult simulate_case(const SiblingDesign& design, const rtlcheck::RtlBundle& rtl, const SiblingCase& c,
                               const std::filesystem::path& dir, const std::filesystem::path& vcd = {});
// The LoTA-QAF merge unit on one case's layer (every merged code, dW and group sum).
SiblingSimResult simulate_merge(const SiblingDesign& design, const SiblingCase& c, const std::filesystem::path& dir);

// Switching activity of the DUT from a VCD the testbench wrote (rtlcheck::SimOptions::vcd).
SwitchingActivity activity_from_testbench_vcd(const std::filesystem::path& vcd, const std::string& top);

}  // namespace gsqhw::synth
