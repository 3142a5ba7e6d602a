// The schedule of a GEMM on a generated array and the driver that presents it on the array's
// ports (gen/schedule.h). Shared by the generated testbenches (gen/testbench.cpp) and the
// simulators (sim/cycle_model.cpp), so the two can never schedule differently.
#include "gen/schedule.h"

#include <fmt/format.h>

#include <algorithm>
#include <stdexcept>

#include "base/errors.h"

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
    m.min_steps_per_group = timing.value("min_steps_per_group", 1);
    m.group_size = timing.value("group_size", 0);
    m.weight_stationary = j.value("dataflow", std::string("os")) == "ws";
    m.chunk_steps = timing.value("chunk_steps", 1);
    m.weight_preload = timing.value("weight_preload", 0);
    m.macs_per_cycle = timing.at("macs_per_cycle").get<int64_t>();
  } catch (const nlohmann::json::exception& e) {
    throw UsageError(fmt::format("manifest: {}", e.what()));
  }
  if (m.rows < 1 || m.cols < 1) throw UsageError("manifest: rows and cols must be >= 1");
  if (m.group_size < 0) throw UsageError("manifest: timing.group_size must be >= 0");
  if (m.latency < 0 || m.min_steps_per_tile < 1 || m.min_steps_per_group < 1)
    throw UsageError("manifest: timing.latency must be >= 0, min_steps_per_tile and "
                     "min_steps_per_group >= 1");
  // The output-stationary drain emits one beat per tile row; the decoder relies on it.
  if (m.drain_beats != m.rows)
    throw UsageError(fmt::format("manifest: timing.drain_beats = {} but rows = {} (an "
                                 "output-stationary array drains one beat per row)",
                                 m.drain_beats, m.rows));
  if (m.weight_stationary) {
    // The driver streams one chunk of R rows against R held weight rows, loading the next.
    if (m.chunk_steps != m.rows || m.weight_preload != m.rows)
      throw UsageError(fmt::format("manifest: a weight-stationary array needs timing.chunk_steps "
                                   "= weight_preload = rows ({}), not {} and {}",
                                   m.rows, m.chunk_steps, m.weight_preload));
  } else if (m.chunk_steps != 1 || m.weight_preload != 0) {
    throw UsageError("manifest: chunk_steps and weight_preload apply to dataflow ws only");
  }
  if (m.acc_width < 1 || m.acc_width > 64) throw UsageError("manifest: widths.acc outside 1..64");
  if (m.code_width < 1 || m.code_width > 64) throw UsageError("manifest: widths.code outside 1..64");
  if (m.flags_width < 1 || m.flags_width > 8) throw UsageError("manifest: widths.flags outside 1..8");
  const char* weights = m.weight_stationary ? "in_w" : "in_b";
  for (const char* port : {"out_valid", "out_acc", "out_flags", "in_valid", "in_a", weights})
    if (!m.has_port(port)) throw UsageError(fmt::format("manifest: no port {}", port));
  if (m.port_width("out_acc") != m.cols * m.acc_width ||
      m.port_width("out_flags") != m.cols * m.flags_width ||
      m.port_width("in_a") != m.rows * m.code_width || m.port_width(weights) != m.cols * m.code_width)
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

namespace {

bool pads_groups(const ArrayManifest& array, int group_size) {
  return group_size > 0 && array.min_steps_per_group > 1;
}

}  // namespace

std::vector<WsChunk> ws_chunks(const ArrayManifest& array, int64_t k, int group_size) {
  group_size = schedule_group_size(array, group_size);
  const int64_t R = array.chunk_steps;
  std::vector<WsChunk> chunks;
  // One run of elements [begin, end), padded to whole chunks.
  auto add_run = [&](int64_t begin, int64_t end, int64_t group) {
    const size_t first_chunk = chunks.size();
    for (int64_t c0 = begin; c0 < end || (c0 == begin && begin == end); c0 += R) {
      WsChunk chunk;
      chunk.group = group;
      for (int64_t i = 0; i < R; ++i) chunk.elements.push_back(c0 + i < end ? c0 + i : -1);
      chunks.push_back(chunk);
    }
    chunks[first_chunk].group_first = true;
    chunks.back().group_last = true;
  };
  if (group_size > 0 && k > 0) {
    for (int64_t g = 0; g * group_size < k; ++g)
      add_run(g * group_size, std::min<int64_t>(k, (g + 1) * group_size), g);
  } else {
    add_run(0, k, -1);
  }
  for (auto& chunk : chunks) {
    chunk.first = group_size > 0 ? chunk.group == chunks.front().group : &chunk == &chunks.front();
    chunk.last = group_size > 0 ? chunk.group == chunks.back().group : &chunk == &chunks.back();
  }
  return chunks;
}

int64_t steps_per_tile(const ArrayManifest& array, int64_t k, int group_size) {
  group_size = schedule_group_size(array, group_size);
  if (array.weight_stationary) {
    const int64_t R = array.chunk_steps;
    int64_t chunks = 0;
    if (group_size > 0) {
      const int64_t full = k / group_size, rest = k % group_size;
      chunks = full * ((group_size + R - 1) / R) + (rest + R - 1) / R;
    } else {
      chunks = std::max<int64_t>(1, (k + R - 1) / R);
    }
    return std::max<int64_t>(1, chunks) * R;
  }
  int64_t steps = k;
  if (pads_groups(array, group_size)) {
    const int64_t full = k / group_size, rest = k % group_size;
    const int64_t per_group = std::max<int64_t>(group_size, array.min_steps_per_group);
    steps = full * per_group + (rest > 0 ? std::max<int64_t>(rest, array.min_steps_per_group) : 0);
  }
  return std::max<int64_t>(steps, array.min_steps_per_tile);
}

std::vector<TileStep> tile_steps(const ArrayManifest& array, int64_t k, int group_size) {
  group_size = schedule_group_size(array, group_size);
  std::vector<TileStep> steps;
  if (!pads_groups(array, group_size) || k == 0) {
    for (int64_t e = 0; e < k; ++e) {
      const bool ends = group_size > 0 ? ((e + 1) % group_size == 0 || e == k - 1) : e == k - 1;
      steps.push_back({e, group_size > 0 ? e / group_size : -1, ends});
    }
    // Padding forms its own group with exponent codes 0 (and ends the last real one).
    while (static_cast<int64_t>(steps.size()) < array.min_steps_per_tile)
      steps.push_back({-1, -1, static_cast<int64_t>(steps.size()) + 1 == array.min_steps_per_tile});
    return steps;
  }
  const int64_t groups = (k + group_size - 1) / group_size;
  for (int64_t g = 0; g < groups; ++g) {
    const int64_t begin = g * group_size, end = std::min<int64_t>(k, begin + group_size);
    for (int64_t e = begin; e < end; ++e) steps.push_back({e, g, false});
    for (int64_t pad = end - begin; pad < array.min_steps_per_group; ++pad)
      steps.push_back({-1, g, false});
    steps.back().group_last = true;
  }
  // A short tile grows its last group (it keeps that group's exponents).
  if (!steps.empty() && static_cast<int64_t>(steps.size()) < array.min_steps_per_tile) {
    steps.back().group_last = false;
    const int64_t g = steps.back().group;
    while (static_cast<int64_t>(steps.size()) < array.min_steps_per_tile) steps.push_back({-1, g, false});
    steps.back().group_last = true;
  }
  return steps;
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
  t.steps_per_tile = steps_per_tile(array, k, group_size);
  t.padded_steps = t.steps_per_tile - k;
  t.cycles = t.tiles == 0 ? 0
                          : array.weight_preload + t.tiles * t.steps_per_tile + array.latency +
                                array.drain_beats - 1;
  t.macs = m * n * k;
  t.pe_utilisation = t.cycles == 0 ? 0 : static_cast<double>(t.macs) / (t.cycles * R * C);
  t.a_buffer_writes = t.tiles_m * R * k;
  t.b_buffer_writes = n * k;
  t.a_buffer_reads = t.tiles * R * t.steps_per_tile;
  t.b_buffer_reads = t.tiles * C * t.steps_per_tile;
  if (group_size > 0) {  // the operands' groups only: an array's own group has no exponents
    int64_t groups = (k + group_size - 1) / group_size;
    t.exponent_reads = t.tiles * (R + C) * groups;
  }
  return t;
}

int64_t beat_cycle(const ArrayManifest& array, int64_t steps_per_tile, int64_t tile, int beat) {
  return array.weight_preload + tile * steps_per_tile + steps_per_tile - 1 + array.latency + beat;
}

// ---- driver ----------------------------------------------------------------------------------

namespace {

// What the driver puts on one input port in one cycle.
enum class InputRole {
  valid, first, last, group_first, group_last, a, b, a_exp, b_exp, w_valid, w_row, w
};

InputRole input_role(const std::string& name) {
  static const std::pair<const char*, InputRole> roles[] = {
      {"in_valid", InputRole::valid},           {"in_first", InputRole::first},
      {"in_last", InputRole::last},             {"in_group_first", InputRole::group_first},
      {"in_group_last", InputRole::group_last}, {"in_a", InputRole::a},
      {"in_b", InputRole::b},                   {"in_a_exp", InputRole::a_exp},
      {"in_b_exp", InputRole::b_exp},           {"in_w_valid", InputRole::w_valid},
      {"in_w_row", InputRole::w_row},           {"in_w", InputRole::w}};
  for (const auto& [port, role] : roles)
    if (name == port) return role;
  throw UsageError(fmt::format(
      "the co-simulation driver does not know input port '{}' (it drives the array protocol of "
      "docs/array-protocol.md: in_valid, in_first, in_last, in_group_first, in_group_last, "
      "in_a, in_b, in_a_exp, in_b_exp, in_w_valid, in_w_row, in_w)",
      name));
}

struct Slot {
  InputRole role;
  int width;
  int offset;  // first word in the record
};

std::vector<Slot> input_slots(const ArrayManifest& array, int* words) {
  std::vector<Slot> slots;
  *words = 0;
  for (const auto& port : array.ports) {
    if (!port.input) continue;
    slots.push_back({input_role(port.name), port.width, *words});
    *words += words64(port.width);
  }
  return slots;
}

// The operands and where a tile's rows and columns start.
struct Operands {
  const QuantizedTensor& a;
  const QuantizedTensor& b;
  int64_t M, N, K, gpr_a, gpr_b;
  bool exps;
  uint64_t code_mask;
};

// Output-stationary: step `step` of tile `tile` (elements of A rows and B columns).
void drive_os_step(const ArrayManifest& array, const Operands& op, const GemmTiming& t,
                   const std::vector<Slot>& slots, const TileStep& step, int64_t tile,
                   int64_t s_index, uint64_t* record) {
  const int R = array.rows, C = array.cols;
  const int64_t row0 = (tile / t.tiles_n) * R, col0 = (tile % t.tiles_n) * C;
  const int64_t k = step.element;  // -1: zero padding
  const bool carries_exps = op.exps && step.group >= 0;
  for (const Slot& s : slots) {
    uint64_t* w = record + s.offset;
    switch (s.role) {
      case InputRole::valid: w[0] = 1; break;
      case InputRole::first: w[0] = s_index == 0; break;
      case InputRole::last: w[0] = s_index == t.steps_per_tile - 1; break;
      case InputRole::group_last: w[0] = step.group_last; break;
      case InputRole::a:
        for (int i = 0; i < R && k >= 0; ++i)
          if (row0 + i < op.M)
            put_bits(w, int64_t{i} * array.code_width, array.code_width,
                     static_cast<uint64_t>(op.a.codes[(row0 + i) * op.K + k]) & op.code_mask);
        break;
      case InputRole::b:
        for (int j = 0; j < C && k >= 0; ++j)
          if (col0 + j < op.N)
            put_bits(w, int64_t{j} * array.code_width, array.code_width,
                     static_cast<uint64_t>(op.b.codes[(col0 + j) * op.K + k]) & op.code_mask);
        break;
      case InputRole::a_exp:
        for (int i = 0; i < R && carries_exps; ++i)
          if (row0 + i < op.M)
            put_bits(w, int64_t{i} * array.exp_width, array.exp_width,
                     static_cast<uint64_t>(op.a.group_exponents[(row0 + i) * op.gpr_a + step.group]));
        break;
      case InputRole::b_exp:
        for (int j = 0; j < C && carries_exps; ++j)
          if (col0 + j < op.N)
            put_bits(w, int64_t{j} * array.exp_width, array.exp_width,
                     static_cast<uint64_t>(op.b.group_exponents[(col0 + j) * op.gpr_b + step.group]));
        break;
      default:
        throw UsageError(fmt::format("an output-stationary array has no weight-load or "
                                     "in_group_first port (design {})", array.design));
    }
  }
}

// Weight-stationary: weight row `row` of chunk `chunk` of tile `tile` onto in_w.
void drive_ws_weights(const ArrayManifest& array, const Operands& op, const GemmTiming& t,
                      const std::vector<Slot>& slots, const WsChunk& chunk, int64_t tile,
                      int row, uint64_t* record) {
  const int C = array.cols;
  const int64_t col0 = (tile % t.tiles_n) * C;
  const int64_t k = chunk.elements[static_cast<size_t>(row)];
  for (const Slot& s : slots) {
    uint64_t* w = record + s.offset;
    if (s.role == InputRole::w_valid) w[0] = 1;
    if (s.role == InputRole::w_row) w[0] = static_cast<uint64_t>(row);
    if (s.role == InputRole::w)
      for (int j = 0; j < C && k >= 0; ++j)
        if (col0 + j < op.N)
          put_bits(w, int64_t{j} * array.code_width, array.code_width,
                   static_cast<uint64_t>(op.b.codes[(col0 + j) * op.K + k]) & op.code_mask);
  }
}

// Weight-stationary: step `row` (tile row) of chunk `chunk` of tile `tile`.
void drive_ws_step(const ArrayManifest& array, const Operands& op, const GemmTiming& t,
                   const std::vector<Slot>& slots, const WsChunk& chunk, int64_t tile, int row,
                   uint64_t* record) {
  const int R = array.rows, C = array.cols;
  const int64_t m = (tile / t.tiles_n) * R + row, col0 = (tile % t.tiles_n) * C;
  const bool real_row = m < op.M;
  const bool carries_exps = op.exps && chunk.group >= 0;
  for (const Slot& s : slots) {
    uint64_t* w = record + s.offset;
    switch (s.role) {
      case InputRole::valid: w[0] = 1; break;
      case InputRole::first: w[0] = chunk.first; break;
      case InputRole::last: w[0] = chunk.last; break;
      case InputRole::group_first: w[0] = chunk.group_first; break;
      case InputRole::group_last: w[0] = chunk.group_last; break;
      case InputRole::a:
        for (int i = 0; i < R && real_row; ++i) {
          const int64_t k = chunk.elements[static_cast<size_t>(i)];
          if (k >= 0)
            put_bits(w, int64_t{i} * array.code_width, array.code_width,
                     static_cast<uint64_t>(op.a.codes[m * op.K + k]) & op.code_mask);
        }
        break;
      case InputRole::a_exp:
        if (real_row && carries_exps)
          put_bits(w, 0, array.exp_width,
                   static_cast<uint64_t>(op.a.group_exponents[m * op.gpr_a + chunk.group]));
        break;
      case InputRole::b_exp:
        for (int j = 0; j < C && carries_exps; ++j)
          if (col0 + j < op.N)
            put_bits(w, int64_t{j} * array.exp_width, array.exp_width,
                     static_cast<uint64_t>(op.b.group_exponents[(col0 + j) * op.gpr_b + chunk.group]));
        break;
      case InputRole::w_valid:
      case InputRole::w_row:
      case InputRole::w:
        break;  // drive_ws_weights
      case InputRole::b:
        throw UsageError(fmt::format("a weight-stationary array loads B through in_w, not in_b "
                                     "(design {})",
                                     array.design));
    }
  }
}

}  // namespace

std::vector<int> stimulus_layout(const ArrayManifest& array, int* words) {
  std::vector<int> offsets;
  for (const Slot& s : input_slots(array, words)) offsets.push_back(s.offset);
  return offsets;
}

void drive_tiles(const ArrayManifest& array, const QuantizedTensor& a, const QuantizedTensor& b,
                 const std::vector<int64_t>* tiles, int64_t cycles,
                 const std::function<void(int64_t cycle, const std::vector<uint64_t>& record)>& emit) {
  const int R = array.rows, C = array.cols;
  const int G = a.group_size;
  const GemmTiming t = gemm_timing(array, a.rows, b.rows, a.cols, G);
  const bool exps = !a.group_exponents.empty();
  int words = 0;
  const std::vector<Slot> slots = input_slots(array, &words);
  for (const Slot& s : slots) {
    const int lanes = s.role == InputRole::a_exp ? (array.weight_stationary ? 1 : R)
                      : s.role == InputRole::b_exp ? C : 0;
    if (lanes > 0 && exps && s.width != lanes * array.exp_width)
      throw UsageError(fmt::format("an exponent port of width {} disagrees with widths.exp", s.width));
  }
  if (exps && (!array.has_port("in_a_exp") || !array.has_port("in_b_exp")))
    throw UsageError("the operands carry group exponents but the design has no in_a_exp/in_b_exp");
  const Operands op{a, b, a.rows, b.rows, a.cols, a.groups_per_row(), b.groups_per_row(), exps,
                    array.code_width >= 64 ? ~uint64_t{0} : (uint64_t{1} << array.code_width) - 1};

  // Run position i presents GEMM tile tile_at(i): all tiles in order, or the given list.
  const int64_t run_tiles = tiles ? static_cast<int64_t>(tiles->size()) : t.tiles;
  if (tiles)
    for (int64_t tile : *tiles)
      if (tile < 0 || tile >= t.tiles)
        throw std::logic_error(fmt::format("tile {} outside the GEMM's {} tiles", tile, t.tiles));
  auto tile_at = [&](int64_t i) { return tiles ? (*tiles)[static_cast<size_t>(i)] : i; };
  std::vector<uint64_t> record(static_cast<size_t>(std::max(words, 1)));
  const int64_t steps_end = array.weight_preload + run_tiles * t.steps_per_tile;
  if (!array.weight_stationary) {
    const std::vector<TileStep> plan = tile_steps(array, op.K, G);
    if (static_cast<int64_t>(plan.size()) != t.steps_per_tile)
      throw std::logic_error("tile_steps and steps_per_tile disagree");
    for (int64_t cycle = 0; cycle < cycles; ++cycle) {
      std::fill(record.begin(), record.end(), 0);
      if (cycle < steps_end) {
        const int64_t tile = tile_at(cycle / t.steps_per_tile),
                      s_index = cycle % t.steps_per_tile;
        drive_os_step(array, op, t, slots, plan[static_cast<size_t>(s_index)], tile, s_index,
                      record.data());
      }
      emit(cycle, record);
    }
    return;
  }
  const std::vector<WsChunk> chunks = ws_chunks(array, op.K, G);
  const int64_t n_chunks = static_cast<int64_t>(chunks.size());
  if (n_chunks * R != t.steps_per_tile) throw std::logic_error("ws_chunks and steps_per_tile disagree");
  for (int64_t cycle = 0; cycle < cycles; ++cycle) {
    std::fill(record.begin(), record.end(), 0);
    if (cycle < array.weight_preload) {
      // The first chunk's weight rows, one per cycle.
      if (run_tiles > 0)
        drive_ws_weights(array, op, t, slots, chunks[0], tile_at(0), static_cast<int>(cycle),
                         record.data());
    } else if (cycle < steps_end) {
      const int64_t x = cycle - array.weight_preload;
      const int64_t index = x / t.steps_per_tile, s_index = x % t.steps_per_tile;
      const int64_t tile = tile_at(index);
      const int64_t chunk = s_index / R;
      const int row = static_cast<int>(s_index % R);
      drive_ws_step(array, op, t, slots, chunks[static_cast<size_t>(chunk)], tile, row,
                    record.data());
      // Meanwhile the next chunk's weights (this tile's next chunk or the next tile's first).
      if (chunk + 1 < n_chunks)
        drive_ws_weights(array, op, t, slots, chunks[static_cast<size_t>(chunk + 1)], tile, row,
                         record.data());
      else if (index + 1 < run_tiles)
        drive_ws_weights(array, op, t, slots, chunks[0], tile_at(index + 1), row, record.data());
    }
    emit(cycle, record);
  }
}

void drive_gemm(const ArrayManifest& array, const QuantizedTensor& a, const QuantizedTensor& b,
                int64_t cycles,
                const std::function<void(int64_t cycle, const std::vector<uint64_t>& record)>& emit) {
  drive_tiles(array, a, b, nullptr, cycles, emit);
}

int64_t run_cycles(const ArrayManifest& array, int64_t steps_per_tile, int64_t tiles) {
  return tiles == 0 ? 0 : beat_cycle(array, steps_per_tile, tiles - 1, array.drain_beats - 1) + 1;
}

}  // namespace gsqhw
