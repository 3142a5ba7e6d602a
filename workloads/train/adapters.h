// LoRA adapters on disk in PEFT's layout: a folder with adapter_model.safetensors (tensors
// base_model.model.model.layers.N.self_attn.q_proj.lora_A.weight [r, in] / lora_B.weight
// [out, r], F32) and adapter_config.json (peft_type LORA, r, lora_alpha, target_modules).
#pragma once

#include <filesystem>

#include "workloads/train/llama.h"

namespace gsqhw::train {

void save_adapters(const std::filesystem::path& dir, LoraWeights& lora, const std::string& base_model);
// Throws UsageError when the folder is missing, or its adapters do not fit the model.
LoraWeights load_adapters(const std::filesystem::path& dir, const LlamaConfig& model);

}  // namespace gsqhw::train
