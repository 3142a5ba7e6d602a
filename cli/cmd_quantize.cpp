// `gsqhw quantize`: quantizes a .npy tensor with any registered format and writes the
// dequantized values (and optionally the raw codes and per-group exponents) as .npy.
#include <fmt/format.h>

#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "cli/command.h"
#include "base/errors.h"
#include "numerics/format.h"
#include "base/npy.h"
#include "workloads/safetensors.h"

namespace {

struct QuantizeOptions {
  std::string format, input, tensor, output, codes, exponents;
  uint64_t seed = 0;
  bool json = false;
};

// Error statistics over the elements whose input is finite.
nlohmann::json error_stats(const std::vector<float>& x, const std::vector<float>& y) {
  double sum_sq_err = 0, sum_sq = 0, max_abs = 0, sum_abs = 0;
  int64_t finite = 0, nan_out = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    if (std::isnan(y[i])) ++nan_out;
    if (!std::isfinite(x[i])) continue;
    ++finite;
    double err = static_cast<double>(y[i]) - x[i];
    if (std::isnan(err)) continue;
    sum_sq_err += err * err;
    sum_abs += std::fabs(err);
    sum_sq += static_cast<double>(x[i]) * x[i];
    max_abs = std::max(max_abs, std::fabs(err));
  }
  double n = finite ? static_cast<double>(finite) : 1.0;
  nlohmann::json stats = {{"finite_inputs", finite},
                          {"nan_outputs", nan_out},
                          {"max_abs_error", max_abs},
                          {"mean_abs_error", sum_abs / n},
                          {"rmse", std::sqrt(sum_sq_err / n)}};
  if (sum_sq_err > 0 && sum_sq > 0) stats["sqnr_db"] = 10 * std::log10(sum_sq / sum_sq_err);
  else stats["sqnr_db"] = nullptr;  // exact (or all-zero input): infinite SQNR
  return stats;
}

// A safetensors tensor as an NpyArray (same dtypes, same conversions).
gsqhw::NpyArray read_safetensors_tensor(const std::string& path, const std::string& wanted) {
  namespace st = gsqhw::safetensors;
  const st::Header header = st::read_header(path);
  std::vector<std::string> names;
  for (const auto& t : header.tensors) names.push_back(t.name);
  const st::TensorEntry* entry = nullptr;
  if (!wanted.empty()) {
    entry = header.find(wanted);
    if (!entry)
      throw gsqhw::UsageError(fmt::format("{} has no tensor '{}' (it holds: {})", path, wanted,
                                          fmt::join(names, ", ")));
  } else if (header.tensors.size() == 1) {
    entry = &header.tensors.front();
  } else {
    throw gsqhw::UsageError(fmt::format("{} holds {} tensors: name one with --tensor ({})", path,
                                        names.size(), fmt::join(names, ", ")));
  }
  static const std::vector<std::pair<std::string, gsqhw::NpyDtype>> dtypes = {
      {"F32", gsqhw::NpyDtype::f32}, {"F64", gsqhw::NpyDtype::f64}, {"F16", gsqhw::NpyDtype::f16},
      {"BF16", gsqhw::NpyDtype::bf16}, {"I8", gsqhw::NpyDtype::i8},  {"I16", gsqhw::NpyDtype::i16},
      {"I32", gsqhw::NpyDtype::i32}, {"I64", gsqhw::NpyDtype::i64}, {"U8", gsqhw::NpyDtype::u8}};
  gsqhw::NpyArray array;
  bool known = false;
  for (const auto& [name, dtype] : dtypes)
    if (name == entry->dtype) array.dtype = dtype, known = true;
  if (!known)
    throw gsqhw::UsageError(fmt::format("{}: tensor '{}' has dtype {} (quantize reads F32, F64, F16, "
                                        "BF16, I8, I16, I32, I64, U8)",
                                        path, entry->name, entry->dtype));
  array.descr = entry->dtype;
  array.shape = entry->shape;
  array.data.resize(entry->end - entry->begin);
  st::read_bytes(header, *entry, array.data.data());
  return array;
}

bool is_safetensors(const std::string& path) {
  return std::filesystem::path(path).extension() == ".safetensors";
}

int run_quantize(const QuantizeOptions& o) {
  auto format = gsqhw::parse_format(o.format);
  if (!o.tensor.empty() && !is_safetensors(o.input))
    throw gsqhw::UsageError("--tensor names a tensor of a .safetensors input");
  gsqhw::NpyArray input =
      is_safetensors(o.input) ? read_safetensors_tensor(o.input, o.tensor) : gsqhw::read_npy(o.input);
  std::vector<float> x = input.to_float();
  // Groups run along the last axis: the tensor is (product of leading dims) x (last dim).
  int64_t cols = input.shape.empty() ? 1 : input.shape.back();
  int64_t rows = cols == 0 ? 0 : input.size() / cols;
  if (input.size() == 0)
    throw gsqhw::UsageError(fmt::format("{}: the input array is empty", o.input));

  gsqhw::QuantizedTensor q = format->quantize(x.data(), rows, cols, o.seed);
  std::vector<float> y(x.size());
  format->dequantize(q, y.data());
  gsqhw::write_npy(o.output, gsqhw::make_npy_f32(input.shape, y.data()));
  if (!o.codes.empty()) gsqhw::write_npy(o.codes, gsqhw::make_npy_i32(input.shape, q.codes.data()));
  if (!o.exponents.empty()) {
    if (q.group_exponents.empty())
      throw gsqhw::UsageError(fmt::format(
          "--exponents: format '{}' has no per-group exponents (gse and fp8 with block>0 do)",
          format->spec()));
    std::vector<int64_t> shape = input.shape;
    if (shape.empty()) shape.push_back(1);
    shape.back() = q.groups_per_row();
    gsqhw::write_npy(o.exponents, gsqhw::make_npy_i32(shape, q.group_exponents.data()));
  }

  nlohmann::json summary = {{"format", format->spec()},
                            {"input", o.input},
                            {"input_dtype", gsqhw::npy_dtype_name(input.dtype)},
                            {"output", o.output},
                            {"shape", input.shape},
                            {"rows", rows},
                            {"cols", cols},
                            {"group_size", q.group_size},
                            {"groups", q.group_size ? rows * q.groups_per_row() : 0},
                            {"bits_per_element", format->bits_per_element()},
                            {"seed", o.seed},
                            {"error", error_stats(x, y)}};
  if (!o.tensor.empty()) summary["tensor"] = o.tensor;
  if (o.json) {
    fmt::print("{}\n", summary.dump(2));
  } else {
    if (input.dtype != gsqhw::NpyDtype::f32)
      fmt::print("input {} read as float32{}\n", gsqhw::npy_dtype_name(input.dtype),
                 input.dtype == gsqhw::NpyDtype::f64 ? " (rounded to nearest even)"
                 : input.descr.find('V') != std::string::npos
                     ? fmt::format(" (.npy dtype '{}': a 2-byte void, as np.save writes ml_dtypes.bfloat16)", input.descr)
                     : " (exactly)");
    const auto& e = summary["error"];
    fmt::print("{}: {} elements ({} x {}) -> {}; max |err| {:.6g}, rmse {:.6g}, sqnr {} dB\n",
               format->spec(), x.size(), rows, cols, o.output, e["max_abs_error"].get<double>(),
               e["rmse"].get<double>(),
               e["sqnr_db"].is_null() ? std::string("inf")
                                      : fmt::format("{:.2f}", e["sqnr_db"].get<double>()));
  }
  return 0;
}

gsqhw::cli::Runner setup_quantize(CLI::App& app) {
  auto o = std::make_shared<QuantizeOptions>();
  app.add_option("--format,-f", o->format, "Format spec, e.g. gse:b=6 or fp8:e4m3 (see `gsqhw formats`)")
      ->required();
  app.add_option("--input,-i", o->input,
                 "Input .npy (float32/64, float16, bfloat16, int8/16/32/64, uint8; C order) or "
                 ".safetensors (F32, F64, F16, BF16 and integer tensors)")
      ->required();
  app.add_option("--tensor", o->tensor,
                 "The tensor of a .safetensors input (default: its only tensor)");
  app.add_option("--output,-o", o->output, "Output .npy: dequantized float32, same shape")->required();
  app.add_option("--codes", o->codes,
                 "Also write the element codes as int32 .npy, same shape (gse: signed integers; "
                 "fp8/bf16/fp16: bit patterns; fp32: raw bits; int8: -127..127; nf4: 0..15)");
  app.add_option("--exponents", o->exponents,
                 "Also write the per-group exponent codes as int32 .npy, shape [..., groups] "
                 "(gse: biased E-bit code, all ones = NaN group; fp8 block>0: E8M0 code)");
  app.add_option("--seed", o->seed, "Seed of stochastic rounding (combined with the spec's seed)");
  app.add_flag("--json", o->json, "Print a JSON summary with error statistics");
  app.footer(
      "Groups/blocks run along the LAST axis (the reduction axis of the GEMM that consumes the "
      "tensor). Example:\n  gsqhw quantize --format gse:b=6,g=32 --input w.npy --output wq.npy "
      "--codes wq_codes.npy --exponents wq_exp.npy --json");
  return [o]() { return run_quantize(*o); };
}

}  // namespace

GSQHW_COMMAND("quantize", "Quantize a .npy or safetensors tensor with a number format (writes dequantized .npy)",
              setup_quantize);
