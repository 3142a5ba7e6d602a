// Switching activity from a VCD stream (sim/activity.h).
#include "sim/activity.h"

#include <fmt/format.h>

#include <algorithm>
#include <unordered_map>
#include <vector>

#include "base/errors.h"

namespace gsqhw {

void SwitchingActivity::merge(const SwitchingActivity& other) {
  if (top.empty()) top = other.top;
  if (design.empty()) design = other.design;
  cycles += other.cycles;
  for (const auto& [name, net] : other.nets) {
    NetActivity& mine = nets[name];
    mine.toggles += net.toggles;
    mine.high_cycles += net.high_cycles;
  }
}

nlohmann::json SwitchingActivity::to_json() const {
  nlohmann::json nets_json = nlohmann::json::object();
  for (const auto& [name, net] : nets)
    nets_json[name] = {{"toggles", net.toggles}, {"high_cycles", net.high_cycles}};
  return {{"schema", "gsqhw-activity-1"}, {"design", design}, {"top", top},
          {"clock", clock},              {"cycles", cycles},  {"nets", std::move(nets_json)}};
}

SwitchingActivity SwitchingActivity::from_json(const nlohmann::json& j) {
  try {
    if (j.at("schema").get<std::string>() != "gsqhw-activity-1")
      throw UsageError("activity JSON: schema is not gsqhw-activity-1");
    SwitchingActivity a;
    a.design = j.at("design").get<std::string>();
    a.top = j.at("top").get<std::string>();
    a.clock = j.at("clock").get<std::string>();
    a.cycles = j.at("cycles").get<int64_t>();
    for (const auto& [name, net] : j.at("nets").items())
      a.nets[name] = {net.at("toggles").get<int64_t>(), net.at("high_cycles").get<double>()};
    return a;
  } catch (const nlohmann::json::exception& e) {
    throw UsageError(fmt::format("activity JSON: {}", e.what()));
  }
}

namespace {

// One traced VCD variable (all names that share its identifier code).
struct TracedVar {
  int width = 1;
  std::vector<std::string> bit_names;  // bit_names[i] = name of bit i (LSB = 0)
  std::vector<char> value;             // '0', '1', 'x' per bit
  std::vector<int64_t> toggles;
  std::vector<int64_t> high_time;
  std::vector<int64_t> high_since;
};

class VcdActivityParser {
 public:
  VcdActivityParser(std::istream& in, std::string top, int64_t t_begin, int64_t t_end)
      : in_(in), top_(std::move(top)), t_begin_(t_begin), t_end_(t_end) {}

  SwitchingActivity run(int64_t clock_period) {
    parse_header();
    parse_changes();
    int64_t end = t_end_ >= 0 ? t_end_ : last_time_;
    SwitchingActivity result;
    result.top = top_;
    result.cycles = clock_period > 0 ? (end - t_begin_) / clock_period : 0;
    for (auto& var : vars_) {
      for (int i = 0; i < var.width; ++i) {
        if (var.value[i] == '1') var.high_time[i] += overlap(var.high_since[i], end);
        NetActivity& net = result.nets[var.bit_names[i]];
        net.toggles += var.toggles[i];
        net.high_cycles += static_cast<double>(var.high_time[i]) / clock_period;
      }
    }
    return result;
  }

 private:
  bool next_token(std::string& token) {
    token.clear();
    return static_cast<bool>(in_ >> token);
  }

  [[noreturn]] void malformed(const std::string& what) {
    throw UsageError(fmt::format("malformed VCD: {}", what));
  }

  void skip_to_end() {
    std::string token;
    while (next_token(token))
      if (token == "$end") return;
    malformed("a section has no $end");
  }

  // "[7:0]" -> {7, 0}; "[3]" -> {3, 3}.
  static std::pair<int, int> parse_range(const std::string& text) {
    std::string inner = text.substr(1, text.size() - 2);
    auto colon = inner.find(':');
    if (colon == std::string::npos) {
      int bit = std::stoi(inner);
      return {bit, bit};
    }
    return {std::stoi(inner.substr(0, colon)), std::stoi(inner.substr(colon + 1))};
  }

  void parse_var() {
    std::vector<std::string> tokens;
    std::string token;
    while (next_token(token) && token != "$end") tokens.push_back(token);
    if (tokens.size() < 4) malformed("a $var has fewer than 4 fields");
    if (tokens[0] == "real") return;  // reals carry no bit activity
    int width = 0;
    try {
      width = std::stoi(tokens[1]);
    } catch (const std::exception&) {
      malformed(fmt::format("$var width '{}' is not a number", tokens[1]));
    }
    if (width < 1) malformed("a $var has width < 1");
    const std::string& code = tokens[2];
    std::string ref = tokens[3];
    std::string range = tokens.size() > 4 ? tokens[4] : "";
    if (range.empty() && ref.back() == ']') {  // "name[7:0]" written as one token
      auto open = ref.rfind('[');
      range = ref.substr(open);
      ref = ref.substr(0, open);
    }

    auto top_at = std::find(scopes_.begin(), scopes_.end(), top_);
    if (top_at == scopes_.end()) return;  // outside the design's top module
    std::string prefix;
    for (auto it = top_at + 1; it != scopes_.end(); ++it) prefix += *it + ".";

    std::vector<std::string> names(width);
    if (!range.empty() && range.front() == '[' && range.back() == ']') {
      auto [msb, lsb] = parse_range(range);
      for (int i = 0; i < width; ++i)
        names[i] = fmt::format("{}{}[{}]", prefix, ref, msb >= lsb ? lsb + i : lsb - i);
    } else if (width == 1) {
      names[0] = prefix + ref;
    } else {
      for (int i = 0; i < width; ++i) names[i] = fmt::format("{}{}[{}]", prefix, ref, i);
    }

    auto [it, inserted] = code_index_.try_emplace(code, vars_.size());
    if (inserted) {
      TracedVar var;
      var.width = width;
      var.value.assign(width, 'x');
      var.toggles.assign(width, 0);
      var.high_time.assign(width, 0);
      var.high_since.assign(width, 0);
      vars_.push_back(std::move(var));
    }
    TracedVar& var = vars_[it->second];
    if (var.width != width) malformed(fmt::format("identifier {} declared with two widths", code));
    // An alias (same code, another name) gets the same activity under its own name.
    if (inserted) {
      var.bit_names = std::move(names);
    } else {
      aliases_.push_back({it->second, std::move(names)});
    }
  }

  void parse_header() {
    std::string token;
    while (next_token(token)) {
      if (token == "$enddefinitions") {
        skip_to_end();
        return;
      } else if (token == "$scope") {
        std::string kind, name;
        if (!next_token(kind) || !next_token(name)) malformed("truncated $scope");
        scopes_.push_back(name);
        skip_to_end();
      } else if (token == "$upscope") {
        if (scopes_.empty()) malformed("$upscope without $scope");
        scopes_.pop_back();
        skip_to_end();
      } else if (token == "$var") {
        parse_var();
      } else if (!token.empty() && token[0] == '$') {
        skip_to_end();
      } else {
        malformed(fmt::format("unexpected '{}' in the header", token));
      }
    }
    malformed("no $enddefinitions");
  }

  // Time within [t_begin, end) between `from` and `to`.
  int64_t overlap(int64_t from, int64_t to) const {
    int64_t lo = std::max(from, t_begin_);
    int64_t hi = t_end_ >= 0 ? std::min(to, t_end_) : to;
    return hi > lo ? hi - lo : 0;
  }

  void set_bit(TracedVar& var, int i, char v) {
    if (v != '0' && v != '1') v = 'x';
    char old = var.value[i];
    if (old == v) return;
    bool in_window = now_ >= t_begin_ && (t_end_ < 0 || now_ < t_end_);
    if (in_window && old != 'x' && v != 'x') ++var.toggles[i];
    if (old == '1') var.high_time[i] += overlap(var.high_since[i], now_);
    if (v == '1') var.high_since[i] = now_;
    var.value[i] = v;
  }

  TracedVar* lookup(const std::string& code) {
    auto it = code_index_.find(code);
    return it == code_index_.end() ? nullptr : &vars_[it->second];
  }

  void parse_changes() {
    std::string token;
    while (next_token(token)) {
      char c = token[0];
      if (c == '#') {
        try {
          now_ = std::stoll(token.substr(1));
        } catch (const std::exception&) {
          malformed(fmt::format("bad timestamp '{}'", token));
        }
        last_time_ = std::max(last_time_, now_);
      } else if (c == '0' || c == '1' || c == 'x' || c == 'X' || c == 'z' || c == 'Z') {
        if (TracedVar* var = lookup(token.substr(1))) set_bit(*var, 0, c);
      } else if (c == 'b' || c == 'B') {
        std::string code;
        if (!next_token(code)) malformed("truncated vector change");
        TracedVar* var = lookup(code);
        if (!var) continue;
        std::string bits = token.substr(1);
        int n = static_cast<int>(bits.size());
        char fill = (n > 0 && (bits[0] == 'x' || bits[0] == 'z')) ? 'x' : '0';
        for (int i = 0; i < var->width; ++i) set_bit(*var, i, i < n ? bits[n - 1 - i] : fill);
      } else if (c == 'r' || c == 'R' || c == 's' || c == 'S') {
        std::string code;
        next_token(code);  // real/string values carry no bit activity
      } else if (c == '$') {
        // $dumpvars / $dumpall / $end wrap ordinary changes; $comment must be skipped.
        if (token == "$comment") skip_to_end();
      } else {
        malformed(fmt::format("unexpected '{}' in the value changes", token));
      }
    }
  }

  std::istream& in_;
  std::string top_;
  int64_t t_begin_, t_end_;
  int64_t now_ = 0, last_time_ = 0;
  std::vector<std::string> scopes_;
  std::unordered_map<std::string, size_t> code_index_;
  std::vector<TracedVar> vars_;

 public:
  struct Alias {
    size_t var;
    std::vector<std::string> names;
  };
  std::vector<Alias> aliases_;
  const std::vector<TracedVar>& vars() const { return vars_; }
};

}  // namespace

SwitchingActivity activity_from_vcd(std::istream& vcd, const std::string& top,
                                    int64_t clock_period, int64_t t_begin, int64_t t_end) {
  if (clock_period <= 0) throw UsageError("activity: clock period must be positive");
  VcdActivityParser parser(vcd, top, t_begin, t_end);
  SwitchingActivity result = parser.run(clock_period);
  // Aliased names share their variable's activity.
  for (const auto& alias : parser.aliases_) {
    const TracedVar& var = parser.vars()[alias.var];
    for (int i = 0; i < var.width; ++i) result.nets[alias.names[i]] = result.nets[var.bit_names[i]];
  }
  return result;
}

}  // namespace gsqhw
