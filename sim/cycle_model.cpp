// Fast cycle-accurate array model, GEMM driver and result decoding (sim/cycle_model.h).
#include "sim/cycle_model.h"
#include "base/files.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <stdexcept>
#include <thread>

#include "base/errors.h"

namespace fs = std::filesystem;

namespace gsqhw {

// ---- fast model ------------------------------------------------------------------------------

QuantizedTensor quantized_rows(const QuantizedTensor& q, int64_t r0, int64_t r1) {
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
    GemmResult stripe = golden_gemm(quantized_rows(a, r0, r1), b, acc, 1);
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

int64_t write_stimulus(const ArrayManifest& array, const QuantizedTensor& a,
                       const QuantizedTensor& b, int64_t slack_cycles, const fs::path& file) {
  const GemmTiming t = gemm_timing(array, a.rows, b.rows, a.cols, a.group_size);
  int words = 0;
  stimulus_layout(array, &words);
  std::ofstream out(file, std::ios::binary);
  if (!out) throw std::runtime_error(fmt::format("cannot write stimulus {}", file.string()));
  const int64_t total = t.cycles + slack_cycles;  // every beat, then the slack
  const uint32_t version = 1, n_words = static_cast<uint32_t>(words);
  const uint64_t n_cycles = static_cast<uint64_t>(total);
  out.write("GSQHWSTI", 8);
  out.write(reinterpret_cast<const char*>(&version), 4);
  out.write(reinterpret_cast<const char*>(&n_words), 4);
  out.write(reinterpret_cast<const char*>(&n_cycles), 8);
  drive_gemm(array, a, b, total, [&](int64_t, const std::vector<uint64_t>& record) {
    out.write(reinterpret_cast<const char*>(record.data()), sizeof(uint64_t) * words);
  });
  if (!out.flush()) throw std::runtime_error(fmt::format("cannot write stimulus {}", file.string()));
  return total;
}

// ---- results ---------------------------------------------------------------------------------

Beats read_results(const ArrayManifest& array, bool sign_extend, const fs::path& file) {
  const std::string data = read_file(file);

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
