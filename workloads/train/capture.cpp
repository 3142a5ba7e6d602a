// Real LoRA-layer operands from a model run (workloads/train/capture.h).
#include "workloads/train/capture.h"

#include <fmt/format.h>

#include <algorithm>

#include "base/errors.h"
#include "workloads/train/adapters.h"
#include "workloads/train/data.h"
#include "workloads/train/finetune.h"
#include "workloads/train/llama.h"
#include "workloads/train/tokenizer.h"

namespace gsqhw::train {

RealOperands capture_operands(const Checkpoint& ck, const CaptureRequest& r, int64_t& rank, double& alpha) {
  const ModelShape& m = ck.shape();
  if (r.layer < 0 || r.layer >= m.n_layers)
    throw UsageError(fmt::format("--layer {} is out of range: the model has layers 0..{}", r.layer, m.n_layers - 1));
  if (r.tokens < 2) throw UsageError("--tokens must be at least 2 with --data");
  if (m.seq_len > 0 && r.tokens > m.seq_len)
    throw UsageError(fmt::format("--tokens {} exceeds the model's context of {} tokens (one sequence is recorded)",
                                 r.tokens, m.seq_len));
  const Tokenizer tok(r.tokenizer, m.vocab_size);
  const TokenData data = load_text(r.data, tok, 0.1, r.tokens);
  const Batch batch = validation_batches(data, 1, r.tokens, 1).front();
  const LlamaWeights weights = LlamaWeights::load(ck, r.storage);
  const auto& all = all_projections();
  const int p = static_cast<int>(std::find(all.begin(), all.end(), r.proj) - all.begin());
  RealOperands out;
  LoraWeights lora;
  const bool with_lora = !r.lora_dir.empty();
  if (r.step >= 0 && !with_lora)
    throw UsageError("--step N needs --lora OUT/runs/<run>: the fine-tuning run whose saved state to trace");
  std::string lora_what = with_lora ? fmt::format("the adapter {}", r.lora_dir.string()) : "";
  if (with_lora) {
    if (r.step >= 0) {
      RunStateAdapters state = load_run_state_adapters(r.lora_dir, r.step, weights.config);
      const std::string trained_on = state.settings.value("checkpoint", "");
      std::error_code ec;
      if (!trained_on.empty() && std::filesystem::weakly_canonical(trained_on, ec) !=
                                     std::filesystem::weakly_canonical(std::filesystem::absolute(ck.path()), ec))
        throw UsageError(fmt::format("--lora {}: that run fine-tuned {}, not --checkpoint {}", r.lora_dir.string(),
                                     trained_on, ck.path().string()));
      lora = std::move(state.lora);
      lora_what = state.source;
    } else {
      lora = load_adapters(r.lora_dir, weights.config);
    }
    const LoraAdapter& ad = lora.adapters[static_cast<size_t>(r.layer)][static_cast<size_t>(p)];
    if (ad.a.empty())
      throw UsageError(fmt::format("--lora {}: the adapter does not target {}_proj", r.lora_dir.string(),
                                   proj_name(r.proj)));
    out.a = ad.a;
    out.b = ad.b;
    rank = lora.config.rank;
    alpha = lora.config.alpha;
    out.lora_source = "real: " + (r.step >= 0 ? lora_what : "LoRA masters of " + lora_what);
  }
  Capture capture;
  capture.layer = r.layer;
  capture.proj = p;
  LlamaModel model(weights, with_lora ? &lora : nullptr);
  model.set_capture(&capture);
  auto engine = make_fp32_engine();
  Gradients grads;
  model.step(batch.tokens, batch.targets, 1, r.tokens, *engine, &grads, 1.0f);
  out.x = std::move(capture.x);
  out.dy = std::move(capture.dy);
  const std::string run = fmt::format("{}{} on {} (first validation window, {} tokens; FP32 engine, base weights {})",
                                      ck.path().filename().string(), with_lora ? " + " + lora_what : "",
                                      r.data.filename().string(), r.tokens, r.storage);
  out.x_source = "real: projection input in a forward pass of " + run;
  out.dy_source = "real: gradient of the mean cross-entropy loss in the backward pass of " + run;
  return out;
}

}  // namespace gsqhw::train
