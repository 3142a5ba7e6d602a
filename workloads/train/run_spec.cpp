// Run specs of the training engine (workloads/train/run_spec.h).
#include "workloads/train/run_spec.h"

#include "base/errors.h"
#include "numerics/format.h"

namespace gsqhw::train {

std::string RunSpec::label() const {
  if (kind != "qcd") return kind;
  return text;
}

AccumulatorSpec natural_accumulator(const FormatAssignment& f) {
  return parse_format(f.weight)->natural_accumulator();
}

AccumulatorSpec resolve_accumulator(const std::string& acc, const FormatAssignment& f) {
  return acc == "natural" ? natural_accumulator(f) : AccumulatorSpec::parse(acc);
}

RunSpec RunSpec::parse(const std::string& text, const std::string& default_acc) {
  RunSpec r;
  r.text = text;
  if (text == "fp32" || text == "bf16") {
    r.kind = text;
    return r;
  }
  r.kind = "qcd";
  std::string formats = text, acc = default_acc;
  if (const auto at = text.rfind('@'); at != std::string::npos) {
    formats = text.substr(0, at);
    acc = text.substr(at + 1);
  }
  if (formats == "fp8") formats = "act=fp8:e4m3,weight=fp8:e4m3,grad=fp8:e5m2";
  r.formats = FormatAssignment::parse(formats);
  r.acc = resolve_accumulator(acc, r.formats);
  return r;
}

std::unique_ptr<GemmEngine> RunSpec::engine(int threads) const {
  if (kind == "fp32") return make_fp32_engine();
  if (kind == "bf16") return make_bf16_engine();
  return make_qcd_engine(formats, acc, threads);
}

std::unique_ptr<GemmEngine> make_engine_for(const std::string& spec, const std::string& acc, int threads) {
  return RunSpec::parse(spec, acc).engine(threads);
}

}  // namespace gsqhw::train
