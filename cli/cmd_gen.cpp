// gsqhw gen: a design point in, readable Verilog + manifest.json out (gen/generator.h),
// optionally with a self-checking testbench carrying golden vectors (gen/testbench.h).
#include <fmt/format.h>

#include <cstdio>
#include <memory>

#include "cli/command.h"
#include "gen/core.h"
#include "gen/generator.h"
#include "gen/testbench.h"
#include "base/errors.h"

namespace gsqhw::cli {
namespace {

struct GenArgs {
  std::string design;
  std::string out;
  bool testbench = false;
  bool json = false;
  int int_bits = 0;
  bool shared = false;
  int tb_tiles = 3;
  int tb_k = 0;
  uint64_t seed = 1;
  CoreCapacity core;  // coreRxC only (gen/core.h)
};

Runner setup_gen(CLI::App& app) {
  auto args = std::make_shared<GenArgs>();
  app.add_option("--design", args->design,
                 "design point, e.g. \"gse:b=6@array4x4,acc=fixed32.16,pipe=2\" "
                 "(<format>@<pe|arrayRxC|coreRxC>,acc=fixedW.F|fp32,flow=os|ws,pipe=1..4[,align=shared])")
      ->required();
  app.add_option("--out", args->out, "output folder (created; files are replaced)")->required();
  app.add_flag("--testbench", args->testbench,
               "also write tb_<top>.v: a self-checking testbench with golden vectors (random "
               "codes, expected results from golden_gemm) for iverilog -g2005 or verilator");
  app.add_option("--int-bits", args->int_bits,
                 "int8 designs only: build the plain INT-b MAC baseline with b = 2..8 bits");
  app.add_flag("--shared-align", args->shared,
               "deprecated alias of the design option align=shared (GSE arrays: share the "
               "per-group hardware among the PEs of each column; see docs/generator.md)");
  app.add_option("--tb-tiles", args->tb_tiles, "testbench: output tiles to stream (1..64)")
      ->check(CLI::Range(1, 64));
  app.add_option("--tb-k", args->tb_k,
                 "testbench: reduction length K (default: two groups plus a partial one for "
                 "GSE, else 2R+3)")
      ->check(CLI::Range(0, 4096));
  app.add_option("--seed", args->seed, "testbench: seed of the random codes");
  app.add_option("--core-tile-rows", args->core.tile_rows,
                 "core: operand/result buffers hold M <= this many tiles of R rows (2..64)");
  app.add_option("--core-tile-cols", args->core.tile_cols,
                 "core: buffers hold N <= this many tiles of C columns (2..64)");
  app.add_option("--core-max-k", args->core.max_k,
                 "core: buffers hold K <= this (a power of two, 4..4096, >= G for GSE)");
  app.add_flag("--json", args->json, "print the manifest (and testbench summary) as JSON");

  return [args]() -> int {
    // The flag is spelt into the design string so that it is re-checked like one and the
    // canonical string (manifest, slug, caches) records it.
    DesignPoint design =
        DesignPoint::parse(args->shared ? args->design + ",align=shared" : args->design);
    GeneratorOptions options;
    options.int_bits = args->int_bits;
    // A core with options it cannot take goes through generate_design, which says why.
    const bool plain_core = design.level == DesignPoint::Level::core && options.int_bits == 0 &&
                            design.alignment == DesignPoint::Alignment::per_pe &&
                            design.dataflow == DesignPoint::Dataflow::output_stationary;
    GeneratedDesign generated =
        plain_core ? generate_core(design, args->core) : generate_design(design, options);
    write_design(generated, args->out);
    nlohmann::json summary = generated.manifest;
    if (args->testbench && design.level == DesignPoint::Level::core) {  // gen/core.h
      CoreTestbench bench = generate_core_testbench(generated, args->seed);
      write_core_testbench(bench, args->out);
      summary["testbench"] = {{"file", bench.file_name},
                              {"gemm", {{"m", bench.m}, {"n", bench.n}, {"k", bench.k}}},
                              {"results", bench.checked_outputs}};
    } else if (args->testbench) {
      TestbenchOptions tb;
      tb.tiles = args->tb_tiles;
      tb.k = args->tb_k;
      tb.seed = args->seed;
      GeneratedTestbench bench = generate_testbench(generated, tb);
      write_testbench(bench, args->out);
      summary["testbench"] = {{"file", bench.file_name},
                              {"gemm", {{"m", bench.m}, {"n", bench.n}, {"k", bench.k}}},
                              {"results", bench.checked_outputs},
                              {"cycles", bench.expected_cycles}};
    }
    if (args->json) {
      std::printf("%s\n", summary.dump(2).c_str());
    } else {
      const std::string what =
          generated.manifest.contains("int_bits")
              ? fmt::format("plain INT{} ({} narrowed by --int-bits {})", args->int_bits,
                            generated.design.str(), args->int_bits)
              : generated.design.str();
      std::printf("wrote %s (%zu Verilog files, top %s, latency %d) to %s (file list: files.f)\n",
                  what.c_str(), generated.files.size(), generated.top.c_str(),
                  generated.manifest["timing"]["latency"].get<int>(), args->out.c_str());
      if (summary.contains("testbench"))
        std::printf("testbench %s: %d x %d x %d GEMM, %d results checked\n",
                    summary["testbench"]["file"].get<std::string>().c_str(),
                    summary["testbench"]["gemm"]["m"].get<int>(),
                    summary["testbench"]["gemm"]["n"].get<int>(),
                    summary["testbench"]["gemm"]["k"].get<int>(),
                    summary["testbench"]["results"].get<int>());
    }
    return 0;
  };
}

}  // namespace

GSQHW_COMMAND("gen", "Generate Verilog (PE or array) and its manifest for a design point", setup_gen);

}  // namespace gsqhw::cli
