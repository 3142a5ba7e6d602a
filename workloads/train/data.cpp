// Training text and batches (workloads/train/data.h).
#include "workloads/train/data.h"
#include "base/files.h"

#include <fmt/format.h>

#include <fstream>
#include <random>
#include <sstream>

#include "base/errors.h"

namespace gsqhw::train {

namespace {

// Offset of the first byte that is not valid UTF-8, or -1.
int64_t invalid_utf8_at(const std::string& s) {
  size_t i = 0;
  while (i < s.size()) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    int len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (len == 0 || i + static_cast<size_t>(len) > s.size()) return static_cast<int64_t>(i);
    for (int k = 1; k < len; ++k)
      if ((static_cast<unsigned char>(s[i + static_cast<size_t>(k)]) & 0xC0) != 0x80) return static_cast<int64_t>(i);
    i += static_cast<size_t>(len);
  }
  return -1;
}

}  // namespace

TokenData load_text(const std::filesystem::path& path, const Tokenizer& tok, double val_fraction, int64_t seq) {
  if (!(val_fraction > 0 && val_fraction < 1))
    throw UsageError(fmt::format("--val-fraction {} must be between 0 and 1", val_fraction));
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec))
    throw UsageError(fmt::format("--data {}: is a folder, give a text file", path.string()));
  std::string text;
  try {
    text = read_file(path);
  } catch (const UsageError&) {
    throw UsageError(fmt::format("--data {}: cannot read the file", path.string()));
  }
  if (const int64_t bad = invalid_utf8_at(text); bad >= 0)
    throw UsageError(fmt::format("--data {}: not UTF-8 text (invalid byte at offset {})", path.string(), bad));
  std::vector<int> tokens{Tokenizer::kBos};
  const int newline = '\n' + 3;  // byte-fallback piece <0x0A>
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    if (end > start) {
      const auto line = tok.encode(std::string_view(text).substr(start, end - start), false, false);
      tokens.insert(tokens.end(), line.begin(), line.end());
    }
    if (end < text.size()) tokens.push_back(newline);
    start = end + 1;
  }
  TokenData d;
  d.bytes = static_cast<int64_t>(text.size());
  const auto n = static_cast<int64_t>(tokens.size());
  const int64_t n_train = static_cast<int64_t>(static_cast<double>(n) * (1 - val_fraction));
  if (n_train < seq + 1 || n - n_train < seq + 1)
    throw UsageError(fmt::format(
        "--data {}: too short: {} tokens give {} training and {} validation tokens, but one "
        "sequence needs --seq + 1 = {} of each; give a longer text or a smaller --seq",
        path.string(), n, n_train, n - n_train, seq + 1));
  d.train.assign(tokens.begin(), tokens.begin() + n_train);
  d.val.assign(tokens.begin() + n_train, tokens.end());
  return d;
}

Batch train_batch(const TokenData& data, int64_t batch, int64_t seq, uint64_t seed, int64_t step) {
  std::seed_seq sseq{static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32), static_cast<uint32_t>(step),
                     static_cast<uint32_t>(static_cast<uint64_t>(step) >> 32), 0x7a11u};
  std::mt19937_64 rng(sseq);
  const auto range = static_cast<uint64_t>(static_cast<int64_t>(data.train.size()) - seq);  // offsets 0..range-1
  Batch b;
  for (int64_t r = 0; r < batch; ++r) {
    const auto off = static_cast<int64_t>(rng() % range);
    b.tokens.insert(b.tokens.end(), data.train.begin() + off, data.train.begin() + off + seq);
    b.targets.insert(b.targets.end(), data.train.begin() + off + 1, data.train.begin() + off + seq + 1);
  }
  return b;
}

std::vector<Batch> validation_batches(const TokenData& data, int64_t batch, int64_t seq, int64_t max_windows) {
  const int64_t windows = std::min<int64_t>(max_windows, (static_cast<int64_t>(data.val.size()) - 1) / seq);
  std::vector<Batch> out;
  for (int64_t w = 0; w < windows; ++w) {
    if (w % batch == 0) out.emplace_back();
    Batch& b = out.back();
    const int64_t off = w * seq;
    b.tokens.insert(b.tokens.end(), data.val.begin() + off, data.val.begin() + off + seq);
    b.targets.insert(b.targets.end(), data.val.begin() + off + 1, data.val.begin() + off + seq + 1);
  }
  return out;
}

}  // namespace gsqhw::train
