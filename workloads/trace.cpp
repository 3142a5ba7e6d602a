// Trace files: one GEMM per safetensors file (workloads/trace.h, layout in docs/traces.md).
#include "workloads/trace.h"

#include <fmt/format.h>

#include <algorithm>
#include <limits>
#include <set>

#include "base/errors.h"
#include "workloads/safetensors.h"

namespace gsqhw {
namespace {

constexpr const char* kSchema = "gsqhw-trace/1";
constexpr const char* kMetadataKey = "gsqhw";

// Integer codes are stored in the narrowest of I8, U8, I16, I32 that holds all of them; the
// reader widens back to int32, so the round trip is exact and files stay small (b-bit GSE codes
// take one byte each instead of four).
struct IntStorage {
  std::string dtype;
  std::vector<uint8_t> bytes;
};

template <typename T>
IntStorage narrow_to(const std::vector<int32_t>& v, const char* dtype) {
  IntStorage s{dtype, std::vector<uint8_t>(v.size() * sizeof(T))};
  T* out = reinterpret_cast<T*>(s.bytes.data());
  for (size_t i = 0; i < v.size(); ++i) out[i] = static_cast<T>(v[i]);
  return s;
}

IntStorage narrow(const std::vector<int32_t>& v) {
  int32_t lo = 0, hi = 0;
  if (!v.empty()) {
    auto [mn, mx] = std::minmax_element(v.begin(), v.end());
    lo = *mn;
    hi = *mx;
  }
  if (lo >= -128 && hi <= 127) return narrow_to<int8_t>(v, "I8");
  if (lo >= 0 && hi <= 255) return narrow_to<uint8_t>(v, "U8");
  if (lo >= -32768 && hi <= 32767) return narrow_to<int16_t>(v, "I16");
  return narrow_to<int32_t>(v, "I32");
}

nlohmann::json operand_json(const QuantizedTensor& q) {
  return {{"format", q.format_spec}, {"rows", q.rows}, {"cols", q.cols}, {"group_size", q.group_size}};
}

void add_operand(safetensors::Writer& w, const std::string& prefix, const QuantizedTensor& q,
                 const std::vector<float>& fp32, std::vector<IntStorage>& keep) {
  keep.push_back(narrow(q.codes));
  w.add(prefix + ".codes", keep.back().dtype, {q.rows, q.cols}, keep.back().bytes.data());
  if (!q.group_exponents.empty()) {
    keep.push_back(narrow(q.group_exponents));
    w.add(prefix + ".exponents", keep.back().dtype, {q.rows, q.groups_per_row()},
          keep.back().bytes.data());
  }
  if (!q.scales.empty())
    w.add(prefix + ".scales", "F32", {static_cast<int64_t>(q.scales.size())}, q.scales.data());
  if (!fp32.empty()) w.add(prefix + ".fp32", "F32", {q.rows, q.cols}, fp32.data());
}

// Checks that the in-memory trace is self-consistent before anything touches the disk.
void check_writable(const Trace& t) {
  auto fail = [&](const std::string& what) {
    throw UsageError(fmt::format("trace '{}' cannot be written: {}", t.name, what));
  };
  if (t.name.empty()) fail("it has no name");
  for (const auto* q : {&t.a, &t.b}) {
    if (q->rows < 0 || q->cols < 0) fail("negative operand shape");
    if (static_cast<int64_t>(q->codes.size()) != q->rows * q->cols) fail("codes size != rows*cols");
    if (!q->group_exponents.empty() &&
        static_cast<int64_t>(q->group_exponents.size()) != q->rows * q->groups_per_row())
      fail("group exponents size != rows*groups_per_row");
  }
  if (t.a.cols != t.b.cols) fail("A and B have different K");
  if (!t.a_fp32.empty() && t.a_fp32.size() != t.a.codes.size()) fail("a_fp32 size != rows*cols");
  if (!t.b_fp32.empty() && t.b_fp32.size() != t.b.codes.size()) fail("b_fp32 size != rows*cols");
  const auto mn = static_cast<size_t>(t.m() * t.n());
  if (t.golden.out.size() != mn || t.golden.acc_raw.size() != mn || t.golden.flags.size() != mn)
    fail("golden result size != M*N");
  if (!t.reference_fp32.empty() && t.reference_fp32.size() != mn) fail("reference size != M*N");
  if (!t.metadata.is_null() && !t.metadata.is_object()) fail("metadata is not a JSON object");
}

// ---------------------------------------------------------------------------------------------
// Reading

class TraceReader {
 public:
  explicit TraceReader(const std::filesystem::path& path)
      : path_(path), header_(safetensors::read_header(path)) {}

  // with_data false: the metadata and operand headers only (formats, shapes), no tensor bytes.
  Trace read(bool with_data = true) {
    Trace t;
    const nlohmann::json meta = parse_metadata();
    t.name = require_string(meta, "name");
    t.acc = AccumulatorSpec::parse(require_string(meta, "acc"));
    // Golden outputs of minifloat group sums (shared-column FP8 designs) say so.
    if (meta.contains("acc_group")) {
      if (!meta["acc_group"].is_number_integer() || meta["acc_group"].get<int64_t>() < 1 ||
          meta["acc_group"].get<int64_t>() > 1 << 20)
        fail("metadata 'acc_group' is not a group size >= 1");
      t.acc.group = meta["acc_group"].get<int>();
    }
    t.metadata = meta.contains("info") ? meta["info"] : nlohmann::json::object();
    if (!t.metadata.is_object()) fail("metadata 'info' is not an object");
    if (!meta.contains("operands") || !meta["operands"].is_object()) fail("metadata has no 'operands'");
    t.a = read_operand_header(meta["operands"], "a");
    t.b = read_operand_header(meta["operands"], "b");
    if (t.a.cols != t.b.cols)
      fail(fmt::format("A is {}x{} and B is {}x{}: their K differ", t.a.rows, t.a.cols, t.b.rows, t.b.cols));
    if (!with_data) return t;

    std::set<std::string> expected;
    read_operand_data("a", t.a, t.a_fp32, expected);
    read_operand_data("b", t.b, t.b_fp32, expected);
    const int64_t m = t.a.rows, n = t.b.rows;
    t.golden.m = m;
    t.golden.n = n;
    t.golden.out = read_floats("golden.out", {m, n}, true, expected);
    t.golden.acc_raw.resize(static_cast<size_t>(m * n));
    read_exact("golden.acc_raw", "I64", {m, n}, t.golden.acc_raw.data(), expected);
    t.golden.flags.resize(static_cast<size_t>(m * n));
    read_exact("golden.flags", "U8", {m, n}, t.golden.flags.data(), expected);
    for (uint8_t f : t.golden.flags)
      if (f & ~(kFlagOverflow | kFlagNaN)) fail(fmt::format("golden.flags holds unknown flag bits {:#x}", f));
    t.reference_fp32 = read_floats("reference.fp32", {m, n}, false, expected);

    for (const auto& e : header_.tensors)
      if (!expected.count(e.name)) fail(fmt::format("unexpected tensor '{}'", e.name));
    return t;
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    throw UsageError(fmt::format("{}: not a valid gsqhw trace: {}", path_.string(), what));
  }

  nlohmann::json parse_metadata() const {
    auto it = header_.metadata.find(kMetadataKey);
    if (it == header_.metadata.end()) fail("__metadata__ has no 'gsqhw' key");
    nlohmann::json meta;
    try {
      meta = nlohmann::json::parse(it->second);
    } catch (const nlohmann::json::exception& e) {
      fail(fmt::format("the 'gsqhw' metadata is not valid JSON ({})", e.what()));
    }
    if (!meta.is_object()) fail("the 'gsqhw' metadata is not a JSON object");
    if (require_string(meta, "schema") != kSchema)
      fail(fmt::format("schema '{}' is not '{}'", meta["schema"].get<std::string>(), kSchema));
    return meta;
  }

  std::string require_string(const nlohmann::json& j, const char* key) const {
    if (!j.contains(key) || !j[key].is_string()) fail(fmt::format("metadata field '{}' missing or not a string", key));
    return j[key].get<std::string>();
  }

  int64_t require_int(const nlohmann::json& j, const char* key, int64_t lo, int64_t hi) const {
    if (!j.contains(key) || !j[key].is_number_integer())
      fail(fmt::format("metadata field '{}' missing or not an integer", key));
    const int64_t v = j[key].get<int64_t>();
    if (v < lo || v > hi) fail(fmt::format("metadata field '{}' = {} outside {}..{}", key, v, lo, hi));
    return v;
  }

  QuantizedTensor read_operand_header(const nlohmann::json& ops, const char* which) const {
    if (!ops.contains(which) || !ops[which].is_object()) fail(fmt::format("operand '{}' missing", which));
    const auto& o = ops[which];
    QuantizedTensor q;
    q.format_spec = require_string(o, "format");
    try {
      parse_format(q.format_spec);  // validates; the stored text is kept as written
    } catch (const UsageError& e) {
      fail(fmt::format("operand '{}': {}", which, e.what()));
    }
    q.rows = require_int(o, "rows", 0, int64_t{1} << 32);
    q.cols = require_int(o, "cols", 0, int64_t{1} << 32);
    q.group_size = static_cast<int>(require_int(o, "group_size", 0, 1 << 20));
    return q;
  }

  void read_operand_data(const std::string& p, QuantizedTensor& q, std::vector<float>& fp32,
                         std::set<std::string>& expected) {
    q.codes = read_ints(p + ".codes", {q.rows, q.cols}, true, expected);
    if (header_.find(p + ".exponents") && q.group_size == 0)
      fail(fmt::format("{}.exponents present but the operand has no groups", p));
    if (q.group_size > 0)
      q.group_exponents = read_ints(p + ".exponents", {q.rows, q.groups_per_row()}, false, expected);
    if (const auto* e = header_.find(p + ".scales")) {
      if (e->shape.size() != 1) fail(fmt::format("{}.scales must be 1-D", p));
      q.scales = read_floats(p + ".scales", {e->shape[0]}, true, expected);
    }
    fp32 = read_floats(p + ".fp32", {q.rows, q.cols}, false, expected);
  }

  const safetensors::TensorEntry* entry(const std::string& name, const std::vector<int64_t>& shape,
                                        bool required, std::set<std::string>& expected) const {
    expected.insert(name);
    const auto* e = header_.find(name);
    if (!e) {
      if (required) fail(fmt::format("tensor '{}' missing", name));
      return nullptr;
    }
    if (e->shape != shape)
      fail(fmt::format("tensor '{}' has shape [{}], expected [{}]", name, fmt::join(e->shape, ", "),
                       fmt::join(shape, ", ")));
    return e;
  }

  void read_exact(const std::string& name, const char* dtype, const std::vector<int64_t>& shape,
                  void* dst, std::set<std::string>& expected) {
    const auto* e = entry(name, shape, true, expected);
    if (e->dtype != dtype) fail(fmt::format("tensor '{}' has dtype {}, expected {}", name, e->dtype, dtype));
    safetensors::read_bytes(header_, *e, dst);
  }

  std::vector<float> read_floats(const std::string& name, const std::vector<int64_t>& shape,
                                 bool required, std::set<std::string>& expected) {
    const auto* e = entry(name, shape, required, expected);
    if (!e) return {};
    if (e->dtype != "F32") fail(fmt::format("tensor '{}' has dtype {}, expected F32", name, e->dtype));
    std::vector<float> v(static_cast<size_t>(e->numel()));
    safetensors::read_bytes(header_, *e, v.data());
    return v;
  }

  std::vector<int32_t> read_ints(const std::string& name, const std::vector<int64_t>& shape,
                                 bool required, std::set<std::string>& expected) {
    const auto* e = entry(name, shape, required, expected);
    if (!e) return {};
    const auto n = static_cast<size_t>(e->numel());
    std::vector<int32_t> v(n);
    auto widen = [&]<typename T>(T) {
      std::vector<T> raw(n);
      safetensors::read_bytes(header_, *e, raw.data());
      std::copy(raw.begin(), raw.end(), v.begin());
    };
    if (e->dtype == "I8") widen(int8_t{});
    else if (e->dtype == "U8") widen(uint8_t{});
    else if (e->dtype == "I16") widen(int16_t{});
    else if (e->dtype == "I32") widen(int32_t{});
    else fail(fmt::format("tensor '{}' has dtype {}, expected one of I8, U8, I16, I32", name, e->dtype));
    return v;
  }

  std::filesystem::path path_;
  safetensors::Header header_;
};

}  // namespace

void write_trace(const Trace& trace, const std::filesystem::path& path) {
  check_writable(trace);
  nlohmann::json meta = {
      {"schema", kSchema},
      {"name", trace.name},
      {"acc", trace.acc.str()},
      {"operands", {{"a", operand_json(trace.a)}, {"b", operand_json(trace.b)}}},
      {"info", trace.metadata.is_null() ? nlohmann::json::object() : trace.metadata},
  };
  // golden = group sums (numerics/gemm.h): recorded, so that nobody takes it for per-product.
  if (trace.acc.group > 0) meta["acc_group"] = trace.acc.group;
  safetensors::Writer w;
  w.set_metadata(kMetadataKey, meta.dump());
  std::vector<IntStorage> keep;
  keep.reserve(4);  // pointers into `keep` must stay valid until write()
  add_operand(w, "a", trace.a, trace.a_fp32, keep);
  add_operand(w, "b", trace.b, trace.b_fp32, keep);
  const int64_t m = trace.m(), n = trace.n();
  w.add("golden.out", "F32", {m, n}, trace.golden.out.data());
  w.add("golden.acc_raw", "I64", {m, n}, trace.golden.acc_raw.data());
  w.add("golden.flags", "U8", {m, n}, trace.golden.flags.data());
  if (!trace.reference_fp32.empty()) w.add("reference.fp32", "F32", {m, n}, trace.reference_fp32.data());
  w.write(path);
}

Trace read_trace(const std::filesystem::path& path) { return TraceReader(path).read(); }

Trace read_trace_header(const std::filesystem::path& path) { return TraceReader(path).read(false); }

std::vector<std::filesystem::path> list_traces(const std::filesystem::path& file_or_dir) {
  std::error_code ec;
  if (std::filesystem::is_regular_file(file_or_dir, ec)) return {file_or_dir};
  if (!std::filesystem::is_directory(file_or_dir, ec))
    throw UsageError(fmt::format("{}: no such trace file or folder", file_or_dir.string()));
  std::vector<std::filesystem::path> files;
  for (const auto& e : std::filesystem::directory_iterator(file_or_dir))
    if (e.is_regular_file() && e.path().extension() == ".safetensors") files.push_back(e.path());
  std::sort(files.begin(), files.end());
  return files;
}

}  // namespace gsqhw
