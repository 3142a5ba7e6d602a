// Real operands for `gsqhw trace --data`: one FP32 forward/backward step of the checkpoint on a
// window of the text records the chosen projection's input X and output gradient dY (from the
// cross-entropy loss), and the LoRA masters A, B when a fine-tuned adapter folder is given.
#pragma once

#include <filesystem>
#include <string>

#include "workloads/checkpoint.h"
#include "workloads/lora.h"

namespace gsqhw::train {

struct CaptureRequest {
  std::filesystem::path tokenizer, data, lora_dir;  // lora_dir may be empty
  // >= 0: lora_dir is a fine-tuning run (OUT/runs/<run> or its adapter/), and the adapter is the
  // one saved at this step (finetune.h load_run_state_adapters).
  int64_t step = -1;
  int64_t layer = 0;
  Proj proj = Proj::q;
  int64_t tokens = 16;            // one sequence of this many tokens (the first validation window)
  std::string storage = "nf4:block=64";  // how the base weights are stored for the run
};

// Fills X, dY (and A, B from the adapter). With an adapter, `rank` and `alpha` are set to its
// values. Throws UsageError for bad input (tokenizer/vocab mismatch, short text, an adapter
// without this projection, tokens beyond the model's context).
RealOperands capture_operands(const Checkpoint& checkpoint, const CaptureRequest& request, int64_t& rank,
                              double& alpha);

}  // namespace gsqhw::train
