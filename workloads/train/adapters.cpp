// PEFT-layout adapter files (workloads/train/adapters.h).
#include "workloads/train/adapters.h"
#include "base/files.h"

#include <fmt/format.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "base/errors.h"
#include "workloads/safetensors.h"

namespace gsqhw::train {

namespace {
std::string module_name(Proj p) { return std::string(proj_name(p)) + "_proj"; }
}  // namespace

void save_adapters(const std::filesystem::path& dir, LoraWeights& lora, const std::string& base_model) {
  std::filesystem::create_directories(dir);
  safetensors::Writer w;
  w.set_metadata("format", "pt");
  const auto names = lora.peft_names();
  const auto shapes = lora.shapes();
  const auto tensors = lora.tensors();
  for (size_t i = 0; i < tensors.size(); ++i) w.add(names[i], "F32", shapes[i], tensors[i]->data());
  w.write(dir / "adapter_model.safetensors");
  nlohmann::json targets = nlohmann::json::array();
  for (Proj p : lora.config.targets) targets.push_back(module_name(p));
  const nlohmann::json config = {{"peft_type", "LORA"},       {"task_type", "CAUSAL_LM"},
                                 {"r", lora.config.rank},     {"lora_alpha", lora.config.alpha},
                                 {"lora_dropout", 0.0},       {"bias", "none"},
                                 {"target_modules", targets}, {"base_model_name_or_path", base_model}};
  write_file_atomically(dir / "adapter_config.json",
                                     [&](std::ostream& out) { out << config.dump(2) << "\n"; });
}

LoraWeights load_adapters(const std::filesystem::path& dir, const LlamaConfig& model) {
  const auto config_file = dir / "adapter_config.json";
  std::ifstream in(config_file);
  if (!in) throw UsageError(fmt::format("{}: cannot open (is --lora a `gsqhw finetune` adapter folder?)",
                                        config_file.string()));
  nlohmann::json config;
  try {
    config = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    throw UsageError(fmt::format("{}: not valid JSON ({})", config_file.string(), e.what()));
  }
  LoraConfig lc;
  try {
    lc.rank = config.at("r").get<int64_t>();
    lc.alpha = config.at("lora_alpha").get<double>();
    for (const auto& t : config.at("target_modules")) {
      std::string s = t.get<std::string>();
      if (s.size() > 5 && s.substr(s.size() - 5) == "_proj") s.resize(s.size() - 5);
      lc.targets.push_back(parse_proj(s));
    }
  } catch (const nlohmann::json::exception& e) {
    throw UsageError(fmt::format("{}: missing or bad r / lora_alpha / target_modules ({})",
                                 config_file.string(), e.what()));
  }
  LoraWeights lora = LoraWeights::init(model, lc, 0);
  const auto header = safetensors::read_header(dir / "adapter_model.safetensors");
  const auto names = lora.peft_names();
  const auto shapes = lora.shapes();
  const auto tensors = lora.tensors();
  for (size_t i = 0; i < tensors.size(); ++i) {
    const auto* e = header.find(names[i]);
    if (!e) throw UsageError(fmt::format("{}: missing tensor {}", header.path.string(), names[i]));
    if (e->dtype != "F32" || e->shape != shapes[i])
      throw UsageError(fmt::format("{}: tensor {} is {} [{}], expected F32 [{}]", header.path.string(),
                                   names[i], e->dtype, fmt::join(e->shape, ", "), fmt::join(shapes[i], ", ")));
    safetensors::read_bytes(header, *e, tensors[i]->data());
  }
  return lora;
}

}  // namespace gsqhw::train
