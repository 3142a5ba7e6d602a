// NumPy .npy reading and writing (base/npy.h).
#include "base/npy.h"

#include <fmt/format.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <optional>

#include "base/errors.h"

namespace gsqhw {

std::string npy_descr(NpyDtype dtype) {
  switch (dtype) {
    case NpyDtype::f32: return "<f4";
    case NpyDtype::i8: return "|i1";
    case NpyDtype::i16: return "<i2";
    case NpyDtype::i32: return "<i4";
    case NpyDtype::i64: return "<i8";
    case NpyDtype::u8: return "|u1";
    case NpyDtype::f64: return "<f8";
    case NpyDtype::f16: return "<f2";
    case NpyDtype::bf16: return "|V2";  // what np.save writes for ml_dtypes.bfloat16
  }
  return "?";
}

std::string npy_dtype_name(NpyDtype dtype) {
  switch (dtype) {
    case NpyDtype::f32: return "float32";
    case NpyDtype::i8: return "int8";
    case NpyDtype::i16: return "int16";
    case NpyDtype::i32: return "int32";
    case NpyDtype::i64: return "int64";
    case NpyDtype::u8: return "uint8";
    case NpyDtype::f64: return "float64";
    case NpyDtype::f16: return "float16";
    case NpyDtype::bf16: return "bfloat16";
  }
  return "?";
}

int npy_item_size(NpyDtype dtype) {
  switch (dtype) {
    case NpyDtype::f32: return 4;
    case NpyDtype::i8: return 1;
    case NpyDtype::i16: return 2;
    case NpyDtype::i32: return 4;
    case NpyDtype::i64: return 8;
    case NpyDtype::u8: return 1;
    case NpyDtype::f64: return 8;
    case NpyDtype::f16: return 2;
    case NpyDtype::bf16: return 2;
  }
  return 1;
}

int64_t NpyArray::size() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

namespace {

// Reads element i as int64 / double from little-endian bytes (this code runs on
// little-endian hosts only, as does everything in gsqhw; checked at compile time below).
static_assert(std::endian::native == std::endian::little, "gsqhw assumes a little-endian host");

template <typename T>
T load(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

// IEEE binary16 to float: exact (every half is a float).
float half_to_float(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h >> 15) << 31;
  const int exponent = (h >> 10) & 0x1f;
  const uint32_t mantissa = h & 0x3ff;
  if (exponent == 0x1f) return std::bit_cast<float>(sign | 0x7f800000u | (mantissa << 13));
  if (exponent == 0) {  // zero or subnormal: mantissa * 2^-24
    const float magnitude = std::ldexp(static_cast<float>(mantissa), -24);
    return sign ? -magnitude : magnitude;
  }
  return std::bit_cast<float>(sign | static_cast<uint32_t>(exponent - 15 + 127) << 23 | mantissa << 13);
}

// bfloat16 is the top half of a float32.
float bfloat16_to_float(uint16_t b) { return std::bit_cast<float>(static_cast<uint32_t>(b) << 16); }

// Element i of a floating-point array as double (exact for every float dtype).
double load_real(NpyDtype dtype, const uint8_t* p, size_t i) {
  switch (dtype) {
    case NpyDtype::f32: return load<float>(p + 4 * i);
    case NpyDtype::f64: return load<double>(p + 8 * i);
    case NpyDtype::f16: return half_to_float(load<uint16_t>(p + 2 * i));
    case NpyDtype::bf16: return bfloat16_to_float(load<uint16_t>(p + 2 * i));
    default: return 0;
  }
}

// A minimal reader of the header's Python dict literal:
//   {'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }
class HeaderParser {
 public:
  HeaderParser(std::string_view text, std::string_view name) : s_(text), name_(name) {}

  void parse(std::string& descr, std::optional<bool>& fortran, std::optional<std::vector<int64_t>>& shape) {
    skip_space();
    expect('{');
    while (true) {
      skip_space();
      if (peek() == '}') {
        ++pos_;
        break;
      }
      std::string key = parse_string();
      skip_space();
      expect(':');
      skip_space();
      if (key == "descr") descr = parse_string();
      else if (key == "fortran_order") fortran = parse_bool();
      else if (key == "shape") shape = parse_tuple();
      else fail(fmt::format("unexpected key '{}'", key));
      skip_space();
      if (peek() == ',') ++pos_;
      else if (peek() != '}') fail("expected ',' or '}'");
    }
    skip_space();
    if (pos_ != s_.size()) fail("trailing characters after the dict");
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    throw UsageError(fmt::format("{}: malformed .npy header ({}) at offset {} in \"{}\"", name_,
                                 what, pos_, s_));
  }
  char peek() const { return pos_ < s_.size() ? s_[pos_] : '\0'; }
  void skip_space() {
    while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\n' || s_[pos_] == '\t')) ++pos_;
  }
  void expect(char c) {
    if (peek() != c) fail(fmt::format("expected '{}'", c));
    ++pos_;
  }
  std::string parse_string() {
    char quote = peek();
    if (quote != '\'' && quote != '"') fail("expected a quoted string");
    size_t end = s_.find(quote, pos_ + 1);
    if (end == std::string_view::npos) fail("unterminated string");
    std::string value(s_.substr(pos_ + 1, end - pos_ - 1));
    pos_ = end + 1;
    return value;
  }
  bool parse_bool() {
    if (s_.substr(pos_, 4) == "True") {
      pos_ += 4;
      return true;
    }
    if (s_.substr(pos_, 5) == "False") {
      pos_ += 5;
      return false;
    }
    fail("expected True or False");
  }
  std::vector<int64_t> parse_tuple() {
    expect('(');
    std::vector<int64_t> dims;
    while (true) {
      skip_space();
      if (peek() == ')') {
        ++pos_;
        return dims;
      }
      if (peek() < '0' || peek() > '9') fail("expected a dimension");
      int64_t value = 0;
      while (peek() >= '0' && peek() <= '9') {
        if (value > (std::numeric_limits<int64_t>::max() - 9) / 10) fail("dimension too large");
        value = value * 10 + (peek() - '0');
        ++pos_;
      }
      if (peek() == 'L') ++pos_;  // Python 2 long suffix
      dims.push_back(value);
      if (dims.size() > 32) fail("more than 32 dimensions");
      skip_space();
      if (peek() == ',') ++pos_;
      else if (peek() != ')') fail("expected ',' or ')' in shape");
    }
  }

  std::string_view s_;
  std::string_view name_;
  size_t pos_ = 0;
};

NpyDtype dtype_from_descr(const std::string& descr, std::string_view name) {
  if (descr == "<f4") return NpyDtype::f32;
  if (descr == "|i1" || descr == "<i1" || descr == "i1") return NpyDtype::i8;
  if (descr == "<i2") return NpyDtype::i16;
  if (descr == "<i4") return NpyDtype::i32;
  if (descr == "<i8") return NpyDtype::i64;
  if (descr == "|u1" || descr == "<u1" || descr == "u1") return NpyDtype::u8;
  if (descr == "<f8") return NpyDtype::f64;
  if (descr == "<f2") return NpyDtype::f16;
  if (descr == "bfloat16" || descr == "|V2" || descr == "<V2" || descr == "V2") return NpyDtype::bf16;
  throw UsageError(fmt::format(
      "{}: unsupported .npy dtype '{}' (supported: float32 '<f4', float64 '<f8', float16 '<f2', "
      "bfloat16 ('|V2' as ml_dtypes saves it), int8 '|i1', int16 '<i2', int32 '<i4', int64 "
      "'<i8', uint8 '|u1'; big-endian data: convert with numpy's astype)",
      name, descr));
}

}  // namespace

NpyArray parse_npy(const uint8_t* bytes, size_t length, std::string_view name) {
  static const char kMagic[] = "\x93NUMPY";
  if (length < 10 || std::memcmp(bytes, kMagic, 6) != 0)
    throw UsageError(fmt::format("{}: not a .npy file (missing the \\x93NUMPY magic string)",
                                 name));
  int major = bytes[6];
  size_t header_len, header_start;
  if (major == 1) {
    header_len = load<uint16_t>(bytes + 8);
    header_start = 10;
  } else if (major == 2 || major == 3) {
    if (length < 12) throw UsageError(fmt::format("{}: truncated .npy header", name));
    header_len = load<uint32_t>(bytes + 8);
    header_start = 12;
  } else {
    throw UsageError(
        fmt::format("{}: unsupported .npy format version {}.{} (supported: 1.x, 2.x, 3.x)", name,
                    major, bytes[7]));
  }
  if (header_len > length - header_start)
    throw UsageError(fmt::format("{}: truncated .npy file (header says {} bytes, file has {})",
                                 name, header_len, length - header_start));
  std::string_view header(reinterpret_cast<const char*>(bytes + header_start), header_len);

  std::string descr;
  std::optional<bool> fortran;
  std::optional<std::vector<int64_t>> shape;
  HeaderParser(header, name).parse(descr, fortran, shape);
  if (descr.empty() || !fortran || !shape)
    throw UsageError(fmt::format(
        "{}: .npy header lacks one of 'descr', 'fortran_order', 'shape'", name));
  if (*fortran)
    throw UsageError(fmt::format(
        "{}: fortran_order arrays are not supported (save with np.ascontiguousarray)", name));

  NpyArray array;
  array.dtype = dtype_from_descr(descr, name);
  array.descr = descr;
  array.shape = *shape;
  // Element count with overflow checks (a hostile header must not make us allocate wildly).
  uint64_t count = 1;
  for (int64_t d : array.shape) {
    if (d != 0 && count > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) /
                              static_cast<uint64_t>(d) / 8)
      throw UsageError(fmt::format("{}: .npy shape is too large", name));
    count *= static_cast<uint64_t>(d);
  }
  uint64_t data_bytes = count * static_cast<uint64_t>(npy_item_size(array.dtype));
  size_t available = length - header_start - header_len;
  if (available < data_bytes)
    throw UsageError(fmt::format(
        "{}: truncated .npy data: shape needs {} bytes, file holds {}", name, data_bytes,
        available));
  if (available > data_bytes)
    throw UsageError(fmt::format(
        "{}: .npy shape/size mismatch: shape needs {} bytes, file holds {} (extra data)", name,
        data_bytes, available));
  const uint8_t* data = bytes + header_start + header_len;
  array.data.assign(data, data + data_bytes);
  return array;
}

NpyArray read_npy(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw UsageError(fmt::format("cannot open '{}' for reading", path.string()));
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)),
                             std::istreambuf_iterator<char>());
  return parse_npy(bytes.data(), bytes.size(), path.string());
}

std::vector<uint8_t> encode_npy(const NpyArray& array) {
  if (static_cast<uint64_t>(array.size()) * npy_item_size(array.dtype) != array.data.size())
    throw UsageError("encode_npy: data size does not match the shape");
  std::string shape_text = "(";
  for (size_t i = 0; i < array.shape.size(); ++i) {
    shape_text += std::to_string(array.shape[i]);
    shape_text += array.shape.size() == 1 ? "," : (i + 1 < array.shape.size() ? ", " : "");
  }
  shape_text += ")";
  std::string header = fmt::format("{{'descr': '{}', 'fortran_order': False, 'shape': {}, }}",
                                   npy_descr(array.dtype), shape_text);
  // Pad with spaces and a final newline so that the data starts at a multiple of 64 bytes.
  bool v1 = header.size() + 1 + 10 <= 65535;
  size_t prefix = v1 ? 10 : 12;
  size_t total = (prefix + header.size() + 1 + 63) / 64 * 64;
  header.append(total - prefix - header.size() - 1, ' ');
  header += '\n';
  std::vector<uint8_t> out = {0x93, 'N', 'U', 'M', 'P', 'Y', static_cast<uint8_t>(v1 ? 1 : 2), 0};
  uint32_t len = static_cast<uint32_t>(header.size());
  out.push_back(len & 0xff);
  out.push_back((len >> 8) & 0xff);
  if (!v1) {
    out.push_back((len >> 16) & 0xff);
    out.push_back((len >> 24) & 0xff);
  }
  out.insert(out.end(), header.begin(), header.end());
  out.insert(out.end(), array.data.begin(), array.data.end());
  return out;
}

void write_npy(const std::filesystem::path& path, const NpyArray& array) {
  std::vector<uint8_t> bytes = encode_npy(array);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) throw UsageError(fmt::format("cannot open '{}' for writing", path.string()));
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  if (!out) throw UsageError(fmt::format("failed writing '{}'", path.string()));
}

std::vector<float> NpyArray::to_float() const {
  std::vector<float> out(static_cast<size_t>(size()));
  const uint8_t* p = data.data();
  for (size_t i = 0; i < out.size(); ++i) {
    switch (dtype) {
      case NpyDtype::f32: out[i] = load<float>(p + 4 * i); break;
      case NpyDtype::f64:  // a C++ double-to-float conversion rounds to nearest even
      case NpyDtype::f16:
      case NpyDtype::bf16: out[i] = static_cast<float>(load_real(dtype, p, i)); break;
      case NpyDtype::i8: out[i] = static_cast<float>(static_cast<int8_t>(p[i])); break;
      case NpyDtype::i16: out[i] = static_cast<float>(load<int16_t>(p + 2 * i)); break;
      case NpyDtype::i32: out[i] = static_cast<float>(load<int32_t>(p + 4 * i)); break;
      case NpyDtype::i64: out[i] = static_cast<float>(load<int64_t>(p + 8 * i)); break;
      case NpyDtype::u8: out[i] = static_cast<float>(p[i]); break;
    }
  }
  return out;
}

std::vector<int64_t> NpyArray::to_int64() const {
  std::vector<int64_t> out(static_cast<size_t>(size()));
  const uint8_t* p = data.data();
  for (size_t i = 0; i < out.size(); ++i) {
    switch (dtype) {
      case NpyDtype::f32:
      case NpyDtype::f64:
      case NpyDtype::f16:
      case NpyDtype::bf16: {
        const double v = load_real(dtype, p, i);
        if (!(std::trunc(v) == v) || std::fabs(v) >= 0x1.0p62)
          throw UsageError(fmt::format("element {} = {} is not an integer", i, v));
        out[i] = static_cast<int64_t>(v);
        break;
      }
      case NpyDtype::i8: out[i] = static_cast<int8_t>(p[i]); break;
      case NpyDtype::i16: out[i] = load<int16_t>(p + 2 * i); break;
      case NpyDtype::i32: out[i] = load<int32_t>(p + 4 * i); break;
      case NpyDtype::i64: out[i] = load<int64_t>(p + 8 * i); break;
      case NpyDtype::u8: out[i] = p[i]; break;
    }
  }
  return out;
}

NpyArray make_npy_f32(const std::vector<int64_t>& shape, const float* values) {
  NpyArray a;
  a.dtype = NpyDtype::f32;
  a.shape = shape;
  a.data.resize(static_cast<size_t>(a.size()) * 4);
  if (!a.data.empty()) std::memcpy(a.data.data(), values, a.data.size());
  return a;
}

NpyArray make_npy_i32(const std::vector<int64_t>& shape, const int32_t* values) {
  NpyArray a;
  a.dtype = NpyDtype::i32;
  a.shape = shape;
  a.data.resize(static_cast<size_t>(a.size()) * 4);
  if (!a.data.empty()) std::memcpy(a.data.data(), values, a.data.size());
  return a;
}

}  // namespace gsqhw
