// NumPy .npy files (format versions 1.0, 2.0 and 3.0), C order, little-endian data:
// float32 ('<f4'), float64 ('<f8'), float16 ('<f2'), bfloat16, int8 ('|i1'), int16 ('<i2'),
// int32 ('<i4'), int64 ('<i8'), uint8 ('|u1'). NumPy has no bfloat16: ml_dtypes' arrays are
// saved by np.save as a 2-byte void ('|V2' / '<V2'), or as 'bfloat16' by tools that write
// str(dtype); both read as bfloat16 (NpyArray::descr keeps what the file said).
// Reading rejects, with a UsageError naming the file and the problem: a wrong magic string,
// an unsupported version or dtype, fortran_order True, a malformed header, a shape whose size
// overflows, and data shorter or longer than the shape says.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace gsqhw {

enum class NpyDtype { f32, i8, i16, i32, i64, u8, f64, f16, bf16 };

std::string npy_descr(NpyDtype dtype);  // "<f4", "|i1", ... ("|V2" for bf16)
std::string npy_dtype_name(NpyDtype dtype);  // "float32", "bfloat16", ...
int npy_item_size(NpyDtype dtype);

struct NpyArray {
  NpyDtype dtype = NpyDtype::f32;
  std::vector<int64_t> shape;  // empty: a 0-d array holding one element
  std::vector<uint8_t> data;   // size() * item size bytes, little-endian, C order
  std::string descr;           // the file's dtype string (when read from a file)

  int64_t size() const;  // number of elements (product of shape)
  // Every element converted to float (integers exactly when |v| <= 2^24, float16/bfloat16
  // exactly, float64 rounded to nearest even) / to int64 (floats must hold integer values,
  // else UsageError).
  std::vector<float> to_float() const;
  std::vector<int64_t> to_int64() const;
};

// Parses a whole .npy file held in memory; `name` is used in error messages.
NpyArray parse_npy(const uint8_t* bytes, size_t length, std::string_view name = "<memory>");
NpyArray read_npy(const std::filesystem::path& path);

// Serialises (version 1.0 when the header fits, else 2.0).
std::vector<uint8_t> encode_npy(const NpyArray& array);
void write_npy(const std::filesystem::path& path, const NpyArray& array);

// Convenience constructors.
NpyArray make_npy_f32(const std::vector<int64_t>& shape, const float* values);
NpyArray make_npy_i32(const std::vector<int64_t>& shape, const int32_t* values);

}  // namespace gsqhw
