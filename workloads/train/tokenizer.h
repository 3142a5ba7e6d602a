// llama2.c's tokenizer (tokenizer.bin / tok512.bin): sentencepiece-style pieces with scores,
// encoded by greedy BPE merges chosen by piece score, with byte fallback.
//
// File: int32 max_token_length, then per token (vocab_size of them, given by the model):
// float score, int32 length, `length` bytes of the piece. Token 0 is <unk>, 1 is BOS, 2 is EOS,
// tokens 3..258 are the byte-fallback pieces <0x00>..<0xFF>.
//
// encode() follows llama2.c's run.c exactly (so the token ids match its reference outputs):
// optional BOS, a dummy-prefix space piece when the text is non-empty, one piece per UTF-8
// code point (its bytes + 3 when the code point is no piece), then repeatedly merges the
// adjacent pair whose concatenation is a piece with the highest score, then optional EOS.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace gsqhw::train {

class Tokenizer {
 public:
  static constexpr int kBos = 1;
  static constexpr int kEos = 2;

  // Reads `vocab_size` pieces. Throws UsageError when the file is missing, truncated, holds
  // more pieces than that (a tokenizer of another model), or has a bad piece length.
  Tokenizer(const std::filesystem::path& path, int64_t vocab_size);

  int64_t vocab_size() const { return static_cast<int64_t>(pieces_.size()); }
  const std::string& piece(int id) const { return pieces_.at(static_cast<size_t>(id)); }

  std::vector<int> encode(std::string_view text, bool bos, bool eos) const;
  // The text of `id` following `prev` (run.c's decode: the leading space of the first piece
  // after BOS is dropped; <0xXX> pieces become their byte).
  std::string decode(int prev, int id) const;
  std::string decode_all(const std::vector<int>& ids) const;  // ids[0] may be BOS

 private:
  int lookup(std::string_view s) const;  // -1 when absent
  std::vector<std::string> pieces_;
  std::vector<float> scores_;
  std::unordered_map<std::string, int> index_;
};

}  // namespace gsqhw::train
