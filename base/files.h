// Whole-file reads and atomic writes: the one copy every layer uses.
//
// A write goes to a temporary name in the same folder and is renamed over the target, so a
// reader (another sweep worker, a Slurm task on another node sharing the folder, the user)
// sees either the old file or the whole new one, never a half-written one, and a failed write
// (full disk, file-size limit) leaves no temporary behind. The temporary's name carries the
// host, the process and a counter, so concurrent writers of one shared cache never collide.
#pragma once

#include <filesystem>
#include <functional>
#include <ostream>
#include <string>
#include <string_view>

namespace gsqhw {

// The file's bytes as stored. Throws UsageError "cannot read PATH: REASON" when it cannot be
// opened (a missing or unreadable file is nearly always a path the user gave us).
std::string read_file(const std::filesystem::path& path);

// The file's bytes, or "" when it is missing or unreadable: for tool logs that a failed run
// may not have written.
std::string read_file_if_present(const std::filesystem::path& path);

// Whether an atomic write also reaches the disk before the rename (fsync): results a crash
// must not lose or corrupt (the sweep's result files) ask for it; scratch and cache files
// don't need to pay for it.
enum class Durability { flushed, synced };

// Writes `text` to `path` atomically (see above). Errors: UsageError when the temporary
// cannot be created (the folder is missing or read-only), std::runtime_error naming the path
// and the system's reason (ENOSPC, EFBIG, ...) and "(disk full?)" when writing fails.
void write_file_atomically(const std::filesystem::path& path, std::string_view text,
                           Durability durability = Durability::flushed);

// The same, with the content streamed by `body` (large binary files: safetensors, traces).
// An exception from `body` also removes the temporary and propagates.
void write_file_atomically(const std::filesystem::path& path,
                           const std::function<void(std::ostream&)>& body,
                           Durability durability = Durability::flushed);

// "HOST-PID-N": a name part no other writer (thread, process or host) uses at the same time.
std::string unique_name_suffix();

}  // namespace gsqhw
