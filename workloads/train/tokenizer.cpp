// llama2.c tokenizer (workloads/train/tokenizer.h).
#include "workloads/train/tokenizer.h"

#include <fmt/format.h>

#include <cstdio>
#include <fstream>

#include "base/errors.h"

namespace gsqhw::train {

Tokenizer::Tokenizer(const std::filesystem::path& path, int64_t vocab_size) {
  if (path.extension() == ".json") {
    load_hf_json(path, vocab_size);
    return;
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) throw UsageError(fmt::format("{}: cannot open tokenizer", path.string()));
  int32_t max_len = 0;
  if (!in.read(reinterpret_cast<char*>(&max_len), 4) || max_len <= 0 || max_len > (1 << 16))
    throw UsageError(fmt::format("{}: not a llama2.c tokenizer (bad max_token_length header)",
                                 path.string()));
  pieces_.reserve(static_cast<size_t>(vocab_size));
  for (int64_t i = 0; i < vocab_size; ++i) {
    float score = 0;
    int32_t len = 0;
    if (!in.read(reinterpret_cast<char*>(&score), 4) || !in.read(reinterpret_cast<char*>(&len), 4))
      throw UsageError(fmt::format(
          "{}: tokenizer holds only {} pieces but the checkpoint's vocabulary has {}: the tokenizer "
          "and the checkpoint do not belong together", path.string(), i, vocab_size));
    if (len < 0 || len > max_len)
      throw UsageError(fmt::format("{}: piece {} has length {} (max_token_length {})",
                                   path.string(), i, len, max_len));
    std::string s(static_cast<size_t>(len), '\0');
    if (!in.read(s.data(), len))
      throw UsageError(fmt::format("{}: truncated in piece {}", path.string(), i));
    index_.emplace(s, static_cast<int>(i));  // first occurrence wins, like run.c's bsearch on unique pieces
    pieces_.push_back(std::move(s));
    scores_.push_back(score);
  }
  if (in.peek() != std::char_traits<char>::eof())
    throw UsageError(fmt::format(
        "{}: tokenizer holds more than the checkpoint's {} pieces: the tokenizer and the "
        "checkpoint do not belong together", path.string(), vocab_size));
}

int Tokenizer::lookup(std::string_view s) const {
  auto it = index_.find(std::string(s));
  return it == index_.end() ? -1 : it->second;
}

std::vector<int> Tokenizer::encode(std::string_view text, bool bos, bool eos) const {
  std::vector<int> tokens;
  if (bos) tokens.push_back(kBos);
  if (hf_) {
    const std::vector<int> body = encode_hf(text);
    tokens.insert(tokens.end(), body.begin(), body.end());
    if (eos) tokens.push_back(kEos);
    return tokens;
  }
  if (!text.empty()) {
    const int space = lookup(" ");
    if (space >= 0) tokens.push_back(space);
  }
  // One piece per UTF-8 code point (continuation bytes 10xxxxxx join the previous byte; at most
  // 4 bytes per code point, as run.c).
  std::string cp;
  auto flush = [&] {
    if (cp.empty()) return;
    const int id = lookup(cp);
    if (id >= 0) {
      tokens.push_back(id);
    } else {
      for (unsigned char c : cp) tokens.push_back(static_cast<int>(c) + 3);
    }
    cp.clear();
  };
  for (size_t i = 0; i < text.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    if ((c & 0xC0) != 0x80) flush();
    cp.push_back(static_cast<char>(c));
    if (cp.size() == 4) flush();
  }
  flush();
  // Merge the best-scoring adjacent pair until no pair forms a piece.
  const size_t first = 0;  // run.c also tries pairs with BOS (none merge)
  for (;;) {
    float best_score = -1e10f;
    int best_id = -1;
    size_t best_at = 0;
    for (size_t i = first; i + 1 < tokens.size(); ++i) {
      const int id = lookup(pieces_[tokens[i]] + pieces_[tokens[i + 1]]);
      if (id >= 0 && scores_[id] > best_score) {
        best_score = scores_[id];
        best_id = id;
        best_at = i;
      }
    }
    if (best_id < 0) break;
    tokens[best_at] = best_id;
    tokens.erase(tokens.begin() + static_cast<std::ptrdiff_t>(best_at) + 1);
  }
  if (eos) tokens.push_back(kEos);
  return tokens;
}

std::string Tokenizer::decode(int prev, int id) const {
  std::string_view p = piece(id);
  if (prev == kBos && !p.empty() && p[0] == ' ') p.remove_prefix(1);
  unsigned int byte = 0;
  char tail = 0;
  if (p.size() == 6 && std::sscanf(std::string(p).c_str(), "<0x%02X>%c", &byte, &tail) == 1)
    return std::string(1, static_cast<char>(byte));
  return std::string(p);
}

std::string Tokenizer::decode_all(const std::vector<int>& ids) const {
  std::string out;
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i == 0 && ids[i] == kBos) continue;
    out += decode(i == 0 ? kBos : ids[i - 1], ids[i]);
  }
  return out;
}

}  // namespace gsqhw::train
