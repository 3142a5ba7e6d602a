// Test-only fault injection into generated designs (shared by the co-simulation tests): each
// helper wraps the design's top in a module of the same name and ports that corrupts one
// signal under a stated condition, so the RTL differs from the golden model in a known place.
#pragma once

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <regex>
#include <string>

#include "sim/cosim.h"

namespace gsqhw {

// Renames the design's top to <top>_faulty_inner and returns the wrapper's port list,
// declarations and the instance connections with `rewired` ports connected to <port>_faulty.
struct FaultWrapper {
  std::string ports, decls, conns;
};
inline FaultWrapper begin_fault_wrapper(CosimDesign& d, const std::vector<std::string>& rewired) {
  const std::string top = d.array.top;
  const std::regex declaration("\\bmodule\\s+" + top + "\\b");
  bool renamed = false;
  for (auto& [name, text] : d.sources) {
    if (std::regex_search(text, declaration)) {
      text = std::regex_replace(text, declaration, "module " + top + "_faulty_inner");
      renamed = true;
    }
  }
  EXPECT_TRUE(renamed);
  FaultWrapper w{"clk, rst", "  input clk;\n  input rst;\n", ".clk(clk), .rst(rst)"};
  for (const auto& p : d.array.ports) {
    const bool faulty = std::find(rewired.begin(), rewired.end(), p.name) != rewired.end();
    w.ports += ", " + p.name;
    w.decls += fmt::format("  {} [{}:0] {};\n", p.input ? "input" : "output", p.width - 1, p.name);
    w.conns += fmt::format(", .{}({})", p.name, faulty ? p.name + "_faulty" : p.name);
  }
  return w;
}

// Flips bit `bit` of in_a on the valid step number `step` (counting from 0 after reset): a
// one-bit operand fault.
inline CosimDesign inject_operand_fault(CosimDesign d, int step, int bit) {
  const std::string top = d.array.top;
  const int a_width = d.array.port_width("in_a");
  FaultWrapper w = begin_fault_wrapper(d, {"in_a"});
  std::string wrapper = fmt::format(
      "// Test-only fault injection (tests/cosim/cosim_faults.h).\n"
      "module {top}({ports});\n{decls}"
      "  reg [31:0] valid_steps;\n"
      "  always @(posedge clk) if (rst) valid_steps <= 0; else if (in_valid) valid_steps <= valid_steps + 1;\n"
      "  wire [{aw1}:0] in_a_faulty = in_a ^ ((in_valid && valid_steps == {step}) ? ({aw}'d1 << {bit}) : {aw}'d0);\n"
      "  {top}_faulty_inner inner({conns});\n"
      "endmodule\n",
      fmt::arg("top", top), fmt::arg("ports", w.ports), fmt::arg("decls", w.decls),
      fmt::arg("aw1", a_width - 1), fmt::arg("aw", a_width), fmt::arg("step", step),
      fmt::arg("bit", bit), fmt::arg("conns", w.conns));
  d.sources.emplace_back("fault_wrapper.v", wrapper);
  return d;
}

// A fault in the saturation path: on every result beat, each lane whose sticky overflow flag
// (bit 0 of its out_flags field) is set gets bit 0 of its accumulator flipped. Lanes that never
// saturate are untouched, so only tiles with a saturating output show it.
inline CosimDesign inject_saturation_fault(CosimDesign d) {
  const std::string top = d.array.top;
  const int C = d.array.cols, AW = d.array.acc_width, FW = d.array.flags_width;
  FaultWrapper w = begin_fault_wrapper(d, {"out_acc"});
  std::string flips;
  for (int j = 0; j < C; ++j)
    flips += fmt::format("  assign flip[{}] = out_valid & out_flags[{}];\n", j * AW, j * FW);
  std::string wrapper = fmt::format(
      "// Test-only fault injection (tests/cosim/cosim_faults.h): saturation path.\n"
      "module {top}({ports});\n{decls}"
      "  wire [{w1}:0] out_acc_faulty;\n"
      "  wire [{w1}:0] flip;\n"
      "  genvar i;\n"
      "  generate for (i = 0; i < {w}; i = i + 1) begin : g\n"
      "    if (i % {aw} != 0) begin : z assign flip[i] = 1'b0; end\n"
      "  end endgenerate\n"
      "{flips}"
      "  assign out_acc = out_acc_faulty ^ flip;\n"
      "  {top}_faulty_inner inner({conns});\n"
      "endmodule\n",
      fmt::arg("top", top), fmt::arg("ports", w.ports), fmt::arg("decls", w.decls),
      fmt::arg("w1", C * AW - 1), fmt::arg("w", C * AW), fmt::arg("aw", AW),
      fmt::arg("flips", flips), fmt::arg("conns", w.conns));
  d.sources.emplace_back("fault_wrapper.v", wrapper);
  return d;
}

}  // namespace gsqhw
