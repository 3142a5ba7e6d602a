// Parsing helpers for format spec strings ("family:key=value,flag,..."), shared by the format
// families in sim/. Every helper throws UsageError with a message naming the spec, the bad
// part and what would be accepted.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace gsqhw::spec {

// One comma-separated item after the colon: "b=6" -> {key "b", value "6", has_value true};
// a bare word such as "e4m3" -> {key "e4m3", has_value false}.
struct Option {
  std::string key;
  std::string value;
  bool has_value = false;
};

struct Parts {
  std::string text;    // the whole spec, for error messages
  std::string family;  // text before ':' (or the whole text when there is no ':')
  std::vector<Option> options;
};

// Splits "family:opt,opt,...". Rejects empty items and repeated keys.
Parts split_spec(std::string_view spec);

// Throws unless every option's key is in `known` (message lists the known keys).
void check_known_keys(const Parts& parts, const std::vector<std::string>& known);

// Value of key=value as an integer in [lo, hi]; `fallback` when absent. Rejects bare keys.
int64_t int_option(const Parts& parts, std::string_view key, int64_t fallback, int64_t lo,
                   int64_t hi);
// Unsigned 64-bit value (seeds); `fallback` when absent.
uint64_t u64_option(const Parts& parts, std::string_view key, uint64_t fallback);
// Value of key=value that must be one of `choices`; returns its index, or `fallback` when absent.
int choice_option(const Parts& parts, std::string_view key, const std::vector<std::string>& choices,
                  int fallback);
bool has_key(const Parts& parts, std::string_view key);

bool is_power_of_two(int64_t v);

}  // namespace gsqhw::spec
