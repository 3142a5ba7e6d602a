// `gsqhw generate`: text generation with a LLaMA checkpoint (greedy at temperature 0), through
// the FP32 engine or, with --formats, the quantized QCD engine; --lora loads saved adapters.
#include <fmt/format.h>

#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <random>

#include "cli/command.h"
#include "base/errors.h"
#include "workloads/checkpoint.h"
#include "workloads/train/adapters.h"
#include "workloads/train/run_spec.h"
#include "workloads/train/llama.h"
#include "workloads/train/tokenizer.h"

namespace gsqhw::cli {
namespace {

struct GenerateOptions {
  std::string checkpoint, tokenizer, prompt, formats, acc = "natural", lora, storage = "fp32";
  int64_t steps = 256;
  double temperature = 0;
  uint64_t seed = 1;
  bool ids = false;
  bool quantize_attention = false;
  bool json = false;
};

int sample(const float* logits, int64_t vocab, double temperature, std::mt19937_64& rng) {
  if (temperature <= 0) {
    int best = 0;  // run.c's argmax: the first maximum
    for (int64_t j = 1; j < vocab; ++j)
      if (logits[j] > logits[best]) best = static_cast<int>(j);
    return best;
  }
  std::vector<double> p(static_cast<size_t>(vocab));
  double mx = logits[0];
  for (int64_t j = 1; j < vocab; ++j) mx = std::max<double>(mx, logits[j]);
  double sum = 0;
  for (int64_t j = 0; j < vocab; ++j) sum += p[j] = std::exp((logits[j] - mx) / temperature);
  double r = std::ldexp(static_cast<double>(rng() >> 11), -53) * sum;
  for (int64_t j = 0; j < vocab; ++j)
    if ((r -= p[j]) < 0) return static_cast<int>(j);
  return static_cast<int>(vocab - 1);
}

int run_generate(const GenerateOptions& o) {
  const auto checkpoint = open_checkpoint(o.checkpoint);
  const ModelShape& shape = checkpoint->shape();
  const train::Tokenizer tok(o.tokenizer, shape.vocab_size);
  if (o.steps < 1) throw UsageError("--steps must be at least 1");
  if (!(o.temperature >= 0)) throw UsageError("--temperature must be >= 0");
  const train::LlamaWeights weights = train::LlamaWeights::load(*checkpoint, o.storage);
  train::LoraWeights lora;
  if (!o.lora.empty()) lora = train::load_adapters(o.lora, weights.config);
  std::unique_ptr<train::GemmEngine> engine =
      o.formats.empty() ? train::make_fp32_engine()
                        : train::make_engine_for(o.formats, o.acc, 0);
  train::LlamaModel model(weights, o.lora.empty() ? nullptr : &lora);
  model.set_quantize_attention(o.quantize_attention);
  // run.c: the prompt's tokens (with BOS) are forced, the model continues; `steps` counts every
  // position, prompt included; generation stops early at BOS.
  std::vector<int> tokens = tok.encode(o.prompt, true, false);
  const int64_t limit = std::min<int64_t>(o.steps, shape.seq_len > 0 ? shape.seq_len : o.steps);
  std::mt19937_64 rng(o.seed);
  std::string text = tok.decode_all(tokens);
  const bool stream = !o.ids && !o.json;  // JSON waits for the whole text
  if (stream) std::fputs(text.c_str(), stdout);
  std::fflush(stdout);
  while (static_cast<int64_t>(tokens.size()) < limit + 1) {
    const std::vector<float> logits = model.logits(tokens, *engine);
    const int next = sample(&logits[(tokens.size() - 1) * static_cast<size_t>(shape.vocab_size)],
                            shape.vocab_size, o.temperature, rng);
    if (next == train::Tokenizer::kBos) break;
    if (stream) std::fputs(tok.decode(tokens.back(), next).c_str(), stdout);
    else text += tok.decode(tokens.back(), next);
    std::fflush(stdout);
    tokens.push_back(next);
  }
  if (o.json) {
    const nlohmann::json j = {{"prompt", o.prompt}, {"text", text}, {"tokens", tokens},
                              {"temperature", o.temperature}, {"seed", o.seed},
                              {"formats", o.formats}, {"lora", o.lora}};
    std::printf("%s\n", j.dump(2).c_str());
    return 0;
  }
  if (o.ids) std::printf("%s", fmt::format("{}", fmt::join(tokens, " ")).c_str());
  std::printf("\n");
  return 0;
}

Runner setup(CLI::App& app) {
  auto o = std::make_shared<GenerateOptions>();
  app.add_option("--checkpoint", o->checkpoint, "llama2.c checkpoint or HF safetensors file/folder")->required();
  app.add_option("--tokenizer", o->tokenizer,
                 "llama2.c tokenizer file (e.g. tok512.bin) or a Hugging Face tokenizer.json")->required();
  app.add_option("--prompt", o->prompt, "text to continue (may be empty)");
  app.add_option("--steps", o->steps, "positions to run, prompt included (llama2.c's -n); capped at the model's seq_len")
      ->capture_default_str();
  app.add_option("--temperature", o->temperature, "0 = greedy (argmax)")->capture_default_str();
  app.add_option("--seed", o->seed, "sampling seed (temperature > 0)")->capture_default_str();
  app.add_option("--lora", o->lora, "folder with adapter_model.safetensors (+ adapter_config.json) from `gsqhw finetune`");
  app.add_option("--formats", o->formats,
                 "run every projection GEMM quantized (QCD through the golden GEMM): a run spec as in "
                 "`gsqhw finetune --formats` (e.g. gse:b=6, fp8, act=...,weight=...,grad=...); default FP32");
  app.add_option("--acc", o->acc, "accumulator for --formats")->capture_default_str();
  app.add_option("--storage", o->storage, "how frozen projection weights are stored: fp32 or nf4:block=64")
      ->capture_default_str();
  app.add_flag("--quantize-attention", o->quantize_attention,
               "with --formats: the attention score and value products through the golden GEMM too");
  app.add_flag("--ids", o->ids, "print token ids (BOS first) instead of text");
  app.add_flag("--json", o->json, "print the prompt, text and token ids as JSON");
  return [o] { return run_generate(*o); };
}

GSQHW_COMMAND("generate", "Generate text with a LLaMA checkpoint (greedy at temperature 0)", setup);

}  // namespace
}  // namespace gsqhw::cli
