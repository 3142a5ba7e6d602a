// Training text: any UTF-8 file, tokenized, split deterministically into training and
// validation tokens, and cut into seeded batches of fixed-length sequences.
#pragma once

#include <cstdint>
#include <filesystem>
#include <vector>

#include "workloads/train/tokenizer.h"

namespace gsqhw::train {

struct TokenData {
  std::vector<int> train, val;  // the first (1 - val_fraction) of the tokens, then the rest
  int64_t bytes = 0;
};

// Reads and tokenizes `path` line by line (run.c's merge loop is quadratic in the text length;
// each line is encoded as its own text, the newline as its byte-fallback token), BOS first.
// Throws UsageError when the file cannot be read, is not UTF-8, or is too short to give one
// training and one validation sequence of seq + 1 tokens.
TokenData load_text(const std::filesystem::path& path, const Tokenizer& tok, double val_fraction, int64_t seq);

struct Batch {
  std::vector<int> tokens, targets;  // batch x seq each; targets are the next tokens
};

// Training batch of `step`: each row starts at an offset drawn from a generator seeded by
// (seed, step) alone, so a resumed run sees the same batches.
Batch train_batch(const TokenData& data, int64_t batch, int64_t seq, uint64_t seed, int64_t step);

// Validation batches: consecutive non-overlapping windows of the validation tokens, at most
// max_windows of them, grouped `batch` at a time (the last group may be smaller).
std::vector<Batch> validation_batches(const TokenData& data, int64_t batch, int64_t seq, int64_t max_windows);

}  // namespace gsqhw::train
