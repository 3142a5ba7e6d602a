// Tile classification and the seeded tile sample (sim/tile_sample.h).
#include "sim/tile_sample.h"

#include <algorithm>
#include <cmath>
#include <random>

#include "numerics/format.h"
#include "numerics/minifloat.h"

namespace gsqhw {

OperandShape operand_shape(const std::string& format_spec, int exp_width) {
  OperandShape s;
  auto format = parse_format(format_spec);
  if (format->gemm_operand() == GemmOperandKind::gse) s.exp_width = exp_width;
  // 8-bit-or-narrower minifloats (FP8, FP6): count subnormal elements.
  const MinifloatOperand mf = format->minifloat_operand();
  if (mf.element && mf.element->total_bits() <= 8) {
    s.fp8 = true;
    s.fp8_mantissa = mf.element->man_bits;
    s.fp8_exponent = mf.element->exp_bits;
  }
  return s;
}

namespace {

// Operand-side case counts of one row of A or B: groups at the extreme exponent codes, zero
// groups, subnormal FP8 elements.
struct RowCases {
  int32_t zero = 0, max_exp = 0, min_exp = 0, subnormal = 0;
};

std::vector<RowCases> row_cases(const QuantizedTensor& q, const OperandShape& shape) {
  std::vector<RowCases> rows(static_cast<size_t>(q.rows));
  const int64_t K = q.cols, G = q.group_size > 0 ? q.group_size : K;
  const int64_t gpr = q.group_size > 0 ? q.groups_per_row() : 1;
  const bool exps = shape.exp_width > 0 && !q.group_exponents.empty();
  const int64_t max_code = (int64_t{1} << shape.exp_width) - 2;  // all-ones is the NaN code
  const int32_t mant_mask = (1 << shape.fp8_mantissa) - 1;
  const int32_t exp_mask = shape.fp8 ? ((1 << shape.fp8_exponent) - 1) << shape.fp8_mantissa : 0;
  for (int64_t r = 0; r < q.rows; ++r) {
    RowCases& rc = rows[static_cast<size_t>(r)];
    const int32_t* codes = q.codes.data() + r * K;
    for (int64_t g = 0; g < gpr; ++g) {
      const int64_t k0 = g * G, k1 = std::min(K, k0 + G);
      bool all_zero = true;
      for (int64_t k = k0; k < k1; ++k) {
        const int32_t c = codes[k];
        if (c != 0) all_zero = false;
        if (shape.fp8 && (c & exp_mask) == 0 && (c & mant_mask) != 0) ++rc.subnormal;
      }
      if (all_zero) ++rc.zero;
      if (exps) {
        const int64_t e = q.group_exponents[static_cast<size_t>(r * gpr + g)];
        if (e == max_code) ++rc.max_exp;
        if (e == 0 && !all_zero) ++rc.min_exp;
      }
    }
  }
  return rows;
}

int case_index(uint32_t bit) {
  int i = 0;
  while (!(bit & 1u)) bit >>= 1, ++i;
  return i;
}

}  // namespace

TileFacts classify_tiles(const ArrayManifest& array, const GemmTiming& t, const QuantizedTensor& a,
                         const QuantizedTensor& b, const Beats& fast, const AccumulatorSpec& acc,
                         const OperandShape& shape) {
  const int R = array.rows, C = array.cols;
  TileFacts f;
  const size_t T = static_cast<size_t>(t.tiles);
  f.cases.assign(T, 0);
  f.edge.assign(T, 0);
  f.counts.assign(kTileCaseCount, std::vector<int32_t>(T, 0));
  const bool fixed = acc.kind == AccumulatorSpec::Kind::fixed;
  const int64_t acc_max = fixed ? (acc.width >= 64 ? INT64_MAX : (int64_t{1} << (acc.width - 1)) - 1) : 0;
  const int64_t acc_min = fixed ? -acc_max - 1 : 0;
  const bool partial_group = a.group_size > 0 && t.k % a.group_size != 0;
  const auto rows_a = row_cases(a, shape), rows_b = row_cases(b, shape);

  auto add = [&](size_t tile, uint32_t bit, int64_t n) {
    if (n <= 0) return;
    f.cases[tile] |= bit;
    f.counts[static_cast<size_t>(case_index(bit))][tile] += static_cast<int32_t>(n);
  };
  for (int64_t tile = 0; tile < t.tiles; ++tile) {
    const size_t ti = static_cast<size_t>(tile);
    const int64_t row0 = (tile / t.tiles_n) * R, col0 = (tile % t.tiles_n) * C;
    const int64_t rows = std::min<int64_t>(R, t.m - row0), cols = std::min<int64_t>(C, t.n - col0);
    f.edge[ti] = rows < R || cols < C;
    int64_t sat = 0, sticky = 0, nan = 0;
    for (int r = 0; r < rows; ++r) {
      const size_t beat = static_cast<size_t>(tile * R + r);
      for (int j = 0; j < cols; ++j) {
        const size_t lane = beat * static_cast<size_t>(C) + static_cast<size_t>(j);
        const uint8_t flags = fast.flags[lane];
        if (fixed && (fast.acc[lane] == acc_max || fast.acc[lane] == acc_min)) ++sat;
        if (flags & kFlagOverflow) ++sticky;
        if (flags & kFlagNaN) ++nan;
      }
    }
    add(ti, kCaseSaturation, sat);
    add(ti, kCaseStickyOverflow, sticky);
    add(ti, kCaseNanGroup, nan);
    RowCases sum;
    auto fold = [&](const RowCases& rc) {
      sum.zero += rc.zero, sum.max_exp += rc.max_exp, sum.min_exp += rc.min_exp;
      sum.subnormal += rc.subnormal;
    };
    for (int64_t r = 0; r < rows; ++r) fold(rows_a[static_cast<size_t>(row0 + r)]);
    for (int64_t j = 0; j < cols; ++j) fold(rows_b[static_cast<size_t>(col0 + j)]);
    add(ti, kCaseZeroGroup, sum.zero);
    add(ti, kCaseMaxExponent, sum.max_exp);
    add(ti, kCaseMinExponent, sum.min_exp);
    add(ti, kCaseFp8Subnormal, sum.subnormal);
    if (partial_group) add(ti, kCasePartialGroup, rows + cols);  // lanes fed a partial group
  }
  return f;
}

TileChoice choose_tiles(const TileFacts& facts, bool fraction, double value, uint64_t seed,
                        const std::string& gemm_name, int64_t max_special) {
  const int64_t T = static_cast<int64_t>(facts.cases.size());
  TileChoice choice;
  choice.capped.assign(kTileCaseCount, 0);
  if (T == 0) return choice;
  // FNV-1a of the GEMM's name: the sample of a GEMM does not depend on where it sits in the
  // trace set or on how the run is split into jobs.
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : gemm_name) h = (h ^ c) * 1099511628211ull;
  std::mt19937_64 rng(seed ^ h);

  std::vector<uint8_t> chosen(static_cast<size_t>(T), 0);
  int64_t want = fraction ? static_cast<int64_t>(std::ceil(value * static_cast<double>(T) - 1e-9))
                          : static_cast<int64_t>(value);
  want = std::clamp<int64_t>(want, 1, T);
  // Floyd's algorithm: `want` distinct tiles uniformly at random.
  for (int64_t j = T - want; j < T; ++j) {
    int64_t pick = std::uniform_int_distribution<int64_t>(0, j)(rng);
    if (chosen[static_cast<size_t>(pick)]) pick = j;
    chosen[static_cast<size_t>(pick)] = 1;
  }
  choice.random = want;
  for (int64_t tile = 0; tile < T; ++tile)
    if (facts.edge[static_cast<size_t>(tile)]) {
      chosen[static_cast<size_t>(tile)] = 1;
      ++choice.edge;
    }
  for (int c = 0; c < kTileCaseCount; ++c) {
    const uint32_t bit = 1u << c;
    if (bit == kCasePartialGroup) continue;  // every tile of the GEMM has it; any tile covers it
    std::vector<int64_t> with;
    for (int64_t tile = 0; tile < T; ++tile)
      if (facts.cases[static_cast<size_t>(tile)] & bit) with.push_back(tile);
    if (static_cast<int64_t>(with.size()) > max_special) {
      std::shuffle(with.begin(), with.end(), rng);
      choice.capped[static_cast<size_t>(c)] = static_cast<int64_t>(with.size()) - max_special;
      with.resize(static_cast<size_t>(std::max<int64_t>(0, max_special)));
    }
    for (int64_t tile : with) chosen[static_cast<size_t>(tile)] = 1;
  }
  for (int64_t tile = 0; tile < T; ++tile)
    if (chosen[static_cast<size_t>(tile)]) choice.tiles.push_back(tile);
  return choice;
}

}  // namespace gsqhw
