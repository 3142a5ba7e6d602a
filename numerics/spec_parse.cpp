// Spec-string helpers (numerics/spec_parse.h).
#include "numerics/spec_parse.h"

#include <fmt/format.h>

#include <charconv>

#include "base/errors.h"

namespace gsqhw::spec {

Parts split_spec(std::string_view spec) {
  Parts parts;
  parts.text = std::string(spec);
  if (spec.empty()) throw UsageError("empty format spec (try `gsqhw formats` for the list)");
  auto colon = spec.find(':');
  parts.family = std::string(spec.substr(0, colon));
  if (parts.family.empty())
    throw UsageError(fmt::format("format spec '{}' has no family before ':'", spec));
  if (colon == std::string_view::npos) return parts;
  std::string_view rest = spec.substr(colon + 1);
  if (rest.empty())
    throw UsageError(fmt::format("format spec '{}' has nothing after ':' (drop the ':' for the "
                                 "defaults)",
                                 spec));
  size_t start = 0;
  while (true) {
    size_t comma = rest.find(',', start);
    std::string_view item =
        rest.substr(start, comma == std::string_view::npos ? rest.npos : comma - start);
    if (item.empty())
      throw UsageError(fmt::format("format spec '{}' has an empty option (stray ',')", spec));
    Option option;
    auto eq = item.find('=');
    if (eq == std::string_view::npos) {
      option.key = std::string(item);
    } else {
      option.key = std::string(item.substr(0, eq));
      option.value = std::string(item.substr(eq + 1));
      option.has_value = true;
      if (option.key.empty())
        throw UsageError(fmt::format("format spec '{}': option '{}' has no key", spec, item));
      if (option.value.empty())
        throw UsageError(fmt::format("format spec '{}': option '{}' has no value", spec, item));
    }
    for (const auto& seen : parts.options)
      if (seen.key == option.key)
        throw UsageError(fmt::format("format spec '{}' gives '{}' twice", spec, option.key));
    parts.options.push_back(std::move(option));
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return parts;
}

void check_known_keys(const Parts& parts, const std::vector<std::string>& known) {
  for (const auto& option : parts.options) {
    bool ok = false;
    for (const auto& k : known) ok = ok || k == option.key;
    if (!ok) {
      const bool design_option = option.key == "acc" || option.key == "flow" ||
                                 option.key == "pipe" || option.key == "align";
      throw UsageError(fmt::format(
          "format spec '{}': unknown option '{}' for {} (known: {}){}", parts.text, option.key,
          parts.family, fmt::join(known, ", "),
          design_option ? fmt::format("; '{}' is a design option: it goes after '@' in a design "
                                      "point (format@level,{}=...), or in --acc where a command "
                                      "has one",
                                      option.key, option.key)
                        : ""));
    }
  }
}

static const Option* find(const Parts& parts, std::string_view key) {
  for (const auto& option : parts.options)
    if (option.key == key) return &option;
  return nullptr;
}

bool has_key(const Parts& parts, std::string_view key) { return find(parts, key) != nullptr; }

static const Option* find_valued(const Parts& parts, std::string_view key) {
  const Option* option = find(parts, key);
  if (option && !option->has_value)
    throw UsageError(
        fmt::format("format spec '{}': option '{}' needs a value ({}=...)", parts.text, key, key));
  return option;
}

int64_t int_option(const Parts& parts, std::string_view key, int64_t fallback, int64_t lo,
                   int64_t hi) {
  const Option* option = find_valued(parts, key);
  if (!option) return fallback;
  int64_t value = 0;
  const char* begin = option->value.data();
  const char* end = begin + option->value.size();
  auto [ptr, ec] = std::from_chars(begin, end, value);
  if (ec != std::errc() || ptr != end)
    throw UsageError(fmt::format("format spec '{}': {}='{}' is not an integer", parts.text, key,
                                 option->value));
  if (value < lo || value > hi)
    throw UsageError(fmt::format("format spec '{}': {}={} is outside {}..{}", parts.text, key,
                                 value, lo, hi));
  return value;
}

uint64_t u64_option(const Parts& parts, std::string_view key, uint64_t fallback) {
  const Option* option = find_valued(parts, key);
  if (!option) return fallback;
  uint64_t value = 0;
  const char* begin = option->value.data();
  const char* end = begin + option->value.size();
  auto [ptr, ec] = std::from_chars(begin, end, value);
  if (ec != std::errc() || ptr != end)
    throw UsageError(fmt::format("format spec '{}': {}='{}' is not an unsigned 64-bit integer",
                                 parts.text, key, option->value));
  return value;
}

int choice_option(const Parts& parts, std::string_view key, const std::vector<std::string>& choices,
                  int fallback) {
  const Option* option = find_valued(parts, key);
  if (!option) return fallback;
  for (size_t i = 0; i < choices.size(); ++i)
    if (choices[i] == option->value) return static_cast<int>(i);
  throw UsageError(fmt::format("format spec '{}': {}='{}' is not one of {}", parts.text, key,
                               option->value, fmt::join(choices, ", ")));
}

bool is_power_of_two(int64_t v) { return v > 0 && (v & (v - 1)) == 0; }

}  // namespace gsqhw::spec
