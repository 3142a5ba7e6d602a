// The first hour of a new user (issue #18), through the real binary: "did you mean" for
// misspelt commands and options, `help`, `-V`, bash completion generated from the command
// definitions, --json everywhere, one help style, `sweep --config`, files.f from `gen`, error
// messages that say what to do, and the input dtypes `quantize` reads.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>

#include "base/npy.h"
#include "workloads/safetensors.h"

namespace gsqhw {
namespace {
namespace fs = std::filesystem;

struct Ran {
  int exit_code = -1;
  std::string out;  // stdout and stderr together
};

// Runs a shell command line; `gsqhw` at its start is the built CLI.
Ran sh(const std::string& line, const fs::path& cwd = fs::temp_directory_path()) {
  std::string command = "cd '" + cwd.string() + "' && " + line + " 2>&1";
  if (line.rfind("gsqhw ", 0) == 0) command = "cd '" + cwd.string() + "' && " + GSQHW_CLI + line.substr(5) + " 2>&1";
  Ran r;
  FILE* pipe = popen(command.c_str(), "r");
  if (!pipe) return r;
  char buffer[4096];
  size_t n;
  while ((n = fread(buffer, 1, sizeof buffer, pipe)) > 0) r.out.append(buffer, n);
  const int status = pclose(pipe);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

Ran gsqhw(const std::string& args, const fs::path& cwd = fs::temp_directory_path()) {
  return sh("gsqhw " + args, cwd);
}

bool has(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

class CliUsability : public testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("gsqhw_cli_" + std::to_string(::getpid()) + "_" +
                                        testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override {
    if (!HasFailure()) fs::remove_all(dir_);
  }
  fs::path dir_;
};

// The commands `gsqhw help` lists.
std::vector<std::string> commands() {
  Ran help = gsqhw("help");
  std::vector<std::string> names;
  std::istringstream lines(help.out);
  bool in_list = false;
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("Subcommands:", 0) == 0) {
      in_list = true;
      continue;
    }
    if (!in_list || line.size() < 3 || line[0] != ' ' || line[2] == ' ') continue;  // not a wrapped line
    std::istringstream words(line);
    std::string name;
    words >> name;
    names.push_back(name);
  }
  return names;
}

TEST_F(CliUsability, UnknownCommandsAndOptionsGetSuggestions) {
  struct Case {
    std::string args, expected;
  };
  for (const Case& c : {Case{"formts", "unknown command 'formts' (did you mean 'formats'?)"},
                        Case{"gen --output x --design 'gse:b=6@pe'", "unknown option '--output' (did you mean '--out'?)"},
                        Case{"gen --design 'gse:b=6@pe' --output x", "unknown option '--output' (did you mean '--out'?)"},
                        Case{"cosim --traces x", "unknown option '--traces' (did you mean '--trace'?)"},
                        Case{"sweep --job 2", "did you mean '--jobs'?"},
                        Case{"--verison", "unknown option '--verison' (did you mean '--version'?)"}}) {
    Ran r = gsqhw(c.args, dir_);
    EXPECT_EQ(r.exit_code, 2) << c.args << ": " << r.out;
    EXPECT_TRUE(has(r.out, c.expected)) << c.args << ": " << r.out;
  }
  // Nothing close: no suggestion, still the unknown word and where to look.
  Ran r = gsqhw("zzzzzz", dir_);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(has(r.out, "unknown command 'zzzzzz'; `gsqhw help` lists the commands")) << r.out;
}

TEST_F(CliUsability, HelpSubcommandAndShortVersionFlag) {
  Ran all = gsqhw("help");
  EXPECT_EQ(all.exit_code, 0) << all.out;
  for (const char* name : {"formats", "gen", "cosim", "sweep", "help", "completion"})
    EXPECT_TRUE(has(all.out, std::string("  ") + name)) << all.out;
  Ran gen = gsqhw("help gen");
  EXPECT_EQ(gen.exit_code, 0);
  EXPECT_EQ(gen.out, gsqhw("gen --help").out);
  Ran typo = gsqhw("help cosin");
  EXPECT_EQ(typo.exit_code, 2);
  EXPECT_TRUE(has(typo.out, "did you mean 'cosim'?")) << typo.out;

  Ran v = gsqhw("-V"), version = gsqhw("--version");
  EXPECT_EQ(v.exit_code, 0);
  EXPECT_EQ(v.out, version.out);
  EXPECT_TRUE(std::regex_search(v.out, std::regex("^[0-9]+\\.[0-9]+"))) << v.out;
}

TEST_F(CliUsability, BashCompletionComesFromTheCommandDefinitions) {
  Ran script = gsqhw("completion bash > " + (dir_ / "gsqhw.bash").string());
  ASSERT_EQ(script.exit_code, 0) << script.out;
  // Completes a partial command line the way bash would: COMP_WORDS/COMP_CWORD, then _gsqhw.
  auto complete = [&](const std::string& words) {
    Ran r = sh("bash -c 'source gsqhw.bash; COMP_WORDS=(" + words +
                   "); COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); _gsqhw; printf \"%s\\n\" \"${COMPREPLY[@]}\"'",
               dir_);
    EXPECT_EQ(r.exit_code, 0) << words << ": " << r.out;
    return r.out;
  };
  EXPECT_TRUE(has(complete("gsqhw fo"), "formats\n"));
  EXPECT_TRUE(has(complete("gsqhw cosim --tr"), "--trace\n"));
  EXPECT_EQ(complete("gsqhw cosim --engine \\\"\\\""), "rtl\nfast\nlockstep\n");
  EXPECT_EQ(complete("gsqhw help cos"), "cosim\n");
  EXPECT_EQ(complete("gsqhw completion \\\"\\\""), "bash\n");
  // Every command and each of its options is in the script.
  const std::string text = read_file(dir_ / "gsqhw.bash");
  for (const auto& name : commands()) {
    EXPECT_TRUE(has(complete("gsqhw " + name.substr(0, 3)), name + "\n")) << name;
    Ran help = gsqhw("help " + name);
    std::istringstream lines(help.out);
    std::smatch m;
    for (std::string line; std::getline(lines, line);) {  // option lines: "  -o,--out TEXT  ..."
      if (std::regex_search(line, m, std::regex("^  (?:-[A-Za-z],)?(--[a-z0-9-]+)"))) {
        EXPECT_TRUE(has(complete("gsqhw " + name + " " + m[1].str()), m[1].str() + "\n"))
            << name << " " << m[1];
      }
    }
  }
}

TEST_F(CliUsability, EveryCommandThatPrintsResultsTakesJsonAndHelpHasOneStyle) {
  const std::vector<std::string> names = commands();
  ASSERT_GE(names.size(), 14u);
  for (const auto& name : names) {
    Ran help = gsqhw("help " + name);
    ASSERT_EQ(help.exit_code, 0) << name;
    // help and completion print help text and a script, not results; sweep-task is the
    // Slurm task a sweep submits (it writes a result file).
    if (name != "help" && name != "completion" && name != "sweep-task") {
      EXPECT_TRUE(has(help.out, "--json")) << "`gsqhw " << name << "` has no --json: every command that "
                                           << "prints results takes --json (issue #18)";
    }
    // One style: "(default X)" in the description, never CLI11's "--opt INT=0".
    std::smatch m;
    EXPECT_FALSE(std::regex_search(help.out, m, std::regex("--[a-z0-9-]+ [A-Z:{},a-z0-9.]*[A-Z]=\\S")))
        << name << ": " << m.str() << " (write defaults as \"(default X)\")";
  }
  Ran lota = gsqhw("help lota");
  EXPECT_TRUE(std::regex_search(lota.out, std::regex("--steps INT +t-SignSGD steps before the merge \\(default 50\\)")))
      << lota.out;
}

TEST_F(CliUsability, GenWritesAFileListThatToolsRead) {
  Ran gen = gsqhw("gen --design 'gse:b=4@array2x2' --out g --testbench", dir_);
  ASSERT_EQ(gen.exit_code, 0) << gen.out;
  EXPECT_TRUE(has(gen.out, "file list: files.f")) << gen.out;
  const auto manifest = nlohmann::json::parse(read_file(dir_ / "g" / "manifest.json"));
  std::string expected;
  for (const auto& f : manifest["files"]) expected += f.get<std::string>() + "\n";
  EXPECT_EQ(read_file(dir_ / "g" / "files.f"), expected);
  EXPECT_EQ(manifest["files"].back(), manifest["top"].get<std::string>() + ".v") << "top last";
  // The file list is all a simulator needs (no jq): Icarus compiles and passes the testbench.
  Ran iverilog = sh("cd g && iverilog -g2005 -o tb -c files.f tb_gsqhw_array.v && vvp -n tb", dir_);
  EXPECT_EQ(iverilog.exit_code, 0) << iverilog.out;
  EXPECT_TRUE(has(iverilog.out, "PASS")) << iverilog.out;
  Ran lint = sh("verilator --lint-only -Wall -F g/files.f --top-module gsqhw_array", dir_);
  EXPECT_EQ(lint.exit_code, 0) << lint.out;
}

TEST_F(CliUsability, IntBitsDesignsSayTheyArePlainIntB) {
  Ran gen = gsqhw("gen --design 'int8:per=tensor@array2x2,acc=fixed32.16' --int-bits 6 --out i6", dir_);
  ASSERT_EQ(gen.exit_code, 0) << gen.out;
  EXPECT_TRUE(has(gen.out, "wrote plain INT6 (int8")) << gen.out;
  const auto manifest = nlohmann::json::parse(read_file(dir_ / "i6" / "manifest.json"));
  EXPECT_EQ(manifest["widths"]["code"], 6);
  EXPECT_TRUE(has(manifest["operands"].get<std::string>(), "plain INT6")) << manifest.dump();
  for (const auto& f : manifest["files"])
    EXPECT_TRUE(has(read_file(dir_ / "i6" / f.get<std::string>()), "plain INT6 operands on 6-bit ports"))
        << f;
  Ran cosim = gsqhw("cosim --generated i6 --engine fast", dir_);
  EXPECT_EQ(cosim.exit_code, 2) << cosim.out;
  EXPECT_TRUE(has(cosim.out, "plain INT6 baseline")) << cosim.out;
}

TEST_F(CliUsability, ErrorMessagesSayWhatToDo) {
  Ran acc = gsqhw("gen --design 'gse:b=6,acc=fp32@pe' --out x", dir_);
  EXPECT_EQ(acc.exit_code, 2);
  EXPECT_TRUE(has(acc.out, "acc=fp32 is a design option and belongs after '@'")) << acc.out;
  EXPECT_TRUE(has(acc.out, "gse:b=6@pe,acc=fp32")) << acc.out;
  Ran acc_fmt = gsqhw("quantize --format 'gse:b=6,acc=fp32' --input x.npy --output y.npy", dir_);
  EXPECT_EQ(acc_fmt.exit_code, 2);
  EXPECT_TRUE(has(acc_fmt.out, "'acc' is a design option")) << acc_fmt.out;

  Ran mx = gsqhw("gen --design 'mxfp8@pe' --out x", dir_);
  EXPECT_EQ(mx.exit_code, 2);
  EXPECT_TRUE(has(mx.out, "mxfp8 is fp8:e4m3,block=32")) << mx.out;

  std::vector<float> v = {1, 2, 3, 4};
  write_npy(dir_ / "a.npy", make_npy_f32({4}, v.data()));
  Ran npy = gsqhw("trace-info a.npy", dir_);
  EXPECT_EQ(npy.exit_code, 2);
  EXPECT_TRUE(has(npy.out, "it is a NumPy .npy array")) << npy.out;
  EXPECT_FALSE(has(npy.out, "header length")) << npy.out;

  EXPECT_TRUE(has(gsqhw("cosim --help").out, "written by `gsqhw gen`"));
  EXPECT_FALSE(has(gsqhw("cosim --help").out, "gsqhw generate"));
}

// cosim on a folder: every trace that does not fit the design, in one message, with a complete
// command to make ones that do; and a word when a trace's accumulator differs from the design's.
TEST_F(CliUsability, CosimReportsEveryMisfitTraceAndOtherAccumulators) {
  ASSERT_EQ(gsqhw("trace --model tiny --proj q --out gse", dir_).exit_code, 0);
  Ran misfit = gsqhw("cosim --design 'fp8:e4m3@pe,acc=fp32' --trace gse --engine fast", dir_);
  EXPECT_EQ(misfit.exit_code, 2) << misfit.out;
  EXPECT_TRUE(has(misfit.out, "8 of 8 traces do not fit design")) << misfit.out;
  for (const char* gemm : {"fwd.base", "fwd.lora_a", "bwd.da", "bwd.db"})
    EXPECT_TRUE(has(misfit.out, std::string("trace L0.q.") + gemm + ": operand A")) << gemm;
  std::smatch m;
  ASSERT_TRUE(std::regex_search(misfit.out, m, std::regex("`(gsqhw trace [^`]*)`"))) << misfit.out;
  const std::string suggested = m[1];
  EXPECT_TRUE(has(suggested, "--out ")) << suggested;
  // The suggested command is complete: it runs, and its traces fit the design.
  Ran made = gsqhw(suggested.substr(6), dir_);
  ASSERT_EQ(made.exit_code, 0) << suggested << ": " << made.out;
  Ran fits = gsqhw("cosim --design 'fp8:e4m3@pe,acc=fp32' --trace traces-fp8 --engine fast", dir_);
  EXPECT_EQ(fits.exit_code, 0) << fits.out;
  EXPECT_FALSE(has(fits.out, "warning")) << fits.out;

  // The same operands with another accumulator: checked (recomputed), but said.
  ASSERT_EQ(gsqhw("trace --model tiny --proj q --formats all=fp8:e4m3 --acc fixed32.16 --out fixed", dir_).exit_code, 0);
  Ran other = gsqhw("cosim --design 'fp8:e4m3@pe,acc=fp32' --trace fixed --engine fast", dir_);
  EXPECT_EQ(other.exit_code, 0) << other.out;
  EXPECT_TRUE(has(other.out, "warning: 8 of 8 traces were made with accumulator fixed32.16 but design"))
      << other.out;
  Ran json = gsqhw("cosim --design 'fp8:e4m3@pe,acc=fp32' --trace fixed --engine fast --json", dir_);
  EXPECT_EQ(nlohmann::json::parse(json.out)["warnings"].size(), 1u) << json.out;
}

TEST_F(CliUsability, QuantizeReadsFloat64Float16Bfloat16AndSafetensors) {
  // Values exact in every dtype, so the fp32 "format" (identity) must give them back exactly.
  const std::vector<float> values = {1.5f, -2.25f, 0.0f, 61440.0f, -0.0009765625f, 3.0f};
  NpyArray f64, f16, bf16;
  f64.dtype = NpyDtype::f64;
  f16.dtype = NpyDtype::f16;
  bf16.dtype = NpyDtype::bf16;
  for (NpyArray* a : {&f64, &f16, &bf16}) a->shape = {2, 3};
  for (float x : values) {
    double d = x;
    f64.data.insert(f64.data.end(), reinterpret_cast<uint8_t*>(&d), reinterpret_cast<uint8_t*>(&d) + 8);
    uint32_t bits;
    std::memcpy(&bits, &x, 4);
    // float16: sign, exponent rebias 127 -> 15, top 10 mantissa bits (the values are exact halves).
    uint16_t h = 0;
    if (x != 0) {
      const int e = static_cast<int>((bits >> 23) & 0xff) - 127 + 15;
      h = static_cast<uint16_t>((bits >> 16 & 0x8000) | (e << 10) | ((bits >> 13) & 0x3ff));
    } else {
      h = static_cast<uint16_t>(bits >> 16);
    }
    f16.data.push_back(static_cast<uint8_t>(h));
    f16.data.push_back(static_cast<uint8_t>(h >> 8));
    const uint16_t b = static_cast<uint16_t>(bits >> 16);  // exact: low mantissa bits are zero
    bf16.data.push_back(static_cast<uint8_t>(b));
    bf16.data.push_back(static_cast<uint8_t>(b >> 8));
  }
  write_npy(dir_ / "f64.npy", f64);
  write_npy(dir_ / "f16.npy", f16);
  write_npy(dir_ / "bf16.npy", bf16);
  safetensors::Writer w;
  w.add("layers.0.weight", "F16", {2, 3}, f16.data.data());
  w.add("layers.1.weight", "BF16", {2, 3}, bf16.data.data());
  w.write(dir_ / "model.safetensors");

  auto check = [&](const std::string& input, const std::string& dtype) {
    SCOPED_TRACE(input);
    Ran r = gsqhw("quantize --format fp32 --input " + input + " --output out.npy --json", dir_);
    ASSERT_EQ(r.exit_code, 0) << r.out;
    EXPECT_EQ(nlohmann::json::parse(r.out)["input_dtype"], dtype) << r.out;
    NpyArray out = read_npy(dir_ / "out.npy");
    EXPECT_EQ(out.shape, (std::vector<int64_t>{2, 3}));
    EXPECT_EQ(out.to_float(), values);
  };
  check("f64.npy", "float64");
  check("f16.npy", "float16");
  check("bf16.npy", "bfloat16");
  check("model.safetensors --tensor layers.0.weight", "float16");
  check("model.safetensors --tensor layers.1.weight", "bfloat16");
  Ran text = gsqhw("quantize --format gse:b=6 --input bf16.npy --output out.npy", dir_);
  EXPECT_TRUE(has(text.out, "input bfloat16 read as float32 (.npy dtype '|V2'")) << text.out;
  Ran which = gsqhw("quantize --format fp32 --input model.safetensors --output out.npy", dir_);
  EXPECT_EQ(which.exit_code, 2);
  EXPECT_TRUE(has(which.out, "name one with --tensor (layers.0.weight, layers.1.weight)")) << which.out;
  Ran missing = gsqhw("quantize --format fp32 --input model.safetensors --tensor x --output out.npy", dir_);
  EXPECT_EQ(missing.exit_code, 2);
  // float64 beyond float32's precision rounds to nearest even.
  NpyArray round;
  round.dtype = NpyDtype::f64;
  round.shape = {1};
  double d = 1.0 + 0x1.0p-24;  // halfway between 1 and the next float: ties to even, 1
  round.data.assign(reinterpret_cast<uint8_t*>(&d), reinterpret_cast<uint8_t*>(&d) + 8);
  write_npy(dir_ / "round.npy", round);
  ASSERT_EQ(gsqhw("quantize --format fp32 --input round.npy --output out.npy", dir_).exit_code, 0);
  EXPECT_EQ(read_npy(dir_ / "out.npy").to_float(), std::vector<float>{1.0f});
}

TEST_F(CliUsability, MemoryNamesItsBaselineAndLotaSaysWhyNothingMoved) {
  Ran bf16 = gsqhw("memory --model llama2-7b --tokens 512 --rank 64");
  EXPECT_TRUE(has(bf16.out, "memory reduction vs the BF16 baseline: 2.22x   (paper, GSQ-Tuning vs BF16: 1.85x)"))
      << bf16.out;
  Ran nf4 = gsqhw("memory --model llama2-7b --tokens 512 --rank 64 --baseline-storage nf4:block=64");
  EXPECT_EQ(nf4.exit_code, 0) << nf4.out;
  EXPECT_FALSE(has(nf4.out, "vs BF16")) << nf4.out;
  EXPECT_TRUE(has(nf4.out, "baseline with nf4:block=64 base weights")) << nf4.out;
  EXPECT_TRUE(has(nf4.out, "not comparable")) << nf4.out;

  Ran lota = gsqhw("lota --model tiny --proj up --rank 8 --steps 50");
  EXPECT_EQ(lota.exit_code, 0) << lota.out;
  // docs/siblings.md's first example: at the default omega = 0.75 r nothing moves in 50 steps.
  EXPECT_TRUE(has(lota.out, "merge: 0 codes changed")) << lota.out;
  EXPECT_TRUE(has(lota.out, "no code changed: the largest |dW| = |A_T B_T| after 50 steps is")) << lota.out;
  EXPECT_TRUE(has(lota.out, "below the merge threshold T = floor(omega) + 1 = 7")) << lota.out;
  Ran moved = gsqhw("lota --model tiny --proj up --rank 8 --omega 2 --steps 50 --json");
  EXPECT_EQ(moved.exit_code, 0) << moved.out;
  const auto j = nlohmann::json::parse(moved.out);
  EXPECT_GT(j["merge"]["changed"].get<int64_t>(), 0) << moved.out;
  EXPECT_FALSE(j["merge"].contains("unchanged_because"));
}

void write(const fs::path& p, const std::string& text) { std::ofstream(p) << text; }

// `sweep --config`: the file's keys are the flags, the command line wins, and the resolved
// configuration saved beside the results repeats the run exactly (every point reused).
TEST_F(CliUsability, SweepConfigFileAndTheResolvedConfigRepeatsTheRun) {
  write(dir_ / "sweep.toml",
        "# one baseline point: synthesis only, about a second\n"
        "designs = [\"baseline:bare,b=3,w=24\"]\n"
        "jobs = 1\n"
        "no_report = true   # '_' may stand for '-'\n"
        "quiet = true\n"
        "activity = \"none\"\n"
        "out = \"from-file\"\n");
  Ran first = gsqhw("sweep --config sweep.toml --out run1 --json", dir_);
  ASSERT_EQ(first.exit_code, 0) << first.out;
  const auto summary = nlohmann::json::parse(first.out.substr(first.out.find('{')));
  EXPECT_EQ(summary["points"], 1);
  EXPECT_EQ(summary["evaluated"], 1);
  EXPECT_EQ(summary["failed"], 0);
  EXPECT_FALSE(fs::exists(dir_ / "from-file")) << "--out on the command line wins over the file";
  EXPECT_FALSE(fs::exists(dir_ / "run1" / "report.md")) << "no_report = true from the file";
  ASSERT_EQ(summary["config"], "run1/sweep.toml");
  const std::string resolved = read_file(dir_ / "run1" / "sweep.toml");
  for (const char* line : {"designs = [ 'baseline:bare,b=3,w=24' ]", "out = 'run1'", "jobs = 1",
                           "no-report = true", "activity = 'none'", "bits = '3..8'", "clock = 30.0"})
    EXPECT_TRUE(has(resolved, line)) << line << " in\n" << resolved;
  Ran again = gsqhw("sweep --config run1/sweep.toml --json", dir_);
  ASSERT_EQ(again.exit_code, 0) << again.out;
  const auto repeat = nlohmann::json::parse(again.out.substr(again.out.find('{')));
  EXPECT_EQ(repeat["points"], 1);
  EXPECT_EQ(repeat["reused"], 1) << "the resolved config names the same point and settings";
  EXPECT_EQ(read_file(dir_ / "run1" / "sweep.toml"), resolved);

  Ran report = gsqhw("report --db run1/results.sqlite --out rep --json", dir_);
  ASSERT_EQ(report.exit_code, 0) << report.out;
  EXPECT_TRUE(fs::exists(dir_ / nlohmann::json::parse(report.out)["report"].get<std::string>())) << report.out;

  struct Bad {
    std::string toml, expected;
  };
  for (const Bad& b : {Bad{"job = 2\n", "sweep.toml:1: key 'job' is not an option of `gsqhw sweep` (did you mean 'jobs'?)"},
                       Bad{"jobs = \n", "bad.toml:1:"},
                       Bad{"jobs = \"many\"\n", "key 'jobs'"},
                       Bad{"jobs = [1, 2]\n", "key 'jobs' takes one value, not an array"},
                       Bad{"quiet = 1\n", "key 'quiet' is a flag: write quiet = true or false"},
                       Bad{"[sweep]\njobs = 2\n", "tables are not used"}}) {
    write(dir_ / "bad.toml", b.toml);
    Ran r = gsqhw("sweep --config bad.toml --out never", dir_);
    EXPECT_EQ(r.exit_code, 2) << b.toml << r.out;
    EXPECT_TRUE(has(r.out, b.expected) || has(r.out, "bad" + b.expected.substr(5))) << b.toml << r.out;
    EXPECT_FALSE(fs::exists(dir_ / "never")) << b.toml;
  }
  // Precedence, checked before anything runs: the command line's --activity replaces the file's
  // bad one, and the file's bad headline-activity is the error.
  write(dir_ / "bad.toml", "activity = \"bogus\"\nheadline-activity = \"bogus2\"\n");
  Ran order = gsqhw("sweep --config bad.toml --activity rtl --out never", dir_);
  EXPECT_EQ(order.exit_code, 2) << order.out;
  EXPECT_TRUE(has(order.out, "--headline-activity 'bogus2'")) << order.out;
  EXPECT_FALSE(has(order.out, "'bogus'")) << order.out;
  Ran missing = gsqhw("sweep --config nowhere.toml", dir_);
  EXPECT_EQ(missing.exit_code, 2) << missing.out;
}

}  // namespace
}  // namespace gsqhw
