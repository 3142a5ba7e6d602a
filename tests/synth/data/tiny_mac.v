// Tiny signed 4x4-bit MAC with a 12-bit accumulator: a hand-written test design for the flow.
module tiny_mac (
  input  wire        clk,
  input  wire        rst,
  input  wire        in_valid,
  input  wire [3:0]  in_a,
  input  wire [3:0]  in_b,
  output reg  [11:0] out_acc
);
  wire signed [7:0] product = $signed(in_a) * $signed(in_b);
  always @(posedge clk) begin
    if (rst) out_acc <= 12'd0;
    else if (in_valid) out_acc <= out_acc + {{4{product[7]}}, product};
  end
endmodule
