// Strict safetensors reader/writer (workloads/safetensors.h).
#include "workloads/safetensors.h"
#include "base/files.h"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>

#include "base/errors.h"

namespace gsqhw::safetensors {

static_assert(std::endian::native == std::endian::little,
              "safetensors data is little-endian; this reader copies bytes as they are");

namespace {

// A header larger than this is not a header (the reference implementation caps it at 100 MB).
constexpr uint64_t kMaxHeaderBytes = 100ull << 20;

[[noreturn]] void fail(const std::filesystem::path& path, const std::string& what) {
  throw UsageError(fmt::format("{}: not a valid safetensors file: {}", path.string(), what));
}

uint64_t checked_nonnegative(const nlohmann::json& v, const std::filesystem::path& path,
                             const std::string& what) {
  if (v.is_number_unsigned()) return v.get<uint64_t>();
  if (v.is_number_integer() && v.get<int64_t>() >= 0) return static_cast<uint64_t>(v.get<int64_t>());
  fail(path, what + " must be a non-negative integer, got " + v.dump());
}

TensorEntry parse_entry(const std::string& name, const nlohmann::json& e,
                        const std::filesystem::path& path) {
  if (!e.is_object()) fail(path, fmt::format("entry '{}' is not an object", name));
  for (const char* field : {"dtype", "shape", "data_offsets"})
    if (!e.contains(field)) fail(path, fmt::format("entry '{}' has no '{}'", name, field));
  TensorEntry t;
  t.name = name;
  if (!e["dtype"].is_string()) fail(path, fmt::format("entry '{}': dtype is not a string", name));
  t.dtype = e["dtype"].get<std::string>();
  if (dtype_size(t.dtype) == 0)
    fail(path, fmt::format("entry '{}': unknown dtype '{}'", name, t.dtype));
  if (!e["shape"].is_array()) fail(path, fmt::format("entry '{}': shape is not an array", name));
  for (const auto& d : e["shape"]) {
    uint64_t dim = checked_nonnegative(d, path, fmt::format("entry '{}': a shape dimension", name));
    if (dim > (1ull << 40)) fail(path, fmt::format("entry '{}': dimension {} is absurd", name, dim));
    t.shape.push_back(static_cast<int64_t>(dim));
  }
  const auto& off = e["data_offsets"];
  if (!off.is_array() || off.size() != 2)
    fail(path, fmt::format("entry '{}': data_offsets must be [begin, end]", name));
  t.begin = checked_nonnegative(off[0], path, fmt::format("entry '{}': begin offset", name));
  t.end = checked_nonnegative(off[1], path, fmt::format("entry '{}': end offset", name));
  if (t.end < t.begin) fail(path, fmt::format("entry '{}': end offset before begin", name));
  // numel * dtype size must equal the byte span; computed with overflow checks.
  unsigned __int128 bytes = static_cast<unsigned>(dtype_size(t.dtype));
  for (int64_t d : t.shape) {
    bytes *= static_cast<uint64_t>(d);
    if (bytes > std::numeric_limits<uint64_t>::max()) fail(path, fmt::format("entry '{}' is too large", name));
  }
  if (static_cast<uint64_t>(bytes) != t.end - t.begin)
    fail(path, fmt::format("entry '{}': shape and dtype need {} bytes but offsets span {}", name,
                           static_cast<uint64_t>(bytes), t.end - t.begin));
  return t;
}

}  // namespace

int dtype_size(const std::string& dtype) {
  if (dtype == "F64" || dtype == "I64" || dtype == "U64") return 8;
  if (dtype == "F32" || dtype == "I32" || dtype == "U32") return 4;
  if (dtype == "F16" || dtype == "BF16" || dtype == "I16" || dtype == "U16") return 2;
  if (dtype == "I8" || dtype == "U8" || dtype == "BOOL" || dtype == "F8_E4M3" || dtype == "F8_E5M2")
    return 1;
  return 0;
}

int64_t TensorEntry::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

const TensorEntry* Header::find(const std::string& name) const {
  for (const auto& t : tensors)
    if (t.name == name) return &t;
  return nullptr;
}

Header read_header(const std::filesystem::path& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec))
    throw UsageError(fmt::format("{}: no such file", path.string()));
  const uint64_t file_size = std::filesystem::file_size(path, ec);
  if (ec) throw UsageError(fmt::format("{}: cannot read its size: {}", path.string(), ec.message()));
  std::ifstream in(path, std::ios::binary);
  if (!in) throw UsageError(fmt::format("{}: cannot open for reading", path.string()));
  if (file_size < 8) fail(path, fmt::format("only {} bytes, shorter than the 8-byte length", file_size));
  uint64_t n = 0;
  in.read(reinterpret_cast<char*>(&n), 8);
  if (n < 2 || n > kMaxHeaderBytes || n > file_size - 8) {
    // The first bytes usually say what the file is instead; name it rather than quoting a
    // nonsense header length.
    const std::string magic(reinterpret_cast<const char*>(&n), 8);
    if (magic.compare(0, 6, "\x93NUMPY") == 0)
      fail(path, "it is a NumPy .npy array (a tensor), not a safetensors file (`gsqhw quantize` "
                 "reads .npy; traces are written by `gsqhw trace`)");
    if (magic.compare(0, 2, "PK") == 0)
      fail(path, "it is a ZIP archive (a NumPy .npz or a PyTorch .pt/.bin?), not a safetensors file");
    if (magic.compare(0, 4, "GGUF") == 0) fail(path, "it is a GGUF file, not a safetensors file");
    fail(path, fmt::format("header length {} does not fit a file of {} bytes: not a safetensors "
                           "file (8-byte little-endian header length, then a JSON header)",
                           n, file_size));
  }
  std::string text(n, '\0');
  if (!in.read(text.data(), static_cast<std::streamsize>(n))) fail(path, "truncated header");

  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    fail(path, fmt::format("header is not valid JSON ({})", e.what()));
  }
  if (!j.is_object()) fail(path, "header is not a JSON object");

  Header h;
  h.path = path;
  h.data_start = 8 + n;
  h.data_size = file_size - 8 - n;
  for (const auto& [key, value] : j.items()) {
    if (key == "__metadata__") {
      if (!value.is_object()) fail(path, "__metadata__ is not an object");
      for (const auto& [mk, mv] : value.items()) {
        if (!mv.is_string()) fail(path, fmt::format("__metadata__ value of '{}' is not a string", mk));
        h.metadata[mk] = mv.get<std::string>();
      }
      continue;
    }
    h.tensors.push_back(parse_entry(key, value, path));
  }
  std::sort(h.tensors.begin(), h.tensors.end(),
            [](const TensorEntry& a, const TensorEntry& b) {
              return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
            });
  uint64_t expected = 0;
  for (const auto& t : h.tensors) {
    if (t.begin != expected)
      fail(path, fmt::format("entry '{}' starts at {} but the previous data ends at {} "
                             "(overlap or hole)", t.name, t.begin, expected));
    expected = t.end;
  }
  if (expected != h.data_size)
    fail(path, fmt::format("tensors cover {} bytes but the file holds {} data bytes{}", expected,
                           h.data_size, expected > h.data_size ? " (truncated)" : ""));
  return h;
}

void read_bytes(const Header& header, const TensorEntry& entry, void* dst) {
  std::ifstream in(header.path, std::ios::binary);
  if (!in) throw UsageError(fmt::format("{}: cannot open for reading", header.path.string()));
  in.seekg(static_cast<std::streamoff>(header.data_start + entry.begin));
  const uint64_t bytes = entry.end - entry.begin;
  if (bytes == 0) return;
  if (!in.read(static_cast<char*>(dst), static_cast<std::streamsize>(bytes)))
    throw UsageError(fmt::format("{}: truncated: tensor '{}' needs {} bytes at offset {}",
                                 header.path.string(), entry.name, bytes,
                                 header.data_start + entry.begin));
}

void Writer::add(const std::string& name, const std::string& dtype, std::vector<int64_t> shape,
                 const void* data) {
  if (name == "__metadata__") throw UsageError("safetensors: '__metadata__' is not a tensor name");
  for (const auto& p : pending_)
    if (p.entry.name == name) throw UsageError(fmt::format("safetensors: duplicate tensor '{}'", name));
  const int size = dtype_size(dtype);
  if (size == 0) throw UsageError(fmt::format("safetensors: unknown dtype '{}'", dtype));
  TensorEntry t;
  t.name = name;
  t.dtype = dtype;
  t.shape = std::move(shape);
  t.begin = next_offset_;
  t.end = t.begin + static_cast<uint64_t>(t.numel()) * size;
  next_offset_ = t.end;
  pending_.push_back({std::move(t), data});
}

void Writer::write(const std::filesystem::path& path) const {
  nlohmann::json header = nlohmann::json::object();
  if (!metadata_.empty()) {
    nlohmann::json meta = nlohmann::json::object();
    for (const auto& [k, v] : metadata_) meta[k] = v;
    header["__metadata__"] = meta;
  }
  for (const auto& p : pending_)
    header[p.entry.name] = {{"dtype", p.entry.dtype},
                            {"shape", p.entry.shape},
                            {"data_offsets", {p.entry.begin, p.entry.end}}};
  std::string text = header.dump();
  // Pad with spaces so the buffer starts 8-byte aligned (allowed by the format).
  text.append((8 - text.size() % 8) % 8, ' ');
  const uint64_t n = text.size();
  write_file_atomically(path, [&](std::ostream& out) {
    out.write(reinterpret_cast<const char*>(&n), 8);
    out.write(text.data(), static_cast<std::streamsize>(n));
    for (const auto& p : pending_)
      out.write(static_cast<const char*>(p.data),
                static_cast<std::streamsize>(p.entry.end - p.entry.begin));
  });
}


}  // namespace gsqhw::safetensors
