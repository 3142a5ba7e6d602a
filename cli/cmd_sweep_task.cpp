// `gsqhw sweep-task`: what each Slurm array task of `gsqhw sweep --executor slurm` runs on its
// node (synth/sweep_slurm.cpp): one point of a submission file, its result file written
// atomically for the controller to merge. Not meant to be run by hand.
#include <cstdlib>
#include <memory>

#include "cli/command.h"
#include "base/errors.h"
#include "synth/sweep.h"

namespace gsqhw::cli {
namespace {

struct SweepTaskArgs {
  std::string submission;
  int index = -1;
};

Runner setup(CLI::App& app) {
  auto args = std::make_shared<SweepTaskArgs>();
  app.description(
      "Evaluate one point of a Slurm sweep submission (run by the job array of `gsqhw sweep --executor slurm`; "
      "checks that this node's Yosys, OpenSTA and Verilator are the controller's, then writes the point's "
      "result file atomically).");
  app.add_option("--submission", args->submission, "the submission file OUT/slurm/submissions/NNNN.json")->required();
  app.add_option("--index", args->index, "the point (array task index; default $SLURM_ARRAY_TASK_ID)");
  return [args]() -> int {
    int index = args->index;
    if (index < 0) {
      const char* env = std::getenv("SLURM_ARRAY_TASK_ID");
      if (!env || !*env) throw UsageError("--index not given and SLURM_ARRAY_TASK_ID is not set");
      try {
        index = std::stoi(env);
      } catch (const std::exception&) {
        throw UsageError(std::string("SLURM_ARRAY_TASK_ID '") + env + "' is not a number");
      }
    }
    return synth::run_sweep_task(args->submission, index);
  };
}

GSQHW_COMMAND("sweep-task", "One point of a Slurm sweep submission (run by the job array, not by hand)", setup);

}  // namespace
}  // namespace gsqhw::cli
