// Fast kernels of the golden GEMM (numerics/kernels/gemm_fast.h) for INT8 x INT8 (fp32 and fixed
// accumulators) and for minifloat x minifloat with a fixed accumulator. Like gemm_fast.cpp,
// they compute exactly what the scalar reference in gemm.cpp computes (acc_raw, out, flags)
// and decline (return false, nothing written) when no exact form applies; outputs a form
// cannot prove exact are handed to the scalar reference one by one.
//
// INT8, fp32 accumulator: the product of two int8 codes is an exact float, so
// fma(float(a), float(b), acc) is the one RNE rounding of acc + a*b: the minifloat float form
// of gemm_fast.cpp (minifloat_fp32_float_rows) on the codes converted to floats.
//
// INT8, fixed(W, F) accumulator (addend = fixed_addend(a*b, F, W), saturating sum):
//   * F >= 0: addend = a*b*2^F. If sum_k |a_k b_k| * 2^F <= fixed_max(W), no addend and no
//     partial sum saturates, so acc = 2^F * (exact integer dot product), which vpmaddwd
//     computes in int32 lanes (exact while the dot product fits int32, also part of the bound;
//     int32 adds wrap, so only the final value has to fit).
//   * F < 0: addend = floor(a*b / 2^s), s = -F, per element: vpmullw (|a*b| <= 2^14 fits
//     int16), vpsraw (counts >= 16 fill with the sign: still the floor), then vpmaddwd with
//     ones to add pairs into int32. |floor(p / 2^s)| <= |p|, and <= |p| / 2^s + 1, so the
//     same bound on sum |a_k b_k| proves no saturation.
//   The bound per output is min(sqrt(Sa * Sb), max|a| * L1(b), L1(a) * max|b|) (Cauchy-Schwarz
//   with the rows' sums of squares Sa, Sb; Hoelder), checked in exact 128-bit integers, first
//   per 4x16 tile from the tile's largest Sa and Sb, then per output for tiles that fail.
//   Outputs that fail it (they may saturate) go to the saturating form below.
//
// Minifloat x minifloat, fixed(W, F) (addend = floor(a*b*2^F), saturating; Inf/NaN operands
// set the NaN flag): decoded doubles (MX scales folded in), A pre-scaled by 2^F (exact: the
// exponent range of the codes present is checked). Two forms compute the integer sums:
//   * float (W <= 32, every value and product an exact float): 4x16 tiles, vmulps, then
//     vcvtps2dq under MXCSR round-toward--inf (floor and conversion in one), int32 lanes;
//   * double otherwise: 4x8 tiles, acc += floor(a2F * b) (vroundpd), or acc = fma(a2F, b, acc)
//     when every a2F * b is an integer (the operands' lowest set bits say so).
// Both are exact while every partial sum is an integer within the lanes: per output,
// sum |addend| <= 2^F * sqrt(Sa * Sb) + K must stay within min(fixed_max(W), 2^53 - 1).
// Outputs that fail it go to the saturating form; outputs whose row/column holds an Inf or
// NaN go to the scalar reference.
//
// Saturating form (both fixed paths, W <= 53): the scalar steps per element in k order in
// double lanes, floor, clamps and the sticky flag included. W > 53: the scalar reference.
#include <immintrin.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <memory>
#include <new>
#include <vector>

#include "numerics/kernels/gemm_fast.h"
#include "numerics/gemm_impl.h"
#include "numerics/kernels/thread_scratch.h"
#include "numerics/minifloat.h"

namespace gsqhw {
namespace {

#define GSQHW_INT8_AVX2 __attribute__((target("avx2,fma")))
#define GSQHW_INT8_INLINE_AVX2 __attribute__((target("avx2,fma"), always_inline)) static inline

constexpr int kTileRows = 4;   // A rows per register tile (the kernels name 4 rows)
constexpr int kIntCols = 16;   // output columns per int8 tile: two ymm of 8 int32 lanes
constexpr int kDoubleCols = 8; // output columns per double tile: two ymm of 4 doubles
static_assert(kTileRows == kFloatFormTileRows);

// acc += x, with the sum written into acc's own register: GCC (12) otherwise adds into x's
// register and copies it back with a vmovdqa per accumulator and iteration (as in gemm_fast.cpp).
GSQHW_INT8_INLINE_AVX2 void add_epi32_in_place(__m256i& acc, __m256i x) {
  asm("vpaddd %1, %0, %0" : "+x"(acc) : "x"(x));
}

// A 4x16 int32 tile's accumulators (row r, columns 8v..8v+7 in c<r><v>) from and back to its
// 64 state values. The kernels keep them as named locals: GCC keeps an array of vectors in
// memory (see gemm_fast.cpp); these inline into the locals' registers.
GSQHW_INT8_INLINE_AVX2 void load_tile_4x16(const int32_t* acc, __m256i& c00, __m256i& c01,
                                           __m256i& c10, __m256i& c11, __m256i& c20,
                                           __m256i& c21, __m256i& c30, __m256i& c31) {
  const __m256i* in = reinterpret_cast<const __m256i*>(acc);
  c00 = _mm256_load_si256(in + 0), c01 = _mm256_load_si256(in + 1);
  c10 = _mm256_load_si256(in + 2), c11 = _mm256_load_si256(in + 3);
  c20 = _mm256_load_si256(in + 4), c21 = _mm256_load_si256(in + 5);
  c30 = _mm256_load_si256(in + 6), c31 = _mm256_load_si256(in + 7);
}
GSQHW_INT8_INLINE_AVX2 void store_tile_4x16(int32_t* acc, __m256i c00, __m256i c01, __m256i c10,
                                            __m256i c11, __m256i c20, __m256i c21, __m256i c30,
                                            __m256i c31) {
  __m256i* out = reinterpret_cast<__m256i*>(acc);
  _mm256_store_si256(out + 0, c00), _mm256_store_si256(out + 1, c01);
  _mm256_store_si256(out + 2, c10), _mm256_store_si256(out + 3, c11);
  _mm256_store_si256(out + 4, c20), _mm256_store_si256(out + 5, c21);
  _mm256_store_si256(out + 6, c30), _mm256_store_si256(out + 7, c31);
}

// ---------------------------------------------------------------------------------------------
// The scratch slots of this file (numerics/kernels/thread_scratch.h: per-thread memory kept across calls).

enum class Buffer { a, b, state, a_float, b_float, a_double, b_double, count };

template <typename T>
T* scratch(Buffer which, size_t count, bool zeroed) {
  return ThreadScratchArray<T, Buffer>(which, count, zeroed).data();
}

// ---------------------------------------------------------------------------------------------
// Saturating form, for outputs whose bound fails (they may saturate), W <= 53: per element in
// k order, the scalar reference's steps in double:
//   x = floor(a2F * b) (exact product), addend = clamp_W(x), acc = clamp_W(acc + addend),
// the sticky overflow flag when either clamp changes its value. |acc|, |addend| <= 2^52, so
// every sum is an exact double. Operands: A rows scaled by 2^F (+ a zero row), B in panels of
// 8 columns, as the minifloat double form; no Inf/NaN (those outputs stay scalar).

struct SaturatingJob {
  const double* a;  // (row_count + 1) x k_len
  const double* b;  // panels8 x k_len x 8
  int64_t row_count, k_len;
  int width;          // W <= 53
  bool floor;         // false: every a2F * b is an integer (floor is the identity)
  bool clamp_addend;  // false: every floor(a2F * b) is proven within W bits
};

// 4 rows x 4 columns (b_cols: 4 adjacent columns of a panel, k stride 8) over k_len elements,
// continuing from and updating `acc` and `saturated` (lanes all ones once a clamp acted).
// (The two flags drop the steps that provably change nothing: 11 -> 6 instructions per 4 MACs.)
template <bool kFloor, bool kClampAddend>
GSQHW_INT8_AVX2 void saturating_tile_4x4(const double* const a_rows[kTileRows], const double* b_cols,
                                         int64_t k_len, double lo, double hi,
                                         double* acc /* 4 x 4 */, double* saturated /* 4 x 4 */) {
  const __m256d low = _mm256_set1_pd(lo), high = _mm256_set1_pd(hi);
  __m256d c0 = _mm256_loadu_pd(acc), c1 = _mm256_loadu_pd(acc + 4);
  __m256d c2 = _mm256_loadu_pd(acc + 8), c3 = _mm256_loadu_pd(acc + 12);
  __m256d f0 = _mm256_loadu_pd(saturated), f1 = _mm256_loadu_pd(saturated + 4);
  __m256d f2 = _mm256_loadu_pd(saturated + 8), f3 = _mm256_loadu_pd(saturated + 12);
  for (int64_t k = 0; k < k_len; ++k) {
    const __m256d bv = _mm256_loadu_pd(b_cols + k * kDoubleCols);
#define GSQHW_ROW(r, c, f)                                                                     \
  {                                                                                            \
    __m256d x = _mm256_mul_pd(_mm256_broadcast_sd(a_rows[r] + k), bv);                         \
    if constexpr (kFloor) x = _mm256_round_pd(x, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);   \
    __m256d addend = x;                                                                        \
    if constexpr (kClampAddend) {                                                              \
      addend = _mm256_min_pd(_mm256_max_pd(x, low), high);                                     \
      f = _mm256_or_pd(f, _mm256_cmp_pd(x, addend, _CMP_NEQ_OQ));                              \
    }                                                                                          \
    const __m256d sum = _mm256_add_pd(c, addend);                                              \
    c = _mm256_min_pd(_mm256_max_pd(sum, low), high);                                          \
    f = _mm256_or_pd(f, _mm256_cmp_pd(sum, c, _CMP_NEQ_OQ));                                   \
  }
    GSQHW_ROW(0, c0, f0)
    GSQHW_ROW(1, c1, f1)
    GSQHW_ROW(2, c2, f2)
    GSQHW_ROW(3, c3, f3)
#undef GSQHW_ROW
  }
  _mm256_storeu_pd(acc, c0), _mm256_storeu_pd(acc + 4, c1);
  _mm256_storeu_pd(acc + 8, c2), _mm256_storeu_pd(acc + 12, c3);
  _mm256_storeu_pd(saturated, f0), _mm256_storeu_pd(saturated + 4, f1);
  _mm256_storeu_pd(saturated + 8, f2), _mm256_storeu_pd(saturated + 12, f3);
}

// Computes the outputs (r, n) in `pending` (rows of the job) and calls
// write(r, n, acc, flags) for each. Every 4x8 tile holding one of them is computed whole,
// K in blocks of 512 (a tile's A slice: 16 KiB) with the tile states carried across blocks in
// order (so each output still adds k = 0, 1, 2, ... in order) and B read once per row tile
// and block instead of streaming all of it (megabytes as doubles) once per row tile.
template <class Write>
void run_saturating(const SaturatingJob& job, std::vector<std::pair<int64_t, int64_t>>& pending,
                    Write&& write) {
  if (pending.empty()) return;
  auto tile_of = [](const std::pair<int64_t, int64_t>& o) {
    return std::pair{o.first / kTileRows, o.second / kDoubleCols};
  };
  std::sort(pending.begin(), pending.end(), [&](const auto& x, const auto& y) {
    return tile_of(x) < tile_of(y);
  });
  std::vector<std::pair<int64_t, int64_t>> tiles;  // (row tile, panel), distinct, in order
  for (const auto& o : pending)
    if (tiles.empty() || tiles.back() != tile_of(o)) tiles.push_back(tile_of(o));
  constexpr int kTileLanes = kTileRows * kDoubleCols;  // [half][row][4 columns]
  std::vector<double> acc(tiles.size() * kTileLanes, 0.0), saturated(tiles.size() * kTileLanes, 0.0);
  const double lo = static_cast<double>(fixed_min(job.width)), hi = static_cast<double>(fixed_max(job.width));
  constexpr int64_t kBlockK = 512;
  for (int64_t k0 = 0; k0 < job.k_len; k0 += kBlockK) {
    const int64_t count = std::min(kBlockK, job.k_len - k0);
    for (size_t t = 0; t < tiles.size(); ++t) {
      const auto [tile, panel] = tiles[t];
      const double* a_rows[kTileRows];
      for (int r = 0; r < kTileRows; ++r)
        a_rows[r] = job.a + std::min(tile * kTileRows + r, job.row_count) * job.k_len + k0;
      for (int half = 0; half < 2; ++half) {
        const double* b_cols = job.b + (panel * job.k_len + k0) * kDoubleCols + 4 * half;
        double* tile_acc = acc.data() + t * kTileLanes + half * 16;
        double* tile_saturated = saturated.data() + t * kTileLanes + half * 16;
        if (job.floor && job.clamp_addend)
          saturating_tile_4x4<true, true>(a_rows, b_cols, count, lo, hi, tile_acc, tile_saturated);
        else if (job.floor)
          saturating_tile_4x4<true, false>(a_rows, b_cols, count, lo, hi, tile_acc, tile_saturated);
        else if (job.clamp_addend)
          saturating_tile_4x4<false, true>(a_rows, b_cols, count, lo, hi, tile_acc, tile_saturated);
        else
          saturating_tile_4x4<false, false>(a_rows, b_cols, count, lo, hi, tile_acc, tile_saturated);
      }
    }
  }
  size_t t = 0;
  for (const auto& [r, n] : pending) {
    while (tiles[t] != tile_of({r, n})) ++t;
    const int column = static_cast<int>(n % kDoubleCols);
    const size_t lane = t * kTileLanes + (column / 4) * 16 + (r % kTileRows) * 4 + column % 4;
    write(r, n, static_cast<int64_t>(acc[lane]), saturated[lane] != 0 ? uint8_t{kFlagOverflow} : uint8_t{0});
  }
}

// Whether the saturating form covers this accumulator (W <= 53 keeps every value an exact
// double; 2^F a normal double).
bool saturating_form_applies(const AccumulatorSpec& acc) {
  return acc.width <= 53 && acc.frac_bits >= -1000 && acc.frac_bits <= 1000;
}

// Whether |floor(a2F * b)| <= 2^log2_bound (for every product) proves the addend never
// saturates: -2^L >= -2^(W-1) and 2^L <= 2^(W-1) - 1 for L <= W - 2.
bool addends_fit(int64_t log2_bound, int width) { return log2_bound <= width - 2; }

// ---------------------------------------------------------------------------------------------
// INT8 operands: one scan per row checks the codes and gathers what the fixed bound needs.

struct RowNorms {
  int64_t squares = 0;  // sum of code^2 (Sa)
  int64_t abs_sum = 0;  // sum of |code| (L1)
  int64_t abs_max = 0;  // max |code|
};

// Norms of one row of codes; false when a code is outside -128..127 (hand-built tensors may
// hold such codes; the kernels' exactness arguments need int8). Unsigned arithmetic: codes
// out of range may wrap the partial sums, and are then declined anyway. Chunks of 2^15 codes
// keep int8 partial sums (<= 2^15 * 2^14) within 32 bits, which lets GCC vectorise.
GSQHW_INT8_AVX2 bool scan_int8_row(const int32_t* __restrict codes, int64_t count, RowNorms& norms) {
  constexpr int64_t kChunk = int64_t{1} << 15;
  int32_t lo = 0, hi = 0;
  uint32_t abs_max = 0;
  norms = RowNorms{};
  for (int64_t start = 0; start < count; start += kChunk) {
    const int64_t end = std::min(count, start + kChunk);
    uint32_t squares = 0, abs_sum = 0;
    for (int64_t k = start; k < end; ++k) {
      const int32_t c = codes[k];
      const uint32_t magnitude = c < 0 ? 0u - static_cast<uint32_t>(c) : static_cast<uint32_t>(c);
      lo = std::min(lo, c);
      hi = std::max(hi, c);
      squares += magnitude * magnitude;
      abs_sum += magnitude;
      abs_max = std::max(abs_max, magnitude);
    }
    norms.squares += squares;
    norms.abs_sum += abs_sum;
  }
  norms.abs_max = abs_max;
  return lo >= -128 && hi <= 127;
}

// Norms of rows [row_begin, row_end) of t; false when a code is not int8.
bool scan_int8_rows(const QuantizedTensor& t, int64_t row_begin, int64_t row_end,
                    std::vector<RowNorms>& norms) {
  norms.resize(static_cast<size_t>(row_end - row_begin));
  bool all_int8 = true;
  for (int64_t r = row_begin; r < row_end; ++r)
    all_int8 &= scan_int8_row(t.codes.data() + r * t.cols, t.cols, norms[r - row_begin]);
  return all_int8;
}

// ---------------------------------------------------------------------------------------------
// INT8, fp32 accumulator: the minifloat float form on the codes as floats.

GSQHW_INT8_AVX2 void codes_to_floats(const int32_t* __restrict codes, int64_t count, float* __restrict out) {
  for (int64_t i = 0; i < count; ++i) out[i] = static_cast<float>(codes[i]);
}

void int8_fp32_rows(const GemmOperands& ops, const QuantizedTensor& a, const QuantizedTensor& b,
                    const AccumulatorSpec& acc, int64_t row_begin, int64_t row_end,
                    GemmResult& result) {
  const int64_t k_len = a.cols, row_count = row_end - row_begin, panels16 = (b.rows + 15) / 16;
  const int64_t row_tiles = (row_count + kTileRows - 1) / kTileRows;
  float* af = scratch<float>(Buffer::a, static_cast<size_t>((row_count + 1) * k_len), false);
  float* bf = scratch<float>(Buffer::b, static_cast<size_t>(panels16 * k_len * 16),
                             b.rows % 16 != 0);  // missing columns of the last panel: zeros
  float* state = scratch<float>(Buffer::state,
                                static_cast<size_t>(row_tiles * panels16 * kTileRows * 16), true);
  codes_to_floats(a.codes.data() + row_begin * k_len, row_count * k_len, af);
  std::fill_n(af + row_count * k_len, k_len, 0.0f);  // the zero row
  for (int64_t n = 0; n < b.rows; ++n) {
    const int32_t* codes = b.codes.data() + n * k_len;
    float* dst = bf + (n / 16) * k_len * 16 + n % 16;
    for (int64_t k = 0; k < k_len; ++k) dst[k * 16] = static_cast<float>(codes[k]);
  }
  minifloat_fp32_float_rows({af, bf, row_count, k_len, panels16}, state);
  // No NaN or Inf can arise (|sum| <= K * 2^14), so the flags are 0; finish_gemm_output
  // applies the int8 scales.
  for (int64_t row = 0; row < row_count; ++row)
    for (int64_t n = 0; n < b.rows; ++n) {
      const float value = state[((row / kTileRows * panels16 + n / 16) * kTileRows +
                                 row % kTileRows) * 16 + n % 16];
      finish_gemm_output(ops, a, b, acc, row_begin + row, n, 0, value, 0, result);
    }
}

// ---------------------------------------------------------------------------------------------
// INT8, fixed accumulator.

// The largest bound on sum_k |a_k b_k| that still proves an output exact (see the top of the
// file): the outputs whose bound is <= this need no saturation and fit the int32 lanes.
int64_t int8_fixed_bound_limit(const AccumulatorSpec& acc, int64_t k_len) {
  const int64_t int32_max = std::numeric_limits<int32_t>::max();
  const int64_t acc_max = fixed_max(acc.width);
  if (acc.frac_bits >= 0) {  // sum |addend| = 2^F * sum |p|; the int32 lanes hold sum p
    const int64_t fits_acc = acc.frac_bits >= 63 ? 0 : acc_max >> acc.frac_bits;
    return std::min(int32_max, fits_acc);
  }
  // F < 0: sum |addend| <= min(sum |p|, floor(sum |p| / 2^s) + K), which the int32 lanes
  // (holding sum addend) and the accumulator must both hold.
  const int64_t limit = std::min(int32_max, acc_max);
  if (limit < k_len) return limit;
  const int s = std::min(-acc.frac_bits, 40);  // (beyond 40 the result only grows past 2^62)
  const __int128 alt = (static_cast<__int128>(limit - k_len) + 1) * (static_cast<__int128>(1) << s) - 1;
  return static_cast<int64_t>(std::min<__int128>(std::max<__int128>(alt, limit), int64_t{1} << 62));
}

// Cauchy-Schwarz: sum_k |a_k b_k| <= sqrt(Sa * Sb), so floor(sqrt(Sa * Sb)) <= limit proves
// the bound; in integers, Sa * Sb < (limit + 1)^2 (Sa, Sb < 2^62 / 2^14 for K < 2^48).
bool squares_bound_within(int64_t squares_a, int64_t squares_b, int64_t limit) {
  const __int128 next = static_cast<__int128>(limit) + 1;
  return static_cast<__int128>(squares_a) * squares_b < next * next;
}

// Whether sum_k |a_k b_k| <= limit is proven for one output from its two rows' norms: by
// Cauchy-Schwarz or by max|a| * sum|b| (or the reverse), whichever holds.
bool int8_output_bounded(const RowNorms& ra, const RowNorms& rb, int64_t limit) {
  return squares_bound_within(ra.squares, rb.squares, limit) ||
         static_cast<__int128>(ra.abs_max) * rb.abs_sum <= limit ||
         static_cast<__int128>(ra.abs_sum) * rb.abs_max <= limit;
}

// One 4x16 tile over `pairs` k-pairs. a_rows[r]: int16 codes of A row r (pairs of k read as
// one 32-bit lane); b_panel: [pair][16 columns] 32-bit lanes, each (b[k], b[k+1]) of one column.
// kFloorProducts false (F >= 0): acc += a*b summed in pairs (vpmaddwd).
// kFloorProducts true (F < 0):  acc += floor(a*b / 2^s) per element (vpmullw, vpsraw by
// `shift`), pairs added by vpmaddwd with ones.
template <bool kFloorProducts>
GSQHW_INT8_INLINE_AVX2 void int8_tile_4x16(const int16_t* const a_rows[kTileRows],
                                           const int32_t* b_panel, int64_t pairs, __m128i shift,
                                           int32_t* acc /* 4 x 16 */) {
  const __m256i ones = _mm256_set1_epi16(1);
  // Named accumulators: GCC keeps an array of vectors in memory (see gemm_fast.cpp).
  __m256i c00, c01, c10, c11, c20, c21, c30, c31;
  load_tile_4x16(acc, c00, c01, c10, c11, c20, c21, c30, c31);
  for (int64_t p = 0; p < pairs; ++p) {
    const __m256i b0 = _mm256_load_si256(reinterpret_cast<const __m256i*>(b_panel + p * 16));
    const __m256i b1 = _mm256_load_si256(reinterpret_cast<const __m256i*>(b_panel + p * 16 + 8));
#define GSQHW_ROW(r, lo, hi)                                                          \
  {                                                                                   \
    int32_t pair;                                                                     \
    std::memcpy(&pair, a_rows[r] + 2 * p, sizeof pair);                               \
    const __m256i av = _mm256_set1_epi32(pair);                                       \
    if constexpr (kFloorProducts) {                                                   \
      add_epi32_in_place(lo, _mm256_madd_epi16(                                       \
                                 _mm256_sra_epi16(_mm256_mullo_epi16(av, b0), shift), ones)); \
      add_epi32_in_place(hi, _mm256_madd_epi16(                                       \
                                 _mm256_sra_epi16(_mm256_mullo_epi16(av, b1), shift), ones)); \
    } else {                                                                          \
      add_epi32_in_place(lo, _mm256_madd_epi16(av, b0));                           \
      add_epi32_in_place(hi, _mm256_madd_epi16(av, b1));                           \
    }                                                                                 \
  }
    GSQHW_ROW(0, c00, c01)
    GSQHW_ROW(1, c10, c11)
    GSQHW_ROW(2, c20, c21)
    GSQHW_ROW(3, c30, c31)
#undef GSQHW_ROW
  }
  store_tile_4x16(acc, c00, c01, c10, c11, c20, c21, c30, c31);
}

struct Int8FixedJob {
  const int16_t* a;  // (row_count + 1) x 2*pairs, the last row zero
  const int32_t* b;  // panels x pairs x 16
  int64_t row_count, pairs, panels;
  int shift;         // s = -F (F < 0), clamped to 16 (vpsraw fills with the sign from 16 on)
};

// All tiles over all k-pairs. The sums are exact integers, so their order does not matter;
// K blocks (4 A rows of a block: 8 KiB, in L1) and panel blocks (~384 KiB of B, in L2) as
// in the float form, the tile accumulators persisting across K blocks.
template <bool kFloorProducts>
GSQHW_INT8_AVX2 void int8_fixed_tiles(const Int8FixedJob& job, int32_t* state) {
  const __m128i shift = _mm_cvtsi32_si128(job.shift);
  for_each_blocked_tile(job.a, 2, job.b, job.row_count, job.pairs, job.panels, state,
                        [shift](const int16_t* const a_rows[kTileRows], const int32_t* b_panel,
                                int64_t count, int32_t* tile_state) GSQHW_INT8_AVX2 {
                          int8_tile_4x16<kFloorProducts>(a_rows, b_panel, count, shift, tile_state);
                        });
}

GSQHW_INT8_AVX2 void codes_to_int16(const int32_t* __restrict codes, int64_t count, int16_t* __restrict out) {
  for (int64_t k = 0; k < count; ++k) out[k] = static_cast<int16_t>(codes[k]);
}

// One B row's codes as int16 pairs (k even in the low half) into every 16th 32-bit lane of
// its panel; an odd K's last pair takes a zero.
GSQHW_INT8_AVX2 void pack_int16_pairs(const int32_t* __restrict codes, int64_t count, int32_t* __restrict lanes) {
  const int64_t pairs = count / 2;
  for (int64_t p = 0; p < pairs; ++p)
    lanes[p * 16] = static_cast<int32_t>(static_cast<uint16_t>(codes[2 * p]) |
                                         (static_cast<uint32_t>(static_cast<uint16_t>(codes[2 * p + 1])) << 16));
  if (count % 2) lanes[pairs * 16] = static_cast<int32_t>(static_cast<uint16_t>(codes[count - 1]));
}

// The int8 outputs that may saturate: the saturating form on the codes as doubles (A times
// 2^F: a*2^F*b is exact, and its floor is what fixed_addend's shift computes), or the scalar
// reference when W > 53.
void int8_saturating_outputs(const GemmOperands& ops, const QuantizedTensor& a,
                             const QuantizedTensor& b, const AccumulatorSpec& acc,
                             int64_t row_begin, int64_t row_end,
                             std::vector<std::pair<int64_t, int64_t>>& outputs, GemmResult& result) {
  if (outputs.empty()) return;
  if (!saturating_form_applies(acc)) {
    for (const auto& [r, n] : outputs) scalar_gemm_output(ops, a, b, acc, row_begin + r, n, result);
    return;
  }
  const int64_t k_len = a.cols, row_count = row_end - row_begin;
  const int64_t panels8 = (b.rows + kDoubleCols - 1) / kDoubleCols;
  double* ad = scratch<double>(Buffer::a_double, static_cast<size_t>((row_count + 1) * k_len), false);
  double* bd = scratch<double>(Buffer::b_double, static_cast<size_t>(panels8 * k_len * kDoubleCols),
                               b.rows % kDoubleCols != 0);
  const double scale = std::ldexp(1.0, acc.frac_bits);
  for (int64_t i = 0; i < row_count * k_len; ++i)
    ad[i] = static_cast<double>(a.codes[row_begin * k_len + i]) * scale;
  std::fill_n(ad + row_count * k_len, k_len, 0.0);  // the zero row
  for (int64_t n = 0; n < b.rows; ++n)
    for (int64_t k = 0; k < k_len; ++k)
      bd[((n / kDoubleCols) * k_len + k) * kDoubleCols + n % kDoubleCols] = b.codes[n * k_len + k];
  // |a*b| <= 2^14, so |floor(a*b*2^F)| <= 2^max(14 + F, 0); F >= 0 keeps the products integers.
  const int64_t log2_bound = std::max<int64_t>(14 + static_cast<int64_t>(acc.frac_bits), 0);
  run_saturating({ad, bd, row_count, k_len, acc.width, acc.frac_bits < 0, !addends_fit(log2_bound, acc.width)},
                 outputs,
                 [&](int64_t r, int64_t n, int64_t value, uint8_t flags) {
                   finish_gemm_output(ops, a, b, acc, row_begin + r, n, value, 0.0f, flags, result);
                 });
}

// a_norms: rows [row_begin, row_end) of A, b_norms: all rows of B (scan_int8_rows).
void int8_fixed_rows(const GemmOperands& ops, const QuantizedTensor& a, const QuantizedTensor& b,
                     const AccumulatorSpec& acc, int64_t row_begin, int64_t row_end,
                     const std::vector<RowNorms>& a_norms, const std::vector<RowNorms>& b_norms,
                     GemmResult& result) {
  const int64_t k_len = a.cols, row_count = row_end - row_begin;
  const int64_t pairs = (k_len + 1) / 2, padded_k = 2 * pairs;
  const int64_t panels = (b.rows + kIntCols - 1) / kIntCols;
  const int64_t row_tiles = (row_count + kTileRows - 1) / kTileRows;

  // Pack A as int16 rows (+ the zero row), B as panels of int16 pairs.
  int16_t* a16 = scratch<int16_t>(Buffer::a, static_cast<size_t>((row_count + 1) * padded_k), true);
  int32_t* b32 = scratch<int32_t>(Buffer::b, static_cast<size_t>(panels * pairs * 16), true);
  int32_t* state = scratch<int32_t>(Buffer::state,
                                    static_cast<size_t>(row_tiles * panels * kTileRows * 16), true);
  for (int64_t row = 0; row < row_count; ++row)
    codes_to_int16(a.codes.data() + (row_begin + row) * k_len, k_len, a16 + row * padded_k);
  for (int64_t n = 0; n < b.rows; ++n)
    pack_int16_pairs(b.codes.data() + n * k_len, k_len, b32 + (n / kIntCols) * pairs * 16 + n % kIntCols);

  const Int8FixedJob job{a16, b32, row_count, pairs, panels,
                         acc.frac_bits < 0 ? std::min(-acc.frac_bits, 16) : 0};
  if (acc.frac_bits < 0) int8_fixed_tiles<true>(job, state);
  else int8_fixed_tiles<false>(job, state);

  // Outputs: tiles proven from their largest norms at once, the others output by output;
  // those that may saturate after all the others.
  const int64_t limit = int8_fixed_bound_limit(acc, k_len);
  std::vector<std::pair<int64_t, int64_t>> may_saturate;  // (row of the job, n)
  for (int64_t tile = 0; tile < row_tiles; ++tile) {
    const int64_t r0 = tile * kTileRows, r1 = std::min(row_count, r0 + kTileRows);
    int64_t tile_squares = 0;  // the tile's largest Sa
    for (int64_t r = r0; r < r1; ++r) tile_squares = std::max(tile_squares, a_norms[r].squares);
    for (int64_t panel = 0; panel < panels; ++panel) {
      const int64_t n0 = panel * kIntCols, n1 = std::min(b.rows, n0 + kIntCols);
      int64_t panel_squares = 0;  // the panel's largest Sb
      for (int64_t n = n0; n < n1; ++n) panel_squares = std::max(panel_squares, b_norms[n].squares);
      const bool tile_proven = squares_bound_within(tile_squares, panel_squares, limit);
      const int32_t* sums = state + (tile * panels + panel) * kTileRows * 16;
      for (int64_t r = r0; r < r1; ++r)
        for (int64_t n = n0; n < n1; ++n) {
          const int64_t m = row_begin + r;
          if (!tile_proven && !int8_output_bounded(a_norms[r], b_norms[n], limit)) {
            may_saturate.emplace_back(r, n);
            continue;
          }
          const int64_t sum = sums[(r - r0) * 16 + (n - n0)];
          // F >= 0 and sum != 0 imply F <= 62 (the bound limit is 0 beyond), so no overflow.
          const int64_t value = acc.frac_bits <= 0 || sum == 0 ? sum : sum * (int64_t{1} << acc.frac_bits);
          finish_gemm_output(ops, a, b, acc, m, n, value, 0.0f, 0, result);
        }
    }
  }
  int8_saturating_outputs(ops, a, b, acc, row_begin, row_end, may_saturate, result);
}

// ---------------------------------------------------------------------------------------------
// Minifloat x minifloat, fixed accumulator.

// What the kernel and the checks need of one decoded operand. The exponent facts are bounds
// over its finite nonzero values (MX scales included as the range of the scales present, so
// they may be loose, which only makes the checks decline more often).
struct OperandFacts {
  std::vector<double> squares;  // per row: sum of v^2; Inf or NaN iff the row holds an Inf/NaN
  bool has_values = false;      // any finite nonzero value
  int min_exponent = 0, max_exponent = 0, min_lowest_bit = 0;
  bool codes_in_table = true;   // false: a hand-built code outside the format (then decline)
};

// Where decode_rows writes: row r at dst + (r / rows_per_panel) * panel_stride +
// r % rows_per_panel, element k `element_stride` further on. A: rows one after the other;
// B: panels of 8 columns.
struct DecodeLayout {
  double* dst;
  int64_t rows_per_panel, panel_stride, element_stride;
  double multiplier;  // A: 2^F (exact under the exponent checks), B: 1
};

// Decodes rows [row_begin, row_end) of t (MX scales folded in, scale code 255 -> NaN, as
// minifloat_value() in gemm.cpp) into `layout`.
GSQHW_INT8_AVX2 OperandFacts decode_rows(const MinifloatCodeTable& table, int block, const QuantizedTensor& t,
                                         int64_t row_begin, int64_t row_end, const DecodeLayout& layout) {
  static const std::array<double, 256> scale_values = [] {
    std::array<double, 256> v{};
    for (int code = 0; code < 255; ++code) v[code] = std::ldexp(1.0, code - 127);
    v[255] = std::numeric_limits<double>::quiet_NaN();
    return v;
  }();
  const uint32_t size = static_cast<uint32_t>(table.value.size());
  const int64_t cols = t.cols, rows = row_end - row_begin;
  const int64_t group = block ? block : std::max<int64_t>(cols, 1);
  std::vector<uint8_t> seen(size, 0);
  int scale_lo = 255, scale_hi = -1;  // codes of the MX scales present (255 excluded)
  bool in_table = true;
  OperandFacts facts;
  facts.squares.assign(static_cast<size_t>(rows), 0.0);
  for (int64_t r = 0; r < rows; ++r) {
    const int32_t* codes = t.codes.data() + (row_begin + r) * cols;
    double* dst = layout.dst + (r / layout.rows_per_panel) * layout.panel_stride + r % layout.rows_per_panel;
    double partial[4] = {0, 0, 0, 0};  // (four chains: the adds' latency, not their count)
    for (int64_t k0 = 0; k0 < cols; k0 += group) {
      double scale = 1.0;
      if (block) {
        const int code = t.group_exponents[(row_begin + r) * t.groups_per_row() + k0 / block];
        scale = scale_values[static_cast<size_t>(code & 255)];
        if (code != 255) scale_lo = std::min(scale_lo, code), scale_hi = std::max(scale_hi, code);
      }
      const int64_t k1 = std::min(cols, k0 + group);
      for (int64_t k = k0; k < k1; ++k) {
        const uint32_t code = static_cast<uint32_t>(codes[k]);
        in_table &= code < size;
        const uint32_t index = code < size ? code : 0;
        seen[index] = 1;
        const double v = table.value[index] * scale;  // exact: a power of two in range
        partial[k & 3] += v * v;
        dst[k * layout.element_stride] = v * layout.multiplier;
      }
    }
    facts.squares[r] = (partial[0] + partial[1]) + (partial[2] + partial[3]);
  }
  facts.codes_in_table = in_table;
  if (block && scale_hi < 0) return facts;  // every scale NaN: no finite value
  const int offset_lo = block ? scale_lo - 127 : 0, offset_hi = block ? scale_hi - 127 : 0;
  int min_e = std::numeric_limits<int>::max(), max_e = std::numeric_limits<int>::min();
  int min_low = std::numeric_limits<int>::max();
  for (uint32_t code = 0; code < size; ++code) {
    if (!seen[code] || !table.finite_nonzero[code]) continue;
    min_e = std::min(min_e, table.exponent[code]);
    max_e = std::max(max_e, table.exponent[code]);
    min_low = std::min(min_low, table.lowest_bit[code]);
  }
  if (min_e > max_e) return facts;
  facts.has_values = true;
  facts.min_exponent = min_e + offset_lo;
  facts.max_exponent = max_e + offset_hi;
  facts.min_lowest_bit = min_low + offset_lo;
  return facts;
}

// One 4x8 tile over k_len elements: acc[r][c] += floor(a_rows[r][k] * b[k][c]), or
// fma(a, b, acc) when every product is an integer (kIntegerProducts).
template <bool kIntegerProducts>
GSQHW_INT8_INLINE_AVX2 void double_tile_4x8(const double* const a_rows[kTileRows],
                                            const double* b_panel, int64_t k_len,
                                            double* acc /* 4 x 8 */) {
  __m256d c00 = _mm256_load_pd(acc + 0), c01 = _mm256_load_pd(acc + 4);
  __m256d c10 = _mm256_load_pd(acc + 8), c11 = _mm256_load_pd(acc + 12);
  __m256d c20 = _mm256_load_pd(acc + 16), c21 = _mm256_load_pd(acc + 20);
  __m256d c30 = _mm256_load_pd(acc + 24), c31 = _mm256_load_pd(acc + 28);
  for (int64_t k = 0; k < k_len; ++k) {
    const __m256d b0 = _mm256_load_pd(b_panel + k * 8), b1 = _mm256_load_pd(b_panel + k * 8 + 4);
#define GSQHW_ROW(r, lo, hi)                                                                 \
  {                                                                                          \
    const __m256d av = _mm256_broadcast_sd(a_rows[r] + k);                                   \
    if constexpr (kIntegerProducts) {                                                        \
      lo = _mm256_fmadd_pd(av, b0, lo);                                                      \
      hi = _mm256_fmadd_pd(av, b1, hi);                                                      \
    } else {                                                                                 \
      lo = _mm256_add_pd(lo, _mm256_round_pd(_mm256_mul_pd(av, b0), _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC)); \
      hi = _mm256_add_pd(hi, _mm256_round_pd(_mm256_mul_pd(av, b1), _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC)); \
    }                                                                                        \
  }
    GSQHW_ROW(0, c00, c01)
    GSQHW_ROW(1, c10, c11)
    GSQHW_ROW(2, c20, c21)
    GSQHW_ROW(3, c30, c31)
#undef GSQHW_ROW
  }
  _mm256_store_pd(acc + 0, c00), _mm256_store_pd(acc + 4, c01);
  _mm256_store_pd(acc + 8, c10), _mm256_store_pd(acc + 12, c11);
  _mm256_store_pd(acc + 16, c20), _mm256_store_pd(acc + 20, c21);
  _mm256_store_pd(acc + 24, c30), _mm256_store_pd(acc + 28, c31);
}

struct DoubleFixedJob {
  const double* a;  // (row_count + 1) x k_len, scaled by 2^F, the last row zero
  const double* b;  // panels x k_len x 8
  int64_t row_count, k_len, panels;
};

// All tiles, K in blocks (4 A rows: 8 KiB) and panels in blocks (~384 KiB of B); the sums
// are exact integers, so the order does not matter.
template <bool kIntegerProducts>
GSQHW_INT8_AVX2 void double_fixed_tiles(const DoubleFixedJob& job, double* state) {
  constexpr int64_t kBlockK = 256;
  const int64_t row_tiles = (job.row_count + kTileRows - 1) / kTileRows;
  const int64_t panels_per_block = std::max<int64_t>(1, (384 << 10) / (kBlockK * kDoubleCols * 8));
  for (int64_t k0 = 0; k0 < job.k_len; k0 += kBlockK) {
    const int64_t count = std::min(kBlockK, job.k_len - k0);
    for (int64_t block = 0; block < job.panels; block += panels_per_block) {
      const int64_t block_end = std::min(job.panels, block + panels_per_block);
      for (int64_t tile = 0; tile < row_tiles; ++tile) {
        const double* a_rows[kTileRows];
        for (int r = 0; r < kTileRows; ++r) {
          const int64_t row = std::min(tile * kTileRows + r, job.row_count);
          a_rows[r] = job.a + row * job.k_len + k0;
        }
        for (int64_t panel = block; panel < block_end; ++panel)
          double_tile_4x8<kIntegerProducts>(a_rows, job.b + (panel * job.k_len + k0) * kDoubleCols,
                                            count, state + (tile * job.panels + panel) * kTileRows * kDoubleCols);
      }
    }
  }
}

// Float form (W <= 32, every value and product an exact float): acc[r][c] += int32(floor(
// a_rows[r][k] * b[k][c])) for 4 rows x 16 columns. The caller sets MXCSR to round toward
// -inf, so one vcvtps2dq is the floor and the conversion (exact for |floor| < 2^31; outputs
// whose bound fails may see other values and are redone); the product is exact, so the
// rounding mode does not touch it. (vroundps + vcvtps2dq ran ~1.4x slower: the rounding
// instructions bound this loop.) Not inlined on purpose: GCC does not model MXCSR, so it could
// move inlined conversions across the caller's _mm_setcsr; a call is not moved across it.
__attribute__((target("avx2,fma"), noinline)) static void float_floor_tile_4x16(const float* const a_rows[kTileRows],
                                                  const float* b_panel, int64_t k_len,
                                                  int32_t* acc /* 4 x 16 */) {
  __m256i c00, c01, c10, c11, c20, c21, c30, c31;
  load_tile_4x16(acc, c00, c01, c10, c11, c20, c21, c30, c31);
  for (int64_t k = 0; k < k_len; ++k) {
    const __m256 b0 = _mm256_load_ps(b_panel + k * 16), b1 = _mm256_load_ps(b_panel + k * 16 + 8);
#define GSQHW_ROW(r, lo, hi)                                                                \
  {                                                                                         \
    const __m256 av = _mm256_broadcast_ss(a_rows[r] + k);                                   \
    add_epi32_in_place(lo, _mm256_cvtps_epi32(_mm256_mul_ps(av, b0)));      \
    add_epi32_in_place(hi, _mm256_cvtps_epi32(_mm256_mul_ps(av, b1)));      \
  }
    GSQHW_ROW(0, c00, c01)
    GSQHW_ROW(1, c10, c11)
    GSQHW_ROW(2, c20, c21)
    GSQHW_ROW(3, c30, c31)
#undef GSQHW_ROW
  }
  store_tile_4x16(acc, c00, c01, c10, c11, c20, c21, c30, c31);
}

struct FloatFixedJob {
  const float* a;  // (row_count + 1) x k_len, scaled by 2^F, the last row zero
  const float* b;  // panels16 x k_len x 16
  int64_t row_count, k_len, panels16;
};

// All tiles, blocked as the double form (4 A rows of a K block: 8 KiB; ~384 KiB of B), with
// MXCSR rounding toward -inf for the duration (restored before returning; nothing in between
// throws). Integer products (floor = identity) need no special case: they convert exactly.
GSQHW_INT8_AVX2 void float_fixed_tiles(const FloatFixedJob& job, int32_t* state) {
  const unsigned saved_csr = _mm_getcsr();
  _mm_setcsr((saved_csr & ~_MM_ROUND_MASK) | _MM_ROUND_DOWN);
  for_each_blocked_tile(job.a, 1, job.b, job.row_count, job.k_len, job.panels16, state,
                        [](const float* const a_rows[kTileRows], const float* b_panel,
                           int64_t count, int32_t* tile_state) {
                          float_floor_tile_4x16(a_rows, b_panel, count, tile_state);
                        });
  _mm_setcsr(saved_csr);
}

// The float form's operands from the decoded doubles (exact floats when float_form_applies):
// A row by row (zero row included), B from panels of 8 columns to panels of 16.
GSQHW_INT8_AVX2 void doubles_to_floats(const double* __restrict in, int64_t count, float* __restrict out) {
  for (int64_t i = 0; i < count; ++i) out[i] = static_cast<float>(in[i]);
}

GSQHW_INT8_AVX2 void panels8_to_panels16(const double* __restrict in, int64_t panels8, int64_t k_len,
                                         float* __restrict out) {
  for (int64_t p = 0; p < panels8; ++p) {
    const double* src = in + p * k_len * kDoubleCols;
    float* dst = out + (p / 2) * k_len * 16 + (p % 2) * kDoubleCols;
    for (int64_t k = 0; k < k_len; ++k)
      for (int c = 0; c < kDoubleCols; ++c) dst[k * 16 + c] = static_cast<float>(src[k * kDoubleCols + c]);
  }
}

// Whether every a * 2^F and b is an exact float and every product a * 2^F * b an exact float
// (<= 2 x 11 significant bits, so only the range matters: lowest set bit >= 2^-149, highest
// below 2^126), so that the float form computes exactly the double form's addends.
bool float_form_applies(const OperandFacts& fa, const OperandFacts& fb, int frac_bits) {
  if (!fa.has_values || !fb.has_values) return true;
  constexpr int64_t kLowestBit = -149, kHighest = 125;
  const int64_t f = frac_bits;
  return fa.min_lowest_bit + f >= kLowestBit && fa.max_exponent + f <= kHighest &&
         fb.min_lowest_bit >= kLowestBit && fb.max_exponent <= kHighest &&
         fa.min_lowest_bit + f + fb.min_lowest_bit >= kLowestBit &&
         fa.max_exponent + f + fb.max_exponent <= kHighest;
}

// Whether every product a * b (and a * 2^F, a * b * 2^F) of finite nonzero values is a normal
// double, in both the scalar reference's order (a*b, then * 2^F) and ours (a * 2^F, then * b):
// then all of them are exact (<= 2 x 11 significant bits) and floor sees the true value.
bool exponents_keep_products_exact(const OperandFacts& fa, const OperandFacts& fb, int frac_bits) {
  if (!fa.has_values || !fb.has_values) return true;  // every product of finite values is 0
  constexpr int64_t kLowest = -1020, kHighest = 1000;  // (margins: significands up to 2)
  const int64_t f = frac_bits;
  const int64_t lo_a = fa.min_exponent, hi_a = fa.max_exponent;
  const int64_t lo_b = fb.min_exponent, hi_b = fb.max_exponent;
  return lo_a + lo_b >= kLowest && lo_a + lo_b + f >= kLowest && lo_a + f >= kLowest &&
         hi_a + f <= kHighest && hi_a + hi_b <= kHighest && hi_a + hi_b + f <= kHighest;
}

// Returns false (nothing written) when the exponents present could make a product inexact.
bool minifloat_fixed_rows(const GemmOperands& ops, const QuantizedTensor& a,
                          const QuantizedTensor& b, const AccumulatorSpec& acc, int64_t row_begin,
                          int64_t row_end, GemmResult& result) {
  const int64_t k_len = a.cols, row_count = row_end - row_begin;
  const int64_t panels = (b.rows + kDoubleCols - 1) / kDoubleCols;
  const int64_t row_tiles = (row_count + kTileRows - 1) / kTileRows;
  if (acc.frac_bits < -1000 || acc.frac_bits > 1000) return false;  // 2^F must be a normal double
  if (ops.mf_a->total_bits() > 16 || ops.mf_b->total_bits() > 16) return false;
  double* ad = scratch<double>(Buffer::a, static_cast<size_t>((row_count + 1) * k_len), false);
  double* bd = scratch<double>(Buffer::b, static_cast<size_t>(panels * k_len * kDoubleCols),
                               b.rows % kDoubleCols != 0);  // missing columns of the last panel: 0
  const OperandFacts fa = decode_rows(minifloat_code_table(*ops.mf_a), ops.block_a, a, row_begin, row_end,
                                      {ad, 1, k_len, 1, std::ldexp(1.0, acc.frac_bits)});
  const OperandFacts fb = decode_rows(minifloat_code_table(*ops.mf_b), ops.block_b, b, 0, b.rows,
                                      {bd, kDoubleCols, k_len * kDoubleCols, kDoubleCols, 1.0});
  if (!fa.codes_in_table || !fb.codes_in_table) return false;
  if (!exponents_keep_products_exact(fa, fb, acc.frac_bits)) return false;
  std::fill_n(ad + row_count * k_len, k_len, 0.0);  // the zero row
  // Every a * 2^F * b an integer (its lowest set bit at 2^0 or above): floor changes nothing.
  // (Inf/NaN values in ad/bd only reach the outputs of their row/column: those are redone.)
  const bool integer_products =
      !fa.has_values || !fb.has_values ||
      static_cast<int64_t>(fa.min_lowest_bit) + fb.min_lowest_bit + acc.frac_bits >= 0;
  // The integer sums of every output: float form (W <= 32, so the int32 lanes hold every
  // output that passes the bound below) or double form.
  const bool float_form = acc.width <= 32 && float_form_applies(fa, fb, acc.frac_bits);
  const int64_t panels16 = (b.rows + 15) / 16;
  int32_t* float_state = nullptr;
  double* double_state = nullptr;
  if (float_form) {
    float* af = scratch<float>(Buffer::a_float, static_cast<size_t>((row_count + 1) * k_len), false);
    float* bf = scratch<float>(Buffer::b_float, static_cast<size_t>(panels16 * k_len * 16),
                               panels * kDoubleCols < panels16 * 16);  // a missing panel of 8: 0
    doubles_to_floats(ad, (row_count + 1) * k_len, af);
    panels8_to_panels16(bd, panels, k_len, bf);
    float_state = scratch<int32_t>(Buffer::state, static_cast<size_t>(row_tiles * panels16 * kTileRows * 16), true);
    const FloatFixedJob job{af, bf, row_count, k_len, panels16};
    float_fixed_tiles(job, float_state);
  } else {
    double_state = scratch<double>(Buffer::state,
                                   static_cast<size_t>(row_tiles * panels * kTileRows * kDoubleCols), true);
    const DoubleFixedJob job{ad, bd, row_count, k_len, panels};
    if (integer_products) double_fixed_tiles<true>(job, double_state);
    else double_fixed_tiles<false>(job, double_state);
  }
  auto sum_of = [&](int64_t r, int64_t n) -> int64_t {
    const int64_t tile = r / kTileRows, row = r % kTileRows;
    if (float_form) return float_state[((tile * panels16 + n / 16) * kTileRows + row) * 16 + n % 16];
    return static_cast<int64_t>(
        double_state[((tile * panels + n / kDoubleCols) * kTileRows + row) * kDoubleCols + n % kDoubleCols]);
  };

  // sum |addend| <= sum (|a b| 2^F + 1) <= 2^F sqrt(Sa Sb) + K (Cauchy-Schwarz). The margin
  // covers the rounding of Sa, Sb (K terms each) and of this bound's own operations.
  const double limit = static_cast<double>(fixed_max(std::min(acc.width, 54)));  // <= 2^53 - 1
  // (Each sum of K squares is within a factor 1 + K * 2^-53 of the true one.)
  const double margin = 1.0 + static_cast<double>(k_len + 8) * 0x1.0p-50;
  std::vector<std::pair<int64_t, int64_t>> may_saturate;  // (row of the job, n)
  for (int64_t r = 0; r < row_count; ++r)
    for (int64_t n = 0; n < b.rows; ++n) {
      const int64_t m = row_begin + r;
      const double bound =
          std::ldexp(std::sqrt(fa.squares[r]) * std::sqrt(fb.squares[n]), acc.frac_bits) * margin +
          static_cast<double>(k_len);
      if (!std::isfinite(fa.squares[r]) || !std::isfinite(fb.squares[n])) {
        scalar_gemm_output(ops, a, b, acc, m, n, result);  // Inf/NaN operands: NaN flag
        continue;
      }
      if (!(bound <= limit)) {
        if (saturating_form_applies(acc)) may_saturate.emplace_back(r, n);
        else scalar_gemm_output(ops, a, b, acc, m, n, result);
        continue;
      }
      finish_gemm_output(ops, a, b, acc, m, n, sum_of(r, n), 0.0f, 0, result);
    }
  // |v| < 2^(exponent + 1), so |a2F * b| < 2^(max_a + max_b + 2 + F).
  const int64_t log2_bound = !fa.has_values || !fb.has_values
                                 ? 0
                                 : static_cast<int64_t>(fa.max_exponent) + fb.max_exponent + 2 + acc.frac_bits;
  run_saturating({ad, bd, row_count, k_len, acc.width, !integer_products, !addends_fit(log2_bound, acc.width)},
                 may_saturate,
                 [&](int64_t r, int64_t n, int64_t value, uint8_t flags) {
                   finish_gemm_output(ops, a, b, acc, row_begin + r, n, value, 0.0f, flags, result);
                 });
  return true;
}

}  // namespace

bool fast_int8_rows(const GemmOperands& ops, const QuantizedTensor& a, const QuantizedTensor& b,
                    const AccumulatorSpec& acc, int64_t row_begin, int64_t row_end,
                    GemmResult& result) {
  std::vector<RowNorms> a_norms, b_norms;
  if (!scan_int8_rows(a, row_begin, row_end, a_norms) || !scan_int8_rows(b, 0, b.rows, b_norms))
    return false;
  if (acc.kind == AccumulatorSpec::Kind::fp32)
    int8_fp32_rows(ops, a, b, acc, row_begin, row_end, result);
  else
    int8_fixed_rows(ops, a, b, acc, row_begin, row_end, a_norms, b_norms, result);
  return true;
}

bool fast_minifloat_fixed_rows(const GemmOperands& ops, const QuantizedTensor& a,
                               const QuantizedTensor& b, const AccumulatorSpec& acc,
                               int64_t row_begin, int64_t row_end, GemmResult& result) {
  if (acc.kind != AccumulatorSpec::Kind::fixed) return false;
  return minifloat_fixed_rows(ops, a, b, acc, row_begin, row_end, result);
}

}  // namespace gsqhw
