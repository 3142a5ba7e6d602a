// The Verilog writer (gen/verilog/module.h): the printer owns indentation, begin/end and
// alignment, and a port list gives both the module header and the manifest's ports.
#include <gtest/gtest.h>

#include "gen/verilog/module.h"

namespace gsqhw::gen::verilog {
namespace {

TEST(VerilogWriter, PrinterOwnsLayout) {
  Module m("demo");
  m.preamble = "// demo: a test module\n";
  m.parameter("WIDTH", "4");
  m.port(in("clk", 1, "clock"));
  m.port(in("d", 8, "data").note("eight bits"));
  m.port(out("q", 8, "data, one cycle later").as_reg());
  m.port(out("sum", 9, "d + q").as_signed());
  m.body.localparam("A", "1").localparam("LONG", "2", "aligned");
  m.body.wire("x", 3, "d[2:0]").reg("flag").integer("i");
  auto& ff = m.body.always_ff();
  ff.if_("flag").line("q <= d;");
  ff.else_().line("q <= 8'd0;");
  m.body.assign("sum", "$signed({1'b0, d}) + $signed({1'b0, q})");
  m.body.instance(Instance("sub", "u_sub").param("N", "2").pin("a", "x").pin("b", "flag"));
  EXPECT_EQ(m.str(),
            "// demo: a test module\n"
            "module demo #(\n"
            "  parameter WIDTH = 4\n"
            ") (\n"
            "  input  wire              clk,\n"
            "  input  wire        [7:0] d,    // eight bits\n"
            "  output reg         [7:0] q,\n"
            "  output wire signed [8:0] sum\n"
            ");\n"
            "  localparam A    = 1;\n"
            "  localparam LONG = 2;  // aligned\n"
            "  wire [2:0] x = d[2:0];\n"
            "  reg        flag;\n"
            "  integer i;\n"
            "  always @(posedge clk) begin\n"
            "    if (flag) begin\n"
            "      q <= d;\n"
            "    end else begin\n"
            "      q <= 8'd0;\n"
            "    end\n"
            "  end\n"
            "  assign sum = $signed({1'b0, d}) + $signed({1'b0, q});\n"
            "  sub #(.N(2)) u_sub (.a(x), .b(flag));\n"
            "endmodule\n");
}

TEST(VerilogWriter, PortListGivesTheManifestPorts) {
  std::vector<Port> ports = {in("clk", 1, "clock"), out("out_acc", 64, "two accumulators")};
  nlohmann::json json = manifest_ports(ports);
  ASSERT_EQ(json.size(), 2u);
  EXPECT_EQ(json[1]["name"], "out_acc");
  EXPECT_EQ(json[1]["dir"], "out");
  EXPECT_EQ(json[1]["width"], 64);
  EXPECT_EQ(json[1]["meaning"], "two accumulators");
  EXPECT_THROW(manifest_ports({in("d", "WIDTH")}), std::logic_error);  // no number to report
}

TEST(VerilogWriter, LongInstancesWrapAndFreeTextIsReindented) {
  Block b;
  Instance inst("gsqhw_delay", "a_very_long_instance_name");
  for (int k = 0; k < 8; ++k) inst.pin("port_" + std::to_string(k), "signal_" + std::to_string(k));
  auto& gen = b.generate();
  gen.instance(inst);
  gen.lines("    if (a) begin\n      b = 1;\n    end\n");
  std::string text;
  b.print(text, 1);
  EXPECT_EQ(text,
            "  generate\n"
            "    gsqhw_delay a_very_long_instance_name (\n"
            "        .port_0(signal_0), .port_1(signal_1), .port_2(signal_2), .port_3(signal_3),\n"
            "        .port_4(signal_4), .port_5(signal_5), .port_6(signal_6), .port_7(signal_7));\n"
            "    if (a) begin\n"
            "      b = 1;\n"
            "    end\n"
            "  endgenerate\n");
  Block lone;
  EXPECT_THROW(lone.else_(), std::logic_error);
}

// Testbench statements: initial blocks, a task, system-task calls (long ones wrapped under
// their first argument), $display with a quoted format, initialised regs and integers.
TEST(VerilogWriter, TestbenchInitialTaskAndCalls) {
  Module tb("tb");
  tb.preamble = "`timescale 1ns/1ps\n";
  tb.body.decl({"reg", "clk", "", false, "1'b0", ""});
  tb.body.decl({"integer", "errors", "", false, "0", ""});
  Block& task = tb.body.task("pulse(input [3:0] n)");
  task.line("@(negedge clk);");
  Block& run = tb.body.initial();
  run.call("$readmemh", {"\"v.hex\"", "vectors"});
  run.display("errors=%0d", {"errors"});
  run.display("a rather long message that needs every one of its arguments: %0d %0d %0d %0d",
              {"first_argument", "second_argument", "third_argument", "fourth"});
  run.call("$finish");
  EXPECT_EQ(tb.str(),
            "`timescale 1ns/1ps\n"
            "module tb;\n"
            "  reg clk = 1'b0;\n"
            "  integer errors = 0;\n"
            "  task pulse(input [3:0] n);\n"
            "    begin\n"
            "      @(negedge clk);\n"
            "    end\n"
            "  endtask\n"
            "  initial begin\n"
            "    $readmemh(\"v.hex\", vectors);\n"
            "    $display(\"errors=%0d\", errors);\n"
            "    $display(\"a rather long message that needs every one of its arguments: %0d %0d %0d %0d\",\n"
            "             first_argument, second_argument, third_argument, fourth);\n"
            "    $finish;\n"
            "  end\n"
            "endmodule\n");
  EXPECT_THROW(run.display("say \"hi\""), std::logic_error);
}

}  // namespace
}  // namespace gsqhw::gen::verilog
