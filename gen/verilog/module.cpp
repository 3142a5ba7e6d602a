// The module builder and its printer (gen/verilog/module.h).
#include "gen/verilog/module.h"

#include <fmt/format.h>

#include <algorithm>
#include <tuple>
#include <stdexcept>

namespace gsqhw::gen::verilog {
namespace {

constexpr int kIndent = 2;       // spaces per nesting level
constexpr size_t kLineWidth = 100;  // instance pins are packed up to this column

std::string pad(std::string_view s, size_t width) {
  std::string out(s);
  if (out.size() < width) out.append(width - out.size(), ' ');
  return out;
}

std::string with_comment(std::string text, const std::string& comment, size_t column = 0) {
  if (comment.empty()) return text;
  return pad(text, column) + "  // " + comment;
}

}  // namespace

std::string range(int width) { return width > 1 ? fmt::format("[{}:0]", width - 1) : ""; }
std::string range(std::string_view width_expr) { return fmt::format("[{}-1:0]", width_expr); }

Port in(std::string name, int width, std::string meaning) {
  return Port{Port::Dir::in, std::move(name), width, "", false, false, "", std::move(meaning)};
}
Port out(std::string name, int width, std::string meaning) {
  return Port{Port::Dir::out, std::move(name), width, "", false, false, "", std::move(meaning)};
}
Port in(std::string name, std::string width_expr) {
  Port p = in(std::move(name));
  p.width_expr = std::move(width_expr);
  return p;
}
Port out(std::string name, std::string width_expr) {
  Port p = out(std::move(name));
  p.width_expr = std::move(width_expr);
  return p;
}

nlohmann::json manifest_ports(const std::vector<Port>& ports) {
  nlohmann::json list = nlohmann::json::array();
  for (const Port& p : ports) {
    if (!p.width_expr.empty())
      throw std::logic_error("manifest_ports: port " + p.name + " has a parameter width");
    list.push_back({{"name", p.name},
                    {"dir", p.dir == Port::Dir::in ? "in" : "out"},
                    {"width", p.width},
                    {"meaning", p.meaning}});
  }
  return list;
}

std::string cat(const std::vector<std::string>& parts) {
  return "{" + fmt::format("{}", fmt::join(parts, ", ")) + "}";
}
std::string repl(int count, std::string_view expr) { return fmt::format("{{{}{{{}}}}}", count, expr); }

// --- Block ------------------------------------------------------------------------------

struct Block::Item {
  enum class Kind { line, decl, param, instance, child, call } kind = Kind::line;
  std::string text;  // line: the text; param: "name"; child: the opening line
  Decl decl;         // decl
  std::string value, comment;  // param
  bool integer_param = false;
  Instance inst{"", ""};  // instance
  std::vector<std::string> args;  // call: the arguments
  Block block;       // child: the inner statements
  std::string close; // child: the closing word ("end", "endgenerate")
  bool chained = false;  // child: continues the previous child ("end else begin")
};

Block::Block() = default;
Block::~Block() = default;
Block::Block(Block&&) noexcept = default;
Block& Block::operator=(Block&&) noexcept = default;

Block& Block::line(std::string text) {
  auto item = std::make_unique<Item>();
  item->text = std::move(text);
  items_.push_back(std::move(item));
  return *this;
}

Block& Block::lines(std::string_view text) {
  std::vector<std::string_view> rows;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    rows.push_back(text.substr(pos, end - pos));
    pos = end + 1;
  }
  size_t common = std::string_view::npos;
  for (auto row : rows)
    if (row.find_first_not_of(' ') != std::string_view::npos)
      common = std::min(common, row.find_first_not_of(' '));
  for (auto row : rows)
    line(row.find_first_not_of(' ') == std::string_view::npos ? "" : std::string(row.substr(common)));
  return *this;
}

Block& Block::blank() { return line(""); }

Block& Block::comment(std::string_view text) {
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    line("// " + std::string(text.substr(pos, end - pos)));
    pos = end + 1;
  }
  return *this;
}

Block& Block::decl(Decl d) {
  auto item = std::make_unique<Item>();
  item->kind = Item::Kind::decl;
  item->decl = std::move(d);
  items_.push_back(std::move(item));
  return *this;
}

Block& Block::wire(std::string name, int width, std::string init, std::string comment) {
  return decl({"wire", std::move(name), range(width), false, std::move(init), std::move(comment)});
}
Block& Block::wire_signed(std::string name, int width, std::string init, std::string comment) {
  return decl({"wire", std::move(name), range(width), true, std::move(init), std::move(comment)});
}
Block& Block::reg(std::string name, int width, std::string comment) {
  return decl({"reg", std::move(name), range(width), false, "", std::move(comment)});
}
Block& Block::reg_signed(std::string name, int width, std::string comment) {
  return decl({"reg", std::move(name), range(width), true, "", std::move(comment)});
}
Block& Block::integer(std::string name, std::string comment) {
  return decl({"integer", std::move(name), "", false, "", std::move(comment)});
}

Block& Block::wire_range(std::string name, std::string range, std::string comment) {
  return decl({"wire", std::move(name), std::move(range), false, "", std::move(comment)});
}
Block& Block::reg_range(std::string name, std::string range, std::string comment) {
  return decl({"reg", std::move(name), std::move(range), false, "", std::move(comment)});
}

Block& Block::localparam(std::string name, std::string value, std::string comment) {
  auto item = std::make_unique<Item>();
  item->kind = Item::Kind::param;
  item->text = std::move(name);
  item->value = std::move(value);
  item->comment = std::move(comment);
  items_.push_back(std::move(item));
  return *this;
}

Block& Block::localparam_integer(std::string name, std::string value, std::string comment) {
  localparam(std::move(name), std::move(value), std::move(comment));
  items_.back()->integer_param = true;
  return *this;
}

Block& Block::assign(std::string lhs, std::string rhs, std::string comment) {
  return line(with_comment(fmt::format("assign {} = {};", lhs, rhs), comment));
}

Block& Block::instance(Instance inst) {
  auto item = std::make_unique<Item>();
  item->kind = Item::Kind::instance;
  item->inst = std::move(inst);
  items_.push_back(std::move(item));
  return *this;
}

Block& Block::child(std::string head, std::string label, bool chained, std::string open_word,
                    std::string close_word) {
  if (chained && (items_.empty() || items_.back()->kind != Item::Kind::child))
    throw std::logic_error("verilog::Block: else without a preceding if block");
  auto item = std::make_unique<Item>();
  item->kind = Item::Kind::child;
  item->text = head.empty() || open_word.empty() ? head + open_word : head + " " + open_word;
  if (!label.empty()) item->text += " : " + label;
  item->close = std::move(close_word);
  item->chained = chained;
  items_.push_back(std::move(item));
  return items_.back()->block;
}

Block& Block::open(std::string head, std::string label) {
  return child(std::move(head), std::move(label), false, "begin", "end");
}
Block& Block::always_ff(std::string clock) {
  return open(fmt::format("always @(posedge {})", clock));
}
Block& Block::always_comb() { return open("always @*"); }
Block& Block::if_(std::string cond, std::string label) {
  return open(fmt::format("if ({})", cond), std::move(label));
}
Block& Block::else_if(std::string cond, std::string label) {
  return child(fmt::format("else if ({})", cond), std::move(label), true, "begin", "end");
}
Block& Block::else_(std::string label) {
  return child("else", std::move(label), true, "begin", "end");
}
Block& Block::for_(std::string var, std::string count, std::string label) {
  return open(fmt::format("for ({0} = 0; {0} < {1}; {0} = {0} + 1)", var, count), std::move(label));
}
Block& Block::generate() { return child("", "", false, "generate", "endgenerate"); }

Block& Block::initial() { return open("initial"); }

Block& Block::task(std::string signature) {
  return child("task " + signature + ";", "", false, "", "endtask").open("");
}

Block& Block::call(std::string name, const std::vector<std::string>& args) {
  auto item = std::make_unique<Item>();
  item->kind = Item::Kind::call;
  item->text = std::move(name);
  item->args = args;
  items_.push_back(std::move(item));
  return *this;
}

Block& Block::display(std::string_view format, std::vector<std::string> args) {
  if (format.find('"') != std::string_view::npos)
    throw std::logic_error("verilog::Block::display: a '\"' in the format");
  args.insert(args.begin(), "\"" + std::string(format) + "\"");
  return call("$display", args);
}

bool Block::empty() const { return items_.empty(); }

namespace {

// Declarations in one run share columns: kind, signedness, range, name.
void print_decls(std::string& out, const std::string& indent,
                 const std::vector<const Decl*>& run) {
  size_t kind_w = 0, range_w = 0;
  bool any_signed = false;
  for (const Decl* d : run) {
    if (d->kind == "integer") continue;  // `integer i;` stands apart from the columns
    kind_w = std::max(kind_w, d->kind.size());
    range_w = std::max(range_w, d->range.size());
    any_signed |= d->is_signed;
  }
  std::vector<std::string> texts;
  size_t text_w = 0;
  for (const Decl* d : run) {
    if (d->kind == "integer") {
      texts.push_back("integer " + d->name + (d->init.empty() ? ";" : " = " + d->init + ";"));
      if (!d->comment.empty()) text_w = std::max(text_w, texts.back().size());
      continue;
    }
    std::string text = pad(d->kind, kind_w) + " ";
    if (any_signed) text += d->is_signed ? "signed " : "       ";
    if (range_w > 0) text += pad(d->range, range_w) + " ";
    text += d->name;
    text += d->init.empty() ? ";" : " = " + d->init + ";";
    texts.push_back(text);
    if (!d->comment.empty()) text_w = std::max(text_w, text.size());
  }
  for (size_t i = 0; i < run.size(); ++i)
    out += indent + with_comment(texts[i], run[i]->comment, text_w) + "\n";
}

// Localparams in one run share the '=' column and the comment column.
void print_params(std::string& out, const std::string& indent,
                  const std::vector<std::tuple<std::string, std::string, std::string>>& run) {
  size_t name_w = 0, text_w = 0;
  for (const auto& [name, value, comment] : run) name_w = std::max(name_w, name.size());
  std::vector<std::string> texts;
  for (const auto& [name, value, comment] : run) {
    texts.push_back(fmt::format("localparam {} = {};", pad(name, name_w), value));
    if (!comment.empty()) text_w = std::max(text_w, texts.back().size());
  }
  for (size_t k = 0; k < run.size(); ++k)
    out += indent + with_comment(texts[k], std::get<2>(run[k]), text_w) + "\n";
}

// One line when it fits kLineWidth, else the pins packed onto lines four spaces deeper.
void print_instance(std::string& out, const std::string& indent, const Instance& inst) {
  std::string head = inst.module;
  if (!inst.params.empty()) {
    std::vector<std::string> ps;
    for (const auto& [name, value] : inst.params) ps.push_back(fmt::format(".{}({})", name, value));
    head += fmt::format(" #({})", fmt::join(ps, ", "));
  }
  head += " " + inst.name + " (";
  std::vector<std::string> pins;
  for (const auto& [port, expr] : inst.pins) pins.push_back(fmt::format(".{}({})", port, expr));
  std::string one_line = indent + head + fmt::format("{}", fmt::join(pins, ", ")) + ");";
  if (one_line.size() <= kLineWidth) {
    out += one_line + "\n";
    return;
  }
  out += indent + head + "\n";
  const std::string more = indent + "    ";
  std::string row = more;
  for (size_t k = 0; k < pins.size(); ++k) {
    std::string piece = pins[k] + (k + 1 < pins.size() ? "," : ");");
    if (row.size() > more.size() && row.size() + 1 + piece.size() > kLineWidth) {
      out += row + "\n";
      row = more;
    }
    row += (row.size() > more.size() ? " " : "") + piece;
  }
  out += row + "\n";
}

// `name(a, b);` on one line when it fits kLineWidth, else wrapped after commas with the
// continuation lines aligned under the first argument.
void print_call(std::string& out, const std::string& indent, const std::string& name,
                const std::vector<std::string>& args) {
  if (args.empty()) {
    out += indent + name + ";\n";
    return;
  }
  const std::string one_line = fmt::format("{}{}({});", indent, name, fmt::join(args, ", "));
  if (one_line.size() <= kLineWidth) {
    out += one_line + "\n";
    return;
  }
  const std::string more(indent.size() + name.size() + 1, ' ');
  std::string row = indent + name + "(";
  for (size_t k = 0; k < args.size(); ++k) {
    const std::string piece = args[k] + (k + 1 < args.size() ? "," : ");");
    if (k > 0 && row.size() + 1 + piece.size() > kLineWidth) {
      out += row + "\n";
      row = more + piece;
    } else {
      row += (k > 0 ? " " : "") + piece;
    }
  }
  out += row + "\n";
}

}  // namespace

void Block::print(std::string& out, int level) const {
  const std::string indent(static_cast<size_t>(level * kIndent), ' ');
  for (size_t i = 0; i < items_.size();) {
    const Item& item = *items_[i];
    switch (item.kind) {
      case Item::Kind::line:
        out += item.text.empty() ? "\n" : indent + item.text + "\n";
        ++i;
        break;
      case Item::Kind::decl: {  // a run of consecutive declarations
        std::vector<const Decl*> run;
        for (; i < items_.size() && items_[i]->kind == Item::Kind::decl; ++i)
          run.push_back(&items_[i]->decl);
        print_decls(out, indent, run);
        break;
      }
      case Item::Kind::param: {  // a run of consecutive localparams
        std::vector<std::tuple<std::string, std::string, std::string>> run;
        for (; i < items_.size() && items_[i]->kind == Item::Kind::param; ++i)
          run.emplace_back((items_[i]->integer_param ? "integer " : "") + items_[i]->text,
                           items_[i]->value, items_[i]->comment);
        print_params(out, indent, run);
        break;
      }
      case Item::Kind::instance:
        print_instance(out, indent, item.inst);
        ++i;
        break;
      case Item::Kind::call:
        print_call(out, indent, item.text, item.args);
        ++i;
        break;
      case Item::Kind::child: {  // "head begin" ... "end", or "end else begin" when chained
        if (!item.chained) out += indent;
        out += item.text + "\n";
        item.block.print(out, level + 1);
        ++i;
        const bool continued = i < items_.size() && items_[i]->chained;
        out += indent + item.close + (continued ? " " : "\n");
        break;
      }
    }
  }
}

// --- Module -----------------------------------------------------------------------------

Module& Module::parameter(std::string name, std::string value, std::string comment) {
  parameters_.push_back({std::move(name), std::move(value), std::move(comment)});
  return *this;
}

Module& Module::port(Port p) {
  ports_.push_back(std::move(p));
  return *this;
}

Module& Module::ports(const std::vector<Port>& ps) {
  for (const Port& p : ps) port(p);
  return *this;
}

std::string Module::str() const {
  std::string out = preamble + "module " + name_;
  if (!parameters_.empty()) {
    out += " #(\n";
    for (size_t i = 0; i < parameters_.size(); ++i) {
      const Parameter& p = parameters_[i];
      std::string text = fmt::format("  parameter {} = {}{}", p.name, p.value,
                                     i + 1 < parameters_.size() ? "," : "");
      out += with_comment(text, p.comment) + "\n";
    }
    out += ")";
  }
  if (ports_.empty()) {
    out += ";\n";
  } else {
    out += " (\n";
    bool any_signed = false;
    size_t range_w = 0, name_w = 0;
    auto port_range = [](const Port& p) {
      return p.width_expr.empty() ? range(p.width) : range(p.width_expr);
    };
    for (const Port& p : ports_) {
      any_signed |= p.is_signed;
      range_w = std::max(range_w, port_range(p).size());
      name_w = std::max(name_w, p.name.size() + 1);
    }
    for (size_t i = 0; i < ports_.size(); ++i) {
      const Port& p = ports_[i];
      std::string text = p.dir == Port::Dir::in ? "  input  " : "  output ";
      text += p.is_reg ? "reg  " : "wire ";
      if (any_signed) text += p.is_signed ? "signed " : "       ";
      if (range_w > 0) text += pad(port_range(p), range_w) + " ";
      const std::string name = p.name + (i + 1 < ports_.size() ? "," : "");
      out += (p.comment.empty() ? text + name : text + pad(name, name_w) + "  // " + p.comment) + "\n";
    }
    out += ");\n";
  }
  body.print(out, 1);
  out += "endmodule\n";
  return out;
}

}  // namespace gsqhw::gen::verilog
