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
//
// A Hugging Face tokenizer.json (a file ending in .json) of LLaMA's sentencepiece style is read
// too (tokenizer_hf.cpp): model BPE with its vocab and ranked merges, byte_fallback, and
// sentencepiece's space handling as a normalizer (Prepend "▁" + Replace " " -> "▁") or a
// Metaspace pre-tokenizer. encode() then does what the tokenizers library's BPE does: one symbol
// per character (its <0xXX> byte pieces when the character is no piece), then repeatedly the
// adjacent pair with the lowest merge rank, leftmost first. The engine's fixed ids must hold:
// <s> = 1, </s> = 2, <0x0A> = 13 (anything else is refused). Special tokens written in the
// text are encoded as text, not as their ids.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace gsqhw::train {

class Tokenizer {
 public:
  static constexpr int kBos = 1;
  static constexpr int kEos = 2;

  // Reads `vocab_size` pieces (llama2.c's format, or tokenizer.json when the name ends in .json).
  // Throws UsageError when the file is missing, truncated, holds more pieces than that (a
  // tokenizer of another model), or has a bad piece length or an unsupported layout.
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
  // tokenizer.json (tokenizer_hf.cpp)
  void load_hf_json(const std::filesystem::path& path, int64_t vocab_size);
  int lookup_hf(std::string_view s) const;  // by the file's own piece text ("▁" for space)
  static uint64_t pair_key(int left, int right);
  void bpe_hf(std::string_view word, std::vector<int>& out) const;
  std::vector<int> encode_hf(std::string_view text) const;
  struct HfStep {
    enum Kind { prepend, prepend_unless, replace } kind;
    std::string a, b;  // prepend a / replace a by b
  };
  bool hf_ = false, hf_byte_fallback_ = false;
  std::unordered_map<std::string, int> hf_index_;
  std::unordered_map<uint64_t, std::pair<int, int>> hf_merges_;  // (left, right) -> (rank, merged id)
  std::vector<HfStep> hf_steps_;
  std::string hf_split_on_;  // Metaspace split=true: words start at this
  std::vector<std::string> pieces_;
  std::vector<float> scores_;
  std::unordered_map<std::string, int> index_;
};

}  // namespace gsqhw::train
