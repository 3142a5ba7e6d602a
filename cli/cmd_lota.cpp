// `gsqhw lota`: LoTA-QAF on one layer. Quantizes the base weight to N-bit groups, trains
// ternary adapters with t-SignSGD toward a fine-tuned FP32 weight (W plus a seeded low-rank
// update: the quantization-aware fine-tuning loop in miniature), merges them with the golden
// model, runs the merged integer GEMM, and prints bits/weight and errors vs FP32. --out writes the merge unit and the integer PE RTL;
// --verify also lints them and checks them bit-exact against the golden model on this layer.
#include <fmt/format.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "cli/command.h"
#include "cli/sibling_layer.h"
#include "gen/lota.h"
#include "base/errors.h"
#include "numerics/lota.h"
#include "workloads/lora.h"
#include "workloads/synthetic.h"

namespace {

using namespace gsqhw;

struct LotaOptions {
  cli::SiblingLayerOptions layer;
  lota::LotaParams params{4, 64, 8, 6.0};
  bool omega_given = false;
  int steps = 50;
  double target_steps = 1.0;
  double update_fraction = 0.05;
};

// Initial adapters: A_T from the seeded LoRA A ternarised with the TWN rule
// (|a| > 0.7 mean|a|), B_T = 0 as in LoRA, so the first merge is the base model.
lota::Adapters initial_adapters(const cli::LayerData& d, const LotaOptions& o) {
  const Proj proj = parse_proj(o.layer.proj);
  std::vector<float> a = synthetic::lora_a(d.shape, o.layer.layer, proj, o.params.rank, o.layer.seed);
  double mean_abs = 0;
  for (float v : a) mean_abs += std::fabs(v);
  mean_abs /= static_cast<double>(a.size());
  lota::Adapters ad;
  ad.d_in = d.d_in;
  ad.d_out = d.d_out;
  ad.rank = o.params.rank;
  ad.a.resize(d.d_in * o.params.rank);
  for (int j = 0; j < o.params.rank; ++j)  // LoRA A is r x d_in; A_T is d_in x r
    for (int64_t i = 0; i < d.d_in; ++i) {
      const float v = a[j * d.d_in + i];
      ad.a[i * o.params.rank + j] = std::fabs(v) > 0.7 * mean_abs ? (v > 0 ? 1 : -1) : 0;
    }
  ad.b.assign(o.params.rank * d.d_out, 0);
  return ad;
}

int run_lota(LotaOptions o) {
  if (!o.omega_given) o.params.omega = 0.75 * o.params.rank;
  lota::validate(o.params);
  if (!(o.update_fraction > 0 && o.update_fraction <= 1))
    throw UsageError(fmt::format("--update-fraction {} is outside (0, 1]", o.update_fraction));
  if (!(o.target_steps >= 0 && o.target_steps <= 16))
    throw UsageError(fmt::format("--target-steps {} is outside [0, 16]", o.target_steps));
  if (o.steps < 0 || o.steps > 10000)
    throw UsageError(fmt::format("--steps {} is outside 0..10000", o.steps));
  cli::require_out_for_rtl_checks(o.layer);
  const cli::LayerData d = cli::load_layer(o.layer);
  const auto& p = o.params;
  const cli::SiblingLayerOptions& l = o.layer;

  const lota::QuantizedWeights base = lota::quantize_weights(d.w.data(), d.d_out, d.d_in, p.bits, p.group);
  std::vector<float> base_deq(d.w.size());
  base.dequantize(base_deq.data());

  // The fine-tuning target: W plus the seeded LoRA update B A, scaled so that its RMS is
  // --target-steps quantization steps (a change the integer grid can express).
  const Proj proj = parse_proj(l.proj);
  const std::vector<float> lora_a = synthetic::lora_a(d.shape, l.layer, proj, p.rank, l.seed + 1);
  const std::vector<float> lora_b = synthetic::lora_b(d.shape, l.layer, proj, p.rank, l.seed + 1);
  std::vector<double> delta(d.w.size(), 0.0);
  double delta_sq = 0, mean_scale = 0;
  for (int64_t r = 0; r < d.d_out; ++r)
    for (int64_t c = 0; c < d.d_in; ++c) {
      double v = 0;
      for (int j = 0; j < p.rank; ++j) v += static_cast<double>(lora_b[r * p.rank + j]) * lora_a[j * d.d_in + c];
      delta[r * d.d_in + c] = v;
      delta_sq += v * v;
    }
  for (float s : base.scale) mean_scale += s;
  mean_scale /= static_cast<double>(base.scale.size());
  const double gain = delta_sq > 0 ? o.target_steps * mean_scale / std::sqrt(delta_sq / delta.size()) : 0;
  std::vector<float> target(d.w.size());
  for (size_t k = 0; k < target.size(); ++k) target[k] = static_cast<float>(d.w[k] + gain * delta[k]);

  // t-SignSGD on the surrogate loss ||W_merged - W_target||^2 (gradient 2 (w - w_target)).
  lota::Adapters ad = initial_adapters(d, o);
  lota::MergeResult merged = lota::merge(base, ad, p);
  std::vector<float> merged_deq(d.w.size());
  merged.merged.dequantize(merged_deq.data());
  for (int step = 0; step < o.steps; ++step) {
    std::vector<float> grad(d.w.size());
    for (size_t k = 0; k < grad.size(); ++k) grad[k] = 2.0f * (merged_deq[k] - target[k]);
    auto g = lota::adapter_gradients(grad.data(), base, ad);
    lota::t_signsgd_step(ad.b, g.b, lota::percentile_threshold(g.b, o.update_fraction));
    lota::t_signsgd_step(ad.a, g.a, lota::percentile_threshold(g.a, o.update_fraction));
    merged = lota::merge(base, ad, p);
    merged.merged.dequantize(merged_deq.data());
  }

  // When nothing moved, say why: the merge changes a code only where |dW| = |A_T B_T| reaches
  // the threshold T = floor(omega) + 1, and t-SignSGD may not have aligned that many of the r
  // ternary products yet.
  nlohmann::json unchanged_because;
  if (merged.changed == 0) {
    int max_dw = 0;
    for (int64_t i = 0; i < d.d_in; ++i)
      for (int64_t out_ch = 0; out_ch < d.d_out; ++out_ch) {
        int dw = 0;
        for (int j = 0; j < p.rank; ++j) dw += ad.a[i * p.rank + j] * ad.b[j * d.d_out + out_ch];
        max_dw = std::max(max_dw, std::abs(dw));
      }
    unchanged_because = {
        {"max_abs_dw", max_dw},
        {"threshold", lota::threshold(p.omega)},
        {"text", fmt::format("the largest |dW| = |A_T B_T| after {} steps is {}, below the merge "
                             "threshold T = floor(omega) + 1 = {} (omega {}, rank {}); lower --omega "
                             "(e.g. --omega 2), or raise --steps or --update-fraction",
                             o.steps, max_dw, lota::threshold(p.omega), p.omega, p.rank)}};
  }

  const QuantizedTensor xq = lota::quantize_activations(d.x.data(), l.tokens, d.d_in);
  const lota::MergedGemmResult y = lota::merged_gemm(xq, merged.merged);
  const std::vector<float> y_fp32 = reference_product(d.x, target, l.tokens, d.d_out, d.d_in);
  const std::vector<float> y_merged_fp32 = reference_product(d.x, merged_deq, l.tokens, d.d_out, d.d_in);

  const double weights = static_cast<double>(d.d_out) * d.d_in;
  const double bits_merged = p.bits + 32.0 / p.group;  // FP16 scale and zero per group
  const double bits_adapters = 2.0 * p.rank * (d.d_in + d.d_out) / weights;  // 2-bit ternaries
  nlohmann::json report = {
      {"method", "lota-qaf"},
      {"layer", {{"model", d.shape.name}, {"source", d.source}, {"layer", l.layer},
                 {"proj", l.proj}, {"d_out", d.d_out}, {"d_in", d.d_in}, {"tokens", l.tokens},
                 {"seed", l.seed}}},
      {"params", {{"bits", p.bits}, {"group", p.group}, {"rank", p.rank}, {"omega", p.omega},
                  {"threshold", lota::threshold(p.omega)}}},
      {"bits_per_weight", bits_merged},
      {"bits_per_weight_training", bits_merged + bits_adapters},
      {"t_signsgd", {{"steps", o.steps}, {"update_fraction", o.update_fraction}}},
      {"merge", {{"changed", merged.changed}, {"clipped", merged.clipped},
                 {"changed_fraction", merged.changed / weights}}},
      {"target_steps", o.target_steps},
      {"weight_error_vs_fp32", {{"base_vs_w", cli::relative_error(base_deq, d.w)},
                                {"base", cli::relative_error(base_deq, target)},
                                {"merged", cli::relative_error(merged_deq, target)}}},
      {"output_error_vs_fp32", {{"merged_int_gemm", cli::relative_error(y.out, y_fp32)},
                                {"merged_int_gemm_vs_merged_fp32", cli::relative_error(y.out, y_merged_fp32)}}}};

  if (!unchanged_because.is_null()) report["merge"]["unchanged_because"] = unchanged_because;

  if (!l.out.empty()) {
    namespace fs = std::filesystem;
    const fs::path out(l.out);
    auto merge_rtl = lota::generate_merge_unit(p);
    auto pe_rtl = lota::generate_integer_pe(p);
    rtlcheck::write_bundle(merge_rtl, out / "lota_merge");
    rtlcheck::write_bundle(pe_rtl, out / "lota_pe");
    report["rtl"] = {{"merge_unit", (out / "lota_merge").string()}, {"pe", (out / "lota_pe").string()}};
    if (l.verify) {
      rtlcheck::lint(merge_rtl, out / "lota_merge");
      rtlcheck::lint(pe_rtl, out / "lota_pe");
      auto vectors = lota::layer_merge_vectors(base, ad);
      auto m = lota::check_merge_unit(merge_rtl, p, vectors, out / "lota_merge" / "check");
      auto e = lota::check_integer_pe(pe_rtl, p, xq, merged.merged, out / "lota_pe" / "check");
      report["verify"] = {{"lint", "clean"},
                          {"merge_unit", {{"vectors", m.checked}, {"errors", m.errors}}},
                          {"pe", {{"vectors", e.checked}, {"errors", e.errors}}}};
      if (m.errors || e.errors || m.checked != static_cast<int64_t>(vectors.size()))
        throw MismatchError(fmt::format(
            "generated RTL differs from the golden model: merge unit {} errors, PE {} errors "
            "(logs in {})", m.errors, e.errors, out.string()));
    }
    if (l.synth) {
      report["synth"] = {
          {"merge_unit", cli::synthesize(merge_rtl, out / "lota_merge", l.clock_ns, l.input_activity, 1)},
          {"pe", cli::synthesize(pe_rtl, out / "lota_pe", l.clock_ns, l.input_activity, 1)}};
    }
  }

  if (l.json) {
    fmt::print("{}\n", report.dump(2));
    return 0;
  }
  fmt::print("LoTA-QAF on {} layer {} {} ({} x {}, d_out x d_in), {} data, seed {}\n",
             d.shape.name, l.layer, l.proj, d.d_out, d.d_in, d.source, l.seed);
  fmt::print("  base: {}-bit asymmetric, group {}; adapters rank {}, omega {} (T = {})\n", p.bits,
             p.group, p.rank, p.omega, lota::threshold(p.omega));
  fmt::print("  bits/weight: {:.3f} merged (N + 32/G, FP16 scale and zero), {:.3f} while training\n",
             bits_merged, bits_merged + bits_adapters);
  fmt::print("  t-SignSGD: {} steps, top {:.1f}% of |g| move per step\n", o.steps,
             100 * o.update_fraction);
  fmt::print("  merge: {} codes changed ({:.2f}%), {} decisions clipped at the grid edge\n",
             merged.changed, 100 * merged.changed / weights, merged.clipped);
  if (!unchanged_because.is_null())
    fmt::print("         no code changed: {}\n", unchanged_because["text"].get<std::string>());
  fmt::print("  target: FP32 W + LoRA update of RMS {} quantization steps\n", o.target_steps);
  fmt::print("  weight error vs FP32 target (rel. Frobenius): base {:.5f}, merged {:.5f} "
             "(base vs W itself: {:.5f})\n",
             report["weight_error_vs_fp32"]["base"].get<double>(),
             report["weight_error_vs_fp32"]["merged"].get<double>(),
             report["weight_error_vs_fp32"]["base_vs_w"].get<double>());
  fmt::print("  output error vs FP32 target (INT8 per-token x merged INT{}, integer GEMM): {:.5f}\n",
             p.bits, report["output_error_vs_fp32"]["merged_int_gemm"].get<double>());
  if (report.contains("rtl"))
    fmt::print("  RTL: {} and {}\n", report["rtl"]["merge_unit"].get<std::string>(),
               report["rtl"]["pe"].get<std::string>());
  if (report.contains("verify"))
    fmt::print("  verify: lint clean; merge unit {} vectors, PE {} vectors, bit-exact\n",
               report["verify"]["merge_unit"]["vectors"].get<int64_t>(),
               report["verify"]["pe"]["vectors"].get<int64_t>());
  if (report.contains("synth")) {
    cli::print_synthesis(report["synth"]["merge_unit"]);
    cli::print_synthesis(report["synth"]["pe"]);
  }
  return 0;
}

gsqhw::cli::Runner setup_lota(CLI::App& app) {
  auto o = std::make_shared<LotaOptions>();
  cli::add_layer_options(app, o->layer, "Activation rows (synthetic)");
  app.add_option("--bits", o->params.bits, "Base weight bits N (2..4)")->capture_default_str();
  app.add_option("--group", o->params.group, "Quantization group along d_in (64 or 128)")
      ->capture_default_str();
  app.add_option("--rank", o->params.rank, "Adapter rank r (1..64)")->capture_default_str();
  app.add_option("--omega", o->params.omega, "Merge threshold in (0, r); default 0.75 r")
      ->each([o](const std::string&) { o->omega_given = true; });
  app.add_option("--steps", o->steps, "t-SignSGD steps before the merge")->capture_default_str();
  app.add_option("--target-steps", o->target_steps,
                 "RMS of the fine-tuning update (W_target = W + scaled LoRA B A), in quantization steps")
      ->capture_default_str();
  app.add_option("--update-fraction", o->update_fraction,
                 "Fraction of adapter entries allowed to move per step (percentile threshold)")
      ->capture_default_str();
  cli::add_rtl_options(
      app, o->layer, "Write the merge unit and integer PE Verilog under this folder",
      "Synthesize the merge unit and the PE (Yosys + OpenSTA, default library; needs --out)");
  app.footer("Semantics (zero-point convention, threshold, activation format): docs/siblings.md.");
  return [o]() { return run_lota(*o); };
}

}  // namespace

GSQHW_COMMAND("lota", "LoTA-QAF ternary-adapter merge on a layer: bits/weight, error vs FP32, RTL",
              setup_lota);
