// The one Verilog writer of the generator: a small module builder and the printer that owns
// its layout.
//
// An emitter states WHAT a module holds (ports, parameters, declarations, assignments,
// always blocks, instances, generate loops, free-form statements where nothing fits better);
// the printer decides HOW it looks: two spaces per nesting level, begin/end of every block,
// aligned port lists, declarations and localparams, instance pins packed to the line width.
// Emitters therefore never write indentation or closing `end`s themselves, and a module's
// port list is one value that gives both the Verilog header and the manifest's "ports"
// (manifest_ports). Idea borrowed from Verilator's V3OutFormatter: one writer owns
// indentation and blocks.
//
//   verilog::Module m("gsqhw_delay");
//   m.parameter("WIDTH", "1");
//   m.port(verilog::in("clk"));
//   m.port(verilog::in("d", "WIDTH"));
//   m.body.assign("q", "d");
//   std::string text = m.str();
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace gsqhw::gen::verilog {

// "[W-1:0]" for a width of W > 1 bits, "" for 1 bit; "[EXPR-1:0]" for a parameter expression.
std::string range(int width);
std::string range(std::string_view width_expr);

// One port of a module.
struct Port {
  enum class Dir { in, out };
  Dir dir = Dir::in;
  std::string name;
  int width = 1;           // bits (what the manifest reports)
  std::string width_expr;  // set: the declared width is this parameter expression instead
  bool is_signed = false;
  bool is_reg = false;     // an output driven from an always block
  std::string comment;     // trailing Verilog comment
  std::string meaning;     // the manifest's "meaning" (docs/array-protocol.md)

  Port& as_reg() { is_reg = true; return *this; }
  Port& as_signed() { is_signed = true; return *this; }
  Port& note(std::string text) { comment = std::move(text); return *this; }
  Port& means(std::string text) { meaning = std::move(text); return *this; }
};
Port in(std::string name, int width = 1, std::string meaning = "");
Port out(std::string name, int width = 1, std::string meaning = "");
Port in(std::string name, std::string width_expr);
Port out(std::string name, std::string width_expr);

// The manifest's "ports" array (docs/array-protocol.md): {name, dir "in"/"out", width,
// meaning} for every port, in declaration order.
nlohmann::json manifest_ports(const std::vector<Port>& ports);

// A declared signal: `wire`, `reg` or `integer`. A memory puts its unpacked dimension into
// the name ("expected [0:BEATS-1]").
struct Decl {
  std::string kind = "wire";
  std::string name;
  std::string range;  // "" for one bit (see range())
  bool is_signed = false;
  std::string init;   // wire: continuous assignment; reg/integer: initial value (testbenches)
  std::string comment;
};

// A module instance; with `params` it is printed `module #(.P(v), ...) name (...)`.
struct Instance {
  Instance(std::string module_name, std::string instance_name)
      : module(std::move(module_name)), name(std::move(instance_name)) {}
  std::string module, name;
  std::vector<std::pair<std::string, std::string>> params;
  std::vector<std::pair<std::string, std::string>> pins;  // (port, expression)

  Instance& param(std::string p, std::string value) {
    params.emplace_back(std::move(p), std::move(value));
    return *this;
  }
  Instance& pin(std::string port, std::string expr) {
    pins.emplace_back(std::move(port), std::move(expr));
    return *this;
  }
};

// A sequence of statements at one nesting level. Nested blocks (begin ... end) are children
// that the printer indents one level deeper.
class Block {
 public:
  Block();
  ~Block();
  Block(Block&&) noexcept;
  Block& operator=(Block&&) noexcept;

  // One statement line as written (the printer indents it).
  Block& line(std::string text);
  // Free-form statements, several lines: their common indentation is removed and the block's
  // put in front, relative indentation is kept (for logic no builder call expresses better).
  Block& lines(std::string_view text);
  Block& blank();
  // "// text", one comment line per line of `text`.
  Block& comment(std::string_view text);

  // Declarations; consecutive ones are aligned in columns.
  Block& decl(Decl d);
  Block& wire(std::string name, int width = 1, std::string init = "", std::string comment = "");
  Block& wire_signed(std::string name, int width, std::string init = "", std::string comment = "");
  Block& reg(std::string name, int width = 1, std::string comment = "");
  Block& reg_signed(std::string name, int width, std::string comment = "");
  Block& integer(std::string name, std::string comment = "");
  // With a range written out, for parameter widths: wire_range("pe_acc", "[R*C*AW-1:0]").
  Block& wire_range(std::string name, std::string range, std::string comment = "");
  Block& reg_range(std::string name, std::string range, std::string comment = "");
  // `localparam NAME = value;` (consecutive ones aligned).
  Block& localparam(std::string name, std::string value, std::string comment = "");
  Block& localparam_integer(std::string name, std::string value, std::string comment = "");

  Block& assign(std::string lhs, std::string rhs, std::string comment = "");
  Block& instance(Instance inst);

  // `head begin[ : label]` ... `end`: returns the inner block.
  Block& open(std::string head, std::string label = "");
  // `always @(posedge clk) begin` ... `end`.
  Block& always_ff(std::string clock = "clk");
  // `always @* begin` ... `end`.
  Block& always_comb();
  // `if (cond) begin[ : label]` ... `end`; else_() right after it adds `end else begin ...`.
  Block& if_(std::string cond, std::string label = "");
  Block& else_if(std::string cond, std::string label = "");
  Block& else_(std::string label = "");
  // `for (v = 0; v < n; v = v + 1) begin : label` ... `end` (a generate loop inside generate).
  Block& for_(std::string var, std::string count, std::string label = "");
  // `generate` ... `endgenerate`.
  Block& generate();

  // Testbenches (behavioural code; not for synthesisable modules).
  // `initial begin` ... `end`.
  Block& initial();
  // `task signature;` `begin` ... `end` `endtask`, e.g. task("offer(input [15:0] m)").
  Block& task(std::string signature);
  // `name(arg, ...);` -- a system task or task call; printed on one line, or wrapped after
  // commas with the arguments aligned when the line would pass the line width.
  Block& call(std::string name, const std::vector<std::string>& args = {});
  // `$display("format", arg, ...);` (the format is quoted here, not escaped: no '"' in it).
  Block& display(std::string_view format, std::vector<std::string> args = {});

  bool empty() const;
  void print(std::string& out, int level) const;

 private:
  struct Item;
  std::vector<std::unique_ptr<Item>> items_;
  Block& child(std::string head, std::string label, bool chained, std::string open_word,
               std::string close_word);
};

// A whole module: the comment lines above it, parameters, ports and the body.
class Module {
 public:
  explicit Module(std::string name) : name_(std::move(name)) {}

  // Text printed before `module` (file header and description comment lines), verbatim.
  std::string preamble;
  Block body;

  Module& parameter(std::string name, std::string value, std::string comment = "");
  Module& port(Port p);
  Module& ports(const std::vector<Port>& ps);
  const std::vector<Port>& port_list() const { return ports_; }
  const std::string& name() const { return name_; }

  std::string str() const;

 private:
  std::string name_;
  struct Parameter {
    std::string name, value, comment;
  };
  std::vector<Parameter> parameters_;
  std::vector<Port> ports_;
};

// Verilog literals and expressions that would otherwise need `{{ }}` escapes in fmt strings.
std::string cat(const std::vector<std::string>& parts);  // {a, b, c}
std::string repl(int count, std::string_view expr);      // {n{expr}}

}  // namespace gsqhw::gen::verilog
