// Hugging Face tokenizer.json reader for LLaMA's sentencepiece-style BPE (workloads/train/tokenizer.h).
#include <fmt/format.h>

#include <algorithm>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>

#include "base/errors.h"
#include "workloads/train/tokenizer.h"

namespace gsqhw::train {

namespace {

constexpr std::string_view kMeta = "\xe2\x96\x81";  // U+2581 '▁', sentencepiece's space

std::string replace_all(std::string s, std::string_view from, std::string_view to) {
  if (from.empty()) return s;
  for (size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size()))
    s.replace(at, from.size(), to);
  return s;
}

}  // namespace

void Tokenizer::load_hf_json(const std::filesystem::path& path, int64_t vocab_size) {
  const std::string where = path.string();
  std::ifstream in(path);
  if (!in) throw UsageError(fmt::format("{}: cannot open tokenizer", where));
  nlohmann::json j = nlohmann::json::parse(in, nullptr, false);
  if (j.is_discarded() || !j.is_object()) throw UsageError(fmt::format("{}: not valid JSON", where));
  auto unsupported = [&](const std::string& what) {
    return UsageError(fmt::format(
        "{}: {} is not supported; this reader handles LLaMA's sentencepiece-style tokenizer.json (model BPE with "
        "byte_fallback; normalizer Prepend/Replace of \"\xe2\x96\x81\" or pre_tokenizer Metaspace)", where, what));
  };
  const nlohmann::json& model = j.value("model", nlohmann::json());
  if (!model.is_object() || model.value("type", "") != "BPE")
    throw unsupported(fmt::format("model type {}", model.is_object() ? model.value("type", "(none)") : "(none)"));
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"})
    if (model.contains(key) && !model[key].is_null() && model[key] != "")
      throw unsupported(fmt::format("model.{}", key));
  if (model.value("dropout", nlohmann::json()).is_number() && model["dropout"].get<double>() > 0)
    throw unsupported("BPE dropout");
  hf_byte_fallback_ = model.value("byte_fallback", false);

  // Vocabulary: piece -> id, ids 0..n-1 without gaps (the model's embedding rows).
  const nlohmann::json& vocab = model.value("vocab", nlohmann::json());
  if (!vocab.is_object()) throw UsageError(fmt::format("{}: model.vocab is missing", where));
  std::vector<std::string> by_id;
  auto place = [&](const std::string& piece, int64_t id) {
    if (id < 0 || id > (1 << 24)) throw UsageError(fmt::format("{}: piece id {} is out of range", where, id));
    if (static_cast<int64_t>(by_id.size()) <= id) by_id.resize(static_cast<size_t>(id) + 1, std::string("\x01unset"));
    by_id[static_cast<size_t>(id)] = piece;
  };
  for (auto it = vocab.begin(); it != vocab.end(); ++it) {
    if (!it->is_number_integer()) throw UsageError(fmt::format("{}: vocab entry {} has no integer id", where, it.key()));
    place(it.key(), it->get<int64_t>());
  }
  // Added tokens (<unk>, <s>, </s>, ...) usually repeat vocab entries; any beyond it extend it.
  int bos = -1, eos = -1;
  for (const auto& t : j.value("added_tokens", nlohmann::json::array())) {
    const std::string content = t.value("content", "");
    const int64_t id = t.value("id", int64_t{-1});
    place(content, id);
    if (content == "<s>") bos = static_cast<int>(id);
    if (content == "</s>") eos = static_cast<int>(id);
  }
  for (size_t i = 0; i < by_id.size(); ++i)
    if (by_id[i] == "\x01unset") throw UsageError(fmt::format("{}: no piece has id {} (the ids have a gap)", where, i));
  if (static_cast<int64_t>(by_id.size()) != vocab_size)
    throw UsageError(fmt::format(
        "{}: tokenizer holds {} pieces but the checkpoint's vocabulary has {}: the tokenizer and the checkpoint "
        "do not belong together", where, by_id.size(), vocab_size));
  // The engine uses LLaMA's fixed ids (BOS 1, EOS 2, the newline byte piece <0x0A> = 13).
  if (bos != kBos || eos != kEos)
    throw unsupported(fmt::format("a layout with <s> = {} and </s> = {} (LLaMA's is 1 and 2)", bos, eos));
  for (size_t i = 0; i < by_id.size(); ++i) {
    hf_index_.emplace(by_id[i], static_cast<int>(i));
    pieces_.push_back(replace_all(by_id[i], kMeta, " "));  // display form, as llama2.c's pieces
    index_.emplace(pieces_.back(), static_cast<int>(i));
  }
  if (hf_byte_fallback_ && lookup_hf("<0x0A>") != '\n' + 3)
    throw unsupported("a byte-fallback layout where <0x0A> is not id 13");
  scores_.assign(pieces_.size(), 0.0f);

  // Merges: "left right" strings (older files) or [left, right] pairs; rank = position.
  const nlohmann::json& merges = model.value("merges", nlohmann::json::array());
  if (!merges.is_array()) throw UsageError(fmt::format("{}: model.merges is not a list", where));
  int rank = 0;
  for (const auto& m : merges) {
    std::string left, right;
    if (m.is_string()) {
      const std::string s = m.get<std::string>();
      const auto sp = s.find(' ');
      if (sp == std::string::npos || s.find(' ', sp + 1) != std::string::npos)
        throw UsageError(fmt::format("{}: merge {} is not \"left right\"", where, s));
      left = s.substr(0, sp);
      right = s.substr(sp + 1);
    } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
      left = m[0].get<std::string>();
      right = m[1].get<std::string>();
    } else {
      throw UsageError(fmt::format("{}: merge {} is neither \"left right\" nor a pair", where, m.dump()));
    }
    const int l = lookup_hf(left), r = lookup_hf(right), merged = lookup_hf(left + right);
    if (l < 0 || r < 0 || merged < 0)
      throw UsageError(fmt::format("{}: merge \"{} {}\" uses or makes a piece outside the vocabulary", where, left, right));
    hf_merges_.emplace(pair_key(l, r), std::make_pair(rank++, merged));
  }

  // Text to symbols: sentencepiece's space handling, as a normalizer (Prepend "▁" + Replace " "
  // -> "▁"; older files) or a Metaspace pre-tokenizer (newer files).
  auto read_normalizer = [&](const nlohmann::json& n, auto&& self) -> void {
    if (n.is_null()) return;
    const std::string type = n.value("type", "");
    if (type == "Sequence") {
      for (const auto& s : n.value("normalizers", nlohmann::json::array())) self(s, self);
    } else if (type == "Prepend") {
      hf_steps_.push_back({HfStep::prepend, n.value("prepend", ""), ""});
    } else if (type == "Replace") {
      const auto& pat = n.value("pattern", nlohmann::json());
      if (!pat.is_object() || !pat.contains("String")) throw unsupported("a Replace normalizer with a regex pattern");
      hf_steps_.push_back({HfStep::replace, pat["String"].get<std::string>(), n.value("content", "")});
    } else if (type == "NFKC" || type == "NFC" || type == "NFD" || type == "NFKD" || type == "Lowercase" || type == "Strip") {
      throw unsupported(fmt::format("the {} normalizer", type));
    } else {
      throw unsupported(fmt::format("the normalizer {}", n.dump()));
    }
  };
  read_normalizer(j.value("normalizer", nlohmann::json()), read_normalizer);
  const nlohmann::json& pre = j.value("pre_tokenizer", nlohmann::json());
  if (!pre.is_null()) {
    if (pre.value("type", "") != "Metaspace") throw unsupported(fmt::format("the pre_tokenizer {}", pre.value("type", pre.dump())));
    const std::string replacement = pre.value("replacement", std::string(kMeta));
    const std::string scheme = pre.value("prepend_scheme", pre.value("add_prefix_space", true) ? "always" : "never");
    hf_steps_.push_back({HfStep::replace, " ", replacement});
    if (scheme == "always" || scheme == "first") hf_steps_.push_back({HfStep::prepend_unless, replacement, ""});
    else if (scheme != "never") throw unsupported(fmt::format("Metaspace prepend_scheme {}", scheme));
    hf_split_on_ = pre.value("split", true) ? replacement : "";
  }
  hf_ = true;
}

int Tokenizer::lookup_hf(std::string_view s) const {
  auto it = hf_index_.find(std::string(s));
  return it == hf_index_.end() ? -1 : it->second;
}

uint64_t Tokenizer::pair_key(int left, int right) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) | static_cast<uint32_t>(right);
}

// BPE over one word, as tokenizers' BPE model: one symbol per character (its bytes' <0xXX>
// pieces when the character is no piece and byte_fallback is on, else <unk>), then the adjacent
// pair with the lowest merge rank is merged, leftmost first, until no pair has a merge.
void Tokenizer::bpe_hf(std::string_view word, std::vector<int>& out) const {
  std::vector<int> sym;
  for (size_t i = 0; i < word.size();) {
    const unsigned char c = static_cast<unsigned char>(word[i]);
    size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 1;
    len = std::min(len, word.size() - i);
    const std::string_view ch = word.substr(i, len);
    const int id = lookup_hf(ch);
    if (id >= 0) {
      sym.push_back(id);
    } else if (hf_byte_fallback_) {
      for (unsigned char b : ch) {
        const int bid = lookup_hf(fmt::format("<0x{:02X}>", b));
        sym.push_back(bid >= 0 ? bid : 0);
      }
    } else {
      sym.push_back(0);  // <unk>
    }
    i += len;
  }
  for (;;) {
    int best_rank = std::numeric_limits<int>::max(), best_id = -1;
    size_t best_at = 0;
    for (size_t i = 0; i + 1 < sym.size(); ++i) {
      auto it = hf_merges_.find(pair_key(sym[i], sym[i + 1]));
      if (it != hf_merges_.end() && it->second.first < best_rank) {
        best_rank = it->second.first;
        best_id = it->second.second;
        best_at = i;
      }
    }
    if (best_id < 0) break;
    sym[best_at] = best_id;
    sym.erase(sym.begin() + static_cast<std::ptrdiff_t>(best_at) + 1);
  }
  out.insert(out.end(), sym.begin(), sym.end());
}

std::vector<int> Tokenizer::encode_hf(std::string_view text) const {
  std::vector<int> out;
  if (text.empty()) return out;
  std::string s(text);
  for (const auto& step : hf_steps_) {
    if (step.kind == HfStep::replace) s = replace_all(s, step.a, step.b);
    else if (step.kind == HfStep::prepend) s = step.a + s;
    else if (s.rfind(step.a, 0) != 0) s = step.a + s;  // prepend_unless: Metaspace adds no second one
  }
  if (hf_split_on_.empty()) {
    bpe_hf(s, out);
    return out;
  }
  // Metaspace split: words start at each replacement character.
  size_t start = 0;
  while (start < s.size()) {
    size_t next = s.find(hf_split_on_, start + (s.compare(start, hf_split_on_.size(), hf_split_on_) == 0 ? hf_split_on_.size() : 0));
    if (next == std::string::npos) next = s.size();
    bpe_hf(std::string_view(s).substr(start, next - start), out);
    start = next;
  }
  return out;
}

}  // namespace gsqhw::train
