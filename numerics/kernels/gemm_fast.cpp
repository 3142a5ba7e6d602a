// Fast kernels of the golden GEMM (numerics/kernels/gemm_fast.h). They compute exactly what the scalar
// reference in gemm.cpp computes; the tests compare both on random and hand-built operands.
//
// GSE-INT (fixed and fp32 accumulators), per 4x16 register tile and group j:
//   1. The 64 exact group sums S_j, by one of two integer kernels chosen from the codes the
//      operands actually contain (not from their declared format):
//      * offset-binary int8 (vpmaddubsw, 32 MACs per instruction): u8 = a - min_a, s8 = b;
//        the sums start from min_a * sum(b) instead of 0. Needs every int16 pair sum
//        2 * (max_a - min_a) * max|b| to fit int16 with room for at least two of them
//        (b <= 7 on one side, e.g. b=6: 8 chunks of 4 k are added in int16 per widening).
//      * int16 (vpmaddwd, 16 MACs per instruction): everything else, e.g. b=8 on both sides.
//   2. A vectorised epilogue adds S_j * 2^x_j to the tile's accumulators.
//      * fixed, tiles proven (TileProof: a Cauchy-Schwarz bound of every partial sum, per
//        tile from per-row/column group norms) to stay within int32 and W bits: addend =
//        floor(S_j * 2^x_j) by vpsllvd/vpsravd into an int32 accumulator, no per-output
//        bound. The usual case; the other tiles use the forms below.
//      Fast float forms, used when the group exponents actually present keep every scale an
//      exact float:
//      * fp32 acc: acc = fma(float(S_j), 2^x_j, acc) -- S_j (< 2^24) and 2^x_j are exact
//        floats, so the FMA is exactly the one RNE rounding of acc + S_j * 2^x_j, with IEEE
//        subnormals and overflow to Inf (needs MXCSR at its default: RNE, no FTZ/DAZ);
//      * fixed, W <= 32: addend = floor(float(S_j) * 2^(x_j+F)) (exact), int32 accumulator,
//        and a float bound sum|addend| (rounding error accounted for) proving that no partial
//        sum leaves the W-bit range; outputs that may saturate are redone by the scalar path.
//      Otherwise double forms: fixed as an integer-valued double with a bound (<= 2^52),
//      fp32 by TwoSum + cvtpd_ps with the rare undecidable lanes redone by add_exact_fp32.
//   Tiles touching a NaN group are computed by the scalar reference.
//   Blocking: B is packed once into panels of 16 columns (k-chunks of 4 bytes interleaved);
//   the driver walks blocks of panels, and for each block K in blocks (whole groups) and all
//   row tiles, so a block's slices of B are reused from L2 by every row tile and a row tile's
//   slice of A (<= 8 KiB) stays in L1 across the block's panels. Tile accumulators persist
//   across K blocks, which run in order (each output adds its groups in order).
// Minifloats with the fp32 accumulator: decoded values (MX scales folded in), 1x32 tiles of
// independent accumulators, one exact rounding per element in order: a float FMA when every
// value is exactly a float (FP8, BF16, FP16 without out-of-range MX scales), else the double
// product and the TwoSum step.
// INT8 (fp32 and fixed) and minifloats with a fixed accumulator: gemm_fast_int8.cpp.
// Everything else uses the scalar reference. Dispatch: __builtin_cpu_supports("avx2"/"fma").
#include "numerics/kernels/gemm_fast.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <type_traits>
#include <vector>

#include "numerics/fp32_round.h"
#include "numerics/gemm_impl.h"
#include "numerics/kernels/thread_scratch.h"

namespace gsqhw {
namespace {

constexpr int kTileRows = 4;   // A rows per register tile (the kernels name 4 rows of accumulators)
constexpr int kTileCols = 16;  // B rows (output columns) per register tile: two ymm of 8 lanes
constexpr int kChunkBytes = 4; // one 32-bit lane of B holds this many bytes of one column's k

bool cpu_has_avx2_fma() {
  static const bool has = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return has;
}

// The float and double tricks below need IEEE behaviour: round to nearest even, subnormals
// neither flushed (FTZ) nor read as zero (DAZ). That is the default; check rather than hope.
bool mxcsr_is_ieee_default() {
  constexpr unsigned kRoundingBits = 3u << 13, kFlushToZero = 1u << 15, kDenormalsAreZero = 1u << 6;
  return (_mm_getcsr() & (kRoundingBits | kFlushToZero | kDenormalsAreZero)) == 0;
}

// The GSE path runs only after that check, so its scans, packing and drivers are compiled for
// AVX2 too (GCC then vectorises their loops with AVX2 instead of SSE2).
#define GSQHW_AVX2_FUNCTION __attribute__((target("avx2,fma")))
// Kernels and epilogues are inlined into the tile loop (tile_over_groups), so that the group
// sums stay in registers between them.
#define GSQHW_INLINE_AVX2 __attribute__((target("avx2,fma"), always_inline)) static inline

// ---------------------------------------------------------------------------------------------
// Aligned scratch memory (zero-initialised unless asked not to)

template <typename T>
class AlignedArray {
 public:
  explicit AlignedArray(size_t count, bool zeroed = true)
      : bytes_((std::max<size_t>(count, 1) * sizeof(T) + 63) / 64 * 64),
        data_(static_cast<T*>(std::aligned_alloc(64, bytes_)), &std::free) {
    if (!data_) throw std::bad_alloc();
    if (zeroed) std::memset(data_.get(), 0, bytes_);
  }
  T* data() { return data_.get(); }
  const T* data() const { return data_.get(); }
  T& operator[](size_t i) { return data_.get()[i]; }
  const T& operator[](size_t i) const { return data_.get()[i]; }

 private:
  size_t bytes_;
  std::unique_ptr<T, decltype(&std::free)> data_;
};

// The scratch slots of this file (numerics/kernels/thread_scratch.h: per-thread memory kept across calls).
enum class ScratchSlot {
  packed_a, packed_b, proven_tiles, bounded_tiles,  // GSE-INT
  squares_a, squares_b, scales_a, scales_b, shifts_a, shifts_b,
  float_a, float_b, float_tiles,                    // minifloats, float form
  count
};
template <typename T>
using ScratchArray = ThreadScratchArray<T, ScratchSlot>;

// ---------------------------------------------------------------------------------------------
// What the operands contain (decides the kernels)

struct CodeRange {
  int32_t min = 0, max = 0;
  int64_t max_abs() const { return std::max<int64_t>(-static_cast<int64_t>(min), max); }
};

// Widens `range` to cover codes[0 .. count).
GSQHW_AVX2_FUNCTION void widen_code_range(const int32_t* __restrict codes, int64_t count,
                                          CodeRange& range) {
  int32_t lo = range.min, hi = range.max;  // (locals: GCC vectorises the min/max reduction)
  for (int64_t i = 0; i < count; ++i) {
    lo = std::min(lo, codes[i]);
    hi = std::max(hi, codes[i]);
  }
  range = {lo, hi};
}

GSQHW_AVX2_FUNCTION CodeRange code_range(const QuantizedTensor& t, int64_t row_begin,
                                         int64_t row_end) {
  CodeRange range;
  widen_code_range(t.codes.data() + row_begin * t.cols, (row_end - row_begin) * t.cols, range);
  return range;
}

// Unbiased scale exponents u = code + offset over the groups of rows [row_begin, row_end),
// NaN groups excluded (empty: lo > hi).
struct ExponentRange {
  int lo = 1 << 20, hi = -(1 << 20);
  bool codes_valid = true;  // every code in 0 .. nan_code (hand-built tensors may differ)
};

GSQHW_AVX2_FUNCTION ExponentRange exponent_range(const QuantizedTensor& t, int64_t row_begin, int64_t row_end,
                             int nan_code, int offset) {
  ExponentRange range;
  const int64_t groups = t.groups_per_row();
  for (int64_t i = row_begin * groups; i < row_end * groups; ++i) {
    int code = t.group_exponents[i];
    if (code < 0 || code > nan_code) range.codes_valid = false;
    if (code == nan_code) continue;
    range.lo = std::min(range.lo, code + offset);
    range.hi = std::max(range.hi, code + offset);
  }
  return range;
}

// ---------------------------------------------------------------------------------------------
// Packing: codes as int8 or int16, k padded with zeros to whole groups.
//   A: one row after the other, padded_k codes each.
//   B: panels of 16 columns; within a panel, k-chunks of 4 bytes (4 int8 or 2 int16 codes) of
//      the 16 columns one after the other: [panel][k / per_chunk][column][per_chunk], i.e. two
//      ymm registers per chunk, each 32-bit lane one column. Missing columns are zero.

// (Local copies of sizes and __restrict pointers: stores through int8_t* may alias anything,
// which would otherwise reload every bound and pointer per element.)
// The sum of code^2 over each group of one row of codes (a factor of the fixed-point tile
// proof, TileProof). Called right after packing the row, while it is still in L1.
GSQHW_AVX2_FUNCTION void row_group_square_sums(const int32_t* __restrict codes, int64_t cols,
                                               int g, int64_t* __restrict out) {
  for (int64_t k0 = 0, j = 0; k0 < cols; k0 += g, ++j) {
    const int64_t k_end = std::min<int64_t>(cols, k0 + g);
    int64_t sum = 0;
    for (int64_t k = k0; k < k_end; ++k) sum += static_cast<int64_t>(codes[k]) * codes[k];
    out[j] = sum;
  }
}

// What the packing also computes from each row while it is in L1 (either may be null): the
// group square sums (row_group_square_sums, `groups` per row) and the range of the codes.
struct PackStats {
  int64_t* square_sums = nullptr;
  CodeRange* range = nullptr;
};

// One row's stats (PackStats) and, if `dst` is not null, the row narrowed to int16, in one
// pass over the codes (they come from memory once; the separate loops read the row three
// times). Needs g % 16 == 0 (16 codes per step, whole groups). Narrowing saturates; codes
// beyond int16 widen the range past what int16_kernel_fits accepts, so the kernel declines
// before the sums are used. The squares: vpmaddwd of the int16 codes with themselves, each
// lane at most 2 * 32767^2 < 2^31, collected per group in int64 lanes.
GSQHW_AVX2_FUNCTION void int16_row_pass(const int32_t* __restrict src, int64_t cols, int g,
                                        int16_t* __restrict dst, PackStats stats,
                                        int64_t* __restrict square_sums) {
  __m256i lo = _mm256_set1_epi32(stats.range ? stats.range->min : 0);
  __m256i hi = _mm256_set1_epi32(stats.range ? stats.range->max : 0);
  for (int64_t k0 = 0, j = 0; k0 < cols; k0 += g, ++j) {
    __m256i squares = _mm256_setzero_si256();  // 4 int64 lanes
    for (int64_t k = k0; k < k0 + g; k += 16) {
      const __m256i x0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + k));
      const __m256i x1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + k + 8));
      lo = _mm256_min_epi32(lo, _mm256_min_epi32(x0, x1));
      hi = _mm256_max_epi32(hi, _mm256_max_epi32(x0, x1));
      // packs works per 128-bit half: restore the order of the 16 codes
      const __m256i narrow = _mm256_permute4x64_epi64(_mm256_packs_epi32(x0, x1), 0b11011000);
      if (dst) _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + k), narrow);
      const __m256i pair_squares = _mm256_madd_epi16(narrow, narrow);  // non-negative
      squares = _mm256_add_epi64(squares, _mm256_cvtepu32_epi64(_mm256_castsi256_si128(pair_squares)));
      squares = _mm256_add_epi64(squares, _mm256_cvtepu32_epi64(_mm256_extracti128_si256(pair_squares, 1)));
    }
    if (square_sums) {
      alignas(32) int64_t lanes[4];
      _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), squares);
      square_sums[j] = (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]);
    }
  }
  if (stats.range) {
    alignas(32) int32_t l[8], h[8];
    _mm256_store_si256(reinterpret_cast<__m256i*>(l), lo);
    _mm256_store_si256(reinterpret_cast<__m256i*>(h), hi);
    stats.range->min = *std::min_element(l, l + 8);
    stats.range->max = *std::max_element(h, h + 8);
  }
}

// A codes minus `offset` (the offset-binary int8 kernel: 0..255 stored as the byte pattern).
template <typename Code>
GSQHW_AVX2_FUNCTION void pack_a_rows(const QuantizedTensor& t, int64_t row_begin, int64_t row_end,
                                     int64_t padded_k, int32_t offset, Code* __restrict out,
                                     int g, PackStats stats) {
  const int64_t cols = t.cols, groups = t.groups_per_row();
  for (int64_t r = row_begin; r < row_end; ++r) {
    const int32_t* __restrict src = t.codes.data() + r * cols;
    Code* __restrict dst = out + (r - row_begin) * padded_k;
    if constexpr (std::is_same_v<Code, int16_t>) {
      if (offset == 0 && g % 16 == 0 && cols % g == 0) {
        int16_row_pass(src, cols, g, dst, stats,
                       stats.square_sums ? stats.square_sums + (r - row_begin) * groups : nullptr);
        continue;
      }
    }
    for (int64_t k = 0; k < cols; ++k) dst[k] = static_cast<Code>(src[k] - offset);
    if (stats.square_sums) row_group_square_sums(src, cols, g, stats.square_sums + (r - row_begin) * groups);
    if (stats.range) widen_code_range(src, cols, *stats.range);
  }
}

// min_a * (sum of B's codes in group j of column n), per panel, group and column: the start
// value of the offset-binary kernel's sums.
GSQHW_AVX2_FUNCTION std::vector<int32_t> offset_corrections(const QuantizedTensor& b, int64_t groups, int g,
                                        int32_t min_a) {
  const int64_t panels = (b.rows + kTileCols - 1) / kTileCols, cols = b.cols;
  std::vector<int32_t> out(static_cast<size_t>(panels * groups * kTileCols), 0);
  for (int64_t n = 0; n < b.rows; ++n)
    for (int64_t j = 0; j < groups; ++j) {
      int32_t sum = 0;
      for (int64_t k = j * g; k < std::min(cols, (j + 1) * g); ++k) sum += b.codes[n * cols + k];
      out[((n / kTileCols) * groups + j) * kTileCols + n % kTileCols] = min_a * sum;
    }
  return out;
}

// Four k-chunks of the 16 columns of one full panel: chunk i of column c (its 4 bytes: 2
// int16 or 4 int8 codes, narrowed from int32 with saturation, which never applies: the
// kernels are only chosen for codes that fit) goes to 32-bit lane c of the panel's chunk i.
// Per column the 4 chunks are one 128-bit vector; 4x4 transposes of 32-bit lanes regroup
// them by chunk.
template <typename Code>
GSQHW_INLINE_AVX2 __m128i column_chunks(const int32_t* src) {
  if constexpr (sizeof(Code) == 2) {  // 8 codes -> 8 int16
    const __m256i codes = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src));
    return _mm256_castsi256_si128(
        _mm256_permute4x64_epi64(_mm256_packs_epi32(codes, codes), 0b1000));
  } else {  // 16 codes -> 16 int8; packs work per 128-bit half, the permute restores order
    const __m256i lo = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src));
    const __m256i hi = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + 8));
    const __m256i words = _mm256_packs_epi16(_mm256_packs_epi32(lo, hi), _mm256_setzero_si256());
    return _mm256_castsi256_si128(
        _mm256_permutevar8x32_epi32(words, _mm256_setr_epi32(0, 4, 1, 5, 0, 0, 0, 0)));
  }
}

template <typename Code>
GSQHW_INLINE_AVX2 void pack_four_chunks(const int32_t* src, int64_t cols, Code* dst) {
  constexpr int per_chunk = kChunkBytes / sizeof(Code);
  for (int c0 = 0; c0 < kTileCols; c0 += 4) {
    const __m128i v0 = column_chunks<Code>(src + (c0 + 0) * cols);
    const __m128i v1 = column_chunks<Code>(src + (c0 + 1) * cols);
    const __m128i v2 = column_chunks<Code>(src + (c0 + 2) * cols);
    const __m128i v3 = column_chunks<Code>(src + (c0 + 3) * cols);
    const __m128i t0 = _mm_unpacklo_epi32(v0, v1), t1 = _mm_unpacklo_epi32(v2, v3);
    const __m128i t2 = _mm_unpackhi_epi32(v0, v1), t3 = _mm_unpackhi_epi32(v2, v3);
    const __m128i rows[4] = {_mm_unpacklo_epi64(t0, t1), _mm_unpackhi_epi64(t0, t1),
                             _mm_unpacklo_epi64(t2, t3), _mm_unpackhi_epi64(t2, t3)};
    for (int i = 0; i < 4; ++i)
      _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + (i * kTileCols + c0) * per_chunk), rows[i]);
  }
}

// stats as in pack_a_rows, per B row (output column). Full panels go 4 chunks at a
// time (pack_four_chunks); a partial last panel and the last k (< 4 chunks) element-wise.
template <typename Code>
GSQHW_AVX2_FUNCTION void pack_b_panels(const QuantizedTensor& b, int64_t padded_k,
                                       Code* __restrict out, int g, PackStats stats) {
  constexpr int per_chunk = kChunkBytes / sizeof(Code);
  const int64_t cols = b.cols, full_chunks = cols / per_chunk, groups = b.groups_per_row();
  const int64_t full_panels = b.rows / kTileCols, vector_k = cols / (4 * per_chunk) * (4 * per_chunk);
  const bool one_pass_stats = std::is_same_v<Code, int16_t> && g % 16 == 0 && cols % g == 0;
  // Panel by panel: first each row's stats and element-wise leftovers (reading the rows from
  // memory once), then the 4-chunk transposes of a full panel, from the rows now in L2.
  for (int64_t panel = 0; panel * kTileCols < b.rows; ++panel) {
    const bool full = panel < full_panels;
    for (int64_t n = panel * kTileCols; n < std::min(b.rows, (panel + 1) * kTileCols); ++n) {
      const int32_t* __restrict src = b.codes.data() + n * cols;
      Code* __restrict dst = out + panel * padded_k * kTileCols + (n % kTileCols) * per_chunk;
      for (int64_t q = full ? vector_k / per_chunk : 0; q < full_chunks; ++q)
        for (int i = 0; i < per_chunk; ++i)
          dst[q * per_chunk * kTileCols + i] = static_cast<Code>(src[q * per_chunk + i]);
      for (int64_t k = full_chunks * per_chunk; k < cols; ++k)  // the rest of a partial chunk
        dst[full_chunks * per_chunk * kTileCols + k % per_chunk] = static_cast<Code>(src[k]);
      int64_t* square_sums = stats.square_sums ? stats.square_sums + n * groups : nullptr;
      if (one_pass_stats) {
        if (stats.square_sums || stats.range) int16_row_pass(src, cols, g, nullptr, stats, square_sums);
      } else {
        if (square_sums) row_group_square_sums(src, cols, g, square_sums);
        if (stats.range) widen_code_range(src, cols, *stats.range);
      }
    }
    if (full)
      for (int64_t k0 = 0; k0 < vector_k; k0 += 4 * per_chunk)
        pack_four_chunks<Code>(b.codes.data() + panel * kTileCols * cols + k0, cols,
                               out + panel * padded_k * kTileCols + k0 * kTileCols);
  }
}

// ---------------------------------------------------------------------------------------------
// Integer kernels: the exact group sums of one 4x16 tile over one group.
// sums[r][v] = the 8 int32 sums of A row r with columns 8v..8v+7.

using TileSums = __m256i[kTileRows][2];

inline int32_t load_chunk(const void* p) {
  int32_t chunk;
  std::memcpy(&chunk, p, sizeof chunk);
  return chunk;
}

// acc += x, with the sum written into acc's own register. GCC (12) otherwise adds into the
// product's register and copies it back with a vmovdqa per accumulator and iteration: 8 extra
// instructions in an inner loop of 23, which is bound by instruction dispatch, not the ALUs.
GSQHW_INLINE_AVX2 void add_epi32_in_place(__m256i& acc, __m256i x) {
  asm("vpaddd %1, %0, %0" : "+x"(acc) : "x"(x));
}
GSQHW_INLINE_AVX2 void add_epi16_in_place(__m256i& acc, __m256i x) {
  asm("vpaddw %1, %0, %0" : "+x"(acc) : "x"(x));
}

// int16 codes, vpmaddwd: each 32-bit lane takes 2 products; |S| <= G * max|a| * max|b|, which
// the dispatch keeps below 2^24.
struct Int16Kernel {
  using Code = int16_t;
  static constexpr int kPerChunk = 2;

  GSQHW_INLINE_AVX2 void group_sums(const Code* const a[kTileRows], const Code* b,
                                    int64_t chunks, int64_t, const int32_t*, TileSums& sums) {
    // G = 32 (16 chunks), the formats' default, runs fully unrolled: measured 8% faster in
    // the whole GEMM (no loop branch and counter per chunk, which the dispatch-bound loop
    // feels), paired in one process against the loop.
    if (chunks == 16) return sums_over_chunks<16>(a, b, chunks, sums);
    sums_over_chunks<0>(a, b, chunks, sums);
  }

  // kChunks > 0: a compile-time chunk count (the loop is unrolled); 0: `chunks` at run time.
  template <int kChunks>
  GSQHW_INLINE_AVX2 void sums_over_chunks(const Code* const a[kTileRows], const Code* b,
                                          int64_t chunks, TileSums& sums) {
    // Named accumulators, not an array: GCC keeps an array of vectors in memory and stores
    // it back every iteration.
    __m256i c00 = _mm256_setzero_si256(), c01 = c00, c10 = c00, c11 = c00, c20 = c00,
            c21 = c00, c30 = c00, c31 = c00;
#define GSQHW_ROW(q, r, lo, hi)                                       \
  {                                                                   \
    const __m256i av = _mm256_set1_epi32(load_chunk(a[r] + 2 * q));   \
    add_epi32_in_place(lo, _mm256_madd_epi16(av, b0));                \
    add_epi32_in_place(hi, _mm256_madd_epi16(av, b1));                \
  }
#define GSQHW_CHUNK(q)                                                                    \
  {                                                                                       \
    const __m256i b0 = _mm256_load_si256(reinterpret_cast<const __m256i*>(b + q * 32));   \
    const __m256i b1 = _mm256_load_si256(reinterpret_cast<const __m256i*>(b + q * 32 + 16)); \
    GSQHW_ROW(q, 0, c00, c01)                                                             \
    GSQHW_ROW(q, 1, c10, c11)                                                             \
    GSQHW_ROW(q, 2, c20, c21)                                                             \
    GSQHW_ROW(q, 3, c30, c31)                                                             \
  }
    if constexpr (kChunks > 0) {
#pragma GCC unroll 16
      for (int q = 0; q < kChunks; ++q) GSQHW_CHUNK(q)
    } else {
      for (int64_t q = 0; q < chunks; ++q) GSQHW_CHUNK(q)
    }
#undef GSQHW_CHUNK
#undef GSQHW_ROW
    sums[0][0] = c00, sums[0][1] = c01, sums[1][0] = c10, sums[1][1] = c11;
    sums[2][0] = c20, sums[2][1] = c21, sums[3][0] = c30, sums[3][1] = c31;
  }
};

// int8 codes, vpmaddubsw (32 MACs per instruction) with A in offset binary: u8 = a - min_a
// (0..255), s8 = b. Then sum (a - min_a) * b = S - min_a * sum b, so the sums start from
// `init` = min_a * (sum of the group's B codes), per column, tabulated once. Every int16 pair
// sum is at most 2 * (max_a - min_a) * max|b| <= 32767 (checked by the dispatch), and
// `int16_steps` of them (>= 1) are added in int16 before one widening vpmaddwd with ones.
// (Why not u8 = |a|, s8 = b * sign(a)? On this core vpsignb competes with the multiplies
// for the same two pipes, while the offset costs nothing per MAC.)
struct OffsetInt8Kernel {
  using Code = int8_t;  // A: the byte pattern of the u8 offset code; B: s8
  static constexpr int kPerChunk = 4;

  GSQHW_INLINE_AVX2 void group_sums(const Code* const a[kTileRows], const Code* b,
                                    int64_t chunks, int64_t int16_steps, const int32_t* init,
                                    TileSums& sums) {
    const __m256i ones = _mm256_set1_epi16(1);
    const __m256i init0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(init));
    const __m256i init1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(init + 8));
    for (auto& row : sums) row[0] = init0, row[1] = init1;
    for (int64_t q0 = 0; q0 < chunks; q0 += int16_steps) {
      // Named int16 accumulators (see Int16Kernel).
      __m256i c00 = _mm256_setzero_si256(), c01 = c00, c10 = c00, c11 = c00, c20 = c00,
              c21 = c00, c30 = c00, c31 = c00;
      const int64_t q_end = std::min(chunks, q0 + int16_steps);
      for (int64_t q = q0; q < q_end; ++q) {
        const __m256i b0 = _mm256_load_si256(reinterpret_cast<const __m256i*>(b + q * 64));
        const __m256i b1 = _mm256_load_si256(reinterpret_cast<const __m256i*>(b + q * 64 + 32));
#define GSQHW_ROW(r, lo, hi)                                          \
  {                                                                   \
    const __m256i av = _mm256_set1_epi32(load_chunk(a[r] + 4 * q));   \
    add_epi16_in_place(lo, _mm256_maddubs_epi16(av, b0));             \
    add_epi16_in_place(hi, _mm256_maddubs_epi16(av, b1));             \
  }
        GSQHW_ROW(0, c00, c01)
        GSQHW_ROW(1, c10, c11)
        GSQHW_ROW(2, c20, c21)
        GSQHW_ROW(3, c30, c31)
#undef GSQHW_ROW
      }
      const __m256i widened[kTileRows][2] = {
          {_mm256_madd_epi16(c00, ones), _mm256_madd_epi16(c01, ones)},
          {_mm256_madd_epi16(c10, ones), _mm256_madd_epi16(c11, ones)},
          {_mm256_madd_epi16(c20, ones), _mm256_madd_epi16(c21, ones)},
          {_mm256_madd_epi16(c30, ones), _mm256_madd_epi16(c31, ones)}};
      for (int r = 0; r < kTileRows; ++r)
        for (int v = 0; v < 2; ++v) sums[r][v] = _mm256_add_epi32(sums[r][v], widened[r][v]);
    }
  }
};

// ---------------------------------------------------------------------------------------------
// Epilogues: one group's sums into the tile accumulators. Each has a Scale type (the exact
// powers of two 2^u tabulated per A row and group, and per B column and group), the tile
// state, `add_group`, and `output` (false: the output may have saturated -> scalar path).

// fp32 accumulator, float form: acc = fma(float(S), 2^(u_a + u_b), acc).
struct FloatFp32Epilogue {
  using Scale = float;
  struct State {
    alignas(32) float acc[kTileRows][kTileCols];
  };
  GSQHW_INLINE_AVX2 void add_group(const TileSums& sums,
                                                            const float* a_scales,
                                                            const float* b_scales, State& s) {
    const __m256 b_lo = _mm256_load_ps(b_scales), b_hi = _mm256_load_ps(b_scales + 8);
    for (int r = 0; r < kTileRows; ++r) {
      const __m256 a_scale = _mm256_set1_ps(a_scales[r]);
      for (int v = 0; v < 2; ++v) {
        __m256 scale = _mm256_mul_ps(a_scale, v ? b_hi : b_lo);  // exact power of two
        float* acc = &s.acc[r][8 * v];
        _mm256_store_ps(acc, _mm256_fmadd_ps(_mm256_cvtepi32_ps(sums[r][v]), scale,
                                             _mm256_load_ps(acc)));
      }
    }
  }
};

// fixed, W <= 32, float form: addend = floor(float(S) * 2^(u_a + u_b)), exact; int32
// accumulator; float bound of sum |addend|.
struct FloatFixedEpilogue {
  using Scale = float;
  struct State {
    alignas(32) int32_t acc[kTileRows][kTileCols];
    alignas(32) float bound[kTileRows][kTileCols];
  };
  GSQHW_INLINE_AVX2 void add_group(const TileSums& sums,
                                                        const float* a_scales,
                                                        const float* b_scales, State& s) {
    const __m256 b_lo = _mm256_load_ps(b_scales), b_hi = _mm256_load_ps(b_scales + 8);
    const __m256 sign = _mm256_set1_ps(-0.0f);
    for (int r = 0; r < kTileRows; ++r) {
      const __m256 a_scale = _mm256_set1_ps(a_scales[r]);
      for (int v = 0; v < 2; ++v) {
        __m256 scale = _mm256_mul_ps(a_scale, v ? b_hi : b_lo);
        __m256 addend = _mm256_round_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(sums[r][v]), scale),
                                        _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
        // |addend| >= 2^31 converts to INT_MIN, but then the bound exceeds the limit and the
        // output is recomputed by the scalar path.
        __m256i* acc = reinterpret_cast<__m256i*>(&s.acc[r][8 * v]);
        _mm256_store_si256(acc, _mm256_add_epi32(_mm256_load_si256(acc),
                                                 _mm256_cvtps_epi32(addend)));
        float* bound = &s.bound[r][8 * v];
        _mm256_store_ps(bound, _mm256_add_ps(_mm256_load_ps(bound), _mm256_andnot_ps(sign, addend)));
      }
    }
  }
};

// Both double forms scale a group sum as S * 2^u_a * 2^u_b: two exact double multiplications
// (|S| < 2^31; scales_fit_double keeps every product a normal double).
__attribute__((target("avx2"), always_inline)) inline __m256d scaled_group_sum(__m128i sums_half,
                                                                __m256d a_scale,
                                                                const double* b_scales) {
  return _mm256_mul_pd(_mm256_mul_pd(_mm256_cvtepi32_pd(sums_half), a_scale),
                       _mm256_load_pd(b_scales));
}

__attribute__((target("avx2"), always_inline)) inline __m128i sums_half(const __m256i& sums, int h) {
  return h ? _mm256_extracti128_si256(sums, 1) : _mm256_castsi256_si128(sums);
}

// fixed, double form: acc += floor(S * 2^(x_j + F)) as an integer-valued double; `bound`
// collects sum_j |addend_j|: while bound <= min(fixed_max(W), 2^52) no partial sum and no
// addend can leave the W-bit range and every double operation is exact.
struct DoubleFixedEpilogue {
  using Scale = double;
  struct State {
    alignas(32) double acc[kTileRows][kTileCols];
    alignas(32) double bound[kTileRows][kTileCols];
  };
  GSQHW_INLINE_AVX2 void add_group(const TileSums& sums,
                                                        const double* a_scales,
                                                        const double* b_scales, State& s) {
    const __m256d sign = _mm256_set1_pd(-0.0);
    for (int r = 0; r < kTileRows; ++r) {
      __m256d a_scale = _mm256_set1_pd(a_scales[r]);
      for (int c = 0; c < kTileCols; c += 4) {
        __m256d addend =
            _mm256_round_pd(scaled_group_sum(sums_half(sums[r][c / 8], (c / 4) & 1), a_scale,
                                             b_scales + c),
                            _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
        _mm256_store_pd(&s.acc[r][c], _mm256_add_pd(_mm256_load_pd(&s.acc[r][c]), addend));
        _mm256_store_pd(&s.bound[r][c], _mm256_add_pd(_mm256_load_pd(&s.bound[r][c]),
                                                      _mm256_andnot_pd(sign, addend)));
      }
    }
  }
};

// fp32, double form: acc = RNE_fp32(acc + S * 2^x) with acc held as the double of a float.
// TwoSum gives the exact error; cvtpd_ps rounds hi correctly unless hi is exactly a float
// midpoint or outside the normal float range while the error is nonzero; those lanes are
// redone in scalar.
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

struct DoubleFp32Epilogue {
  using Scale = double;
  struct State {
    alignas(32) double acc[kTileRows][kTileCols];
  };
  GSQHW_INLINE_AVX2 void add_group(const TileSums& sums,
                                                        const double* a_scales,
                                                        const double* b_scales, State& s) {
    for (int r = 0; r < kTileRows; ++r) {
      __m256d a_scale = _mm256_set1_pd(a_scales[r]);
      for (int c = 0; c < kTileCols; c += 4) {
        __m256d addend =
            scaled_group_sum(sums_half(sums[r][c / 8], (c / 4) & 1), a_scale, b_scales + c);
        _mm256_store_pd(&s.acc[r][c], exact_fp32_step(_mm256_load_pd(&s.acc[r][c]), addend));
      }
    }
  }
};

// fixed, any W, on tiles proven free of saturation and within int32 (TileProof below):
// addend = floor(S * 2^x), x = u_a + u_b, by integer shifts (exact: what fixed_addend computes
// when nothing saturates); int32 accumulator; no per-output bound. x's signs present in the
// job pick the shifts: x >= 0 everywhere needs one vpsllvd, x <= 0 one vpsravd (counts >= 32
// fill with the sign bit: still the floor), mixed signs both.
enum class ShiftDirection { left, right, both };

struct Int32TileState {
  alignas(32) int32_t acc[kTileRows][kTileCols];
};

template <ShiftDirection kDirection>
struct ShiftFixedEpilogue {
  using Scale = int32_t;  // x's parts u_a, u_b (right: -u_a, -u_b, so the count is their sum)
  using State = Int32TileState;
  GSQHW_INLINE_AVX2 void add_group(const TileSums& sums, const int32_t* a_shifts,
                                   const int32_t* b_shifts, State& s) {
    const __m256i b_lo = _mm256_load_si256(reinterpret_cast<const __m256i*>(b_shifts));
    const __m256i b_hi = _mm256_load_si256(reinterpret_cast<const __m256i*>(b_shifts + 8));
    for (int r = 0; r < kTileRows; ++r) {
      const __m256i a_shift = _mm256_set1_epi32(a_shifts[r]);
      for (int v = 0; v < 2; ++v) {
        const __m256i x = _mm256_add_epi32(a_shift, v ? b_hi : b_lo);
        __m256i addend;
        if constexpr (kDirection == ShiftDirection::left) {
          addend = _mm256_sllv_epi32(sums[r][v], x);
        } else if constexpr (kDirection == ShiftDirection::right) {
          addend = _mm256_srav_epi32(sums[r][v], x);
        } else {  // left by max(x, 0), then right by max(x, 0) - x = max(-x, 0)
          const __m256i left = _mm256_max_epi32(x, _mm256_setzero_si256());
          addend = _mm256_srav_epi32(_mm256_sllv_epi32(sums[r][v], left), _mm256_sub_epi32(left, x));
        }
        __m256i* acc = reinterpret_cast<__m256i*>(&s.acc[r][8 * v]);
        _mm256_store_si256(acc, _mm256_add_epi32(_mm256_load_si256(acc), addend));
      }
    }
  }
};

// ---------------------------------------------------------------------------------------------
// The fixed-point tile proof. For one output, the fixed accumulator adds floor(S_j * 2^x_j)
// per group j, and |floor(y)| < |y| + 1, |S_j| <= |a_j| |b_j| (Cauchy-Schwarz over the group's
// codes, |.| the Euclidean norm), x_j = u_aj + u_bj. So with
//   A_tile[j] = max over the tile's rows    of |a_j| * 2^u_aj,
//   B_panel[j] = max over the panel's columns of |b_j| * 2^u_bj,
// every partial sum of every output of the tile is at most sum_j A_tile[j] B_panel[j] + groups.
// When that is <= min(fixed_max(W), INT32_MAX), no addend and no partial sum saturates and an
// int32 accumulator holds them all: ShiftFixedEpilogue is exact. Tiles that fail the proof
// use the per-output bound epilogues. (Typical data passes by a wide margin: the norms are
// ~sqrt(g) times the elements' RMS, not g times their maximum.)
class TileProof {
 public:
  // Factors of row tiles (A) or panels (B): `units` of `unit_rows` rows each; square_sums and
  // exponent codes per row and group; powers = 2^(code + offset) (power_table<double>).
  // NaN groups give 0 (tiles with NaN groups take the scalar path anyway).
  GSQHW_AVX2_FUNCTION static std::vector<double> factors(const int64_t* square_sums,
                                                         const int32_t* exponent_codes,
                                                         int64_t rows, int64_t groups,
                                                         int unit_rows, int nan_code,
                                                         const std::vector<double>& powers) {
    const int64_t units = (rows + unit_rows - 1) / unit_rows;
    std::vector<double> out(static_cast<size_t>(units * groups), 0.0);
    // sqrt(s) * 2^u == sqrt(s * 4^u) exactly while 4^u is a normal double (scaling by a power
    // of 4 scales the correctly rounded square root by a power of 2), and sqrt is monotone:
    // so the max over a unit's rows is taken first and there is one sqrt per unit and group
    // (the per-row sqrt was most of this function's time).
    std::vector<double> squared_powers(powers.size());
    bool squares_exact = true;
    for (size_t code = 0; code < powers.size(); ++code) {
      squared_powers[code] = powers[code] * powers[code];
      if (static_cast<int>(code) != nan_code &&
          !(squared_powers[code] >= 0x1.0p-1022 && squared_powers[code] <= 0x1.0p1023))
        squares_exact = false;
    }
    if (squares_exact) {
      for (int64_t r = 0; r < rows; ++r) {
        double* unit = out.data() + (r / unit_rows) * groups;
        const int64_t* sums = square_sums + r * groups;
        const int32_t* codes = exponent_codes + r * groups;
        for (int64_t j = 0; j < groups; ++j)
          if (codes[j] != nan_code)
            unit[j] = std::max(unit[j], static_cast<double>(sums[j]) * squared_powers[codes[j]]);
      }
      sqrt_in_place(out.data(), units * groups);
      return out;
    }
    std::vector<double> norms(static_cast<size_t>(groups));  // of one row
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t j = 0; j < groups; ++j) norms[j] = static_cast<double>(square_sums[r * groups + j]);
      sqrt_in_place(norms.data(), groups);
      for (int64_t j = 0; j < groups; ++j) {
        const int code = exponent_codes[r * groups + j];
        if (code == nan_code) continue;
        double& f = out[(r / unit_rows) * groups + j];
        f = std::max(f, norms[j] * powers[code]);
      }
    }
    return out;
  }

  // Whether the tile with these factors is proven for accumulator limit `limit`.
  GSQHW_AVX2_FUNCTION static bool holds(const double* a_factors, const double* b_factors,
                                        int64_t groups, double limit) {
    // Four partial sums of non-negative terms; every rounding is relative and at most 2^-53,
    // so with groups < 2^20 the computed sum is at least the true one times (1 - 2^-31): the
    // factor 1 + 2^-30 covers it (and the rounding of each norm's sqrt).
    __m256d sum = _mm256_setzero_pd();
    int64_t j = 0;
    for (; j + 4 <= groups; j += 4)
      sum = _mm256_fmadd_pd(_mm256_loadu_pd(a_factors + j), _mm256_loadu_pd(b_factors + j), sum);
    alignas(32) double lanes[4];
    _mm256_store_pd(lanes, sum);
    double total = (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]);
    for (; j < groups; ++j) total += a_factors[j] * b_factors[j];
    return total * (1 + 0x1.0p-30) + static_cast<double>(groups) + 1 <= limit;
  }

 private:
  GSQHW_AVX2_FUNCTION static void sqrt_in_place(double* v, int64_t count) {
    int64_t i = 0;
    for (; i + 4 <= count; i += 4) _mm256_storeu_pd(v + i, _mm256_sqrt_pd(_mm256_loadu_pd(v + i)));
    for (; i < count; ++i) v[i] = std::sqrt(v[i]);
  }
};

// ---------------------------------------------------------------------------------------------
// Writing the outputs (the dequantize step of numerics/gemm.h for GSE: no scales, flags 0)

// RNE_fp32(acc * 2^-F) for a fixed accumulator. While |acc| < 2^53 and 2^-F keeps the
// product a normal double, double(acc) * 2^-F is exact and the conversion to float is the
// one RNE rounding (subnormals and overflow included), which is what scaled_int_to_fp32 does.
class FixedToFp32 {
 public:
  explicit FixedToFp32(int frac_bits)
      : frac_bits_(frac_bits), fast_(frac_bits >= -960 && frac_bits <= 1000),
        scale_(std::ldexp(1.0, -frac_bits)) {}
  float operator()(int64_t acc) const {
    if (fast_ && acc < (int64_t{1} << 53) && acc > -(int64_t{1} << 53))
      return static_cast<float>(static_cast<double>(acc) * scale_);
    return scaled_int_to_fp32(acc, -frac_bits_);
  }
  // Whether every int32 accumulator converts as double(acc) * scale() (the vector writers).
  bool int32_by_scale() const { return fast_; }
  double scale() const { return scale_; }

 private:
  int frac_bits_;
  bool fast_;
  double scale_;
};

// The result arrays as plain pointers (the uint8_t flags would otherwise make the compiler
// reload the vectors' data pointers after every store).
struct ResultPointers {
  explicit ResultPointers(GemmResult& r)
      : out(r.out.data()), acc_raw(r.acc_raw.data()), flags(r.flags.data()), n(r.n) {}
  float* out;
  int64_t* acc_raw;
  uint8_t* flags;
  int64_t n;

  void fixed_output(int64_t m, int64_t col, int64_t acc, const FixedToFp32& to_fp32) const {
    const int64_t index = m * n + col;
    acc_raw[index] = acc;
    out[index] = to_fp32(acc);
    flags[index] = 0;
  }
  void fp32_output(int64_t m, int64_t col, float acc) const {
    const int64_t index = m * n + col;
    acc_raw[index] = fp32_bits(acc);
    out[index] = acc;
    flags[index] = 0;
  }

  // The same for 16 outputs (m, col .. col + 15) at once, from int32 fixed accumulators
  // (needs to_fp32.int32_by_scale(): the one RNE rounding is cvtpd_ps's) or fp32 ones.
  GSQHW_AVX2_FUNCTION void fixed_outputs_16(int64_t m, int64_t col, const int32_t* acc,
                                            const FixedToFp32& to_fp32) const {
    const int64_t index = m * n + col;
    const __m256d scale = _mm256_set1_pd(to_fp32.scale());
    for (int h = 0; h < 16; h += 4) {
      const __m128i acc4 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(acc + h));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(acc_raw + index + h), _mm256_cvtepi32_epi64(acc4));
      _mm_storeu_ps(out + index + h, _mm256_cvtpd_ps(_mm256_mul_pd(_mm256_cvtepi32_pd(acc4), scale)));
    }
    std::memset(flags + index, 0, 16);
  }
  GSQHW_AVX2_FUNCTION void fp32_outputs_16(int64_t m, int64_t col, const float* acc) const {
    const int64_t index = m * n + col;
    for (int h = 0; h < 16; h += 4) {
      const __m128i bits = _mm_loadu_si128(reinterpret_cast<const __m128i*>(acc + h));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(acc_raw + index + h), _mm256_cvtepu32_epi64(bits));
    }
    std::memcpy(out + index, acc, 16 * sizeof(float));
    std::memset(flags + index, 0, 16);
  }
};

// ---------------------------------------------------------------------------------------------
// The GSE driver

// Everything a tile loop needs, fixed once per call.
struct GseJob {
  const GemmOperands* ops;
  const QuantizedTensor* a;
  const QuantizedTensor* b;
  const AccumulatorSpec* acc;
  int64_t row_begin, row_end;
  int64_t groups, padded_k;
  int offset_a, offset_b;     // u = exponent code + offset (offset_a includes F when fixed)
  int32_t a_offset = 0;       // offset-binary int8 kernel: min_a, subtracted from A's codes
  int64_t int16_steps = 1;    // offset-binary int8 kernel only
  double fixed_bound_limit = 0;  // fixed epilogues: largest bound that proves no saturation
  // Fixed: TileProof's limit (0: no tile proofs) and the signs of x = u_a + u_b present.
  double tile_proof_limit = 0;
  ShiftDirection shift_direction = ShiftDirection::both;
  // The int16 kernel was picked from the declared formats, not from scanned codes: gse_rows
  // checks the codes while packing and declines (returns false, writes nothing) if they do
  // not fit it or the epilogue.
  bool codes_unchecked = false;
};

// One 4x16 tile over all groups: group sums, then the epilogue, group after group.
template <class Kernel, class Epilogue>
__attribute__((target("avx2,fma"))) void tile_over_groups(
    const typename Kernel::Code* const a_rows[kTileRows], const typename Kernel::Code* b_panel,
    const int32_t* panel_init, const typename Epilogue::Scale* a_scales,
    const typename Epilogue::Scale* b_scales, int64_t groups, int g, int64_t int16_steps,
    typename Epilogue::State& state) {
  using Code = typename Kernel::Code;
  const int64_t chunks_per_group = g / Kernel::kPerChunk;
  TileSums sums;
  for (int64_t j = 0; j < groups; ++j) {
    const Code* group_rows[kTileRows];
    for (int r = 0; r < kTileRows; ++r) group_rows[r] = a_rows[r] + j * g;
    Kernel::group_sums(group_rows, b_panel + j * g * kTileCols, chunks_per_group, int16_steps,
                       panel_init ? panel_init + j * kTileCols : nullptr, sums);
    Epilogue::add_group(sums, a_scales + j * kTileRows, b_scales + j * kTileCols, state);
  }
}

// 2^(code + offset) for every exponent code of an E-bit format (the NaN code's entry unused);
// for the shift epilogue (Scale int32_t) the exponent code + offset itself, negated when the
// shifts go right.
template <typename Scale>
std::vector<Scale> power_table(int nan_code, int offset, bool negate = false) {
  std::vector<Scale> table(static_cast<size_t>(nan_code + 1));
  for (int code = 0; code <= nan_code; ++code) {
    if constexpr (std::is_integral_v<Scale>) table[code] = negate ? -(code + offset) : code + offset;
    else table[code] = static_cast<Scale>(std::ldexp(1.0, code + offset));
  }
  return table;
}

// Per-tile / per-panel scale tables of one epilogue: a[(tile * groups + j) * 4 + r] for A row
// r of a row tile, b[(panel * groups + j) * 16 + c] for column c of a panel; padding rows and
// columns and NaN groups get the table's entry for... nothing: `fill` (1, or shift 0).
template <typename Scale>
struct ScaleTables {
  ScratchArray<Scale> a, b;
  ScaleTables(const GseJob& job, Scale fill, bool negate_shifts, ScratchSlot slot_a, ScratchSlot slot_b)
      : a(slot_a, static_cast<size_t>(tiles(job) * job.groups * kTileRows), false),
        b(slot_b, static_cast<size_t>(panels(job) * job.groups * kTileCols), false) {
    const QuantizedTensor &ta = *job.a, &tb = *job.b;
    const int nan_a = job.ops->gse_a.nan_code(), nan_b = job.ops->gse_b.nan_code();
    const std::vector<Scale> a_powers = power_table<Scale>(nan_a, job.offset_a, negate_shifts);
    const std::vector<Scale> b_powers = power_table<Scale>(nan_b, job.offset_b, negate_shifts);
    const int64_t groups = job.groups, row_count = job.row_end - job.row_begin;
    std::fill_n(a.data(), tiles(job) * groups * kTileRows, fill);
    std::fill_n(b.data(), panels(job) * groups * kTileCols, fill);
    for (int64_t r = 0; r < row_count; ++r) {
      const int32_t* codes = ta.group_exponents.data() + (job.row_begin + r) * groups;
      Scale* out = a.data() + (r / kTileRows) * groups * kTileRows + r % kTileRows;
      for (int64_t j = 0; j < groups; ++j)
        if (codes[j] != nan_a) out[j * kTileRows] = a_powers[codes[j]];
    }
    for (int64_t n = 0; n < tb.rows; ++n) {
      const int32_t* codes = tb.group_exponents.data() + n * groups;
      Scale* out = b.data() + (n / kTileCols) * groups * kTileCols + n % kTileCols;
      for (int64_t j = 0; j < groups; ++j)
        if (codes[j] != nan_b) out[j * kTileCols] = b_powers[codes[j]];
    }
  }
  static int64_t tiles(const GseJob& job) {
    return (job.row_end - job.row_begin + kTileRows - 1) / kTileRows;
  }
  static int64_t panels(const GseJob& job) { return (job.b->rows + kTileCols - 1) / kTileCols; }
};

// A proven tile's outputs: its int32 accumulators are the final W-bit values.
GSQHW_AVX2_FUNCTION void write_proven_outputs(const ResultPointers& out, int64_t m0, int64_t n0,
                                              int rows_here, int cols_here,
                                              const Int32TileState& state,
                                              const FixedToFp32& fixed_to_fp32) {
  for (int r = 0; r < rows_here; ++r) {
    if (cols_here == kTileCols && fixed_to_fp32.int32_by_scale()) {
      out.fixed_outputs_16(m0 + r, n0, state.acc[r], fixed_to_fp32);
    } else {
      for (int c = 0; c < cols_here; ++c)
        out.fixed_output(m0 + r, n0 + c, state.acc[r][c], fixed_to_fp32);
    }
  }
}

// A bounded tile's outputs: fp32 as they are; fixed ones whose bound may have been exceeded
// (they may have saturated) are recomputed by the scalar path, which saturates exactly.
template <class Epilogue>
GSQHW_AVX2_FUNCTION void write_bounded_outputs(const GseJob& job, const ResultPointers& out,
                                               int64_t m0, int64_t n0, int rows_here,
                                               int cols_here, const typename Epilogue::State& state,
                                               const FixedToFp32& fixed_to_fp32,
                                               GemmResult& result) {
  constexpr bool kFp32 = std::is_same_v<Epilogue, FloatFp32Epilogue> ||
                         std::is_same_v<Epilogue, DoubleFp32Epilogue>;
  for (int r = 0; r < rows_here; ++r) {
    if constexpr (std::is_same_v<Epilogue, FloatFp32Epilogue>) {
      if (cols_here == kTileCols) {
        out.fp32_outputs_16(m0 + r, n0, state.acc[r]);
        continue;
      }
    }
    for (int c = 0; c < cols_here; ++c) {
      if constexpr (kFp32) {
        out.fp32_output(m0 + r, n0 + c, static_cast<float>(state.acc[r][c]));
      } else if (static_cast<double>(state.bound[r][c]) <= job.fixed_bound_limit) {
        out.fixed_output(m0 + r, n0 + c, static_cast<int64_t>(state.acc[r][c]), fixed_to_fp32);
      } else {
        scalar_gemm_output(*job.ops, *job.a, *job.b, *job.acc, m0 + r, n0 + c, result);
      }
    }
  }
}

// One tile's slice of the groups through the shift epilogue of the job's direction.
template <class Kernel>
GSQHW_AVX2_FUNCTION void proven_fixed_tile(const GseJob& job, const typename Kernel::Code* const a_rows[kTileRows],
                                           const typename Kernel::Code* b_panel, const int32_t* panel_init,
                                           const int32_t* a_shifts, const int32_t* b_shifts,
                                           int64_t groups, Int32TileState& state) {
  const int g = job.ops->gse_a.g;
  auto run = [&](auto epilogue) {
    tile_over_groups<Kernel, decltype(epilogue)>(a_rows, b_panel, panel_init, a_shifts, b_shifts,
                                                 groups, g, job.int16_steps, state);
  };
  switch (job.shift_direction) {
    case ShiftDirection::left: run(ShiftFixedEpilogue<ShiftDirection::left>{}); break;
    case ShiftDirection::right: run(ShiftFixedEpilogue<ShiftDirection::right>{}); break;
    case ShiftDirection::both: run(ShiftFixedEpilogue<ShiftDirection::both>{}); break;
  }
}

// How a (row tile, panel) pair is computed.
enum class TilePath : uint8_t { scalar /* NaN groups */, proven /* shift epilogue */, bounded };

// Whether int16 codes in these ranges give exact group sums (|S| < 2^31) that the epilogue
// takes exactly (float epilogues: |S| < 2^24, an exact float).
bool int16_kernel_fits(const CodeRange& ca, const CodeRange& cb, int64_t g, bool float_epilogue) {
  const int64_t max_a = ca.max_abs(), max_b = cb.max_abs();
  return max_a <= 32767 && max_b <= 32767 && ca.min > -32768 && cb.min > -32768 &&
         g * max_a * max_b < (int64_t{1} << (float_epilogue ? 24 : 31));
}

// Returns false (having written nothing) only when job.codes_unchecked and the codes do not fit.
template <class Kernel, class Epilogue>
GSQHW_AVX2_FUNCTION bool gse_rows(const GseJob& job, GemmResult& result) {
  using Code = typename Kernel::Code;
  using Scale = typename Epilogue::Scale;
  constexpr bool kFp32 = std::is_same_v<Epilogue, FloatFp32Epilogue> ||
                         std::is_same_v<Epilogue, DoubleFp32Epilogue>;
  constexpr bool kOffset = std::is_same_v<Kernel, OffsetInt8Kernel>;
  const QuantizedTensor &a = *job.a, &b = *job.b;
  const int g = job.ops->gse_a.g;
  const int nan_a = job.ops->gse_a.nan_code(), nan_b = job.ops->gse_b.nan_code();
  const int64_t groups = job.groups, padded_k = job.padded_k;
  const int64_t row_count = job.row_end - job.row_begin;
  const int64_t row_tiles = ScaleTables<Scale>::tiles(job), panels = ScaleTables<Scale>::panels(job);
  const bool tile_proofs = !kFp32 && job.tile_proof_limit > 0;

  // A rows (+ a zero row for partial tiles), B panels, the offset kernel's start values, and
  // the codes' group square sums when the tile proof is used.
  // (Zero padding is needed only where k or the last panel is partial; the zero row always.)
  const bool k_padded = padded_k != a.cols;
  ScratchArray<Code> pa(ScratchSlot::packed_a, static_cast<size_t>((row_count + 1) * padded_k), k_padded);
  ScratchArray<Code> pb(ScratchSlot::packed_b, static_cast<size_t>(panels * padded_k * kTileCols),
                        k_padded || b.rows % kTileCols != 0);
  ScratchArray<int64_t> a_squares(ScratchSlot::squares_a, tile_proofs ? static_cast<size_t>(row_count * groups) : 0, false);
  ScratchArray<int64_t> b_squares(ScratchSlot::squares_b, tile_proofs ? static_cast<size_t>(b.rows * groups) : 0, false);
  std::fill_n(pa.data() + row_count * padded_k, padded_k, Code{0});
  CodeRange a_range, b_range;
  pack_a_rows(a, job.row_begin, job.row_end, padded_k, kOffset ? job.a_offset : 0, pa.data(), g,
              {tile_proofs ? a_squares.data() : nullptr, job.codes_unchecked ? &a_range : nullptr});
  pack_b_panels(b, padded_k, pb.data(), g,
                {tile_proofs ? b_squares.data() : nullptr, job.codes_unchecked ? &b_range : nullptr});
  if (job.codes_unchecked && !int16_kernel_fits(a_range, b_range, g, std::is_same_v<Scale, float>))
    return false;
  const std::vector<int32_t> init =
      kOffset ? offset_corrections(b, groups, g, job.a_offset) : std::vector<int32_t>();

  // The scales of the bounded epilogue, made when the first tile needs them (with tile proofs
  // usually none does).
  std::unique_ptr<ScaleTables<Scale>> scales;
  auto bounded_scales = [&]() -> ScaleTables<Scale>& {
    if (!scales) scales = std::make_unique<ScaleTables<Scale>>(job, Scale{1}, false, ScratchSlot::scales_a, ScratchSlot::scales_b);
    return *scales;
  };
  std::vector<uint8_t> tile_has_nan(static_cast<size_t>(row_tiles), 0);
  std::vector<uint8_t> panel_has_nan(static_cast<size_t>(panels), 0);
  auto any_nan_group = [&](const QuantizedTensor& t, int64_t row, int nan_code) {
    const int32_t* codes = t.group_exponents.data() + row * groups;
    return std::find(codes, codes + groups, nan_code) != codes + groups;
  };
  for (int64_t r = 0; r < row_count; ++r)
    if (any_nan_group(a, job.row_begin + r, nan_a)) tile_has_nan[r / kTileRows] = 1;
  for (int64_t n = 0; n < b.rows; ++n)
    if (any_nan_group(b, n, nan_b)) panel_has_nan[n / kTileCols] = 1;

  // The tile proof's factors and the shift epilogue's tables (fixed accumulators only).
  std::vector<double> a_factors, b_factors;
  std::unique_ptr<ScaleTables<int32_t>> shifts;
  if (tile_proofs) {
    a_factors = TileProof::factors(a_squares.data(), a.group_exponents.data() + job.row_begin * groups,
                                   row_count, groups, kTileRows, nan_a,
                                   power_table<double>(nan_a, job.offset_a));
    b_factors = TileProof::factors(b_squares.data(), b.group_exponents.data(), b.rows, groups,
                                   kTileCols, nan_b, power_table<double>(nan_b, job.offset_b));
    shifts = std::make_unique<ScaleTables<int32_t>>(job, 0, job.shift_direction == ShiftDirection::right,
                                                    ScratchSlot::shifts_a, ScratchSlot::shifts_b);
  }
  auto tile_path = [&](int64_t tile, int64_t panel) {
    if (tile_has_nan[tile] || panel_has_nan[panel]) return TilePath::scalar;
    if (tile_proofs && TileProof::holds(a_factors.data() + tile * groups,
                                        b_factors.data() + panel * groups, groups,
                                        job.tile_proof_limit))
      return TilePath::proven;
    return TilePath::bounded;
  };

  // Blocking (as in GotoBLAS): blocks of B panels whose slices of one block of K stay in L2
  // (~384 KiB) while every row tile runs over them, and K blocks small enough that a row
  // tile's slice of A (<= 8 KiB) stays in L1 across the panels of the block. The tiles'
  // accumulators live in `proven` / `bounded` between K blocks, which run in order, so each
  // output still adds its groups in order j = 0, 1, 2, ... as the semantics require.
  const int64_t k_block_groups =
      std::max<int64_t>(1, (8 << 10) / (kTileRows * g * static_cast<int64_t>(sizeof(Code))));
  const int64_t panel_slice_bytes = k_block_groups * g * kTileCols * static_cast<int64_t>(sizeof(Code));
  const int64_t panels_per_block = std::max<int64_t>(1, (384 << 10) / panel_slice_bytes);
  const int64_t pair_stride = std::min(panels, panels_per_block);  // pairs of one row tile
  const int64_t block_pairs = row_tiles * pair_stride;
  ScratchArray<Int32TileState> proven(ScratchSlot::proven_tiles,
                                      static_cast<size_t>(tile_proofs ? block_pairs : 0), false);
  ScratchArray<typename Epilogue::State> bounded(ScratchSlot::bounded_tiles,
                                                 static_cast<size_t>(block_pairs), false);
  std::vector<TilePath> paths(static_cast<size_t>(block_pairs));
  const FixedToFp32 fixed_to_fp32(job.acc->frac_bits);
  const ResultPointers out(result);

  for (int64_t block = 0; block < panels; block += panels_per_block) {
    const int64_t block_end = std::min(panels, block + panels_per_block);
    for (int64_t j0 = 0; j0 < groups; j0 += k_block_groups) {
      const int64_t j_count = std::min(k_block_groups, groups - j0);
      const bool first = j0 == 0, last = j0 + j_count == groups;
      for (int64_t tile = 0; tile < row_tiles; ++tile) {
        const int64_t m0 = job.row_begin + tile * kTileRows;
        const int rows_here = static_cast<int>(std::min<int64_t>(kTileRows, job.row_end - m0));
        const Code* a_rows[kTileRows];
        for (int r = 0; r < kTileRows; ++r)  // rows past the end read the zero row
          a_rows[r] = pa.data() + (r < rows_here ? tile * kTileRows + r : row_count) * padded_k + j0 * g;
        for (int64_t panel = block; panel < block_end; ++panel) {
          const int64_t pair = tile * pair_stride + (panel - block);
          const int64_t n0 = panel * kTileCols;
          const int cols_here = static_cast<int>(std::min<int64_t>(kTileCols, b.rows - n0));
          if (first) paths[pair] = tile_path(tile, panel);
          const Code* b_panel = pb.data() + (panel * padded_k + j0 * g) * kTileCols;
          const int32_t* panel_init =
              kOffset ? init.data() + (panel * groups + j0) * kTileCols : nullptr;
          switch (paths[pair]) {
            case TilePath::scalar:  // rare: the scalar path handles NaN groups
              if (last)
                for (int r = 0; r < rows_here; ++r)
                  for (int c = 0; c < cols_here; ++c)
                    scalar_gemm_output(*job.ops, a, b, *job.acc, m0 + r, n0 + c, result);
              break;
            case TilePath::proven: {
              Int32TileState& state = proven[pair];
              if (first) state = Int32TileState{};
              proven_fixed_tile<Kernel>(job, a_rows, b_panel, panel_init,
                                        shifts->a.data() + (tile * groups + j0) * kTileRows,
                                        shifts->b.data() + (panel * groups + j0) * kTileCols,
                                        j_count, state);
              if (last) write_proven_outputs(out, m0, n0, rows_here, cols_here, state, fixed_to_fp32);
              break;
            }
            case TilePath::bounded: {
              typename Epilogue::State& state = bounded[pair];
              if (first) state = typename Epilogue::State{};
              ScaleTables<Scale>& scales = bounded_scales();
              tile_over_groups<Kernel, Epilogue>(a_rows, b_panel, panel_init,
                                                 scales.a.data() + (tile * groups + j0) * kTileRows,
                                                 scales.b.data() + (panel * groups + j0) * kTileCols,
                                                 j_count, g, job.int16_steps, state);
              if (last) write_bounded_outputs<Epilogue>(job, out, m0, n0, rows_here, cols_here, state,
                                                        fixed_to_fp32, result);
              break;
            }
          }
        }
      }
    }
  }
  return true;
}

// Every 2^u_a, 2^u_b and 2^(u_a + u_b) an exact float (normal or subnormal)?
bool scales_are_floats(const ExponentRange& ea, const ExponentRange& eb) {
  if (ea.lo > ea.hi || eb.lo > eb.hi) return true;  // only NaN groups: scales unused
  auto in_range = [](int lo, int hi) { return lo >= -149 && hi <= 127; };
  return in_range(ea.lo, ea.hi) && in_range(eb.lo, eb.hi) && in_range(ea.lo + eb.lo, ea.hi + eb.hi);
}

// The double epilogues need S * 2^u_a and S * 2^(u_a + u_b) to be normal doubles (exact, and
// floor of a tiny negative value not lost to underflow) for every |S| < 2^31.
bool scales_fit_double(const ExponentRange& ea, const ExponentRange& eb) {
  if (ea.lo > ea.hi || eb.lo > eb.hi) return true;
  auto in_range = [](int lo, int hi) { return lo >= -1000 && hi <= 990; };
  return in_range(ea.lo, ea.hi) && in_range(eb.lo, eb.hi) && in_range(ea.lo + eb.lo, ea.hi + eb.hi);
}

template <class Kernel>
bool gse_rows_with_epilogue(const GseJob& job, bool float_scales, GemmResult& result) {
  const AccumulatorSpec& acc = *job.acc;
  if (acc.kind == AccumulatorSpec::Kind::fp32) {
    return float_scales ? gse_rows<Kernel, FloatFp32Epilogue>(job, result)
                        : gse_rows<Kernel, DoubleFp32Epilogue>(job, result);
  }
  GseJob fixed_job = job;
  // Tiles proven by TileProof (see there; its rounding margin needs groups < 2^20) use the
  // shift epilogue, whatever the scales; the others the per-output bound epilogues below.
  if (job.groups < (int64_t{1} << 20))
    fixed_job.tile_proof_limit =
        static_cast<double>(std::min<int64_t>(fixed_max(acc.width), INT32_MAX));
  // The float bound is a sum of `groups` exact terms, each addition rounded to nearest: it is
  // at least (true sum) * (1 - 2^-24)^groups, so a computed bound <= L / (1 + 2 groups 2^-24)
  // proves the true sum <= L (groups * 2^-24 is tiny here).
  const double rounding_margin = 1 + 2.0 * static_cast<double>(job.groups) * 0x1.0p-24;
  if (float_scales && acc.width <= 32 && job.groups < (int64_t{1} << 20)) {
    fixed_job.fixed_bound_limit = static_cast<double>(fixed_max(acc.width)) / rounding_margin;
    return gse_rows<Kernel, FloatFixedEpilogue>(fixed_job, result);
  } else {
    // Double bound: at most 2^52 and exact sums of integers; the 2^-30 absorbs the rounding
    // of the bound once it exceeds 2^53 (not reached below the limit).
    fixed_job.fixed_bound_limit =
        std::min(static_cast<double>(fixed_max(acc.width)), 0x1.0p52) * (1 - 0x1.0p-30);
    return gse_rows<Kernel, DoubleFixedEpilogue>(fixed_job, result);
  }
}

// Picks the integer kernel from the codes present and the epilogue from the exponents present.
// Returns false when no kernel is exact for these codes (malformed, out-of-format values).
GSQHW_AVX2_FUNCTION bool gse_rows_fast(const GemmOperands& ops, const QuantizedTensor& a, const QuantizedTensor& b,
                   const AccumulatorSpec& acc, int64_t row_begin, int64_t row_end,
                   GemmResult& result) {
  GseJob job{&ops, &a, &b, &acc, row_begin, row_end, a.groups_per_row(), 0, 0, 0};
  job.padded_k = job.groups * ops.gse_a.g;
  const bool fixed = acc.kind == AccumulatorSpec::Kind::fixed;
  // x_j = (e_a - B_a - frac_a) + (e_b - B_b - frac_b); fixed adds F on A's side.
  job.offset_a = -ops.gse_a.bias() - ops.gse_a.frac_bits() + (fixed ? acc.frac_bits : 0);
  job.offset_b = -ops.gse_b.bias() - ops.gse_b.frac_bits();
  const ExponentRange ea = exponent_range(a, row_begin, row_end, ops.gse_a.nan_code(), job.offset_a);
  const ExponentRange eb = exponent_range(b, 0, b.rows, ops.gse_b.nan_code(), job.offset_b);
  if (!ea.codes_valid || !eb.codes_valid) return false;
  if (!scales_fit_double(ea, eb)) return false;  // extreme F: the scalar path
  if (ea.lo <= ea.hi && eb.lo <= eb.hi) {  // the signs of x = u_a + u_b (shift epilogue)
    if (ea.lo + eb.lo >= 0) job.shift_direction = ShiftDirection::left;
    else if (ea.hi + eb.hi <= 0) job.shift_direction = ShiftDirection::right;
  }

  const int64_t g = ops.gse_a.g;
  // b = 8 on both sides: the int16 kernel, as the codes of these formats (|code| <= 128) need
  // it (the offset-binary int8 kernel needs b <= 7 on one side). Then the codes are not
  // scanned here first (a pass over all of them, ~4% of the time): gse_rows checks them while
  // packing and declines if they are not what the formats declare; the scan below decides.
  if (ops.gse_a.b == 8 && ops.gse_b.b == 8) {
    GseJob unchecked = job;
    unchecked.codes_unchecked = true;
    const bool float_scales = scales_are_floats(ea, eb) && g * 128 * 128 < (int64_t{1} << 24);
    if (gse_rows_with_epilogue<Int16Kernel>(unchecked, float_scales, result)) return true;
  }

  const CodeRange ca = code_range(a, row_begin, row_end), cb = code_range(b, 0, b.rows);
  const int64_t max_a = ca.max_abs(), max_b = cb.max_abs();
  // The float epilogues need |S| < 2^24 (exact float); the double ones |S| < 2^31.
  const bool float_scales = scales_are_floats(ea, eb) && g * max_a * max_b < (int64_t{1} << 24) &&
                            cpu_has_avx2_fma();
  // Offset-binary int8 kernel: A's codes minus min_a must fit u8, B's codes s8, and the
  // largest |vpmaddubsw lane| (a pair sum) 2 * (max_a - min_a) * max|b| must fit int16. When
  // not even two of those fit int16 (e.g. b = 8 on both sides), widening after every
  // vpmaddubsw costs as many multiplies per MAC as vpmaddwd: the int16 kernel then.
  const int64_t a_span = static_cast<int64_t>(ca.max) - ca.min;  // ca.min <= 0 <= ca.max
  const int64_t pair_bound = 2 * a_span * max_b;
  const int64_t int16_steps = pair_bound == 0 ? (int64_t{1} << 20) : 32767 / pair_bound;
  if (a_span <= 255 && cb.min >= -128 && cb.max <= 127 && int16_steps >= 2) {
    job.a_offset = ca.min;
    job.int16_steps = int16_steps;
    return gse_rows_with_epilogue<OffsetInt8Kernel>(job, float_scales, result);
  }
  if (int16_kernel_fits(ca, cb, g, false))
    return gse_rows_with_epilogue<Int16Kernel>(job, float_scales, result);
  return false;
}

// ---------------------------------------------------------------------------------------------
// Minifloat x minifloat with the fp32 accumulator

// Decoded values (MX block scales folded in) of rows [row_begin, row_end) of t, row-major.
// Codes go through the format's code table (bits <= 16).
std::vector<double> decoded_rows(const MinifloatParams& p, int block, const QuantizedTensor& t,
                                 int64_t row_begin, int64_t row_end) {
  const bool tabulated = p.total_bits() <= 16;
  static const std::vector<double> no_table;
  const std::vector<double>& table = tabulated ? minifloat_code_table(p).value : no_table;
  const int64_t cols = t.cols;
  std::vector<double> out(static_cast<size_t>((row_end - row_begin) * cols));
  for (int64_t r = row_begin; r < row_end; ++r)
    for (int64_t k = 0; k < cols; ++k) {
      uint32_t code = static_cast<uint32_t>(t.codes[r * cols + k]);
      double v = tabulated && code < table.size() ? table[code] : decode_minifloat(p, code);
      if (block) {
        int scale = t.group_exponents[r * t.groups_per_row() + k / block];
        v = scale == 255 ? std::nan("") : std::ldexp(v, scale - 127);
      }
      out[(r - row_begin) * cols + k] = v;
    }
  return out;
}

constexpr int kMfCols = 32;  // independent accumulators per tile (hides the add latency)

// Which B panels / A rows hold an Inf or NaN (those outputs go to the scalar path), and
// whether every value is exactly a float (then the float FMA form applies).
struct DecodedFacts {
  std::vector<uint8_t> bad;  // per panel (B) or row (A)
  bool all_floats = true;
};

DecodedFacts decoded_facts(const std::vector<double>& values, int64_t rows, int64_t cols,
                           int64_t rows_per_unit) {
  DecodedFacts facts;
  facts.bad.assign(static_cast<size_t>((rows + rows_per_unit - 1) / rows_per_unit), 0);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t k = 0; k < cols; ++k) {
      double v = values[r * cols + k];
      if (!std::isfinite(v)) facts.bad[r / rows_per_unit] = 1;
      else if (static_cast<double>(static_cast<float>(v)) != v) facts.all_floats = false;
    }
  return facts;
}

// acc = RNE_fp32(acc + a * b) per element in order, 32 outputs (one row, 32 columns) at a
// time, double form: exact double product + exact_fp32_step.
__attribute__((target("avx2,fma"))) void minifloat_fp32_panel(const double* a_row,
                                                               const double* b_panel,
                                                               int64_t k_len, float out[kMfCols]) {
  __m256d accs[kMfCols / 4];
  for (auto& v : accs) v = _mm256_setzero_pd();
  for (int64_t k = 0; k < k_len; ++k) {
    __m256d av = _mm256_set1_pd(a_row[k]);
    for (int v = 0; v < kMfCols / 4; ++v) {
      __m256d product = _mm256_mul_pd(av, _mm256_load_pd(b_panel + k * kMfCols + 4 * v));  // exact
      accs[v] = exact_fp32_step(accs[v], product);
    }
  }
  for (int v = 0; v < kMfCols / 4; ++v)
    _mm_storeu_ps(out + 4 * v, _mm256_cvtpd_ps(accs[v]));  // exact: the doubles are floats
}

// Float form: every value an exact float, so fma(a, b, acc) is exactly the one rounding of
// acc + a*b (the product inside an FMA is exact; subnormals and overflow to Inf as IEEE; NaN
// cannot arise from finite operands).
// Float form for 4 rows x 16 columns (8 accumulators: two FMAs per cycle at latency 4) over
// one half of a 32-column panel: out[r][c] for A rows a_rows[r], columns 16h..16h+15.
constexpr int kMfTileRows = kFloatFormTileRows;  // (the kernel names 4 rows of accumulators)

__attribute__((target("avx2,fma"))) void minifloat_fp32_tile_4x16(const float* const a_rows[kMfTileRows],
                                                                   const float* b_panel, int64_t k_len,
                                                                   float acc[kMfTileRows][16]) {
  // Named accumulators (see Int16Kernel).
  __m256 c00 = _mm256_load_ps(acc[0]), c01 = _mm256_load_ps(acc[0] + 8);
  __m256 c10 = _mm256_load_ps(acc[1]), c11 = _mm256_load_ps(acc[1] + 8);
  __m256 c20 = _mm256_load_ps(acc[2]), c21 = _mm256_load_ps(acc[2] + 8);
  __m256 c30 = _mm256_load_ps(acc[3]), c31 = _mm256_load_ps(acc[3] + 8);
  for (int64_t k = 0; k < k_len; ++k) {
    const __m256 b0 = _mm256_load_ps(b_panel + k * 16), b1 = _mm256_load_ps(b_panel + k * 16 + 8);
#define GSQHW_ROW(r, lo, hi)                                  \
  {                                                           \
    const __m256 av = _mm256_broadcast_ss(a_rows[r] + k);     \
    lo = _mm256_fmadd_ps(av, b0, lo);                         \
    hi = _mm256_fmadd_ps(av, b1, hi);                         \
  }
    GSQHW_ROW(0, c00, c01)
    GSQHW_ROW(1, c10, c11)
    GSQHW_ROW(2, c20, c21)
    GSQHW_ROW(3, c30, c31)
#undef GSQHW_ROW
  }
  _mm256_store_ps(acc[0], c00), _mm256_store_ps(acc[0] + 8, c01);
  _mm256_store_ps(acc[1], c10), _mm256_store_ps(acc[1] + 8, c11);
  _mm256_store_ps(acc[2], c20), _mm256_store_ps(acc[2] + 8, c21);
  _mm256_store_ps(acc[3], c30), _mm256_store_ps(acc[3] + 8, c31);
}

}  // namespace

// (The minifloat code table and the float form are declared in gemm_fast.h: the INT8 file
// uses them too.)

static MinifloatCodeTable make_minifloat_code_table(const MinifloatParams& p) {
  const size_t size = size_t{1} << p.total_bits();
  MinifloatCodeTable t;
  t.value.resize(size);
  t.float_value.resize(size);
  t.exponent.assign(size, 0);
  t.lowest_bit.assign(size, 0);
  t.finite_nonzero.assign(size, 0);
  t.non_finite.assign(size, 0);
  for (uint32_t code = 0; code < size; ++code) {
    const double v = decode_minifloat(p, code);
    t.value[code] = v;
    t.float_value[code] = static_cast<float>(v);
    if (!std::isfinite(v)) {
      t.non_finite[code] = 1;
      continue;
    }
    if (static_cast<double>(t.float_value[code]) != v) t.finite_values_are_floats = false;
    if (v == 0) continue;
    uint64_t bits;
    std::memcpy(&bits, &v, sizeof bits);
    const uint64_t mantissa = (bits & ((uint64_t{1} << 52) - 1)) | (uint64_t{1} << 52);
    t.finite_nonzero[code] = 1;
    t.exponent[code] = std::ilogb(v);
    t.lowest_bit[code] = std::ilogb(v) - 52 + __builtin_ctzll(mantissa);  // (v is a normal double)
  }
  return t;
}

const MinifloatCodeTable& minifloat_code_table(const MinifloatParams& p) {
  static std::mutex mutex;
  static std::map<const MinifloatParams*, std::unique_ptr<const MinifloatCodeTable>> tables;
  std::lock_guard<std::mutex> lock(mutex);
  auto& table = tables[&p];
  if (!table) table = std::make_unique<const MinifloatCodeTable>(make_minifloat_code_table(p));
  return *table;
}

__attribute__((target("avx2,fma"))) void minifloat_fp32_float_rows(const MinifloatFloatJob& job,
                                                                    float* state) {
  static_assert(kMfTileRows == 4);
  for_each_blocked_tile(job.a, 1, job.b, job.row_count, job.k_len, job.panels16, state,
                        [](const float* const a_rows[4], const float* b_panel, int64_t count,
                           float* tile_state) {
                          minifloat_fp32_tile_4x16(a_rows, b_panel, count,
                                                   reinterpret_cast<float(*)[16]>(tile_state));
                        });
}

namespace {

// The float form's operands straight from the codes, without the double copies: for formats
// without MX block scales whose every value is exactly a float (FP8, BF16, FP16), through a
// float table of the codes. A in rows (+ the zero row), B in panels of 16 columns
// [panel][k][16]; `a_bad` per row and `b_bad` per 32-column panel mark Inf/NaN operands, as
// decoded_facts does. Returns false (the caller then takes the general route) for other
// formats or codes outside the format's range.
struct FloatOperands {
  std::vector<uint8_t> a_bad, b_bad;
};

bool decode_floats_directly(const GemmOperands& ops, const QuantizedTensor& a,
                            const QuantizedTensor& b, int64_t row_begin, int64_t row_end,
                            float* af, float* bf, FloatOperands& facts) {
  if (ops.block_a || ops.block_b || ops.mf_a->total_bits() > 16 || ops.mf_b->total_bits() > 16)
    return false;
  const MinifloatCodeTable& ta = minifloat_code_table(*ops.mf_a);
  const MinifloatCodeTable& tb = minifloat_code_table(*ops.mf_b);
  if (!ta.finite_values_are_floats || !tb.finite_values_are_floats) return false;
  const int64_t k_len = a.cols, row_count = row_end - row_begin;
  facts.a_bad.assign(static_cast<size_t>(row_count), 0);
  facts.b_bad.assign(static_cast<size_t>((b.rows + kMfCols - 1) / kMfCols), 0);
  uint32_t out_of_range = 0;  // any code >= the table size (hand-built tensors)
  for (int64_t r = 0; r < row_count; ++r) {
    const int32_t* codes = a.codes.data() + (row_begin + r) * k_len;
    float* dst = af + r * k_len;
    uint8_t bad = 0;
    for (int64_t k = 0; k < k_len; ++k) {
      const uint32_t code = static_cast<uint32_t>(codes[k]);
      out_of_range |= code >= ta.value.size();
      const uint32_t index = code < ta.value.size() ? code : 0;
      dst[k] = ta.float_value[index];
      bad |= ta.non_finite[index];
    }
    facts.a_bad[r] = bad;
  }
  for (int64_t n = 0; n < b.rows; ++n) {
    const int32_t* codes = b.codes.data() + n * k_len;
    float* dst = bf + (n / 16) * k_len * 16 + n % 16;
    uint8_t bad = 0;
    for (int64_t k = 0; k < k_len; ++k) {
      const uint32_t code = static_cast<uint32_t>(codes[k]);
      out_of_range |= code >= tb.value.size();
      const uint32_t index = code < tb.value.size() ? code : 0;
      dst[k * 16] = tb.float_value[index];
      bad |= tb.non_finite[index];
    }
    facts.b_bad[n / kMfCols] |= bad;
  }
  return !out_of_range;
}

// The float form on operands in af (rows, then the zero row) and bf (panels of 16), and the
// outputs: Inf/NaN operands (a_bad per row, b_bad per 32-column panel) by the scalar path.
void minifloat_fp32_float_form(const GemmOperands& ops, const QuantizedTensor& a,
                               const QuantizedTensor& b, const AccumulatorSpec& acc,
                               int64_t row_begin, int64_t row_end, const float* af, const float* bf,
                               const std::vector<uint8_t>& a_bad, const std::vector<uint8_t>& b_bad,
                               GemmResult& result) {
  const int64_t k_len = a.cols, row_count = row_end - row_begin, panels16 = (b.rows + 15) / 16;
  const int64_t row_tiles = (row_count + kMfTileRows - 1) / kMfTileRows;
  ScratchArray<float> state(ScratchSlot::float_tiles,
                            static_cast<size_t>(row_tiles * panels16 * kMfTileRows * 16), true);  // +0.0
  minifloat_fp32_float_rows({af, bf, row_count, k_len, panels16}, state.data());
  const ResultPointers out(result);
  for (int64_t row = 0; row < row_count; ++row)
    for (int64_t n = 0; n < b.rows; ++n) {
      if (a_bad[row] || b_bad[n / kMfCols]) {  // Inf/NaN operands: scalar
        scalar_gemm_output(ops, a, b, acc, row_begin + row, n, result);
        continue;
      }
      const int64_t tile = row / kMfTileRows, panel = n / 16;
      out.fp32_output(row_begin + row, n,
                      state[static_cast<size_t>(((tile * panels16 + panel) * kMfTileRows + row % kMfTileRows) * 16 + n % 16)]);
    }
}

void minifloat_fp32_rows(const GemmOperands& ops, const QuantizedTensor& a,
                         const QuantizedTensor& b, const AccumulatorSpec& acc, int64_t row_begin,
                         int64_t row_end, GemmResult& result) {
  const int64_t k_len = a.cols, panels = (b.rows + kMfCols - 1) / kMfCols;
  const int64_t row_count = row_end - row_begin, panels16 = (b.rows + 15) / 16;
  ScratchArray<float> af(ScratchSlot::float_a, static_cast<size_t>((row_count + 1) * k_len), false);
  ScratchArray<float> bf(ScratchSlot::float_b, static_cast<size_t>(panels16 * k_len * 16),
                         b.rows % 16 != 0);  // (missing columns of the last panel: zeros)
  std::fill_n(af.data() + row_count * k_len, k_len, 0.0f);  // the zero row
  FloatOperands direct;
  if (decode_floats_directly(ops, a, b, row_begin, row_end, af.data(), bf.data(), direct)) {
    minifloat_fp32_float_form(ops, a, b, acc, row_begin, row_end, af.data(), bf.data(),
                              direct.a_bad, direct.b_bad, result);
    return;
  }
  // The general route: decoded doubles (MX scales folded in), then the float form if every
  // value is a float, else the double form.
  const std::vector<double> bd = decoded_rows(*ops.mf_b, ops.block_b, b, 0, b.rows);
  const std::vector<double> ad = decoded_rows(*ops.mf_a, ops.block_a, a, row_begin, row_end);
  const DecodedFacts b_facts = decoded_facts(bd, b.rows, k_len, kMfCols);
  const DecodedFacts a_facts = decoded_facts(ad, row_count, k_len, 1);
  if (a_facts.all_floats && b_facts.all_floats) {
    for (size_t i = 0; i < ad.size(); ++i) af[i] = static_cast<float>(ad[i]);
    for (int64_t n = 0; n < b.rows; ++n)
      for (int64_t k = 0; k < k_len; ++k)
        bf[static_cast<size_t>(((n / 16) * k_len + k) * 16 + n % 16)] = static_cast<float>(bd[n * k_len + k]);
    minifloat_fp32_float_form(ops, a, b, acc, row_begin, row_end, af.data(), bf.data(),
                              a_facts.bad, b_facts.bad, result);
    return;
  }
  const ResultPointers out(result);
  // Double form. B panel-major: [panel][k][32], padding columns 0.
  AlignedArray<double> bp(static_cast<size_t>(panels * k_len * kMfCols));
  for (int64_t n = 0; n < b.rows; ++n)
    for (int64_t k = 0; k < k_len; ++k)
      bp[static_cast<size_t>(((n / kMfCols) * k_len + k) * kMfCols + n % kMfCols)] = bd[n * k_len + k];
  for (int64_t m = row_begin; m < row_end; ++m) {
    const int64_t row = m - row_begin;
    for (int64_t panel = 0; panel < panels; ++panel) {
      const int64_t n0 = panel * kMfCols;
      const int cols_here = static_cast<int>(std::min<int64_t>(kMfCols, b.rows - n0));
      if (a_facts.bad[row] || b_facts.bad[panel]) {  // Inf/NaN operands: IEEE specials in scalar
        for (int c = 0; c < cols_here; ++c) scalar_gemm_output(ops, a, b, acc, m, n0 + c, result);
        continue;
      }
      float sums[kMfCols];
      minifloat_fp32_panel(ad.data() + row * k_len, bp.data() + panel * k_len * kMfCols, k_len, sums);
      for (int c = 0; c < cols_here; ++c) out.fp32_output(m, n0 + c, sums[c]);
    }
  }
}

}  // namespace

bool fast_gemm_rows(const GemmOperands& ops, const QuantizedTensor& a, const QuantizedTensor& b,
                    const AccumulatorSpec& acc, int64_t row_begin, int64_t row_end,
                    GemmResult& result) {
  if (!cpu_has_avx2_fma() || !mxcsr_is_ieee_default() || row_begin >= row_end || b.rows == 0)
    return false;
  if (ops.kind == GemmOperands::Kind::gse)
    return gse_rows_fast(ops, a, b, acc, row_begin, row_end, result);
  if (ops.kind == GemmOperands::Kind::minifloat && acc.kind == AccumulatorSpec::Kind::fp32) {
    minifloat_fp32_rows(ops, a, b, acc, row_begin, row_end, result);
    return true;
  }
  if (ops.kind == GemmOperands::Kind::int8)  // gemm_fast_int8.cpp
    return fast_int8_rows(ops, a, b, acc, row_begin, row_end, result);
  if (ops.kind == GemmOperands::Kind::minifloat)  // fixed accumulator: gemm_fast_int8.cpp
    return fast_minifloat_fixed_rows(ops, a, b, acc, row_begin, row_end, result);
  return false;
}

}  // namespace gsqhw
