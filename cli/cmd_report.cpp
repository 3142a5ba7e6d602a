// `gsqhw report`: the Markdown + HTML report (with plots) of a sweep's results file.
#include <fmt/format.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "cli/command.h"
#include "base/errors.h"
#include "synth/report.h"
#include "synth/sweep.h"

namespace gsqhw::cli {
namespace {

struct ReportArgs {
  std::vector<std::string> dbs;
  std::string out;
  bool json = false;
};

Runner setup(CLI::App& app) {
  auto args = std::make_shared<ReportArgs>();
  app.description(
      "Write report.md, report.html, plots/ (gnuplot PNG + SVG) and results.csv/json from the most\n"
      "recent sweep in a results file: the table of area, cells, fmax, power and pJ/MAC (each also as a\n"
      "ratio to FP8 E4M3), the headline GSE-INT vs FP8 comparison next to the paper's 5x power / 11x\n"
      "area, and the GSE-INT PE area against plain INT-b MAC and bare-MAC PEs.");
  app.add_option("--db", args->dbs,
                 "results file(s) written by `gsqhw sweep` (OUT/results.sqlite); several are combined (e.g. one per "
                 "library: the report then opens with the headline on each library)")
      ->required();
  app.add_option("--out", args->out, "output folder (default: the results file's folder)");
  app.add_flag("--json", args->json, "print the files written as JSON");
  return [args]() -> int {
    std::vector<std::filesystem::path> dbs;
    for (const auto& d : args->dbs) {
      if (!std::filesystem::is_regular_file(d)) throw UsageError(fmt::format("results file {} does not exist", d));
      dbs.push_back(d);
    }
    std::filesystem::path out = args->out.empty() ? dbs.front().parent_path() : std::filesystem::path(args->out);
    if (out.empty()) out = ".";
    if (dbs.size() > 1 && args->out.empty())
      throw UsageError("several --db files: say where the combined report goes with --out");
    std::filesystem::create_directories(out);
    // The exports are per file; a combined report exports the first file's sweep.
    synth::export_results(dbs.front(), out / "results.csv", out / "results.json");
    std::filesystem::path report = synth::write_report(dbs, out);
    if (args->json) {
      const nlohmann::json written = {{"report", report.string()},
                                      {"html", (out / "report.html").string()},
                                      {"plots", (out / "plots").string()},
                                      {"csv", (out / "results.csv").string()},
                                      {"json", (out / "results.json").string()},
                                      {"databases", args->dbs}};
      fmt::print("{}\n", written.dump(2));
      return 0;
    }
    fmt::print("report: {} (and report.html, plots/, results.csv, results.json)\n", report.string());
    return 0;
  };
}

GSQHW_COMMAND("report", "Write the Markdown/HTML report with plots from a sweep's results", setup);

}  // namespace
}  // namespace gsqhw::cli
