// `gsqhw trace-info`: validates and describes trace files (workloads/trace.h). Error figures
// are recomputed from the stored data (dequantized codes vs the FP32 originals, golden output
// vs the FP32 reference), not copied from the metadata.
#include <fmt/format.h>

#include <cstdio>
#include <memory>
#include <optional>

#include "cli/command.h"
#include "base/errors.h"
#include "workloads/lora.h"
#include "workloads/trace.h"

namespace gsqhw::cli {
namespace {

struct InfoOptions {
  std::string path;
  bool json = false;
};


std::optional<ErrorStats> operand_error(const QuantizedTensor& q, const std::vector<float>& fp32) {
  if (fp32.empty()) return std::nullopt;
  std::vector<float> deq(q.codes.size());
  parse_format(q.format_spec)->dequantize(q, deq.data());
  return error_stats(deq.data(), fp32.data(), static_cast<int64_t>(deq.size()));
}

nlohmann::json describe(const std::filesystem::path& file, const Trace& t) {
  int64_t overflow = 0, nan = 0;
  for (uint8_t f : t.golden.flags) {
    overflow += (f & kFlagOverflow) != 0;
    nan += (f & kFlagNaN) != 0;
  }
  auto operand = [](const QuantizedTensor& q, const std::vector<float>& fp32) {
    nlohmann::json j = {{"format", q.format_spec}, {"rows", q.rows}, {"cols", q.cols},
                        {"group_size", q.group_size}, {"exponents", q.group_exponents.size()},
                        {"scales", q.scales.size()}, {"has_fp32", !fp32.empty()}};
    if (auto e = operand_error(q, fp32)) j["error"] = error_stats_json(*e);
    return j;
  };
  nlohmann::json j = {{"file", file.string()}, {"name", t.name}, {"m", t.m()}, {"n", t.n()},
                      {"k", t.k()}, {"acc", t.acc.str()}, {"a", operand(t.a, t.a_fp32)},
                      {"b", operand(t.b, t.b_fp32)},
                      {"golden", {{"overflow_outputs", overflow}, {"nan_outputs", nan}}},
                      {"metadata", t.metadata}};
  {  // the accumulator's own error: golden vs the exact product of the dequantized operands
    std::vector<float> da(t.a.codes.size()), db(t.b.codes.size());
    parse_format(t.a.format_spec)->dequantize(t.a, da.data());
    parse_format(t.b.format_spec)->dequantize(t.b, db.data());
    const auto exact = reference_product(da, db, t.m(), t.n(), t.k());
    j["golden"]["acc_error"] = error_stats_json(
        error_stats(t.golden.out.data(), exact.data(), static_cast<int64_t>(exact.size())));
  }
  if (!t.reference_fp32.empty())
    j["golden"]["error"] = error_stats_json(error_stats(t.golden.out.data(), t.reference_fp32.data(),
                                                        static_cast<int64_t>(t.golden.out.size())));
  return j;
}

void print_text(const nlohmann::json& j, const Trace& t) {
  std::printf("%s  (%s)\n", j["name"].get<std::string>().c_str(), j["file"].get<std::string>().c_str());
  std::printf("  C (%lld x %lld) = A (%lld x %lld) x B^T (%lld x %lld), acc %s\n",
              static_cast<long long>(t.m()), static_cast<long long>(t.n()), static_cast<long long>(t.m()),
              static_cast<long long>(t.k()), static_cast<long long>(t.n()), static_cast<long long>(t.k()),
              t.acc.str().c_str());
  for (const char* which : {"a", "b"}) {
    const auto& o = j[which];
    std::printf("  %s: %s, group %d", which, o["format"].get<std::string>().c_str(), o["group_size"].get<int>());
    if (o.contains("error")) {
      const QuantizedTensor& q = which[0] == 'a' ? t.a : t.b;
      const auto& fp = which[0] == 'a' ? t.a_fp32 : t.b_fp32;
      std::printf(", vs FP32: %s", error_stats_text(*operand_error(q, fp)).c_str());
    }
    std::printf("\n");
  }
  std::printf("  golden: overflow %lld, NaN %lld", j["golden"]["overflow_outputs"].get<long long>(),
              j["golden"]["nan_outputs"].get<long long>());
  if (!t.reference_fp32.empty())
    std::printf(", vs FP32 product: %s",
                error_stats_text(error_stats(t.golden.out.data(), t.reference_fp32.data(),
                                             static_cast<int64_t>(t.golden.out.size())))
                    .c_str());
  const auto& acc = j["golden"]["acc_error"];
  std::printf("\n  accumulator vs exact product of the dequantized operands: relRMS %s  maxAbs %s\n",
              acc["rel_rms"].dump().c_str(), acc["max_abs"].dump().c_str());
  std::printf("  metadata: %s\n", t.metadata.dump().c_str());
}

int run_info(const InfoOptions& o) {
  const auto files = list_traces(o.path);
  if (files.empty()) throw UsageError(fmt::format("{}: folder holds no *.safetensors trace", o.path));
  nlohmann::json all = nlohmann::json::array();
  for (const auto& f : files) {
    const Trace t = read_trace(f);
    nlohmann::json j = describe(f, t);
    if (o.json) all.push_back(std::move(j));
    else print_text(j, t);
  }
  if (o.json) std::printf("%s\n", (files.size() == 1 ? all[0] : all).dump(2).c_str());
  return 0;
}

Runner setup(CLI::App& app) {
  auto o = std::make_shared<InfoOptions>();
  app.add_option("file", o->path, "A trace file, or a folder of them")->required();
  app.add_flag("--json", o->json, "Print machine-readable JSON");
  return [o] { return run_info(*o); };
}

}  // namespace

GSQHW_COMMAND("trace-info", "Validate a trace file and print its contents and error figures", setup);

}  // namespace gsqhw::cli
