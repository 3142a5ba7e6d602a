// `gsqhw trace`: writes the eight GEMM traces of one LoRA-adapted projection (workloads/lora.h)
// and prints each GEMM's shape and quantization errors.
#include <fmt/format.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <optional>

#include "cli/command.h"
#include "base/errors.h"
#include "workloads/checkpoint.h"
#include "workloads/lora.h"
#include "workloads/train/capture.h"

namespace gsqhw::cli {
namespace {

struct TraceOptions {
  std::string model, checkpoint, proj = "q", formats, acc = "fixed32.16", out, tokenizer, data, lora;
  int64_t layer = 0, rank = 8, tokens = 16, step = -1;
  double alpha = 16;
  uint64_t seed = 1;
  int threads = 0;
  bool json = false;
};

nlohmann::json report_json(const GemmReport& r) {
  return {{"name", r.name},
          {"file", r.file.string()},
          {"gemm", r.shape.gemm},
          {"pass", r.shape.pass},
          {"m", r.shape.m}, {"n", r.shape.n}, {"k", r.shape.k},
          {"post_scale", r.shape.post_scale},
          {"a", {{"tensor", r.shape.a_tensor}, {"role", r.shape.a_role}, {"format", r.a_format},
                 {"error", error_stats_json(r.a_error)}}},
          {"b", {{"tensor", r.shape.b_tensor}, {"role", r.shape.b_role}, {"format", r.b_format},
                 {"error", error_stats_json(r.b_error)}}},
          {"out", {{"error", error_stats_json(r.out_error)}, {"acc_error", error_stats_json(r.acc_error)},
                   {"overflow_outputs", r.overflow_outputs},
                   {"nan_outputs", r.nan_outputs}}},
          {"seconds", r.seconds}};
}

void print_report_text(const GemmReport& r) {
  const std::string shape = fmt::format("{} x {} x {}", r.shape.m, r.shape.n, r.shape.k);
  std::printf("%-12s %-20s A %-5s (%-6s) %s\n", r.shape.gemm.c_str(), shape.c_str(),
              r.shape.a_tensor.c_str(), r.shape.a_role.c_str(), error_stats_text(r.a_error).c_str());
  std::printf("%-12s %-20s B %-5s (%-6s) %s\n", "", "", r.shape.b_tensor.c_str(),
              r.shape.b_role.c_str(), error_stats_text(r.b_error).c_str());
  std::printf("%-12s %-20s C out          %s  overflow %lld  NaN %lld  %.2f s\n", "", "",
              error_stats_text(r.out_error).c_str(), static_cast<long long>(r.overflow_outputs),
              static_cast<long long>(r.nan_outputs), r.seconds);
  std::printf("%-12s %-20s   acc only      %s\n", "", "", error_stats_text(r.acc_error).c_str());
  std::fflush(stdout);
}

int run_trace(const TraceOptions& o) {
  LoraTraceRequest req;
  std::unique_ptr<Checkpoint> checkpoint;
  if (!o.checkpoint.empty()) {
    checkpoint = open_checkpoint(o.checkpoint);
    req.checkpoint = checkpoint.get();
  }
  if (!o.model.empty()) {
    req.model = builtin_model(o.model);
    if (checkpoint && !checkpoint->shape().same_dims(req.model))
      throw UsageError(fmt::format(
          "--checkpoint {} (dim {}, hidden {}, layers {}, heads {}/{}, vocab {}) does not match "
          "--model {}; omit --model to take the shape from the checkpoint",
          o.checkpoint, checkpoint->shape().dim, checkpoint->shape().hidden_dim,
          checkpoint->shape().n_layers, checkpoint->shape().n_heads, checkpoint->shape().n_kv_heads,
          checkpoint->shape().vocab_size, o.model));
  } else if (checkpoint) {
    req.model = checkpoint->shape();
  } else {
    throw UsageError("give --model (tiny, llama-7b, llama2-7b, llama2-13b, llama3-8b) or --checkpoint FILE");
  }
  req.layer = o.layer;
  // "all": the seven projections of the layer, one after the other (56 traces).
  const std::vector<Proj> projs = o.proj == "all" ? all_projections() : std::vector<Proj>{parse_proj(o.proj)};
  req.proj = projs.front();
  req.rank = o.rank;
  req.alpha = o.alpha;
  req.tokens = o.tokens;
  req.formats = o.formats.empty() ? FormatAssignment::defaults() : FormatAssignment::parse(o.formats);
  req.acc = AccumulatorSpec::parse(o.acc);
  req.seed = o.seed;
  req.threads = o.threads;
  // Real operands: X and dY recorded from an FP32 step of the checkpoint on the text.
  std::vector<RealOperands> real;
  if (o.step >= 0 && o.lora.empty())
    throw UsageError("--step N needs --lora OUT/runs/<run> (the fine-tuning run) and --checkpoint, --tokenizer, --data");
  if (!o.data.empty() || !o.tokenizer.empty() || !o.lora.empty()) {
    if (!checkpoint || o.data.empty() || o.tokenizer.empty())
      throw UsageError("real traces need --checkpoint, --tokenizer and --data together (--lora optional)");
    for (Proj p : projs) {
      train::CaptureRequest cr;
      cr.tokenizer = o.tokenizer;
      cr.data = o.data;
      cr.lora_dir = o.lora;
      cr.step = o.step;
      cr.layer = o.layer;
      cr.proj = p;
      cr.tokens = o.tokens;
      cr.storage = req.formats.storage;
      real.push_back(train::capture_operands(*checkpoint, cr, req.rank, req.alpha));
    }
  }
  req.real = real.empty() ? nullptr : &real.front();
  req.validate();
  const std::string data_text = !real.empty() ? "real (" + o.data + " through " + o.checkpoint + ")"
                                : checkpoint ? o.checkpoint + " weights; synthetic activations and gradients"
                                             : std::string("synthetic");

  if (!o.json) {
    std::printf("%s layer %lld, rank %lld, alpha %g (s = %g), %lld tokens, seed %llu, data %s\n",
                req.model.name.c_str(), static_cast<long long>(req.layer),
                static_cast<long long>(req.rank), req.alpha, req.alpha / req.rank,
                static_cast<long long>(req.tokens), static_cast<unsigned long long>(req.seed),
                data_text.c_str());
    std::printf("formats %s\nacc %s\n", req.formats.str().c_str(), req.acc.str().c_str());
  }
  const auto started = std::chrono::steady_clock::now();
  std::vector<GemmReport> reports;
  for (size_t pi = 0; pi < projs.size(); ++pi) {
    const Proj p = projs[pi];
    req.proj = p;
    if (!real.empty()) req.real = &real[pi];
    const ProjDims d = proj_dims(req.model, p);
    if (!o.json) {
      std::printf("\n%s_proj (in %lld, out %lld)\n", std::string(proj_name(p)).c_str(),
                  static_cast<long long>(d.in), static_cast<long long>(d.out));
      std::printf("%-12s %-20s operand               error vs FP32\n", "gemm", "M x N x K");
    }
    const auto some = generate_lora_traces(req, o.out, o.json ? std::function<void(const GemmReport&)>{}
                                                              : print_report_text);
    reports.insert(reports.end(), some.begin(), some.end());
  }
  const double total = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();

  int64_t overflows = 0;
  for (const auto& r : reports) overflows += r.overflow_outputs;
  if (o.json) {
    nlohmann::json j = {
        {"model", req.model.name}, {"layer", req.layer}, {"proj", o.proj},
        {"rank", req.rank}, {"alpha", req.alpha}, {"tokens", req.tokens}, {"seed", req.seed},
        {"data", real.empty() ? (checkpoint ? o.checkpoint : std::string("synthetic")) : std::string("real")},
        {"data_source", data_text},
        {"lora_step", o.step >= 0 ? nlohmann::json(o.step) : nlohmann::json(nullptr)},
        {"formats", req.formats.str()}, {"acc", req.acc.str()}, {"out_dir", o.out},
        {"gemms", nlohmann::json::array()}, {"overflow_outputs", overflows}, {"seconds", total}};
    if (projs.size() == 1) {
      const ProjDims d = proj_dims(req.model, projs.front());
      j["in"] = d.in;
      j["out"] = d.out;
    }
    for (const auto& r : reports) j["gemms"].push_back(report_json(r));
    std::printf("%s\n", j.dump(2).c_str());
  } else {
    std::printf("\n%zu traces in %s, %.2f s total; %lld outputs saturated the accumulator%s\n",
                reports.size(), o.out.c_str(), total, static_cast<long long>(overflows),
                overflows ? " (try a wider --acc or fewer fraction bits; INT8 wants fixed32.0)" : "");
  }
  return 0;
}

Runner setup(CLI::App& app) {
  auto o = std::make_shared<TraceOptions>();
  app.add_option("--model", o->model, "Built-in model shape: tiny, llama-7b, llama2-7b, llama2-13b, llama3-8b");
  app.add_option("--checkpoint", o->checkpoint,
                 "Base weights from a llama2.c .bin or a Hugging Face .safetensors file/folder "
                 "(activations and gradients stay synthetic unless --data is given)");
  app.add_option("--tokenizer", o->tokenizer, "llama2.c tokenizer of the checkpoint (with --data)");
  app.add_option("--data", o->data,
                 "UTF-8 text: record real X and dY (cross-entropy gradient) of the layer from an FP32 step of "
                 "the checkpoint on its first validation window of --tokens tokens");
  app.add_option("--lora", o->lora,
                 "adapter folder from `gsqhw finetune` (runs/<run>/adapter): real LoRA masters A, B, and the "
                 "fine-tuned model's X and dY");
  app.add_option("--step", o->step,
                 "with --lora OUT/runs/<run>: trace the model as it was after step N of that fine-tuning run "
                 "(its state saved at step N; 0 = the initial adapter)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--layer", o->layer, "Decoder layer (default 0)");
  app.add_option("--proj", o->proj, "Projection: q, k, v, o, gate, up, down, or all (default q)");
  app.add_option("--rank", o->rank, "LoRA rank r (default 8)");
  app.add_option("--alpha", o->alpha, "LoRA alpha; scale s = alpha / r (default 16)");
  app.add_option("--tokens", o->tokens, "Tokens T in the step (batch x sequence; default 16)");
  app.add_option("--formats", o->formats,
                 "Operand formats: act=SPEC,weight=SPEC,grad=SPEC,storage=SPEC (any subset; default "
                 "GSE-INT b=6 g=32 e=5, stochastic rounding for grad, NF4 block 64 storage)");
  app.add_option("--acc", o->acc, "Accumulator: fixedW.F or fp32 (default fixed32.16)");
  app.add_option("--seed", o->seed, "Seed of the synthetic data and stochastic rounding (default 1)");
  app.add_option("--threads", o->threads, "Golden GEMM threads (0 = all cores)");
  app.add_option("--out", o->out, "Output folder for the traces")->required();
  app.add_flag("--json", o->json, "Print machine-readable JSON instead of the table");
  return [o] { return run_trace(*o); };
}

}  // namespace

GSQHW_COMMAND("trace", "Write the GEMM traces of one LoRA-adapted LLaMA projection", setup);

}  // namespace gsqhw::cli
