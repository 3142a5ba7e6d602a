// Fast cycle-accurate array model, GEMM driver and result decoding (sim/cycle_model.h).
#include "sim/cycle_model.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <thread>

#include "sim/errors.h"

namespace fs = std::filesystem;

namespace gsqhw {

// ---- manifest --------------------------------------------------------------------------------

bool ArrayManifest::has_port(const std::string& name) const {
  return std::any_of(ports.begin(), ports.end(), [&](const PortSpec& p) { return p.name == name; });
}

int ArrayManifest::port_width(const std::string& name) const {
  for (const auto& p : ports)
    if (p.name == name) return p.width;
  throw UsageError(fmt::format("design {} has no port {}", design, name));
}

ArrayManifest ArrayManifest::from_json(const nlohmann::json& j) {
  ArrayManifest m;
  auto field = [&](const char* name) -> const nlohmann::json& {
    if (!j.contains(name)) throw UsageError(fmt::format("manifest has no \"{}\" field", name));
    return j.at(name);
  };
  try {
    m.design = field("design").get<std::string>();
    m.level = field("level").get<std::string>();
    m.top = field("top").get<std::string>();
    m.files = field("files").get<std::vector<std::string>>();
    m.format = field("format").get<std::string>();
    m.acc = field("acc").get<std::string>();
    m.rows = field("rows").get<int>();
    m.cols = field("cols").get<int>();
    const auto& widths = field("widths");
    m.code_width = widths.at("code").get<int>();
    m.exp_width = widths.value("exp", 0);
    m.acc_width = widths.at("acc").get<int>();
    m.flags_width = widths.value("flags", 2);
    for (const auto& p : field("ports")) {
      PortSpec port;
      port.name = p.at("name").get<std::string>();
      std::string dir = p.at("dir").get<std::string>();
      if (dir != "in" && dir != "out")
        throw UsageError(fmt::format("manifest port {} has dir \"{}\" (in/out)", port.name, dir));
      port.input = dir == "in";
      port.width = p.at("width").get<int>();
      if (port.name == "clk" || port.name == "rst") continue;
      m.ports.push_back(port);
    }
    const auto& timing = field("timing");
    m.latency = timing.at("latency").get<int>();
    m.drain_beats = timing.at("drain_beats").get<int>();
    m.min_steps_per_tile = timing.at("min_steps_per_tile").get<int>();
    m.macs_per_cycle = timing.at("macs_per_cycle").get<int64_t>();
  } catch (const nlohmann::json::exception& e) {
    throw UsageError(fmt::format("manifest: {}", e.what()));
  }
  if (m.rows < 1 || m.cols < 1) throw UsageError("manifest: rows and cols must be >= 1");
  if (m.latency < 0 || m.min_steps_per_tile < 1)
    throw UsageError("manifest: timing.latency must be >= 0 and min_steps_per_tile >= 1");
  // The output-stationary drain emits one beat per tile row; the decoder relies on it.
  if (m.drain_beats != m.rows)
    throw UsageError(fmt::format("manifest: timing.drain_beats = {} but rows = {} (an "
                                 "output-stationary array drains one beat per row)",
                                 m.drain_beats, m.rows));
  if (m.acc_width < 1 || m.acc_width > 64) throw UsageError("manifest: widths.acc outside 1..64");
  if (m.code_width < 1 || m.code_width > 64) throw UsageError("manifest: widths.code outside 1..64");
  if (m.flags_width < 1 || m.flags_width > 8) throw UsageError("manifest: widths.flags outside 1..8");
  for (const char* port : {"out_valid", "out_acc", "out_flags", "in_valid", "in_a", "in_b"})
    if (!m.has_port(port)) throw UsageError(fmt::format("manifest: no port {}", port));
  if (m.port_width("out_acc") != m.cols * m.acc_width ||
      m.port_width("out_flags") != m.cols * m.flags_width ||
      m.port_width("in_a") != m.rows * m.code_width || m.port_width("in_b") != m.cols * m.code_width)
    throw UsageError("manifest: port widths disagree with rows/cols and widths");
  return m;
}

// ---- timing ----------------------------------------------------------------------------------

nlohmann::json GemmTiming::to_json() const {
  return {{"m", m},
          {"n", n},
          {"k", k},
          {"tiles", tiles},
          {"steps_per_tile", steps_per_tile},
          {"padded_steps", padded_steps},
          {"cycles", cycles},
          {"macs", macs},
          {"pe_utilisation", pe_utilisation},
          {"a_buffer_writes", a_buffer_writes},
          {"b_buffer_writes", b_buffer_writes},
          {"a_buffer_reads", a_buffer_reads},
          {"b_buffer_reads", b_buffer_reads},
          {"exponent_reads", exponent_reads}};
}

GemmTiming gemm_timing(const ArrayManifest& array, int64_t m, int64_t n, int64_t k,
                       int group_size) {
  GemmTiming t;
  t.m = m;
  t.n = n;
  t.k = k;
  const int64_t R = array.rows, C = array.cols;
  t.tiles_m = (m + R - 1) / R;
  t.tiles_n = (n + C - 1) / C;
  t.tiles = t.tiles_m * t.tiles_n;
  t.steps_per_tile = std::max<int64_t>(k, array.min_steps_per_tile);
  t.padded_steps = t.steps_per_tile - k;
  t.cycles = t.tiles == 0 ? 0 : t.tiles * t.steps_per_tile + array.latency + array.drain_beats - 1;
  t.macs = m * n * k;
  t.pe_utilisation = t.cycles == 0 ? 0 : static_cast<double>(t.macs) / (t.cycles * R * C);
  t.a_buffer_writes = t.tiles_m * R * k;
  t.b_buffer_writes = n * k;
  t.a_buffer_reads = t.tiles * R * t.steps_per_tile;
  t.b_buffer_reads = t.tiles * C * t.steps_per_tile;
  if (group_size > 0) {
    int64_t groups = (k + group_size - 1) / group_size;
    t.exponent_reads = t.tiles * (R + C) * groups;
  }
  return t;
}

int64_t beat_cycle(const ArrayManifest& array, int64_t steps_per_tile, int64_t tile, int beat) {
  return tile * steps_per_tile + steps_per_tile - 1 + array.latency + beat;
}

// ---- fast model ------------------------------------------------------------------------------

namespace {

// Rows [r0, r1) of a quantized tensor (codes, exponents and row/block scales follow).
QuantizedTensor slice_rows(const QuantizedTensor& q, int64_t r0, int64_t r1) {
  QuantizedTensor s;
  s.format_spec = q.format_spec;
  s.rows = r1 - r0;
  s.cols = q.cols;
  s.group_size = q.group_size;
  s.codes.assign(q.codes.begin() + r0 * q.cols, q.codes.begin() + r1 * q.cols);
  const int64_t gpr = q.groups_per_row();
  if (!q.group_exponents.empty())
    s.group_exponents.assign(q.group_exponents.begin() + r0 * gpr,
                             q.group_exponents.begin() + r1 * gpr);
  if (gpr > 0 && static_cast<int64_t>(q.scales.size()) == q.rows * gpr)
    s.scales.assign(q.scales.begin() + r0 * gpr, q.scales.begin() + r1 * gpr);
  else if (static_cast<int64_t>(q.scales.size()) == q.rows && q.rows > 1)
    s.scales.assign(q.scales.begin() + r0, q.scales.begin() + r1);
  else
    s.scales = q.scales;
  return s;
}

}  // namespace

Beats fast_model_run(const ArrayManifest& array, const QuantizedTensor& a,
                     const QuantizedTensor& b, const AccumulatorSpec& acc, int threads) {
  const int R = array.rows, C = array.cols;
  const GemmTiming t = gemm_timing(array, a.rows, b.rows, a.cols, a.group_size);
  Beats beats;
  beats.cols = C;
  const size_t n_beats = static_cast<size_t>(t.tiles * R);
  beats.cycle.resize(n_beats);
  beats.row.resize(n_beats);
  beats.acc.assign(n_beats * C, 0);
  beats.flags.assign(n_beats * C, 0);
  beats.simulated_cycles = t.cycles;

  // One tile row: outputs of the R x K operand stripe against all of B, scattered into the
  // beats of the tile row's tiles (tile columns in order, rows 0..R-1 each).
  auto run_tile_row = [&](int64_t tr) {
    const int64_t r0 = tr * R, r1 = std::min<int64_t>(a.rows, r0 + R);
    GemmResult stripe = golden_gemm(slice_rows(a, r0, r1), b, acc, 1);
    for (int64_t tc = 0; tc < t.tiles_n; ++tc) {
      const int64_t tile = tr * t.tiles_n + tc;
      for (int r = 0; r < R; ++r) {
        const size_t beat = static_cast<size_t>(tile * R + r);
        beats.cycle[beat] = beat_cycle(array, t.steps_per_tile, tile, r);
        beats.row[beat] = r;
        if (r0 + r >= r1) continue;  // padded row: zeros
        for (int j = 0; j < C; ++j) {
          const int64_t n = tc * C + j;
          if (n >= b.rows) continue;  // padded column: zeros
          const size_t src = static_cast<size_t>(r * b.rows + n);
          beats.acc[beat * C + j] = stripe.acc_raw[src];
          beats.flags[beat * C + j] = stripe.flags[src];
        }
      }
    }
  };

  int workers = threads > 0 ? threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  workers = static_cast<int>(std::min<int64_t>(workers, std::max<int64_t>(1, t.tiles_m)));
  if (workers == 1) {
    for (int64_t tr = 0; tr < t.tiles_m; ++tr) run_tile_row(tr);
  } else {
    std::vector<std::thread> pool;
    std::vector<std::exception_ptr> errors(workers);
    for (int w = 0; w < workers; ++w)
      pool.emplace_back([&, w] {
        try {
          for (int64_t tr = w; tr < t.tiles_m; tr += workers) run_tile_row(tr);
        } catch (...) {
          errors[w] = std::current_exception();
        }
      });
    for (auto& th : pool) th.join();
    for (auto& e : errors)
      if (e) std::rethrow_exception(e);
  }
  return beats;
}

// ---- driver ----------------------------------------------------------------------------------

namespace {

constexpr int words64(int width) { return (width + 63) / 64; }

void put_bits(uint64_t* words, int64_t bit, int width, uint64_t value) {
  if (width < 64) value &= (uint64_t{1} << width) - 1;
  const int64_t word = bit / 64, shift = bit % 64;
  words[word] |= value << shift;
  if (shift + width > 64) words[word + 1] |= value >> (64 - shift);
}

uint64_t get_bits(const uint64_t* words, int64_t bit, int width) {
  const int64_t word = bit / 64, shift = bit % 64;
  uint64_t value = words[word] >> shift;
  if (shift + width > 64) value |= words[word + 1] << (64 - shift);
  if (width < 64) value &= (uint64_t{1} << width) - 1;
  return value;
}

// What the driver puts on one input port in one cycle.
enum class InputRole { valid, first, last, group_last, a, b, a_exp, b_exp };

InputRole input_role(const std::string& name) {
  static const std::pair<const char*, InputRole> roles[] = {
      {"in_valid", InputRole::valid},         {"in_first", InputRole::first},
      {"in_last", InputRole::last},           {"in_group_last", InputRole::group_last},
      {"in_a", InputRole::a},                 {"in_b", InputRole::b},
      {"in_a_exp", InputRole::a_exp},         {"in_b_exp", InputRole::b_exp}};
  for (const auto& [port, role] : roles)
    if (name == port) return role;
  throw UsageError(fmt::format(
      "the co-simulation driver does not know input port '{}' (it drives the array protocol of "
      "docs/array-protocol.md: in_valid, in_first, in_last, in_group_last, in_a, in_b, "
      "in_a_exp, in_b_exp)",
      name));
}

}  // namespace

int64_t write_stimulus(const ArrayManifest& array, const QuantizedTensor& a,
                       const QuantizedTensor& b, int64_t slack_cycles, const fs::path& file) {
  const int R = array.rows, C = array.cols;
  const int64_t M = a.rows, N = b.rows, K = a.cols;
  const int G = a.group_size;
  const GemmTiming t = gemm_timing(array, M, N, K, G);
  const int64_t gpr_a = a.groups_per_row(), gpr_b = b.groups_per_row();
  const bool exps = !a.group_exponents.empty();

  struct Slot {
    InputRole role;
    int width;
    int offset;  // first word in the record
  };
  std::vector<Slot> slots;
  int words = 0;
  for (const auto& port : array.ports) {
    if (!port.input) continue;
    Slot slot{input_role(port.name), port.width, words};
    if ((slot.role == InputRole::a_exp || slot.role == InputRole::b_exp) && exps &&
        port.width != (slot.role == InputRole::a_exp ? R : C) * array.exp_width)
      throw UsageError(fmt::format("port {} width {} disagrees with widths.exp", port.name, port.width));
    slots.push_back(slot);
    words += words64(port.width);
  }
  if (exps && (!array.has_port("in_a_exp") || !array.has_port("in_b_exp")))
    throw UsageError("the operands carry group exponents but the design has no in_a_exp/in_b_exp");

  std::ofstream out(file, std::ios::binary);
  if (!out) throw std::runtime_error(fmt::format("cannot write stimulus {}", file.string()));
  const int64_t total = t.cycles + slack_cycles;  // every beat, then the slack
  const uint32_t version = 1, n_words = static_cast<uint32_t>(words);
  const uint64_t n_cycles = static_cast<uint64_t>(total);
  out.write("GSQHWSTI", 8);
  out.write(reinterpret_cast<const char*>(&version), 4);
  out.write(reinterpret_cast<const char*>(&n_words), 4);
  out.write(reinterpret_cast<const char*>(&n_cycles), 8);

  const uint64_t code_mask =
      array.code_width >= 64 ? ~uint64_t{0} : (uint64_t{1} << array.code_width) - 1;
  std::vector<uint64_t> record(std::max(words, 1));
  for (int64_t cycle = 0; cycle < total; ++cycle) {
    std::fill(record.begin(), record.end(), 0);
    const bool active = cycle < t.tiles * t.steps_per_tile;
    if (active) {
      const int64_t tile = cycle / t.steps_per_tile, k = cycle % t.steps_per_tile;
      const int64_t row0 = (tile / t.tiles_n) * R, col0 = (tile % t.tiles_n) * C;
      const bool padding = k >= K;
      const bool group_last = padding ? k == t.steps_per_tile - 1
                                      : (G > 0 ? ((k + 1) % G == 0 || k == K - 1)
                                               : k == t.steps_per_tile - 1);
      for (const Slot& s : slots) {
        uint64_t* w = record.data() + s.offset;
        switch (s.role) {
          case InputRole::valid: w[0] = 1; break;
          case InputRole::first: w[0] = k == 0; break;
          case InputRole::last: w[0] = k == t.steps_per_tile - 1; break;
          case InputRole::group_last: w[0] = group_last; break;
          case InputRole::a:
            for (int i = 0; i < R && !padding; ++i)
              if (row0 + i < M)
                put_bits(w, int64_t{i} * array.code_width, array.code_width,
                         static_cast<uint64_t>(a.codes[(row0 + i) * K + k]) & code_mask);
            break;
          case InputRole::b:
            for (int j = 0; j < C && !padding; ++j)
              if (col0 + j < N)
                put_bits(w, int64_t{j} * array.code_width, array.code_width,
                         static_cast<uint64_t>(b.codes[(col0 + j) * K + k]) & code_mask);
            break;
          case InputRole::a_exp:
            for (int i = 0; i < R && !padding && exps; ++i)
              if (row0 + i < M)
                put_bits(w, int64_t{i} * array.exp_width, array.exp_width,
                         static_cast<uint64_t>(a.group_exponents[(row0 + i) * gpr_a + k / G]));
            break;
          case InputRole::b_exp:
            for (int j = 0; j < C && !padding && exps; ++j)
              if (col0 + j < N)
                put_bits(w, int64_t{j} * array.exp_width, array.exp_width,
                         static_cast<uint64_t>(b.group_exponents[(col0 + j) * gpr_b + k / G]));
            break;
        }
      }
    }
    out.write(reinterpret_cast<const char*>(record.data()), sizeof(uint64_t) * words);
  }
  if (!out.flush()) throw std::runtime_error(fmt::format("cannot write stimulus {}", file.string()));
  return total;
}

// ---- results ---------------------------------------------------------------------------------

Beats read_results(const ArrayManifest& array, bool sign_extend, const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw UsageError(fmt::format("cannot read results {}", file.string()));
  std::vector<char> data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());

  // Output ports in manifest order (the testbench's GSQHW_OUTPUTS order).
  int words = 0, acc_word = -1, flags_word = -1, row_word = -1, row_width = 0;
  for (const auto& port : array.ports) {
    if (port.input) continue;
    if (port.name == "out_acc") acc_word = words;
    if (port.name == "out_flags") flags_word = words;
    if (port.name == "out_row") row_word = words, row_width = port.width;
    words += words64(port.width);
  }
  const size_t beat_bytes = 8 + 8 * static_cast<size_t>(words);
  auto malformed = [&](const std::string& what) {
    return UsageError(fmt::format("results file {}: {}", file.string(), what));
  };
  if (data.size() < 16 + 16 || std::memcmp(data.data(), "GSQHWRES", 8) != 0)
    throw malformed("not a gsqhw results file");
  uint32_t n_words = 0;
  std::memcpy(&n_words, data.data() + 12, 4);
  if (n_words != static_cast<uint32_t>(words)) throw malformed("words per beat disagree with the manifest");
  const size_t body = data.size() - 32;
  if (body % beat_bytes != 0 || std::memcmp(data.data() + data.size() - 16, "GSQHWEND", 8) != 0)
    throw malformed("truncated (the testbench did not finish)");

  Beats beats;
  beats.cols = array.cols;
  std::memcpy(&beats.simulated_cycles, data.data() + data.size() - 8, 8);
  const size_t n = body / beat_bytes;
  beats.cycle.resize(n);
  beats.row.resize(n);
  beats.acc.resize(n * array.cols);
  beats.flags.resize(n * array.cols);
  std::vector<uint64_t> w(std::max(words, 1));
  for (size_t i = 0; i < n; ++i) {
    const char* p = data.data() + 16 + i * beat_bytes;
    std::memcpy(&beats.cycle[i], p, 8);
    std::memcpy(w.data(), p + 8, 8 * static_cast<size_t>(words));
    beats.row[i] = row_word >= 0 ? static_cast<int>(get_bits(w.data() + row_word, 0, row_width)) : 0;
    for (int j = 0; j < array.cols; ++j) {
      uint64_t raw = get_bits(w.data() + acc_word, int64_t{j} * array.acc_width, array.acc_width);
      int64_t value = static_cast<int64_t>(raw);
      if (sign_extend && array.acc_width < 64 && (raw >> (array.acc_width - 1)) & 1)
        value = static_cast<int64_t>(raw | (~uint64_t{0} << array.acc_width));
      beats.acc[i * array.cols + j] = value;
      beats.flags[i * array.cols + j] = static_cast<uint8_t>(
          get_bits(w.data() + flags_word, int64_t{j} * array.flags_width, array.flags_width));
    }
  }
  return beats;
}

}  // namespace gsqhw
