// The embedded default model (workloads/train/embedded_model.h). The bytes are the vendored files
// in models/stories260K/, pulled in by the assembler (.incbin) at build time; CMake passes their
// folder as GSQHW_EMBEDDED_MODEL_DIR and rebuilds this file when they change.
#include "workloads/train/embedded_model.h"
#include "base/files.h"

#include <fmt/format.h>
#include <unistd.h>

#include <cstdint>
#include <fstream>
#include <string_view>

#include "base/errors.h"

__asm__(".section .rodata\n"
        ".balign 16\n"
        ".global gsqhw_embedded_checkpoint\n"
        "gsqhw_embedded_checkpoint:\n"
        ".incbin \"" GSQHW_EMBEDDED_MODEL_DIR "/stories260K.bin\"\n"
        ".global gsqhw_embedded_checkpoint_end\n"
        "gsqhw_embedded_checkpoint_end:\n"
        ".balign 16\n"
        ".global gsqhw_embedded_tokenizer\n"
        "gsqhw_embedded_tokenizer:\n"
        ".incbin \"" GSQHW_EMBEDDED_MODEL_DIR "/tok512.bin\"\n"
        ".global gsqhw_embedded_tokenizer_end\n"
        "gsqhw_embedded_tokenizer_end:\n"
        ".previous\n");

extern "C" {
extern const char gsqhw_embedded_checkpoint[], gsqhw_embedded_checkpoint_end[];
extern const char gsqhw_embedded_tokenizer[], gsqhw_embedded_tokenizer_end[];
}

namespace gsqhw::train {
namespace {

uint64_t fnv1a(std::string_view bytes, uint64_t h = 0xcbf29ce484222325ull) {
  for (unsigned char c : bytes) h = (h ^ c) * 0x100000001b3ull;
  return h;
}

// Writes `bytes` to `file` (atomically) unless it already holds exactly them.
void write_once(const std::filesystem::path& file, std::string_view bytes) {
  std::error_code ec;
  if (std::filesystem::file_size(file, ec) == bytes.size() && !ec) return;
  write_file_atomically(file, bytes);
}

}  // namespace

EmbeddedModel embedded_model(const std::filesystem::path& dir) {
  const std::string_view checkpoint(gsqhw_embedded_checkpoint,
                                    static_cast<size_t>(gsqhw_embedded_checkpoint_end - gsqhw_embedded_checkpoint));
  const std::string_view tokenizer(gsqhw_embedded_tokenizer,
                                   static_cast<size_t>(gsqhw_embedded_tokenizer_end - gsqhw_embedded_tokenizer));
  const auto folder = dir / fmt::format("stories260K-{:016x}", fnv1a(tokenizer, fnv1a(checkpoint)));
  std::filesystem::create_directories(folder);
  EmbeddedModel m{folder / "stories260K.bin", folder / "tok512.bin"};
  write_once(m.checkpoint, checkpoint);
  write_once(m.tokenizer, tokenizer);
  return m;
}

std::string file_content_hash(const std::filesystem::path& file) {
  return fmt::format("{:016x}", fnv1a(read_file(file)));
}

}  // namespace gsqhw::train
