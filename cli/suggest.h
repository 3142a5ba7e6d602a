// "Did you mean ...?" for mistyped command names, options and config keys: the closest
// candidates by edit distance, or by prefix (`--output` -> `--out`).
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace gsqhw::cli {

// Optimal-string-alignment distance (Levenshtein plus adjacent transpositions).
int edit_distance(std::string_view a, std::string_view b);

// The candidates close enough to `word` to be what was meant, best first. Close enough: an
// edit distance of at most max(1, length/3), or one is a prefix of the other (3+ characters).
std::vector<std::string> closest_names(std::string_view word,
                                       const std::vector<std::string>& candidates);

// " (did you mean 'x'?)", " (did you mean 'x' or 'y'?)" or "" when nothing is close.
std::string did_you_mean(std::string_view word, const std::vector<std::string>& candidates);

}  // namespace gsqhw::cli
