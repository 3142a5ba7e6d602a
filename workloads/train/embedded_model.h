// The default workload's model, embedded in the binary: stories260K and its tokenizer
// (models/stories260K/, MIT licence of llama2.c, see its LICENSE.md). `gsqhw sweep` fine-tunes it
// to choose b* when no other model is given, so that the main command needs no download.
#pragma once

#include <filesystem>
#include <string>

namespace gsqhw::train {

struct EmbeddedModel {
  std::filesystem::path checkpoint, tokenizer;
};

// Writes the embedded checkpoint and tokenizer into dir/stories260K-<hash>/ (once; atomic
// renames, so a killed write leaves nothing half-written) and returns their paths.
EmbeddedModel embedded_model(const std::filesystem::path& dir);

// A content hash (FNV-1a 64, hex) of a file, for cache keys; throws UsageError when unreadable.
std::string file_content_hash(const std::filesystem::path& file);

}  // namespace gsqhw::train
