// Training-memory model of one LoRA fine-tuning step: the bytes that must be resident, under a
// format assignment (GSQ-Tuning style: NF4 base weights, quantized saved activations) against a
// BF16 baseline. An analytic count, not a measurement; the assumptions are part of the result
// and printed with it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "workloads/lora.h"
#include "workloads/models.h"

namespace gsqhw {

struct MemoryItem {
  std::string component;  // "base weights", "LoRA masters", ...
  std::string detail;     // what is counted
  double elements = 0;    // number of stored elements
  std::string format, baseline_format;
  double bytes = 0, baseline_bytes = 0;
};

struct MemoryReport {
  std::string model;
  int64_t tokens = 0, rank = 0;
  std::vector<MemoryItem> items;
  double total_bytes = 0, baseline_total_bytes = 0;
  double ratio() const { return total_bytes > 0 ? baseline_total_bytes / total_bytes : 0; }
  std::vector<std::string> assumptions;
};

// LoRA on all seven projections of every layer. `baseline_storage` is the base weights' format
// in the baseline (default "bf16"); everything the baseline saves for backward is BF16.
// Throws UsageError for bad sizes or formats.
MemoryReport memory_model(const ModelShape& model, int64_t tokens, int64_t rank,
                          const FormatAssignment& formats,
                          const std::string& baseline_storage = "bf16");
// The same with LoRA on `targets` only (e.g. q and v, as `gsqhw finetune --targets q,v` trains):
// adapters, their gradients, optimizer state and saved H count for those projections alone.
MemoryReport memory_model(const ModelShape& model, int64_t tokens, int64_t rank,
                          const FormatAssignment& formats, const std::string& baseline_storage,
                          const std::vector<Proj>& targets);

// The paper's claimed training-memory reduction of GSQ-Tuning against BF16 fine-tuning.
constexpr double kPaperMemoryRatio = 1.85;

}  // namespace gsqhw
