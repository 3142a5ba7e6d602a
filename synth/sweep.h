// The bit-width sweep: a grid of design points (GSE-INT b = 3..8 against FP8 E4M3/E5M2, INT8
// and BF16, at PE level and as a small array, plus the INT-b MAC and bare-MAC baselines), each
// evaluated by a `gsqhw synth` worker process (synth/point.h), two at a time by default.
// Every finished point is committed to the SQLite results file at once (synth/results_db.h);
// a re-run skips what is stored, so an interrupted sweep resumes and a finished one returns
// in seconds. At the end it exports CSV and JSON and writes the report (synth/report.h).
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "synth/liberty.h"
#include "synth/slurm.h"
#include "synth/sweep_finetune.h"

namespace gsqhw::synth {

struct SweepGrid {
  // Format specs; "gse" expands over `bits` with g=32, e=5. Default: gse fp8:e4m3 fp8:e5m2 int8 bf16.
  std::vector<std::string> formats;
  std::vector<int> bits;              // default 3..8
  std::vector<std::string> levels;    // "pe", "array2x2", ...; default pe, array2x2
  // Also run GSE at PE level with an fp32 accumulator (the iso-accumulator comparison with FP8):
  // for the headline width only (see headline_bits), or for every width with all_iso.
  bool iso_accumulator = true;
  bool all_iso = false;
  // Array levels hold every format with array_all_formats, else only the headline pair
  // (GSE-INT at the headline width, FP8 E4M3): arrays cost minutes each to build and simulate.
  bool array_all_formats = false;
  bool baselines = true;              // INT-b MAC and bare-MAC PEs for every b
  bool siblings = true;               // LoTA-QAF and PTQ1.61 points (default_sibling_designs())
  // The amortisation check of the 1.15x target at a size where one column unit serves many
  // rows: the headline GSE-INT width as a shared-column array of this shape ("RxC") and the
  // plain INT-b arrays it is compared with (fixed32.0 and fixed32.16). Empty (the default): none;
  // at 8x8 its three points took 40% of the default sweep's time (Yosys 12-13 min each at load
  // 20), so it is an option (`--amortisation-array 8x8`). Needs `baselines`; its points are
  // skipped when the shape is already among `levels`.
  std::string amortisation_array;
  // An explicit list of design/baseline strings: replaces the grid above when not empty.
  std::vector<std::string> designs;
};

// The natural accumulator of a format family: fixed32.16 for GSE, fixed32.0 for INT8 (its
// scales are applied at dequantization), fp32 for the minifloats.
std::string natural_accumulator(const std::string& format_spec);

// The design strings of a grid, in evaluation order (PE points first: they are quick).
// `headline_bits`: the GSE-INT width of the headline comparison (0: every width counts).
std::vector<std::string> sweep_designs(const SweepGrid& grid, int headline_bits = 0);

// The smallest GSE-INT width among `bits` whose trace SQNR (natural accumulator) is no worse
// than FP8 E4M3's, on the traces (empty: the built-in tiny set, generated into the cache);
// the largest width when none is. Cheap: golden model only, no hardware.
int headline_gse_bits(const std::vector<int>& bits, const std::vector<std::filesystem::path>& traces,
                      const std::filesystem::path& cache_dir);

// "3..8" or "3,4,6" -> {3,4,...}; UsageError otherwise.
std::vector<int> parse_bit_range(const std::string& text);

// The Slurm executor (synth/sweep_slurm.cpp, docs/cluster.md): one job array per submission,
// one task per point, each task a `gsqhw sweep-task` on a node writing its result file into
// out_dir/slurm/results/; the controller merges them into the results file as they arrive.
struct SlurmExecutorOptions {
  slurm::SubmitOptions submit;  // partition, --max-parallel, --time, --mem, extra sbatch args
  bool detach = false;          // submit and return at once; --attach / --collect picks the job up
  bool collect = false;         // merge what has finished, record ended tasks; submit and wait for nothing
  double poll_seconds = 5;      // how often the controller asks squeue
  // Seconds a task may be gone from the queue without a result file before its final state is
  // recorded as an error (a result written on a node may take a moment to show on shared storage).
  double result_grace_seconds = 15;
  std::filesystem::path task_cache;  // the cache folder the tasks use (e.g. node-local); empty: cache_dir
};

struct SweepOptions {
  SweepGrid grid;
  LibraryChoice library;
  double clock_ns = 30.0;
  double input_activity = 0.1;
  std::vector<std::filesystem::path> traces;  // empty: the built-in tiny LoRA trace set
  // results.json of `gsqhw finetune` (with an fp8 run and GSE-INT widths): b* is its
  // iso-accuracy choice instead of the trace SQNR's.
  std::filesystem::path finetune_results;
  // Without finetune_results: the sweep's own fine-tuning decides b* (synth/sweep_finetune.h);
  // finetune.enabled = false (--no-finetune) leaves it to the trace SQNR, said loudly when synthetic.
  SweepFinetuneOptions finetune;
  // Workload power source of every point but the headline PE pair (synth/point.h). "none" by
  // default (vectorless power): an RTL simulation's activity ("rtl") overstates datapath power
  // and the report does not quote it, yet its traced Verilator build and simulation cost about
  // as much as the rest of a PE point; a gate-level Verilator build per point ("gate") costs
  // minutes at 180 nm netlist sizes. Either breaks the 10-minute sweep budget.
  std::string activity = "none";
  // Activity source for the headline PE pair only (GSE-INT at the headline width with its
  // natural accumulator, and FP8 E4M3). "gate" gives the only workload power the report quotes
  // (RTL activity overstates datapath power), but its two points took 19% of the default
  // sweep's worker time (1 161 of 6 120 s at load 18-33, most of it building the netlists'
  // Verilator models), so it is an option (`--headline-activity gate`) and the default is "none": the
  // headline's power ratios are then vectorless on both sides, and the report says so. Empty:
  // the same as `activity`.
  std::string headline_activity = "none";
  int activity_traces = 2;
  int jobs = 2;
  bool retry_errors = false;        // re-evaluate stored points whose status is "error"
  // Largest file a point's worker and tools may write (RLIMIT_FSIZE), 0 = no limit: a runaway
  // point then fails alone with a "file-size limit / disk full" error instead of filling the disk.
  uint64_t max_file_bytes = 0;
  std::filesystem::path out_dir = "out/sweep";
  std::filesystem::path cache_dir;  // empty: default cache
  std::filesystem::path worker;     // the gsqhw executable (default: this process's own binary)
  bool report = true;               // write the report at the end
  bool progress = true;             // progress bar with ETA on stderr
  std::string executor = "local";   // "local" (worker processes here) or "slurm"
  SlurmExecutorOptions slurm;
};

struct SweepSummary {
  int points = 0, reused = 0, evaluated = 0, ok = 0, failed = 0;
  bool interrupted = false;
  bool detached = false;   // Slurm: returned with tasks still queued or running (--detach, --collect, Ctrl-C)
  int in_flight = 0;       // Slurm: points whose task is still queued or running
  int not_submitted = 0;   // Slurm, --collect: points that need a task and have none
  std::vector<std::string> slurm_jobs;  // Slurm: the job ids submitted or followed by this run
  double seconds = 0;
  std::filesystem::path db, csv, json, report;
};

// The activity source the sweep uses for `design` (headline_activity for the headline PE pair,
// else activity). headline_bits 0: no headline pair.
std::string point_activity(const SweepOptions& options, const std::string& design, int headline_bits);

// Runs (or resumes) the sweep. Ctrl-C stops it cleanly: running workers are killed (the Slurm
// executor detaches instead: its tasks keep running), finished points stay stored, and
// `interrupted` is set. A second sweep on the same out_dir is refused while one runs.
SweepSummary run_sweep(const SweepOptions& options);

// The task side of the Slurm executor (`gsqhw sweep-task`, run by each array task on a node):
// checks that the node's Yosys, OpenSTA and Verilator are the controller's, evaluates point
// `index` of the submission file like the local executor would, and writes its result file
// (slurm/results/<key hash>.json) atomically. Returns the exit code: 0 for a stored result
// (also of a failed point), 3 when the node's tools differ (also stored, as an error result).
int run_sweep_task(const std::filesystem::path& submission, int index);

// Writes results.csv and results.json of the most recent sweep in the results file.
void export_results(const std::filesystem::path& db, const std::filesystem::path& csv,
                    const std::filesystem::path& json);

}  // namespace gsqhw::synth
