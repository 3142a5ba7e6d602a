// The core's generator entry point (gen/core.h): validation, derived sizes, files, manifest;
// and the golden reference of what a core returns.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>

#include "gen/core_internal.h"
#include "gen/verilog_text.h"
#include "base/errors.h"
#include "numerics/format.h"
#include "numerics/fp32_round.h"
#include "numerics/gse.h"

namespace gsqhw {
namespace gen {
namespace {

void require(bool ok, const std::string& message) {
  if (!ok) throw UsageError(message);
}

// The formats the quantizer implements: GSE (round rne/rna/trunc) and the minifloats without
// block scales. Everything else is refused with the limit named.
void check_core_format(const DesignPoint& d, const OperandFormat& f) {
  const std::string where = fmt::format("design {}: the core (level coreRxC) ", d.str());
  if (f.family == OperandFamily::integer)
    throw UsageError(where + "supports gse, fp8, bf16 and fp16 operands; int8's float scales "
                             "have no quantizer yet (use arrayRxC for int8)");
  if (f.family == OperandFamily::gse) {
    GseParams g = GseParams::parse(d.format);
    require(g.round != GseParams::Round::stochastic,
            where + "quantizes with round=rne, rna or trunc; round=stochastic needs a random "
                    "source that matches the golden model's and is not implemented");
  }
}

nlohmann::json port(const std::string& name, const std::string& dir, int width,
                    const std::string& meaning) {
  return {{"name", name}, {"dir", dir}, {"width", width}, {"meaning", meaning}};
}

nlohmann::json core_ports() {
  const int dw = kCoreDescriptorWidth;
  nlohmann::json ports = nlohmann::json::array();
  ports.push_back(port("clk", "in", 1, "clock"));
  ports.push_back(port("rst", "in", 1, "synchronous reset, active high"));
  ports.push_back(port("desc_valid", "in", 1, "a descriptor (M, N, K) is offered"));
  ports.push_back(port("desc_ready", "out", 1, "the core is idle and takes a descriptor"));
  ports.push_back(port("desc_m", "in", dw, "M: rows of A and C"));
  ports.push_back(port("desc_n", "in", dw, "N: rows of B, columns of C"));
  ports.push_back(port("desc_k", "in", dw, "K: the reduction length"));
  ports.push_back(port("in_valid", "in", 1, "an operand word is offered"));
  ports.push_back(port("in_ready", "out", 1, "the core takes the operand word"));
  ports.push_back(port("in_data", "in", 32,
                       "FP32 operand word: A row-major (M x K), then B row-major (N x K)"));
  ports.push_back(port("out_valid", "out", 1, "a result word is offered"));
  ports.push_back(port("out_ready", "in", 1, "the consumer takes the result word"));
  ports.push_back(port("out_data", "out", 32, "FP32 result word of C, row-major (M x N)"));
  ports.push_back(port("busy", "out", 1, "a GEMM is in progress"));
  ports.push_back(port("done", "out", 1, "one cycle after the last result word was taken"));
  ports.push_back(port("error", "out", 3,
                       "why the last descriptor was refused: 0 accepted, 1 a zero size, 2 M, 3 N, "
                       "4 K beyond the capacity"));
  return ports;
}

}  // namespace

CoreParams make_core_params(const DesignPoint& design, const CoreCapacity& capacity,
                            const nlohmann::json& array_manifest) {
  CoreParams p;
  p.design = design;
  DesignPoint array_point = design;
  array_point.level = DesignPoint::Level::array;
  p.pe = make_pe_spec(array_point);
  check_core_format(design, p.pe.format);
  require(capacity.tile_rows >= 2 && capacity.tile_rows <= 64 && capacity.tile_cols >= 2 &&
              capacity.tile_cols <= 64,
          fmt::format("core capacity: tile rows/columns {} x {} outside 2..64", capacity.tile_rows,
                      capacity.tile_cols));
  require(capacity.max_k >= 4 && capacity.max_k <= 4096 &&
              (capacity.max_k & (capacity.max_k - 1)) == 0,
          fmt::format("core capacity: max K = {} is not a power of two in 4..4096",
                      capacity.max_k));
  p.r = design.rows;
  p.c = design.cols;
  p.cw = p.pe.format.code_bits;
  p.xw = p.pe.format.exp_bits;
  p.aw = p.pe.acc_width();
  p.groups = p.pe.format.has_groups();
  if (p.groups) {
    p.g = p.pe.format.gse_g;
    p.log2g = ceil_log2(static_cast<uint64_t>(p.g));
    require(capacity.max_k >= p.g,
            fmt::format("core capacity: max K = {} is below the group size G = {}",
                        capacity.max_k, p.g));
  }
  p.tile_rows = capacity.tile_rows;
  p.tile_cols = capacity.tile_cols;
  p.max_m = capacity.tile_rows * p.r;
  p.max_n = capacity.tile_cols * p.c;
  p.max_k = capacity.max_k;
  p.kw = ceil_log2(static_cast<uint64_t>(p.max_k));
  p.maw = ceil_log2(static_cast<uint64_t>(p.max_m));
  p.naw = ceil_log2(static_cast<uint64_t>(p.max_n));
  p.tcw = std::max(1, ceil_log2(static_cast<uint64_t>(p.tile_cols)));
  p.rw = bits_for_unsigned(static_cast<uint64_t>(std::max(p.max_m, p.max_n)));
  p.sw = bits_for_unsigned(static_cast<uint64_t>(std::max(p.max_k, p.r)));
  p.lane_w = std::max(1, ceil_log2(static_cast<uint64_t>(p.c)));
  p.orw = std::max(1, ceil_log2(static_cast<uint64_t>(p.r)));
  // The array's timing, read from the manifest its generator wrote (never restated here).
  const auto& timing = array_manifest.at("timing");
  p.latency = timing.at("latency").get<int>();
  p.min_steps_per_tile = timing.at("min_steps_per_tile").get<int>();
  require(timing.at("min_steps_per_group").get<int>() == 1,
          "the core drives per-PE arrays only (min_steps_per_group = 1)");
  return p;
}

}  // namespace gen

GeneratedDesign generate_core(const DesignPoint& design, const CoreCapacity& capacity) {
  if (design.level != DesignPoint::Level::core)
    throw UsageError(fmt::format("generate_core needs a coreRxC design, not {}", design.str()));
  DesignPoint array_point = design;
  array_point.level = DesignPoint::Level::array;
  GeneratedDesign array = generate_design(array_point);  // the datapath, unchanged
  gen::CoreParams p = gen::make_core_params(design, capacity, array.manifest);

  GeneratedDesign out;
  out.design = design;
  out.top = "gsqhw_core";
  out.files = array.files;
  for (auto& f : gen::emit_quantizer_files(p)) out.files.push_back(f);
  for (auto& f : gen::emit_dequantizer_files(p)) out.files.push_back(f);
  out.files.push_back(gen::emit_core_top(p));

  out.manifest = gen::manifest_identity(design, "core", out.top, out.files);
  nlohmann::json& m = out.manifest;
  m["architecture"] = "per-pe";
  m["widths"] = array.manifest["widths"];
  m["ports"] = gen::core_ports();
  // The array's timing (the core's datapath), as its generator wrote it.
  m["timing"] = array.manifest["timing"];
  m["array"] = array.manifest;  // the datapath's own manifest (co-simulation schedules on it)
  const int64_t s_min = p.min_steps_per_tile;
  m["core"] = {
      {"capacity",
       {{"max_m", p.max_m},
        {"max_n", p.max_n},
        {"max_k", p.max_k},
        {"tile_rows", p.tile_rows},
        {"tile_cols", p.tile_cols}}},
      {"descriptor_width", kCoreDescriptorWidth},
      {"error_codes",
       {{"0", "accepted"},
        {"1", "M, N or K is 0"},
        {"2", fmt::format("M > {}", p.max_m)},
        {"3", fmt::format("N > {}", p.max_n)},
        {"4", fmt::format("K > {}", p.max_k)}}},
      {"operand_order", "A row-major (M rows of K FP32 words), then B row-major (N rows of K)"},
      {"result_order", "C row-major (M rows of N FP32 words)"},
      {"buffers",
       {{"a_codes", fmt::format("{} x {} codes of {} bits", p.max_m, p.max_k, p.cw)},
        {"b_codes", fmt::format("{} x {} codes of {} bits", p.max_n, p.max_k, p.cw)},
        {"exponents", p.groups ? fmt::format("{} + {} rows x {} groups of {} bits", p.max_m,
                                             p.max_n, p.max_k / p.g, p.xw)
                               : "none"},
        {"results", fmt::format("{} x {} accumulators of {} bits + 2 flag bits", p.max_m,
                                p.max_n, p.aw)},
        {"kind", "behavioural register files: one write port, asynchronous reads"}}},
      {"quantizer",
       p.groups ? "GSE: two group buffers; one takes a group (G words, or the rest of a row) "
                  "while the other emits one code per cycle: one word per cycle, except that a "
                  "short group behind a long one waits for the long one's buffer"
                : "one FP32 word per cycle, converted combinationally"},
      {"quantizer_group", p.groups ? p.g : 0},
      {"tiling",
       fmt::format("tiles of {} x {} outputs in row-major order, S = max(K, {}) steps per tile "
                   "(steps k >= K are zero padding), lanes beyond M / N are zero",
                   p.r, p.c, s_min)},
      {"cycles",
       fmt::format("without stalls, from the cycle that takes the descriptor to the cycle of "
                   "done: load + T*S + {} + M*N (load: {}; T tiles, S = max(K, {}) steps per "
                   "tile; array latency {} + R {} + 2 for the feed register and the state "
                   "changes)",
                   p.latency + p.r + 2,
                   p.groups ? "the cycle of the last code, (M+N)*K plus the last group's "
                              "emission plus the waits of short groups (gen/core.h)"
                            : "(M+N)*K",
                   s_min, p.latency, p.r)}};
  m["schedule"] =
      "one GEMM per descriptor: load A and B (quantize), compute all output tiles in row-major "
      "order, then emit C row-major";
  m["accumulation_order"] = array.manifest["accumulation_order"];
  return out;
}

namespace {

// The cycle (the first load cycle is 1) in which the GSE quantizer writes the last code of
// `rows` rows of k words, words offered every cycle: group j fills buffer j % 2 one word per
// cycle once the previous group is complete and that buffer has emitted group j - 2; it emits
// one code per cycle once complete and group j - 1 is out.
int64_t gse_load_cycles(int64_t rows, int64_t k, int64_t g) {
  int64_t filled = 0, emitted = 0, emitted_before = 0;  // ends of groups j-1 and j-2
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t begin = 0; begin < k; begin += g) {
      const int64_t len = std::min(g, k - begin);
      const int64_t fill_end = std::max(filled, emitted_before) + len;
      const int64_t emit_end = std::max(fill_end, emitted) + len;
      filled = fill_end;
      emitted_before = emitted;
      emitted = emit_end;
    }
  }
  return emitted;
}

}  // namespace

int64_t core_cycles_without_stalls(const nlohmann::json& manifest, int64_t m, int64_t n,
                                   int64_t k) {
  CoreManifest cm = CoreManifest::from_json(manifest);
  const auto& timing = manifest.at("timing");
  const int64_t group = manifest.at("core").at("quantizer_group").get<int64_t>();
  const int64_t load = group > 0 ? gse_load_cycles(m + n, k, group) : (m + n) * k;
  const int64_t tiles = ((m + cm.rows - 1) / cm.rows) * ((n + cm.cols - 1) / cm.cols);
  const int64_t steps = std::max<int64_t>(k, timing.at("min_steps_per_tile").get<int64_t>());
  return load + tiles * steps + timing.at("latency").get<int64_t>() + cm.rows + 2 + m * n;
}

CoreManifest CoreManifest::from_json(const nlohmann::json& j) {
  CoreManifest m;
  try {
    if (j.at("level").get<std::string>() != "core")
      throw UsageError(fmt::format("manifest of {} is not a core (level {})",
                                   j.at("design").get<std::string>(),
                                   j.at("level").get<std::string>()));
    m.design = j.at("design").get<std::string>();
    m.top = j.at("top").get<std::string>();
    m.rows = j.at("rows").get<int>();
    m.cols = j.at("cols").get<int>();
    const auto& cap = j.at("core").at("capacity");
    m.max_m = cap.at("max_m").get<int>();
    m.max_n = cap.at("max_n").get<int>();
    m.max_k = cap.at("max_k").get<int>();
  } catch (const nlohmann::json::exception& e) {
    throw UsageError(fmt::format("core manifest: {}", e.what()));
  }
  return m;
}

std::vector<uint32_t> core_golden_output(const DesignPoint& design, const std::vector<float>& a,
                                         const std::vector<float>& b, int64_t m, int64_t n,
                                         int64_t k) {
  if (static_cast<int64_t>(a.size()) != m * k || static_cast<int64_t>(b.size()) != n * k)
    throw UsageError(fmt::format("core operands: A has {} values, B {}; {} x {} x {} needs {} "
                                 "and {}",
                                 a.size(), b.size(), m, n, k, m * k, n * k));
  auto format = parse_format(design.format);
  QuantizedTensor qa = format->quantize(a.data(), m, k);
  QuantizedTensor qb = format->quantize(b.data(), n, k);
  GemmResult r = golden_gemm(qa, qb, design.acc);
  std::vector<uint32_t> words(r.out.size());
  for (size_t i = 0; i < words.size(); ++i) words[i] = fp32_bits(r.out[i]);
  return words;
}

std::vector<float> core_random_operand(int64_t rows, int64_t cols, int group, uint64_t seed,
                                       bool specials) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  std::normal_distribution<double> normal(0.0, 1.0);
  std::vector<float> x(static_cast<size_t>(rows * cols));
  if (group < 1) group = 32;
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t g0 = 0; g0 < cols; g0 += group) {
      const int64_t g1 = std::min(cols, g0 + group);
      const double kind = unit(rng);
      // the group's scale: mostly moderate, sometimes extreme (exponent clamping)
      int scale_exp = static_cast<int>(std::lround(normal(rng) * 6));
      if (unit(rng) < 0.08) scale_exp = static_cast<int>(unit(rng) * 250) - 140;  // finite x 2^10
      for (int64_t c = g0; c < g1; ++c) {
        double v;
        const double pick = unit(rng);
        if (kind < 0.06) {
          v = 0.0;  // an all-zero group
        } else if (pick < 0.15) {
          // a short binary fraction: exact ties at the quantization step happen often
          v = std::ldexp(static_cast<double>(static_cast<int>(unit(rng) * 511) - 255),
                         scale_exp - static_cast<int>(unit(rng) * 9));
        } else if (pick < 0.18) {
          uint32_t bits = static_cast<uint32_t>(rng()) & 0x807fffffu;  // an FP32 subnormal
          float f;
          std::memcpy(&f, &bits, 4);
          v = f;
        } else if (pick < 0.20) {
          v = normal(rng) * std::ldexp(1.0, scale_exp + 10);  // an outlier
        } else if (pick < 0.21) {
          v = (unit(rng) < 0.5 ? -1 : 1) *
              std::ldexp(1.0 + unit(rng), 100 + static_cast<int>(unit(rng) * 27));  // huge
        } else if (pick < 0.22) {
          v = unit(rng) < 0.5 ? 0.0 : -0.0;
        } else if (specials && pick < 0.225) {
          v = std::numeric_limits<double>::quiet_NaN();
        } else if (specials && pick < 0.23) {
          v = unit(rng) < 0.5 ? INFINITY : -INFINITY;
        } else {
          v = normal(rng) * std::ldexp(1.0, scale_exp);
        }
        x[static_cast<size_t>(r * cols + c)] = static_cast<float>(v);
      }
    }
  }
  return x;
}

}  // namespace gsqhw
