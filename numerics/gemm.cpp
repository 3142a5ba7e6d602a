// The golden GEMM (numerics/gemm.h): validation, the scalar reference, and the threaded driver.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <thread>

#include "base/errors.h"
#include "numerics/fp32_round.h"
#include "numerics/kernels/gemm_fast.h"
#include "numerics/gemm_impl.h"
#include "numerics/gse.h"
#include "numerics/minifloat.h"

namespace gsqhw {

// ---------------------------------------------------------------------------------------------
// Fixed-point accumulator steps

int64_t fixed_saturating_add(int64_t acc, int64_t addend, int width, uint8_t& flags) {
  __int128 sum = static_cast<__int128>(acc) + addend;
  if (sum > fixed_max(width)) {
    flags |= kFlagOverflow;
    return fixed_max(width);
  }
  if (sum < fixed_min(width)) {
    flags |= kFlagOverflow;
    return fixed_min(width);
  }
  return static_cast<int64_t>(sum);
}

int64_t fixed_addend(int64_t value, int shift, int width, uint8_t& flags) {
  if (value == 0) return 0;
  __int128 shifted;
  if (shift >= 0) {
    if (shift > 64) {  // |value| >= 1, so |value| * 2^65 exceeds any W <= 64
      flags |= kFlagOverflow;
      return value > 0 ? fixed_max(width) : fixed_min(width);
    }
    shifted = static_cast<__int128>(value) * (static_cast<__int128>(1) << shift);
  } else {
    shifted = shift <= -64 ? (value < 0 ? -1 : 0) : (value >> -shift);  // floor
  }
  if (shifted > fixed_max(width)) {
    flags |= kFlagOverflow;
    return fixed_max(width);
  }
  if (shifted < fixed_min(width)) {
    flags |= kFlagOverflow;
    return fixed_min(width);
  }
  return static_cast<int64_t>(shifted);
}

int64_t fixed_addend_from_double(double value, int frac_bits, int width, uint8_t& flags) {
  double scaled = std::floor(std::ldexp(value, frac_bits));  // exact: value has few bits
  if (scaled > static_cast<double>(fixed_max(width))) {
    flags |= kFlagOverflow;
    return fixed_max(width);
  }
  if (scaled < static_cast<double>(fixed_min(width))) {
    flags |= kFlagOverflow;
    return fixed_min(width);
  }
  // fixed_max(64) as a double is 2^63, so a value of exactly 2^63 passes the test above.
  if (scaled >= 0x1.0p63) {
    flags |= kFlagOverflow;
    return fixed_max(width);
  }
  return static_cast<int64_t>(scaled);
}

// ---------------------------------------------------------------------------------------------
// Minifloat group sums

namespace {

int ceil_log2_int(int v) {
  int bits = 0;
  while ((int64_t{1} << bits) < v) ++bits;
  return bits;
}

// Largest unsigned exponent code sum less 2 (the smallest, both operands subnormal or at
// the smallest normal, is 1 + 1): how far a significand product is shifted at most.
int max_product_shift(const MinifloatParams& a, const MinifloatParams& b) {
  return ((1 << a.exp_bits) - 1) + ((1 << b.exp_bits) - 1) - 2;
}

}  // namespace

int minifloat_product_lsb_exp(const MinifloatParams& a, const MinifloatParams& b) {
  return (1 - a.bias - a.man_bits) + (1 - b.bias - b.man_bits);
}

int minifloat_product_bits(const MinifloatParams& a, const MinifloatParams& b) {
  return (a.man_bits + 1) + (b.man_bits + 1) + max_product_shift(a, b);
}

int minifloat_group_sum_bits(const MinifloatParams& a, const MinifloatParams& b, int group) {
  return 1 + minifloat_product_bits(a, b) + ceil_log2_int(group);
}

namespace {

// Throws UsageError when acc.group asks for group sums the operands cannot have.
void check_group_sums(const GemmOperands& ops, const QuantizedTensor& a, const QuantizedTensor& b,
                      const AccumulatorSpec& acc) {
  if (acc.group == 0) return;
  if (acc.group < 0)
    throw UsageError(fmt::format("accumulator group size {} < 0", acc.group));
  if (ops.kind != GemmOperands::Kind::minifloat)
    throw UsageError(fmt::format(
        "accumulator group sums (group={}) are for minifloat operands; '{}' x '{}' {}", acc.group,
        a.format_spec, b.format_spec,
        ops.kind == GemmOperands::Kind::gse ? "sums its own groups (g=)" : "has no exponent"));
  if (ops.block_a || ops.block_b)
    throw UsageError(fmt::format("accumulator group sums (group={}) with MX block scales "
                                 "('{}' x '{}') are not supported: use block=0",
                                 acc.group, a.format_spec, b.format_spec));
  const int bits = minifloat_group_sum_bits(*ops.mf_a, *ops.mf_b, acc.group);
  if (bits > kMaxMinifloatGroupSumBits)
    throw UsageError(fmt::format(
        "the exact sum of {} products of '{}' x '{}' needs {} bits, more than the {} the group "
        "sum holds (E4M3 and FP6 fit; E5M2, BF16 and FP16 products span too many binades)",
        acc.group, a.format_spec, b.format_spec, bits, kMaxMinifloatGroupSumBits));
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Operand validation

namespace {

void check_tensor(const QuantizedTensor& t, const char* name) {
  if (t.rows < 0 || t.cols < 0)
    throw UsageError(fmt::format("GEMM operand {}: negative shape {}x{}", name, t.rows, t.cols));
  if (static_cast<int64_t>(t.codes.size()) != t.rows * t.cols)
    throw UsageError(fmt::format("GEMM operand {}: {} codes for a {}x{} tensor", name,
                                 t.codes.size(), t.rows, t.cols));
}

}  // namespace

GemmOperands classify_gemm_operands(const QuantizedTensor& a, const QuantizedTensor& b) {
  check_tensor(a, "A");
  check_tensor(b, "B");
  if (a.cols != b.cols)
    throw UsageError(fmt::format("GEMM shapes do not fit: A is {}x{}, B is {}x{} (both must be "
                                 "quantized along K: A is MxK, B is NxK)",
                                 a.rows, a.cols, b.rows, b.cols));
  const auto fa = parse_format(a.format_spec), fb = parse_format(b.format_spec);
  const GemmOperandKind ka = fa->gemm_operand(), kb = fb->gemm_operand();
  GemmOperands ops;
  if (ka == GemmOperandKind::gse || kb == GemmOperandKind::gse) {
    if (ka != kb)
      throw UsageError(fmt::format("GEMM operands must be of one family: A is '{}', B is '{}'",
                                   a.format_spec, b.format_spec));
    ops.kind = GemmOperands::Kind::gse;
    ops.gse_a = GseParams::parse(a.format_spec);
    ops.gse_b = GseParams::parse(b.format_spec);
    if (ops.gse_a.g != ops.gse_b.g)
      throw UsageError(fmt::format("GSE GEMM operands must share the group size: A has g={}, "
                                   "B has g={}",
                                   ops.gse_a.g, ops.gse_b.g));
    for (const auto* t : {&a, &b}) {
      if (t->group_size != ops.gse_a.g ||
          static_cast<int64_t>(t->group_exponents.size()) != t->rows * t->groups_per_row())
        throw UsageError(fmt::format("GEMM operand '{}' has inconsistent group data",
                                     t->format_spec));
    }
    return ops;
  }
  if (ka == GemmOperandKind::integer || kb == GemmOperandKind::integer) {
    if (ka != kb)
      throw UsageError(fmt::format("GEMM operands must be of one family: A is '{}', B is '{}'",
                                   a.format_spec, b.format_spec));
    ops.kind = GemmOperands::Kind::int8;
    ops.int8_a_per_channel = a.format_spec.find("per=tensor") == std::string::npos;
    ops.int8_b_per_channel = b.format_spec.find("per=tensor") == std::string::npos;
    if (a.scales.size() != static_cast<size_t>(ops.int8_a_per_channel ? a.rows : 1) ||
        b.scales.size() != static_cast<size_t>(ops.int8_b_per_channel ? b.rows : 1))
      throw UsageError("int8 GEMM operands have the wrong number of scales");
    return ops;
  }
  const MinifloatOperand ma = fa->minifloat_operand(), mb = fb->minifloat_operand();
  ops.mf_a = ma.element;
  ops.mf_b = mb.element;
  ops.block_a = ma.block;
  ops.block_b = mb.block;
  if (!ops.mf_a || !ops.mf_b)
    throw UsageError(fmt::format(
        "GEMM operand formats '{}' x '{}' are not supported: operands are gse x gse, "
        "int8 x int8, or minifloats (fp8, bf16, fp16) in any mix; nf4 and fp32 are storage "
        "formats, not GEMM operands",
        a.format_spec, b.format_spec));
  for (const auto& [t, block] : {std::pair{&a, ops.block_a}, std::pair{&b, ops.block_b}}) {
    if (block && (t->group_size != block || static_cast<int64_t>(t->group_exponents.size()) !=
                                                t->rows * t->groups_per_row()))
      throw UsageError(fmt::format("GEMM operand '{}' has inconsistent block scales",
                                   t->format_spec));
  }
  ops.kind = GemmOperands::Kind::minifloat;
  return ops;
}

// ---------------------------------------------------------------------------------------------
// The scalar reference: one output (m, n) at a time

namespace {

struct OutputState {
  int64_t fixed = 0;
  float fp = 0.0f;
  uint8_t flags = 0;
};

// fp32 accumulate with the NaN convention: a NaN accumulator is the canonical quiet NaN and
// sets the sticky NaN flag.
void fp32_step(OutputState& s, double addend) {
  s.fp = add_exact_fp32(s.fp, addend);
  if (std::isnan(s.fp)) {
    s.fp = fp32_from_bits(kCanonicalNaNBits);
    s.flags |= kFlagNaN;
  }
}

OutputState gse_output(const GemmOperands& ops, const QuantizedTensor& a,
                       const QuantizedTensor& b, int64_t m, int64_t n,
                       const AccumulatorSpec& acc) {
  OutputState s;
  const int64_t k = a.cols, groups = a.groups_per_row(), g = ops.gse_a.g;
  for (int64_t j = 0; j < groups; ++j) {
    int ea = a.group_exponents[m * groups + j], eb = b.group_exponents[n * groups + j];
    if (ea == ops.gse_a.nan_code() || eb == ops.gse_b.nan_code()) {
      s.flags |= kFlagNaN;
      continue;
    }
    int64_t sum = 0;
    for (int64_t i = j * g; i < std::min(k, (j + 1) * g); ++i)
      sum += static_cast<int64_t>(a.codes[m * k + i]) * b.codes[n * k + i];
    int x = (ea - ops.gse_a.bias()) + (eb - ops.gse_b.bias()) - ops.gse_a.frac_bits() -
            ops.gse_b.frac_bits();
    if (acc.kind == AccumulatorSpec::Kind::fixed) {
      int64_t addend = fixed_addend(sum, x + acc.frac_bits, acc.width, s.flags);
      s.fixed = fixed_saturating_add(s.fixed, addend, acc.width, s.flags);
    } else {
      fp32_step(s, std::ldexp(static_cast<double>(sum), x));
    }
  }
  return s;
}

double minifloat_value(const MinifloatParams& p, int block, const QuantizedTensor& t, int64_t row,
                       int64_t col) {
  double v = decode_minifloat(p, static_cast<uint32_t>(t.codes[row * t.cols + col]));
  if (block) {
    int code = t.group_exponents[row * t.groups_per_row() + col / block];
    v = code == 255 ? std::numeric_limits<double>::quiet_NaN() : std::ldexp(v, code - 127);
  }
  return v;
}

OutputState minifloat_output(const GemmOperands& ops, const QuantizedTensor& a,
                             const QuantizedTensor& b, int64_t m, int64_t n,
                             const AccumulatorSpec& acc) {
  OutputState s;
  for (int64_t k = 0; k < a.cols; ++k) {
    double va = minifloat_value(*ops.mf_a, ops.block_a, a, m, k);
    double vb = minifloat_value(*ops.mf_b, ops.block_b, b, n, k);
    double product = va * vb;  // exact: at most 2x11 significant bits, exponents in range
    if (acc.kind == AccumulatorSpec::Kind::fixed) {
      if (!std::isfinite(va) || !std::isfinite(vb)) {
        s.flags |= kFlagNaN;
        continue;
      }
      int64_t addend = fixed_addend_from_double(product, acc.frac_bits, acc.width, s.flags);
      s.fixed = fixed_saturating_add(s.fixed, addend, acc.width, s.flags);
    } else {
      fp32_step(s, product);
    }
  }
  return s;
}

// Group sums (acc.group = G): each group's exact products summed as integers of 2^q, then
// added once per group exactly as a GSE group sum with x_j = q.
OutputState minifloat_group_output(const GemmOperands& ops, const QuantizedTensor& a,
                                   const QuantizedTensor& b, int64_t m, int64_t n,
                                   const AccumulatorSpec& acc) {
  OutputState s;
  const int q = minifloat_product_lsb_exp(*ops.mf_a, *ops.mf_b);
  const int64_t k = a.cols, g = acc.group;
  for (int64_t begin = 0; begin < k; begin += g) {
    int64_t sum = 0;
    bool nan_group = false;
    for (int64_t i = begin; i < std::min(k, begin + g); ++i) {
      double va = minifloat_value(*ops.mf_a, 0, a, m, i);
      double vb = minifloat_value(*ops.mf_b, 0, b, n, i);
      if (!std::isfinite(va) || !std::isfinite(vb)) {
        nan_group = true;
        continue;
      }
      sum += static_cast<int64_t>(std::ldexp(va * vb, -q));  // exact integer below 2^53
    }
    if (nan_group) {
      s.flags |= kFlagNaN;
      continue;
    }
    if (acc.kind == AccumulatorSpec::Kind::fixed) {
      int64_t addend = fixed_addend(sum, q + acc.frac_bits, acc.width, s.flags);
      s.fixed = fixed_saturating_add(s.fixed, addend, acc.width, s.flags);
    } else {
      fp32_step(s, std::ldexp(static_cast<double>(sum), q));
    }
  }
  return s;
}

OutputState int8_output(const QuantizedTensor& a, const QuantizedTensor& b, int64_t m, int64_t n,
                        const AccumulatorSpec& acc) {
  OutputState s;
  const int64_t k = a.cols;
  for (int64_t i = 0; i < k; ++i) {
    int64_t product = static_cast<int64_t>(a.codes[m * k + i]) * b.codes[n * k + i];
    if (acc.kind == AccumulatorSpec::Kind::fixed) {
      int64_t addend = fixed_addend(product, acc.frac_bits, acc.width, s.flags);
      s.fixed = fixed_saturating_add(s.fixed, addend, acc.width, s.flags);
    } else {
      fp32_step(s, static_cast<double>(product));
    }
  }
  return s;
}

}  // namespace

void finish_gemm_output(const GemmOperands& ops, const QuantizedTensor& a,
                        const QuantizedTensor& b, const AccumulatorSpec& acc, int64_t m,
                        int64_t n, int64_t fixed_acc, float fp_acc, uint8_t flags,
                        GemmResult& result) {
  const int64_t index = m * result.n + n;
  float out;
  if (acc.kind == AccumulatorSpec::Kind::fixed) {
    result.acc_raw[index] = fixed_acc;
    out = scaled_int_to_fp32(fixed_acc, -acc.frac_bits);
  } else {
    result.acc_raw[index] = fp32_bits(fp_acc);
    out = fp_acc;
  }
  if (ops.kind == GemmOperands::Kind::int8) {
    float scale_a = a.scales[ops.int8_a_per_channel ? m : 0];
    float scale_b = b.scales[ops.int8_b_per_channel ? n : 0];
    out = static_cast<float>(static_cast<double>(out) * scale_a);  // exact product, one RNE
    out = static_cast<float>(static_cast<double>(out) * scale_b);
  }
  if (flags & kFlagNaN) out = fp32_from_bits(kCanonicalNaNBits);
  result.out[index] = out;
  result.flags[index] = flags;
}

GemmResult make_gemm_result(int64_t m, int64_t n) {
  GemmResult result;
  result.m = m;
  result.n = n;
  result.out.assign(static_cast<size_t>(m * n), 0.0f);
  result.acc_raw.assign(static_cast<size_t>(m * n), 0);
  result.flags.assign(static_cast<size_t>(m * n), 0);
  return result;
}

void scalar_gemm_output(const GemmOperands& ops, const QuantizedTensor& a,
                        const QuantizedTensor& b, const AccumulatorSpec& acc, int64_t m,
                        int64_t n, GemmResult& result) {
  OutputState s;
  switch (ops.kind) {
    case GemmOperands::Kind::gse: s = gse_output(ops, a, b, m, n, acc); break;
    case GemmOperands::Kind::minifloat:
      s = acc.group > 0 ? minifloat_group_output(ops, a, b, m, n, acc)
                        : minifloat_output(ops, a, b, m, n, acc);
      break;
    case GemmOperands::Kind::int8: s = int8_output(a, b, m, n, acc); break;
  }
  finish_gemm_output(ops, a, b, acc, m, n, s.fixed, s.fp, s.flags, result);
}

static void scalar_rows(const GemmOperands& ops, const QuantizedTensor& a,
                        const QuantizedTensor& b, const AccumulatorSpec& acc, int64_t row_begin,
                        int64_t row_end, GemmResult& result) {
  for (int64_t m = row_begin; m < row_end; ++m)
    for (int64_t n = 0; n < b.rows; ++n) scalar_gemm_output(ops, a, b, acc, m, n, result);
}

GemmResult golden_gemm_scalar(const QuantizedTensor& a, const QuantizedTensor& b,
                              const AccumulatorSpec& acc) {
  GemmOperands ops = classify_gemm_operands(a, b);
  check_group_sums(ops, a, b, acc);
  GemmResult result = make_gemm_result(a.rows, b.rows);
  scalar_rows(ops, a, b, acc, 0, a.rows, result);
  return result;
}

// ---------------------------------------------------------------------------------------------
// The driver: row blocks of C over threads; each output is computed by exactly one thread
// in the defined order, so the result does not depend on the thread count.

GemmResult golden_gemm(const QuantizedTensor& a, const QuantizedTensor& b,
                       const AccumulatorSpec& acc, int threads) {
  if (threads < 0) throw UsageError(fmt::format("golden_gemm: threads={} < 0", threads));
  GemmOperands ops = classify_gemm_operands(a, b);
  check_group_sums(ops, a, b, acc);
  GemmResult result = make_gemm_result(a.rows, b.rows);
  int hardware = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  int workers = threads == 0 ? hardware : threads;
  workers = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(workers, a.rows)));

  auto run_rows = [&](int64_t begin, int64_t end) {
    // The fast kernels add per product; group sums take the scalar path.
    if (acc.group > 0 || !fast_gemm_rows(ops, a, b, acc, begin, end, result))
      scalar_rows(ops, a, b, acc, begin, end, result);
  };
  if (workers == 1) {
    run_rows(0, a.rows);
    return result;
  }
  std::vector<std::thread> pool;
  int64_t chunk = (a.rows + workers - 1) / workers;
  for (int w = 0; w < workers; ++w) {
    int64_t begin = w * chunk, end = std::min(a.rows, begin + chunk);
    if (begin < end) pool.emplace_back(run_rows, begin, end);
  }
  for (auto& t : pool) t.join();
  return result;
}

}  // namespace gsqhw
