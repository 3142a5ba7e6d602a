// gsqhw's generic Verilated testbench (plain C++, Verilator --cc).
//
// It knows nothing about GEMMs: the gsqhw library schedules the GEMM tile by tile per the
// design manifest (sim/cycle_model.h) and writes one stimulus record per clock cycle; this
// program replays the records on the design's input ports and records the output ports on every
// cycle whose valid output is high. Comparison with the golden model happens in the library.
// So one binary per design stays generic, and a failing run can be replayed by hand:
//   tb --stimulus S.bin --results R.bin [--trace W.vcd --trace-from C0 --trace-to C1]
// (--trace-from/--trace-to: cycle window to dump, default everything including reset, whose
// cycles are numbered -reset..-1). `--stimulus -` reads the records from stdin: the library
// streams them straight from the schedule, no file in between.
//
// Two builds of this file exist per design (sim/verilator_build.h): the traced one
// (GSQHW_TRACE 1: Verilator --trace, waves and activity) and the fast one (GSQHW_TRACE 0: no
// tracing code compiled in, model at -O3 -march=native), which refuses --trace.
//
// The per-design header gsqhw_ports.h (written by sim/verilator_build.cpp) names the top
// class and lists the ports: GSQHW_INPUTS(X) / GSQHW_OUTPUTS(X) expand X(name, width), and
// GSQHW_VALID is the output that marks a result beat.
//
// Stimulus file (little-endian): "GSQHWSTI", u32 version = 1, u32 words per record, u64 cycles,
//   then `cycles` records; a record holds every input port in GSQHW_INPUTS order, each as
//   ceil(width/64) u64 words (bit i of the port = bit i%64 of word i/64).
// Results file: "GSQHWRES", u32 version = 1, u32 words per beat, then beats of
//   u64 cycle + every output port in GSQHW_OUTPUTS order (same packing), then the trailer
//   "GSQHWEND", u64 cycles simulated (a missing trailer means the run did not finish).
//
// Timing: reset (rst = 1, all inputs 0) for --reset-cycles cycles (default 2), then cycle 0,
// 1, ...: in cycle c the inputs of record c are applied with clk low, outputs are sampled (the
// values "on cycle c"), then the rising edge of clk ends the cycle. In the waveform, cycle c
// spans time [10*(c + reset), 10*(c + reset) + 10) with the rising edge at + 5.
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
#if !GSQHW_TRACE
// The fast build: no tracing code; a stand-in type so the code below stays one program.
struct TraceFile {
  void dump(uint64_t) {}
  void open(const char*) {}
  void close() {}
};
#elif GSQHW_TRACE_FST
#include "verilated_fst_c.h"
using TraceFile = VerilatedFstC;
#else
#include "verilated_vcd_c.h"
using TraceFile = VerilatedVcdC;
#endif

namespace {

[[noreturn]] void fail(const std::string& message) {
  std::fprintf(stderr, "gsqhw tb: %s\n", message.c_str());
  std::exit(3);
}

constexpr int words64(int width) { return (width + 63) / 64; }

// Verilator port members are CData/SData/IData/QData (integers) or VlWide<N> (32-bit words).
template <class Port>
void put_port(Port& port, const uint64_t* words, int width) {
  if constexpr (std::is_integral_v<std::remove_reference_t<Port>>) {
    uint64_t mask = width >= 64 ? ~uint64_t{0} : ((uint64_t{1} << width) - 1);
    port = static_cast<std::remove_reference_t<Port>>(words[0] & mask);
  } else {
    int n32 = (width + 31) / 32;
    for (int i = 0; i < n32; ++i) {
      uint32_t w = static_cast<uint32_t>(words[i / 2] >> (32 * (i % 2)));
      if (i == n32 - 1 && width % 32) w &= (uint32_t{1} << (width % 32)) - 1;
      port[i] = w;
    }
  }
}

template <class Port>
void get_port(const Port& port, uint64_t* words, int width) {
  if constexpr (std::is_integral_v<std::remove_reference_t<Port>>) {
    words[0] = static_cast<uint64_t>(port);
  } else {
    int n32 = (width + 31) / 32;
    for (int i = 0; i < words64(width); ++i) words[i] = 0;
    for (int i = 0; i < n32; ++i) words[i / 2] |= static_cast<uint64_t>(port[i]) << (32 * (i % 2));
  }
}

#define GSQHW_COUNT_WORDS(name, width) +words64(width)
constexpr int kInputWords = 0 GSQHW_INPUTS(GSQHW_COUNT_WORDS);
constexpr int kOutputWords = 0 GSQHW_OUTPUTS(GSQHW_COUNT_WORDS);

struct Args {
  std::string stimulus, results, trace;
  // Default: trace everything, reset included (so changes on cycle 0 are seen as changes).
  long long trace_from = -1000000000LL, trace_to = -1;
  int reset_cycles = 2;
};

Args parse_args(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) fail("option " + arg + " needs a value");
      return argv[++i];
    };
    if (arg == "--stimulus") a.stimulus = value();
    else if (arg == "--results") a.results = value();
    else if (arg == "--trace") a.trace = value();
    else if (arg == "--trace-from") a.trace_from = std::atoll(value().c_str());
    else if (arg == "--trace-to") a.trace_to = std::atoll(value().c_str());
    else if (arg == "--reset-cycles") a.reset_cycles = std::atoi(value().c_str());
    else fail("unknown option " + arg);
  }
  if (a.stimulus.empty() || a.results.empty()) fail("usage: tb --stimulus FILE --results FILE");
  if (!GSQHW_TRACE && !a.trace.empty())
    fail("this is the fast build (no tracing compiled in); waves come from the traced build");
  return a;
}

void read_exact(std::FILE* f, void* data, size_t bytes, const char* what) {
  if (std::fread(data, 1, bytes, f) != bytes) fail(std::string("stimulus truncated in ") + what);
}

}  // namespace

int main(int argc, char** argv) {
  Args args = parse_args(argc, argv);

  const bool from_stdin = args.stimulus == "-";
  std::FILE* stim = from_stdin ? stdin : std::fopen(args.stimulus.c_str(), "rb");
  if (!stim) fail("cannot open stimulus " + args.stimulus);
  static char stim_buffer[1 << 20];  // whole pipe reads, not one per cycle record
  std::setvbuf(stim, stim_buffer, _IOFBF, sizeof stim_buffer);
  char magic[8];
  uint32_t version = 0, words = 0;
  uint64_t cycles = 0;
  read_exact(stim, magic, 8, "header");
  read_exact(stim, &version, 4, "header");
  read_exact(stim, &words, 4, "header");
  read_exact(stim, &cycles, 8, "header");
  if (std::memcmp(magic, "GSQHWSTI", 8) != 0 || version != 1) fail("not a gsqhw stimulus file");
  if (words != static_cast<uint32_t>(kInputWords))
    fail("stimulus has " + std::to_string(words) + " words per cycle, this design needs " +
         std::to_string(kInputWords));

  std::FILE* out = std::fopen(args.results.c_str(), "wb");
  if (!out) fail("cannot create results " + args.results);
  uint32_t out_words = kOutputWords;
  std::fwrite("GSQHWRES", 1, 8, out);
  std::fwrite(&version, 4, 1, out);
  std::fwrite(&out_words, 4, 1, out);

  auto context = std::make_unique<VerilatedContext>();
  context->commandArgs(argc, argv);
  auto top = std::make_unique<GsqhwTop>(context.get(), "gsqhw_tb");

  std::unique_ptr<TraceFile> trace;
#if GSQHW_TRACE
  if (!args.trace.empty()) {
    context->traceEverOn(true);
    trace = std::make_unique<TraceFile>();
    top->trace(trace.get(), 99);
    trace->open(args.trace.c_str());
  }
#endif
  const long long reset = args.reset_cycles;
  auto in_window = [&](long long c) {
    return trace && c >= args.trace_from && (args.trace_to < 0 || c <= args.trace_to);
  };
  auto dump = [&](long long c, int phase) {
    if (in_window(c)) trace->dump(static_cast<uint64_t>((c + reset) * 10 + phase));
  };

  // Reset: every input 0, rst high.
  std::vector<uint64_t> record(kInputWords > 0 ? kInputWords : 1, 0);
  auto apply_inputs = [&](const uint64_t* w) {
#define GSQHW_APPLY(name, width) \
  put_port(top->name, w, width);  \
  w += words64(width);
    GSQHW_INPUTS(GSQHW_APPLY)
#undef GSQHW_APPLY
  };
  std::vector<uint64_t> zeros(record.size(), 0);
  for (long long c = -reset; c < 0; ++c) {
    apply_inputs(zeros.data());
    top->rst = 1;
    top->clk = 0;
    top->eval();
    dump(c, 0);
    top->clk = 1;
    top->eval();
    dump(c, 5);
  }
  top->rst = 0;

  std::vector<uint64_t> beat(kOutputWords, 0);
  for (uint64_t c = 0; c < cycles; ++c) {
    read_exact(stim, record.data(), sizeof(uint64_t) * kInputWords, "a cycle record");
    apply_inputs(record.data());
    top->clk = 0;
    top->eval();
    dump(static_cast<long long>(c), 0);
    if (top->GSQHW_VALID) {
      uint64_t* w = beat.data();
#define GSQHW_SAMPLE(name, width) \
  get_port(top->name, w, width);   \
  w += words64(width);
      GSQHW_OUTPUTS(GSQHW_SAMPLE)
#undef GSQHW_SAMPLE
      std::fwrite(&c, 8, 1, out);
      std::fwrite(beat.data(), sizeof(uint64_t), beat.size(), out);
    }
    top->clk = 1;
    top->eval();
    dump(static_cast<long long>(c), 5);
  }
  // Close the last cycle so that the waveform (and activity) cover it completely.
  if (in_window(static_cast<long long>(cycles) - 1)) {
    top->clk = 0;
    top->eval();
    trace->dump(static_cast<uint64_t>((static_cast<long long>(cycles) + reset) * 10));
  }
  if (trace) trace->close();
  top->final();

  std::fwrite("GSQHWEND", 1, 8, out);
  std::fwrite(&cycles, 8, 1, out);
  if (std::fclose(out) != 0) fail("cannot write results " + args.results);
  if (!from_stdin) std::fclose(stim);
  return 0;
}
