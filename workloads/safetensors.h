// A small, strict reader and writer for the safetensors container
// (https://github.com/huggingface/safetensors): 8-byte little-endian header length N, N bytes
// of JSON header, then the byte buffer. Each header entry names a tensor with its dtype, shape
// and [begin, end) byte offsets into the buffer; "__metadata__" maps strings to strings.
//
// Used by the trace files (workloads/trace.h) and the HF checkpoint loader. Reads seek to one
// tensor at a time, so a 13 GB checkpoint costs only the bytes of the tensor asked for.
#pragma once

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace gsqhw::safetensors {

// Bytes per element of a safetensors dtype name ("F32", "I64", ...); 0 when unknown.
int dtype_size(const std::string& dtype);

struct TensorEntry {
  std::string name;
  std::string dtype;
  std::vector<int64_t> shape;
  uint64_t begin = 0, end = 0;  // byte offsets into the data buffer

  int64_t numel() const;
};

struct Header {
  std::filesystem::path path;
  std::map<std::string, std::string> metadata;  // "__metadata__", empty when absent
  std::vector<TensorEntry> tensors;             // in buffer order (sorted by begin)
  uint64_t data_start = 0;                      // file offset of the buffer
  uint64_t data_size = 0;                       // buffer bytes

  const TensorEntry* find(const std::string& name) const;  // nullptr when absent
};

// Parses and validates the header of `path`: JSON syntax, entry fields, known dtypes,
// non-negative shapes whose byte size matches the offsets, offsets inside the file, no
// overlaps, and (like the reference implementation) no holes: the entries tile the buffer.
// Throws UsageError naming the file and the problem.
Header read_header(const std::filesystem::path& path);

// Reads one tensor's raw little-endian bytes into dst (entry.end - entry.begin bytes).
// Throws UsageError when the file is shorter than the header promised.
void read_bytes(const Header& header, const TensorEntry& entry, void* dst);

// Collects tensors (by pointer: the caller keeps them alive until write()) and writes the file
// atomically: to a temporary name in the same folder, then rename. On any error the temporary
// file is removed and the target is left as it was.
class Writer {
 public:
  void set_metadata(const std::string& key, const std::string& value) { metadata_[key] = value; }
  void add(const std::string& name, const std::string& dtype, std::vector<int64_t> shape,
           const void* data);
  void write(const std::filesystem::path& path) const;

 private:
  struct Pending {
    TensorEntry entry;
    const void* data;
  };
  std::map<std::string, std::string> metadata_;
  std::vector<Pending> pending_;
  uint64_t next_offset_ = 0;
};

}  // namespace gsqhw::safetensors
