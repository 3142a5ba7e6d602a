// Name suggestions (cli/suggest.h).
#include "cli/suggest.h"

#include <algorithm>
#include <fmt/format.h>

namespace gsqhw::cli {

int edit_distance(std::string_view a, std::string_view b) {
  const size_t n = a.size(), m = b.size();
  std::vector<std::vector<int>> d(n + 1, std::vector<int>(m + 1));
  for (size_t i = 0; i <= n; ++i) d[i][0] = static_cast<int>(i);
  for (size_t j = 0; j <= m; ++j) d[0][j] = static_cast<int>(j);
  for (size_t i = 1; i <= n; ++i)
    for (size_t j = 1; j <= m; ++j) {
      const int cost = a[i - 1] == b[j - 1] ? 0 : 1;
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
    }
  return d[n][m];
}

namespace {

// Options are compared without their leading dashes, so "--" counts for nothing.
std::string_view bare(std::string_view s) {
  while (!s.empty() && s.front() == '-') s.remove_prefix(1);
  return s;
}

bool prefix_related(std::string_view a, std::string_view b) {
  if (a.size() < 3 || b.size() < 3) return false;
  return a.substr(0, std::min(a.size(), b.size())) == b.substr(0, std::min(a.size(), b.size()));
}

}  // namespace

std::vector<std::string> closest_names(std::string_view word,
                                       const std::vector<std::string>& candidates) {
  const std::string_view w = bare(word);
  const int limit = std::max<int>(1, static_cast<int>(w.size()) / 3);
  std::vector<std::pair<int, std::string>> scored;
  for (const auto& c : candidates) {
    const std::string_view cb = bare(c);
    if (cb == w) continue;
    const int distance = edit_distance(w, cb);
    if (distance <= limit)
      scored.emplace_back(distance, c);
    else if (prefix_related(w, cb))
      scored.emplace_back(limit + 1, c);  // ranked after every close spelling
  }
  std::stable_sort(scored.begin(), scored.end(),
                   [](const auto& x, const auto& y) { return x.first < y.first; });
  std::vector<std::string> names;
  for (auto& [distance, name] : scored)
    if (std::find(names.begin(), names.end(), name) == names.end()) names.push_back(name);
  return names;
}

std::string did_you_mean(std::string_view word, const std::vector<std::string>& candidates) {
  auto names = closest_names(word, candidates);
  if (names.empty()) return "";
  if (names.size() > 3) names.resize(3);
  std::string list = "'" + names.front() + "'";
  for (size_t i = 1; i < names.size(); ++i)
    list += (i + 1 == names.size() ? " or '" : ", '") + names[i] + "'";
  return fmt::format(" (did you mean {}?)", list);
}

}  // namespace gsqhw::cli
