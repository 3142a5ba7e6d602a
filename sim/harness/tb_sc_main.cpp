// gsqhw's SystemC variant of the generic testbench (Verilator --sc): the same stimulus and
// results files and timing as tb_main.cpp (read that file's header), but the Verilated model
// is a SystemC module whose ports are bound to sc_signals and time advances in the SystemC
// kernel (10 ns per cycle, rising edge at +5 ns). Selected with CosimOptions::systemc; it
// exists to measure what SystemC costs against the plain C++ replay (docs/cosim.md) and has no
// waveform or activity support.
#include <systemc.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "gsqhw_ports.h"
#include "verilated.h"

namespace {

[[noreturn]] void fail(const std::string& message) {
  std::fprintf(stderr, "gsqhw tb (SystemC): %s\n", message.c_str());
  std::exit(3);
}

constexpr int words64(int width) { return (width + 63) / 64; }

// Verilator --sc port types: bool (1 bit), uint32_t (<= 32), uint64_t (<= 64), sc_bv<W>.
template <int W>
using PortValue = std::conditional_t<
    W == 1, bool,
    std::conditional_t<(W <= 32), uint32_t, std::conditional_t<(W <= 64), uint64_t, sc_bv<W>>>>;

template <int W>
PortValue<W> from_words(const uint64_t* w) {
  if constexpr (W == 1) {
    return (w[0] & 1) != 0;
  } else if constexpr (W <= 64) {
    uint64_t mask = W == 64 ? ~uint64_t{0} : ((uint64_t{1} << W) - 1);
    return static_cast<PortValue<W>>(w[0] & mask);
  } else {
    sc_bv<W> v;
    for (int i = 0; i < words64(W); ++i) {
      int hi = std::min(64 * i + 63, W - 1);
      v.range(hi, 64 * i) = sc_bv<64>(static_cast<uint64>(w[i])).range(hi - 64 * i, 0);
    }
    return v;
  }
}

template <int W>
void to_words(const PortValue<W>& v, uint64_t* w) {
  if constexpr (W <= 64) {
    w[0] = static_cast<uint64_t>(v);
  } else {
    for (int i = 0; i < words64(W); ++i) {
      int hi = std::min(64 * i + 63, W - 1);
      w[i] = v.range(hi, 64 * i).to_uint64();
    }
  }
}

#define GSQHW_SIG_(name) sig_##name
#define GSQHW_SIG(name) GSQHW_SIG_(name)
#define GSQHW_COUNT_WORDS(name, width) +words64(width)
constexpr int kInputWords = 0 GSQHW_INPUTS(GSQHW_COUNT_WORDS);
constexpr int kOutputWords = 0 GSQHW_OUTPUTS(GSQHW_COUNT_WORDS);

void read_exact(std::FILE* f, void* data, size_t bytes, const char* what) {
  if (std::fread(data, 1, bytes, f) != bytes) fail(std::string("stimulus truncated in ") + what);
}

}  // namespace

int sc_main(int argc, char** argv) {
  std::string stimulus, results;
  int reset = 2;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string arg = argv[i];
    if (arg == "--stimulus") stimulus = argv[i + 1];
    else if (arg == "--results") results = argv[i + 1];
    else if (arg == "--reset-cycles") reset = std::atoi(argv[i + 1]);
    else fail("unknown option " + arg + " (the SystemC testbench has no tracing)");
  }
  if (stimulus.empty() || results.empty()) fail("usage: tb --stimulus FILE --results FILE");

  std::FILE* stim = std::fopen(stimulus.c_str(), "rb");
  if (!stim) fail("cannot open stimulus " + stimulus);
  char magic[8];
  uint32_t version = 0, words = 0;
  uint64_t cycles = 0;
  read_exact(stim, magic, 8, "header");
  read_exact(stim, &version, 4, "header");
  read_exact(stim, &words, 4, "header");
  read_exact(stim, &cycles, 8, "header");
  if (std::memcmp(magic, "GSQHWSTI", 8) != 0 || version != 1) fail("not a gsqhw stimulus file");
  if (words != static_cast<uint32_t>(kInputWords)) fail("stimulus words per cycle disagree with the design");
  std::FILE* out = std::fopen(results.c_str(), "wb");
  if (!out) fail("cannot create results " + results);
  uint32_t out_words = kOutputWords;
  std::fwrite("GSQHWRES", 1, 8, out);
  std::fwrite(&version, 4, 1, out);
  std::fwrite(&out_words, 4, 1, out);

  Verilated::commandArgs(argc, argv);
  sc_signal<bool> clk, rst;
#define GSQHW_SIGNAL(name, width) sc_signal<PortValue<width>> sig_##name;
  GSQHW_INPUTS(GSQHW_SIGNAL)
  GSQHW_OUTPUTS(GSQHW_SIGNAL)
#undef GSQHW_SIGNAL
  auto top = std::make_unique<GsqhwTop>("gsqhw_tb");
  top->clk(clk);
  top->rst(rst);
#define GSQHW_BIND(name, width) top->name(sig_##name);
  GSQHW_INPUTS(GSQHW_BIND)
  GSQHW_OUTPUTS(GSQHW_BIND)
#undef GSQHW_BIND

  auto apply = [&](const uint64_t* w) {
#define GSQHW_APPLY(name, width)                  \
  sig_##name.write(from_words<width>(w));         \
  w += words64(width);
    GSQHW_INPUTS(GSQHW_APPLY)
#undef GSQHW_APPLY
  };
  std::vector<uint64_t> record(kInputWords > 0 ? kInputWords : 1, 0), zeros(record.size(), 0);
  sc_start(SC_ZERO_TIME);
  for (int c = 0; c < reset; ++c) {
    apply(zeros.data());
    rst.write(true);
    clk.write(false);
    sc_start(5, SC_NS);
    clk.write(true);
    sc_start(5, SC_NS);
  }
  rst.write(false);
  std::vector<uint64_t> beat(kOutputWords, 0);
  for (uint64_t c = 0; c < cycles; ++c) {
    read_exact(stim, record.data(), sizeof(uint64_t) * kInputWords, "a cycle record");
    apply(record.data());
    clk.write(false);
    sc_start(5, SC_NS);
    if (GSQHW_SIG(GSQHW_VALID).read()) {
      uint64_t* w = beat.data();
#define GSQHW_SAMPLE(name, width)                 \
  to_words<width>(sig_##name.read(), w);          \
  w += words64(width);
      GSQHW_OUTPUTS(GSQHW_SAMPLE)
#undef GSQHW_SAMPLE
      std::fwrite(&c, 8, 1, out);
      std::fwrite(beat.data(), sizeof(uint64_t), beat.size(), out);
    }
    clk.write(true);
    sc_start(5, SC_NS);
  }
  top->final();
  std::fwrite("GSQHWEND", 1, 8, out);
  std::fwrite(&cycles, 8, 1, out);
  if (std::fclose(out) != 0) fail("cannot write results " + results);
  std::fclose(stim);
  return 0;
}
