// `gsqhw finetune`: LoRA fine-tuning of a LLaMA checkpoint in several number formats (one run
// per --formats spec plus the FP32 baseline), every projection GEMM through the golden model;
// loss curves (CSV, JSON, gnuplot PNG/SVG), the final table and the iso-accuracy b*.
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <map>

#include "cli/command.h"
#include "base/files.h"
#include "base/errors.h"
#include "base/process.h"
#include "synth/slurm_array.h"
#include "workloads/train/finetune.h"

namespace gsqhw::cli {
namespace {

std::string duration_text(double s) {
  if (!std::isfinite(s) || s < 0) return "?";
  const auto t = static_cast<int64_t>(s + 0.5);
  if (t >= 3600) return fmt::format("{}h{:02}m", t / 3600, t % 3600 / 60);
  if (t >= 60) return fmt::format("{}m{:02}s", t / 60, t % 60);
  return fmt::format("{}s", t);
}

// A progress bar on stderr with the ETA of the whole command (all runs).
class ProgressBar {
 public:
  ProgressBar(int64_t steps_per_run) : steps_(steps_per_run), tty_(::isatty(2)) {}
  void operator()(size_t run, size_t runs, const std::string& label, int64_t step, int64_t steps, double loss) {
    const auto now = std::chrono::steady_clock::now();
    const int64_t total = static_cast<int64_t>(runs) * steps_;
    const int64_t done = static_cast<int64_t>(run) * steps_ + step;
    if (first_done_ < 0) {
      first_done_ = done;
      start_ = now;
    }
    const double elapsed = std::chrono::duration<double>(now - start_).count();
    const double rate = done > first_done_ ? (done - first_done_) / elapsed : 0;
    const double eta = rate > 0 ? (total - done) / rate : NAN;
    const int width = 30;
    const int fill = total ? static_cast<int>(width * done / total) : width;
    const std::string loss_text = std::isfinite(loss) ? fmt::format("{:.4f}", loss) : "-";
    const std::string line = fmt::format("[{}{}] run {}/{} {:<28.28} step {}/{} loss {} ETA {}",
                                         std::string(fill, '#'), std::string(width - fill, '.'), run + 1, runs,
                                         label, step, steps, loss_text, duration_text(eta));
    if (tty_) {
      std::fprintf(stderr, "\r%s\033[K", line.c_str());
      if (done == total) std::fprintf(stderr, "\n");
    } else if (step == steps || step % std::max<int64_t>(1, steps / 10) == 0) {
      std::fprintf(stderr, "%s\n", line.c_str());
    }
    std::fflush(stderr);
  }

 private:
  int64_t steps_;
  bool tty_;
  int64_t first_done_ = -1;
  std::chrono::steady_clock::time_point start_;
};

// Loss curves of every run on one plot (train loss thin, validation loss with points).
std::string plot_losses(const train::FinetuneResult& r, const std::filesystem::path& out) {
  const auto dir = out / "plots";
  std::filesystem::create_directories(dir);
  std::string script =
      "set datafile separator ','\nset xlabel 'step'\nset ylabel 'cross-entropy loss (nats/token)'\n"
      "set key outside right\nset grid\nset title 'LoRA fine-tuning: training (thin) and validation (points) loss'\n";
  std::string plots;
  const auto& runs = r.json["runs"];
  for (size_t i = 0; i < runs.size(); ++i) {
    std::ofstream val(dir / fmt::format("val{}.csv", i));
    for (const auto& e : runs[i]["evals"]) val << e["step"].get<int64_t>() << "," << e["val_loss"].get<double>() << "\n";
  }
  // Training losses from losses.csv, per run.
  std::ifstream csv(out / "losses.csv");
  std::string line;
  std::getline(csv, line);
  std::map<std::string, std::ofstream> train_files;
  std::map<std::string, size_t> index;
  for (size_t i = 0; i < runs.size(); ++i) index[runs[i]["label"].get<std::string>()] = i;
  while (std::getline(csv, line)) {
    // label may hold commas: split from the right (seed,step,split,loss,ppl,scale = 6 fields)
    std::vector<size_t> commas;
    for (size_t p = 0; p < line.size(); ++p)
      if (line[p] == ',') commas.push_back(p);
    if (commas.size() < 6) continue;
    const size_t c0 = commas[commas.size() - 6];
    const std::string label = line.substr(0, c0);
    const std::string rest = line.substr(c0 + 1);
    if (rest.find(",train,") == std::string::npos || !index.count(label)) continue;
    auto& f = train_files[label];
    if (!f.is_open()) f.open(dir / fmt::format("train{}.csv", index[label]));
    // seed,step,train,loss,...
    const auto parts_step = rest.find(',');
    const auto step_end = rest.find(',', parts_step + 1);
    const auto loss_start = rest.find(',', step_end + 1) + 1;
    const auto loss_end = rest.find(',', loss_start);
    f << rest.substr(parts_step + 1, step_end - parts_step - 1) << "," << rest.substr(loss_start, loss_end - loss_start)
      << "\n";
  }
  for (auto& [k, f] : train_files) f.close();
  for (size_t i = 0; i < runs.size(); ++i) {
    std::string title = runs[i]["label"].get<std::string>();
    for (char& c : title)
      if (c == '\'' || c == '_') c = ' ';
    if (!plots.empty()) plots += ", ";
    if (std::filesystem::exists(dir / fmt::format("train{}.csv", i)))
      plots += fmt::format("'train{}.csv' using 1:2 with lines lw 1 lc {} notitle, ", i, i + 1);
    plots += fmt::format("'val{}.csv' using 1:2 with linespoints lw 2 pt 7 lc {} title '{}'", i, i + 1, title);
  }
  script += "set terminal pngcairo size 1200,700\nset output 'loss.png'\nplot " + plots +
            "\nset terminal svg size 1200,700\nset output 'loss.svg'\nreplot\n";
  {
    std::ofstream gp(dir / "loss.gp");
    gp << script;
  }
  const auto gnuplot = find_program("gnuplot");
  if (gnuplot.empty())
    return "plots not drawn: gnuplot is not installed (apt-get install gnuplot-nox); data and script in " +
           dir.string();
  const auto run = run_process({gnuplot.string(), "loss.gp"}, dir, dir / "gnuplot.log", 120);
  if (run.exit_code != 0) return "plots failed: gnuplot said: " + tail_lines(run.output, 3);
  std::filesystem::copy_file(dir / "loss.png", out / "loss.png", std::filesystem::copy_options::overwrite_existing);
  std::filesystem::copy_file(dir / "loss.svg", out / "loss.svg", std::filesystem::copy_options::overwrite_existing);
  return "plots: " + (out / "loss.png").string() + ", " + (out / "loss.svg").string();
}

// Validation loss against memory per step of every run (mean over its seeds), the Pareto
// frontier joined and marked: the plot of a --grid.
std::string plot_memory_loss(const train::FinetuneResult& r, const std::filesystem::path& out) {
  const auto dir = out / "plots";
  std::filesystem::create_directories(dir);
  std::vector<const train::RunGroup*> frontier;
  {
    std::ofstream all(dir / "memory_loss.dat");
    for (const auto& g : r.groups) {
      std::string name = g.label;
      for (char& c : name)
        if (c == '"' || c == '_') c = ' ';
      // columns: MiB, loss, label, series (0 GSE-INT and others, 1 FP8, 2 FP32 / BF16), on the frontier
      const int series = g.run == "fp8" ? 1 : g.run == "fp32" || g.run == "bf16" ? 2 : 0;
      all << fmt::format("{:.6f}\t{:.6f}\t\"{}\"\t{}\t{}\n", g.memory_bytes / (1024.0 * 1024.0), g.mean, name, series,
                         g.pareto ? 1 : 0);
      if (g.pareto) frontier.push_back(&g);
    }
  }
  std::sort(frontier.begin(), frontier.end(),
            [](const auto* a, const auto* b) { return a->memory_bytes < b->memory_bytes; });
  {
    std::ofstream f(dir / "pareto.dat");
    for (const auto* g : frontier) f << fmt::format("{:.6f}\t{:.6f}\n", g->memory_bytes / (1024.0 * 1024.0), g->mean);
  }
  const auto& j = r.json;
  const std::string title = fmt::format(
      "validation loss after {} steps (mean over seeds) vs memory per step ({} tokens); labelled: frontier, FP8, FP32",
      j.value("steps", 0), j.value("batch", 0) * j.value("seq", 0));
  std::ofstream gp(dir / "memory_loss.gp");
  gp << "set xlabel 'memory per step (MiB, gsqhw memory model)'\nset ylabel 'final validation loss (nats/token)'\n"
     << "set grid\nset key top right\nset title '" << title << "' noenhanced\n"
     << "set terminal pngcairo size 1200,700\nset output 'memory_loss.png'\n"
     << "plot 'memory_loss.dat' using 1:($4==0?$2:1/0) with points pt 7 ps 1.2 lc rgb '#4477aa' title 'GSE-INT b (rank r)', "
     << "'memory_loss.dat' using 1:($4==1?$2:1/0) with points pt 9 ps 1.6 lc rgb '#ee7733' title 'FP8 E4M3/E5M2 (rank r)', "
     << "'memory_loss.dat' using 1:($4==2?$2:1/0) with points pt 5 ps 1.4 lc rgb '#555555' title 'FP32 / BF16', "
     << "'pareto.dat' using 1:2 with linespoints lw 2 pt 6 ps 2.2 lc rgb '#cc3311' title 'Pareto frontier', "
     << "'memory_loss.dat' using 1:($5==1||$4>0?$2:1/0):3 with labels offset 0,0.9 font ',8' noenhanced notitle\n"
     << "set terminal svg size 1200,700\nset output 'memory_loss.svg'\nreplot\n";
  gp.close();
  const auto gnuplot = find_program("gnuplot");
  if (gnuplot.empty())
    return "memory plot not drawn: gnuplot is not installed (apt-get install gnuplot-nox); data in " + dir.string();
  const auto run = run_process({gnuplot.string(), "memory_loss.gp"}, dir, dir / "gnuplot-memory.log", 120);
  if (run.exit_code != 0) return "memory plot failed: gnuplot said: " + tail_lines(run.output, 3);
  for (const char* f : {"memory_loss.png", "memory_loss.svg"})
    std::filesystem::copy_file(dir / f, out / f, std::filesystem::copy_options::overwrite_existing);
  return "memory plot: " + (out / "memory_loss.png").string() + ", " + (out / "memory_loss.svg").string() +
         " (data " + (out / "memory_loss.csv").string() + ")";
}

// The final results of a finished (or summarized) set of runs: the table, b*, plots and file
// names, or with --json the results document.
void print_results(const train::FinetuneOptions& o, const train::FinetuneResult& r, bool json) {
  if (json) {  // the same document as OUT/results.json, plus where the plots went
    nlohmann::json j = r.json;
    j["plots"] = plot_losses(r, o.out);
    if (!o.grid.empty()) j["memory_plot"] = plot_memory_loss(r, o.out);
    j["complete"] = r.complete;
    std::printf("%s\n", j.dump(2).c_str());
    return;
  }
  std::printf("\n%s\n", r.table.c_str());
  const auto& iso = r.json["iso_accuracy"];
  if (iso.contains("fp8_val_loss"))
    std::printf("iso-accuracy: b* = %s (smallest GSE-INT width whose validation loss%s <= FP8's %.4f + FP32 spread %s)\n",
                iso["b_star"].is_null() ? "none" : std::to_string(iso["b_star"].get<int>()).c_str(),
                iso.value("fp8_seeds", 1) > 1 ? " (mean over seeds)" : "", iso["fp8_val_loss"].get<double>(),
                iso.value("fp32_seeds", 1) > 1 ? fmt::format("{:.4f}", iso["spread"].get<double>()).c_str()
                                               : "unknown, taken as 0: one FP32 seed; --fp32-seeds 3 measures it");
  std::printf("%s\n", plot_losses(r, o.out).c_str());
  if (!o.grid.empty()) std::printf("%s\n", plot_memory_loss(r, o.out).c_str());
  std::printf("results: %s, %s, %s\n", (o.out / "results.json").c_str(), (o.out / "losses.csv").c_str(),
              (o.out / "summary.md").c_str());
}

int run_finetune(const train::FinetuneOptions& o, bool json) {
  ProgressBar bar(o.steps);
  const train::FinetuneResult r = train::finetune(o, [&](size_t run, size_t runs, const std::string& label,
                                                         int64_t step, int64_t steps, double loss) {
    bar(run, runs, label, step, steps, loss);
  });
  if (!o.only_run.empty()) {
    std::printf("run %s: %s\n", o.only_run.c_str(), r.complete ? "complete" : "stopped before --steps");
    return 0;
  }
  print_results(o, r, json);
  if (!r.complete && !json) {
    std::printf("stopped before --steps %lld; run the same command again to continue\n",
                static_cast<long long>(o.steps));
  }
  return 0;
}

struct SlurmArgs {
  std::string executor = "local";
  synth::slurm::SubmitOptions submit;
  double poll = 5;
};

std::atomic<bool> g_slurm_interrupted{false};
extern "C" void on_slurm_interrupt(int) { g_slurm_interrupted.store(true); }

// This command line without the Slurm executor's options: what each array task runs (plus
// --only-run). Options come as "--opt value" or "--opt=value".
std::vector<std::string> task_command_line() {
  static const std::vector<std::string> executor_options = {"--executor", "--partition", "--max-parallel", "--time",
                                                            "--mem", "--sbatch-arg", "--poll"};
  const std::string raw = read_file_if_present("/proc/self/cmdline");
  std::vector<std::string> argv;
  for (size_t start = 0; start < raw.size();) {
    size_t end = raw.find('\0', start);
    if (end == std::string::npos) end = raw.size();
    argv.push_back(raw.substr(start, end - start));
    start = end + 1;
  }
  std::vector<std::string> kept = {std::filesystem::read_symlink("/proc/self/exe").string()};
  for (size_t i = 1; i < argv.size(); ++i) {
    const std::string name = argv[i].substr(0, argv[i].find('='));
    if (std::find(executor_options.begin(), executor_options.end(), name) != executor_options.end()) {
      if (argv[i].find('=') == std::string::npos) ++i;  // its value is the next argument
      continue;
    }
    kept.push_back(argv[i]);
  }
  return kept;
}

// `--executor slurm`: every run is one task of a job array (docs/cluster.md); when the job has
// ended, the saved states are summarized here like a local run's.
int run_finetune_on_slurm(const train::FinetuneOptions& o, const synth::slurm::SubmitOptions& submit, double poll,
                          bool json) {
  synth::slurm::require_slurm_client();
  const std::vector<std::string> names = train::finetune_run_names(o);
  const std::vector<std::string> base = task_command_line();
  std::vector<synth::ArrayTask> tasks;
  for (const auto& name : names) {
    std::vector<std::string> argv = base;
    argv.insert(argv.end(), {"--only-run", name});
    tasks.push_back({name, argv, {}});
  }
  std::filesystem::create_directories(o.out);
  g_slurm_interrupted.store(false);
  auto old_int = std::signal(SIGINT, on_slurm_interrupt);
  auto old_term = std::signal(SIGTERM, on_slurm_interrupt);
  const bool finished = synth::run_job_array(tasks, o.out / "slurm", submit, poll, true, &g_slurm_interrupted);
  std::signal(SIGINT, old_int);
  std::signal(SIGTERM, old_term);
  if (!finished) {
    std::printf("finetune: detached; the runs keep going in Slurm; run the same command again to follow them\n");
    return 130;
  }
  int failed = 0;
  for (const auto& t : tasks)
    if (t.final.state != "COMPLETED") {
      ++failed;
      std::fprintf(stderr, "finetune: run %s: Slurm task ended %s (reason %s, exit code %s, node %s; from %s)\n",
                   t.name.c_str(), t.final.state.c_str(), t.final.reason.empty() ? "not recorded" : t.final.reason.c_str(),
                   t.final.exit_code.c_str(), t.final.node.c_str(), t.final.source.c_str());
    }
  train::FinetuneOptions summary = o;
  summary.no_training = true;
  const train::FinetuneResult r = train::finetune(summary);
  print_results(o, r, json);
  if (failed > 0 || !r.complete) {
    std::fprintf(stderr, "finetune: %d Slurm task(s) did not complete (states in %s); run the same command again "
                 "to resubmit: every run resumes at its last saved step\n",
                 failed, (o.out / "slurm/tasks.json").c_str());
    return 1;
  }
  return 0;
}

Runner setup(CLI::App& app) {
  auto o = std::make_shared<train::FinetuneOptions>();
  auto out = std::make_shared<std::string>();
  app.add_option("--checkpoint", o->checkpoint, "llama2.c checkpoint or HF safetensors file/folder")->required();
  app.add_option("--tokenizer", o->tokenizer, "llama2.c tokenizer file (e.g. tok512.bin)")->required();
  app.add_option("--data", o->data, "UTF-8 text file; the last --val-fraction of its tokens validate")->required();
  app.add_option("--formats", o->formats,
                 "run specs, one run each (the FP32 baseline always runs): bf16 (emulated), fp8 (E4M3 fwd, "
                 "E5M2 grads), a format spec (gse:b=6, int8:per=channel, ...) or act=..,weight=..,grad=..; "
                 "optional @ACC overrides --acc")
      ->expected(0, -1);
  app.add_option("--acc", o->acc, "accumulator of the QCD runs: natural (the sweep's: fixed32.16 GSE-INT, fixed32.0 INT8, fp32 FP8/BF16), fixedW.F or fp32")->capture_default_str();
  app.add_option("--storage", o->storage, "frozen base weights: nf4:block=64 or fp32")->capture_default_str();
  app.add_option("--targets", o->targets, "LoRA targets: subset of q,k,v,o,gate,up,down or all")->capture_default_str();
  app.add_option("--rank", o->rank, "LoRA rank r")->capture_default_str();
  app.add_option("--alpha", o->alpha, "LoRA alpha (scale alpha/r)")->capture_default_str();
  app.add_option("--steps", o->steps, "training steps per run")->capture_default_str();
  app.add_option("--batch", o->batch, "sequences per step")->capture_default_str();
  app.add_option("--seq", o->seq, "tokens per sequence")->capture_default_str();
  app.add_option("--lr", o->lr, "AdamW learning rate")->capture_default_str();
  app.add_option("--weight-decay", o->weight_decay, "AdamW decoupled weight decay")->capture_default_str();
  app.add_option("--seed", o->seed, "seed of LoRA init, batches and stochastic rounding")->capture_default_str();
  app.add_option("--fp32-seeds", o->fp32_seeds,
                 "FP32 runs with seeds seed..seed+N-1; their spread decides ties")->capture_default_str();
  app.add_option("--seeds", o->seeds,
                 "every run spec runs with seeds seed..seed+N-1 (FP32: at least N); verdicts compare means and "
                 "print each run's spread")->capture_default_str();
  app.add_option("--grid", o->grid,
                 "bits x rank grid: bits=4..8,rank=2,4,8,16 runs GSE-INT b at every rank (and each --formats spec "
                 "at every rank); memory_loss.csv/.png: validation loss against memory per step, Pareto frontier "
                 "marked");
  app.add_option("--eval-every", o->eval_every, "validation every N steps (and at the end)")->capture_default_str();
  app.add_option("--eval-windows", o->eval_windows, "validation sequences (non-overlapping windows)")
      ->capture_default_str();
  app.add_option("--save-every", o->save_every, "save the resumable state every N steps")->capture_default_str();
  app.add_option("--val-fraction", o->val_fraction, "share of the text's tokens held out")->capture_default_str();
  app.add_option("--loss-scale", o->loss_scale,
                 "1 (off), a fixed power of two, or dynamic (start 4096, halve and skip the step on "
                 "accumulator overflow or Inf/NaN gradients, double after 50 good steps)")
      ->capture_default_str();
  app.add_option("--optimizer", o->optimizer,
                 "adamw (LoRA masters, default) or tsignsgd[:n=4,g=64,omega=W,fraction=F]: LoTA-QAF's ternary "
                 "adapters on the targets (N-bit base, merge threshold omega, default 0.75 r), trained with "
                 "t-SignSGD moving the top F of |gradient| per step (default 0.05)")
      ->capture_default_str();
  app.add_flag("--quantize-attention", o->quantize_attention,
               "also run the attention score and value products (Q K^T, P V and their backward) through the "
               "run's engine (default: FP32; the FP32 run is unchanged)");
  app.add_option("--threads", o->threads, "golden GEMM threads (0 = all cores); results do not depend on it")
      ->capture_default_str();
  app.add_option("--stop-after", o->stop_after, "stop after N steps of this invocation (as if killed; for tests)");
  app.add_option("--out", *out, "output folder (reused: an existing run there is resumed)")->required();
  auto json = std::make_shared<bool>(false);
  app.add_flag("--json", *json, "print the results (OUT/results.json) as JSON; progress stays on stderr");
  app.add_option("--only-run", o->only_run,
                 "train only the run with this folder name (runs/NAME) and write no summary (one Slurm task)");
  auto slurm = std::make_shared<SlurmArgs>();
  app.add_option("--executor", slurm->executor,
                 "where runs train: local (one after another here, default) or slurm (one job array task per run; "
                 "--out and the inputs on storage the nodes share; docs/cluster.md)");
  app.add_option("--partition", slurm->submit.partition, "slurm: the partition (default: the cluster's default)");
  app.add_option("--max-parallel", slurm->submit.max_parallel, "slurm: at most N runs at once (default: no limit)");
  app.add_option("--time", slurm->submit.time, "slurm: time limit per run (sbatch --time)");
  app.add_option("--mem", slurm->submit.mem, "slurm: memory per run (sbatch --mem)");
  app.add_option("--sbatch-arg", slurm->submit.extra, "slurm: a further sbatch argument (repeatable)");
  app.add_option("--poll", slurm->poll, "slurm: seconds between looks at the queue (default 5)");
  return [o, out, json, slurm] {
    o->out = *out;
    if (slurm->executor != "local" && slurm->executor != "slurm")
      throw UsageError(fmt::format("--executor '{}' is not one of local, slurm", slurm->executor));
    const bool slurm_options = !slurm->submit.partition.empty() || slurm->submit.max_parallel != 0 ||
                               !slurm->submit.time.empty() || !slurm->submit.mem.empty() ||
                               !slurm->submit.extra.empty();
    if (slurm_options && slurm->executor != "slurm")
      throw UsageError("--partition, --max-parallel, --time, --mem and --sbatch-arg need --executor slurm");
    if (slurm->submit.max_parallel < 0) throw UsageError("--max-parallel must not be negative");
    if (!(slurm->poll > 0) || slurm->poll > 3600) throw UsageError("--poll must be within 0..3600 seconds");
    if (slurm->executor == "slurm") {
      if (!o->only_run.empty()) throw UsageError("--only-run is what each Slurm task runs; not with --executor slurm");
      if (o->stop_after > 0) throw UsageError("--stop-after is not supported with --executor slurm");
      return run_finetune_on_slurm(*o, slurm->submit, slurm->poll, *json);
    }
    return run_finetune(*o, *json);
  };

}

GSQHW_COMMAND("finetune", "LoRA fine-tuning of a LLaMA checkpoint in several number formats (loss curves, b*)", setup);

}  // namespace
}  // namespace gsqhw::cli
