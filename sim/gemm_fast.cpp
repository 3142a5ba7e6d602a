// Fast kernels of the golden GEMM (sim/gemm_fast.h). They compute exactly what the scalar
// reference in gemm.cpp computes; the tests compare both on random shapes.
//
// GSE-INT (fixed and fp32 accumulators):
//   * codes are packed as int16; a 6x16 register tile computes the 96 exact group sums S_j
//     with AVX2 vpmaddwd (two products per 32-bit lane, exact: |S_j| <= 256 * 2^14 < 2^23);
//   * after each group a vectorised epilogue applies the group exponent and adds to the
//     accumulator (fixed: an integer-valued double plus a bound on sum |addend|; fp32: TwoSum
//     in double + one RNE to float);
//   * every case the vector code cannot decide exactly is marked and recomputed by the scalar
//     reference: outputs that may saturate (fixed: bound above the W-bit range), the rare fp32 steps whose
//     exact sum lies on a float midpoint or in the subnormal range (redone with
//     add_exact_fp32 in place), and tiles touching a NaN group.
// Minifloats with the fp32 accumulator: decoded values (MX scales folded in), 1x32 tiles of
// independent accumulators with the same vectorised exact-rounding step per element.
// Everything else uses the scalar reference. Dispatch: __builtin_cpu_supports("avx2").
#include "sim/gemm_fast.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <vector>

#include "sim/fp32_round.h"
#include "sim/gemm_impl.h"

namespace gsqhw {
namespace {

constexpr int kTileRows = 6;   // A rows per register tile
constexpr int kTileCols = 16;  // B rows (output columns) per register tile: two ymm of 8

bool cpu_has_avx2() {
  static const bool has = __builtin_cpu_supports("avx2");
  return has;
}

// ---------------------------------------------------------------------------------------------
// Packing

// GSE operand codes as int16 rows padded with zeros to `padded_k` (a whole number of groups).
std::vector<int16_t> pack_rows_int16(const QuantizedTensor& t, int64_t row_begin,
                                     int64_t row_end, int64_t padded_k) {
  std::vector<int16_t> out(static_cast<size_t>((row_end - row_begin) * padded_k), 0);
  for (int64_t r = row_begin; r < row_end; ++r)
    for (int64_t k = 0; k < t.cols; ++k)
      out[(r - row_begin) * padded_k + k] = static_cast<int16_t>(t.codes[r * t.cols + k]);
  return out;
}

// B as panels of 16 output columns: panel p, k pair q -> 16 columns x (k=2q, 2q+1) int16,
// i.e. the operand of two vpmaddwd. Missing columns are zero.
struct PackedB {
  int64_t panels = 0, padded_k = 0;
  std::vector<int16_t> codes;    // panels * (padded_k/2) * 32
  std::vector<double> scales;    // panels * groups * 16: 2^(biased exponent code), exact
  std::vector<uint8_t> has_nan;  // per panel: any NaN group in its columns
};

PackedB pack_b(const QuantizedTensor& b, int64_t padded_k, int64_t groups, int nan_code) {
  PackedB p;
  p.padded_k = padded_k;
  p.panels = (b.rows + kTileCols - 1) / kTileCols;
  p.codes.assign(static_cast<size_t>(p.panels * padded_k * kTileCols), 0);
  p.scales.assign(static_cast<size_t>(p.panels * groups * kTileCols), 1.0);
  p.has_nan.assign(static_cast<size_t>(p.panels), 0);
  for (int64_t n = 0; n < b.rows; ++n) {
    int64_t panel = n / kTileCols, col = n % kTileCols;
    int16_t* base = p.codes.data() + panel * padded_k * kTileCols;
    for (int64_t k = 0; k < b.cols; ++k)
      base[(k / 2) * 2 * kTileCols + col * 2 + (k & 1)] = static_cast<int16_t>(b.codes[n * b.cols + k]);
    for (int64_t j = 0; j < groups; ++j) {
      int e = b.group_exponents[n * groups + j];
      p.scales[(panel * groups + j) * kTileCols + col] = std::ldexp(1.0, e);
      if (e == nan_code) p.has_nan[panel] = 1;
    }
  }
  return p;
}

// ---------------------------------------------------------------------------------------------
// The 6x16 group-sum micro-kernel: sums[r][v] = 8 exact int32 group sums of row r, columns
// 8v..8v+7, over `pairs` k pairs.

__attribute__((target("avx2"))) inline void group_sums_6x16(const int16_t* const* a_rows,
                                                            const int16_t* b, int64_t pairs,
                                                            __m256i sums[kTileRows][2]) {
  __m256i c00 = _mm256_setzero_si256(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00,
          c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
  for (int64_t q = 0; q < pairs; ++q) {
    __m256i b0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + q * 32));
    __m256i b1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + q * 32 + 16));
    int32_t pair;
#define GSQHW_ROW(r, lo, hi)                                   \
  std::memcpy(&pair, a_rows[r] + 2 * q, 4);                    \
  {                                                            \
    __m256i a = _mm256_set1_epi32(pair);                       \
    lo = _mm256_add_epi32(lo, _mm256_madd_epi16(a, b0));       \
    hi = _mm256_add_epi32(hi, _mm256_madd_epi16(a, b1));       \
  }
    GSQHW_ROW(0, c00, c01)
    GSQHW_ROW(1, c10, c11)
    GSQHW_ROW(2, c20, c21)
    GSQHW_ROW(3, c30, c31)
    GSQHW_ROW(4, c40, c41)
    GSQHW_ROW(5, c50, c51)
#undef GSQHW_ROW
  }
  sums[0][0] = c00; sums[0][1] = c01; sums[1][0] = c10; sums[1][1] = c11;
  sums[2][0] = c20; sums[2][1] = c21; sums[3][0] = c30; sums[3][1] = c31;
  sums[4][0] = c40; sums[4][1] = c41; sums[5][0] = c50; sums[5][1] = c51;
}

// ---------------------------------------------------------------------------------------------
// Epilogues: one group's sums into the tile accumulators.

// Both epilogues scale a group sum by 2^(x_j [+ F]) as S * 2^(e_a + const) * 2^(e_b): two
// exact double multiplications (|S| < 2^23, exponents within +-600).
__attribute__((target("avx2"))) inline __m256d scaled_group_sum(__m128i sums_half,
                                                                __m256d a_scale,
                                                                const double* b_scales) {
  return _mm256_mul_pd(_mm256_mul_pd(_mm256_cvtepi32_pd(sums_half), a_scale),
                       _mm256_loadu_pd(b_scales));
}

// Fixed: acc += floor(S * 2^(x_j + F)) (= S shifted left, or arithmetically right). The
// accumulator is kept as an integer-valued double, and `bound` collects sum_j |addend_j|:
// while bound <= min(fixed_max(W), 2^52) no partial sum and no addend can leave the W-bit
// range (no saturation) and every double operation is exact. Outputs whose bound exceeds
// that are recomputed by the scalar reference, which saturates exactly.
struct FixedTile {
  alignas(32) double acc[kTileRows][kTileCols];
  alignas(32) double bound[kTileRows][kTileCols];
};

__attribute__((target("avx2"))) inline void fixed_epilogue(__m256i sums[kTileRows][2],
                                                           const double* a_scales,
                                                           const double* b_scales,
                                                           FixedTile& tile) {
  const __m256d sign = _mm256_set1_pd(-0.0);
  for (int r = 0; r < kTileRows; ++r) {
    __m256d a_scale = _mm256_set1_pd(a_scales[r]);
    for (int v = 0; v < 2; ++v) {
      for (int h = 0; h < 2; ++h) {
        __m128i s_half = h ? _mm256_extracti128_si256(sums[r][v], 1) : _mm256_castsi256_si128(sums[r][v]);
        const int c = 8 * v + 4 * h;
        __m256d addend = _mm256_round_pd(scaled_group_sum(s_half, a_scale, b_scales + c),
                                         _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
        _mm256_store_pd(&tile.acc[r][c], _mm256_add_pd(_mm256_load_pd(&tile.acc[r][c]), addend));
        _mm256_store_pd(&tile.bound[r][c], _mm256_add_pd(_mm256_load_pd(&tile.bound[r][c]),
                                                         _mm256_andnot_pd(sign, addend)));
      }
    }
  }
}

// fp32: acc = RNE_fp32(acc + S * 2^x) with acc held as the double of a float. TwoSum gives
// the exact error; cvtpd_ps rounds hi correctly unless hi is exactly a float midpoint or
// below the normal float range while the error is nonzero; those lanes are redone in scalar.
struct Fp32Tile {
  alignas(32) double acc[kTileRows][kTileCols];
};

__attribute__((target("avx2"))) inline __m256d exact_fp32_step(__m256d acc, __m256d addend) {
  __m256d s = _mm256_add_pd(acc, addend);
  __m256d bb = _mm256_sub_pd(s, acc);
  __m256d err = _mm256_add_pd(_mm256_sub_pd(acc, _mm256_sub_pd(s, bb)), _mm256_sub_pd(addend, bb));
  __m256d rounded = _mm256_cvtps_pd(_mm256_cvtpd_ps(s));
  // Hard lanes: err != 0 (or NaN) and (s is a float midpoint: its 29 bits below float
  // precision are 100..0, or |s| < 2^-126, or s is not finite).
  __m256d err_nonzero = _mm256_cmp_pd(err, _mm256_setzero_pd(), _CMP_NEQ_UQ);
  __m256i bits = _mm256_castpd_si256(s);
  __m256i low = _mm256_and_si256(bits, _mm256_set1_epi64x(0x1fffffff));
  __m256d midpoint = _mm256_castsi256_pd(_mm256_cmpeq_epi64(low, _mm256_set1_epi64x(0x10000000)));
  __m256d abs_s = _mm256_andnot_pd(_mm256_set1_pd(-0.0), s);
  __m256d tiny = _mm256_cmp_pd(abs_s, _mm256_set1_pd(0x1.0p-126), _CMP_LT_OQ);
  __m256d huge = _mm256_cmp_pd(abs_s, _mm256_set1_pd(0x1.0p127), _CMP_NLT_UQ);
  __m256d hard = _mm256_and_pd(err_nonzero, _mm256_or_pd(midpoint, _mm256_or_pd(tiny, huge)));
  int mask = _mm256_movemask_pd(hard);
  if (__builtin_expect(mask != 0, 0)) {
    alignas(32) double a[4], t[4], r[4];
    _mm256_store_pd(a, acc);
    _mm256_store_pd(t, addend);
    _mm256_store_pd(r, rounded);
    for (int i = 0; i < 4; ++i)
      if (mask & (1 << i)) r[i] = add_exact_fp32(static_cast<float>(a[i]), t[i]);
    rounded = _mm256_load_pd(r);
  }
  return rounded;
}

__attribute__((target("avx2"))) inline void fp32_epilogue(__m256i sums[kTileRows][2],
                                                          const double* a_scales,
                                                          const double* b_scales, Fp32Tile& tile) {
  for (int r = 0; r < kTileRows; ++r) {
    __m256d a_scale = _mm256_set1_pd(a_scales[r]);
    for (int v = 0; v < 2; ++v) {
      for (int h = 0; h < 2; ++h) {
        __m128i s_half = h ? _mm256_extracti128_si256(sums[r][v], 1) : _mm256_castsi256_si128(sums[r][v]);
        const int c = 8 * v + 4 * h;
        __m256d addend = scaled_group_sum(s_half, a_scale, b_scales + c);
        _mm256_store_pd(&tile.acc[r][c], exact_fp32_step(_mm256_load_pd(&tile.acc[r][c]), addend));
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// GSE driver

__attribute__((target("avx2"))) void gse_rows_avx2(const GemmOperands& ops,
                                                   const QuantizedTensor& a,
                                                   const QuantizedTensor& b,
                                                   const AccumulatorSpec& acc, int64_t row_begin,
                                                   int64_t row_end, GemmResult& result) {
  const int g = ops.gse_a.g;
  const int64_t groups = a.groups_per_row(), padded_k = groups * g, pairs_per_group = g / 2;
  const bool fixed = acc.kind == AccumulatorSpec::Kind::fixed;
  // x_j = e_a + e_b + exp_const (biased codes); fixed adds F.
  const int exp_const = -ops.gse_a.bias() - ops.gse_b.bias() - ops.gse_a.frac_bits() -
                        ops.gse_b.frac_bits() + (fixed ? acc.frac_bits : 0);
  // The largest |acc| the double accumulator may reach: within the W-bit range and exact
  // (2^52), shrunk by a relative 2^-30 for the rounding of `bound` itself.
  const double bound_limit =
      std::min(static_cast<double>(fixed_max(acc.width)), 0x1.0p52) * (1 - 0x1.0p-30);

  PackedB pb = pack_b(b, padded_k, groups, ops.gse_b.nan_code());
  std::vector<int16_t> pa = pack_rows_int16(a, row_begin, row_end, padded_k);
  std::vector<int16_t> zero_row(static_cast<size_t>(padded_k), 0);
  // 2^(e_a + const) per A row and group, computed once (rows of a partial tile: 1.0).
  const int64_t row_count = row_end - row_begin;
  std::vector<double> a_scale_table(static_cast<size_t>((row_count + kTileRows) * groups), 1.0);
  for (int64_t r = 0; r < row_count; ++r)
    for (int64_t j = 0; j < groups; ++j)
      a_scale_table[r * groups + j] =
          std::ldexp(1.0, a.group_exponents[(row_begin + r) * groups + j] + exp_const);

  auto tile_fixed = std::make_unique<FixedTile>();
  auto tile_fp = std::make_unique<Fp32Tile>();
  __m256i sums[kTileRows][2];
  for (int64_t m0 = row_begin; m0 < row_end; m0 += kTileRows) {
    const int rows_here = static_cast<int>(std::min<int64_t>(kTileRows, row_end - m0));
    const int16_t* a_rows[kTileRows];
    bool rows_have_nan = false;
    for (int r = 0; r < kTileRows; ++r) {
      a_rows[r] = r < rows_here ? pa.data() + (m0 + r - row_begin) * padded_k : zero_row.data();
      for (int64_t j = 0; r < rows_here && j < groups; ++j)
        rows_have_nan |= a.group_exponents[(m0 + r) * groups + j] == ops.gse_a.nan_code();
    }
    for (int64_t panel = 0; panel < pb.panels; ++panel) {
      const int64_t n0 = panel * kTileCols;
      const int cols_here = static_cast<int>(std::min<int64_t>(kTileCols, b.rows - n0));
      if (rows_have_nan || pb.has_nan[panel]) {  // rare: the scalar path handles NaN groups
        for (int r = 0; r < rows_here; ++r)
          for (int c = 0; c < cols_here; ++c)
            scalar_gemm_output(ops, a, b, acc, m0 + r, n0 + c, result);
        continue;
      }
      std::memset(tile_fixed.get(), 0, sizeof(FixedTile));
      std::memset(tile_fp.get(), 0, sizeof(Fp32Tile));
      const int16_t* b_panel = pb.codes.data() + panel * padded_k * kTileCols;
      for (int64_t j = 0; j < groups; ++j) {
        const int16_t* group_rows[kTileRows];
        double a_scales[kTileRows];
        for (int r = 0; r < kTileRows; ++r) {
          group_rows[r] = a_rows[r] + j * g;
          a_scales[r] = a_scale_table[(m0 - row_begin + r) * groups + j];
        }
        group_sums_6x16(group_rows, b_panel + j * g * kTileCols, pairs_per_group, sums);
        const double* b_scales = pb.scales.data() + (panel * groups + j) * kTileCols;
        if (fixed) fixed_epilogue(sums, a_scales, b_scales, *tile_fixed);
        else fp32_epilogue(sums, a_scales, b_scales, *tile_fp);
      }
      for (int r = 0; r < rows_here; ++r) {
        for (int c = 0; c < cols_here; ++c) {
          if (fixed && !(tile_fixed->bound[r][c] <= bound_limit)) {
            scalar_gemm_output(ops, a, b, acc, m0 + r, n0 + c, result);
          } else {
            finish_gemm_output(ops, a, b, acc, m0 + r, n0 + c,
                               static_cast<int64_t>(tile_fixed->acc[r][c]),
                               static_cast<float>(tile_fp->acc[r][c]), 0, result);
          }
        }
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Minifloat x minifloat with the fp32 accumulator

double decoded_value(const MinifloatParams& p, int block, const QuantizedTensor& t, int64_t row,
                     int64_t col) {
  double v = decode_minifloat(p, static_cast<uint32_t>(t.codes[row * t.cols + col]));
  if (block) {
    int code = t.group_exponents[row * t.groups_per_row() + col / block];
    v = code == 255 ? std::nan("") : std::ldexp(v, code - 127);
  }
  return v;
}

constexpr int kMfCols = 32;  // independent accumulators per tile (hides the add latency)

__attribute__((target("avx2"))) void minifloat_fp32_rows_avx2(const GemmOperands& ops,
                                                              const QuantizedTensor& a,
                                                              const QuantizedTensor& b,
                                                              const AccumulatorSpec& acc,
                                                              int64_t row_begin, int64_t row_end,
                                                              GemmResult& result) {
  const int64_t k_len = a.cols, panels = (b.rows + kMfCols - 1) / kMfCols;
  // B decoded, panel-major: [panel][k][32] doubles; padding columns are 0.
  std::vector<double> bp(static_cast<size_t>(panels * k_len * kMfCols), 0.0);
  std::vector<uint8_t> panel_bad(static_cast<size_t>(panels), 0);
  for (int64_t n = 0; n < b.rows; ++n)
    for (int64_t k = 0; k < k_len; ++k) {
      double v = decoded_value(*ops.mf_b, ops.block_b, b, n, k);
      if (!std::isfinite(v)) panel_bad[n / kMfCols] = 1;
      bp[((n / kMfCols) * k_len + k) * kMfCols + n % kMfCols] = v;
    }
  std::vector<double> row(static_cast<size_t>(k_len));
  for (int64_t m = row_begin; m < row_end; ++m) {
    bool row_bad = false;
    for (int64_t k = 0; k < k_len; ++k) {
      row[k] = decoded_value(*ops.mf_a, ops.block_a, a, m, k);
      row_bad |= !std::isfinite(row[k]);
    }
    for (int64_t panel = 0; panel < panels; ++panel) {
      const int64_t n0 = panel * kMfCols;
      const int cols_here = static_cast<int>(std::min<int64_t>(kMfCols, b.rows - n0));
      if (row_bad || panel_bad[panel]) {  // Inf/NaN operands: IEEE specials in scalar
        for (int c = 0; c < cols_here; ++c) scalar_gemm_output(ops, a, b, acc, m, n0 + c, result);
        continue;
      }
      __m256d accs[kMfCols / 4];
      for (auto& v : accs) v = _mm256_setzero_pd();
      const double* bk = bp.data() + panel * k_len * kMfCols;
      for (int64_t k = 0; k < k_len; ++k) {
        __m256d av = _mm256_set1_pd(row[k]);
        for (int v = 0; v < kMfCols / 4; ++v) {
          __m256d product = _mm256_mul_pd(av, _mm256_load_pd(bk + k * kMfCols + 4 * v));  // exact
          accs[v] = exact_fp32_step(accs[v], product);
        }
      }
      alignas(32) double out[kMfCols];
      for (int v = 0; v < kMfCols / 4; ++v) _mm256_store_pd(out + 4 * v, accs[v]);
      for (int c = 0; c < cols_here; ++c)
        finish_gemm_output(ops, a, b, acc, m, n0 + c, 0, static_cast<float>(out[c]), 0, result);
    }
  }
}

}  // namespace

bool fast_gemm_rows(const GemmOperands& ops, const QuantizedTensor& a, const QuantizedTensor& b,
                    const AccumulatorSpec& acc, int64_t row_begin, int64_t row_end,
                    GemmResult& result) {
  if (!cpu_has_avx2() || row_begin >= row_end || b.rows == 0) return false;
  if (ops.kind == GemmOperands::Kind::gse) {
    gse_rows_avx2(ops, a, b, acc, row_begin, row_end, result);
    return true;
  }
  if (ops.kind == GemmOperands::Kind::minifloat && acc.kind == AccumulatorSpec::Kind::fp32) {
    minifloat_fp32_rows_avx2(ops, a, b, acc, row_begin, row_end, result);
    return true;
  }
  return false;
}

}  // namespace gsqhw
