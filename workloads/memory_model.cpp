// Analytic training-memory model of a LoRA step (workloads/memory_model.h).
#include "workloads/memory_model.h"

#include <fmt/format.h>

#include <algorithm>

#include "base/errors.h"
#include "numerics/format.h"

namespace gsqhw {
namespace {

double bits_of(const std::string& spec) { return parse_format(spec)->bits_per_element(); }

}  // namespace

MemoryReport memory_model(const ModelShape& m, int64_t tokens, int64_t rank,
                          const FormatAssignment& formats, const std::string& baseline_storage) {
  return memory_model(m, tokens, rank, formats, baseline_storage, all_projections());
}

MemoryReport memory_model(const ModelShape& m, int64_t tokens, int64_t rank,
                          const FormatAssignment& formats, const std::string& baseline_storage,
                          const std::vector<Proj>& targets) {
  m.validate();
  if (targets.empty()) throw UsageError("LoRA needs at least one target projection");
  if (tokens < 1 || tokens > (int64_t{1} << 30))
    throw UsageError(fmt::format("--tokens {} must be in 1..2^30", tokens));
  if (rank < 1 || rank > 65536) throw UsageError(fmt::format("--rank {} must be in 1..65536", rank));
  std::string base_spec;
  try {
    base_spec = parse_format(baseline_storage)->spec();
  } catch (const UsageError& e) {
    throw UsageError(fmt::format("--baseline-storage: {}", e.what()));
  }

  MemoryReport r;
  r.model = m.name;
  r.tokens = tokens;
  r.rank = rank;
  const double T = static_cast<double>(tokens), R = static_cast<double>(rank), L = static_cast<double>(m.n_layers);
  const double dim = static_cast<double>(m.dim), hidden = static_cast<double>(m.hidden_dim);
  const double kv = static_cast<double>(m.kv_dim()), vocab = static_cast<double>(m.vocab_size);

  double linear_params = 0, lora_params = 0;
  for (Proj p : all_projections()) {
    const ProjDims d = proj_dims(m, p);
    linear_params += static_cast<double>(d.in) * d.out;
    if (std::find(targets.begin(), targets.end(), p) != targets.end())
      lora_params += R * static_cast<double>(d.in + d.out);
  }
  const bool all_seven = targets.size() == all_projections().size();
  std::string target_names;
  for (Proj p : targets) target_names += (target_names.empty() ? "" : ",") + std::string(proj_name(p));
  const double adapted = static_cast<double>(targets.size());
  linear_params *= L;
  lora_params *= L;

  const std::string bf16 = "bf16", fp32 = "fp32";
  auto add = [&](std::string component, std::string detail, double elements, const std::string& format,
                 const std::string& baseline_format) {
    MemoryItem it{std::move(component), std::move(detail), elements, format, baseline_format,
                  elements * bits_of(format) / 8.0, elements * bits_of(baseline_format) / 8.0};
    r.total_bytes += it.bytes;
    r.baseline_total_bytes += it.baseline_bytes;
    r.items.push_back(std::move(it));
  };

  add("base weights", "q,k,v,o,gate,up,down of every layer (frozen)", linear_params, formats.storage, base_spec);
  add("embeddings, head, norms",
      m.shared_classifier ? "token embedding (tied head) + RMSNorm gains" : "token embedding + lm_head + RMSNorm gains",
      vocab * dim * (m.shared_classifier ? 1 : 2) + dim * (2 * L + 1), bf16, bf16);
  add("LoRA masters", fmt::format("A (r x in) and B (out x r), r={}, {}", rank,
                                        all_seven ? "all 7 projections" : "projections " + target_names), lora_params, fp32, fp32);
  add("LoRA gradients", "dA, dB in the master precision", lora_params, fp32, fp32);
  add("optimizer state", "Adam first and second moments", 2 * lora_params, fp32, fp32);

  // Saved for backward, per layer. GEMM inputs are kept in the form the GEMM consumes them
  // (quantized in the act format); element-wise and normalisation inputs stay BF16.
  add("saved GEMM inputs",
      "per layer: attn-norm out (q,k,v in), Q, K, V, attention out (o in), ffn-norm out (gate,up in), "
      "SwiGLU out (down in), LoRA H of " + (all_seven ? std::string("7 projections") : target_names) +
          "; plus lm_head input",
      L * T * (dim + dim + 2 * kv + dim + dim + hidden + adapted * R) + T * dim, formats.act, bf16);
  add("saved element-wise inputs",
      "per layer: residual inputs of the 2 RMSNorms, gate and up outputs (SiLU backward); final norm input",
      L * T * (2 * dim + 2 * hidden) + T * dim, bf16, bf16);
  add("attention statistics", "per layer: softmax log-sum-exp per token and head (flash attention)",
      L * T * static_cast<double>(m.n_heads), fp32, fp32);
  add("logits", "T x vocab for the loss", T * vocab, fp32, fp32);

  r.assumptions = {
      (all_seven ? std::string("LoRA on all seven projections of every layer")
                 : "LoRA on " + target_names + " of every layer") +
          "; rank r, T tokens per step (batch x sequence)",
      "base weights stored in the storage format (" + formats.storage + ") vs " + base_spec + " in the baseline",
      "embeddings, lm_head and norm gains stay BF16 in both (as in QLoRA)",
      "LoRA masters, their gradients and Adam's two moments are FP32 in both",
      "GEMM inputs saved for backward are stored in the act format (" + formats.act +
          "), the baseline saves them in BF16; element-wise inputs are BF16 in both",
      "flash-style attention: no T x T score matrix is saved, only a log-sum-exp per token and head",
      "not counted: transient buffers (one layer's gradients during backward, workspace), "
      "framework overhead, fragmentation",
  };
  return r;
}

}  // namespace gsqhw
