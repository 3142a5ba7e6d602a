// `gsqhw ptq161`: PTQ1.61 on one layer. Chooses the salient input channels from the
// activations, quantizes (4-bit salient, binary rest with row/column scales), runs the integer
// GEMM, and prints bits/weight and errors vs FP32. --out writes the datapath RTL; --verify also
// lints it and checks it bit-exact against the golden model on this layer.
#include <fmt/format.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "cli/command.h"
#include "cli/sibling_layer.h"
#include "gen/ptq161.h"
#include "base/errors.h"
#include "numerics/ptq161.h"
#include "workloads/lora.h"

namespace {

using namespace gsqhw;

struct Ptq161Options {
  cli::SiblingLayerOptions layer;
  ptq161::Ptq161Params params;
  int rows = 4;
};

// Output error vs FP32 of the integer GEMM of a layer quantized with `mask`.
double output_error(const cli::LayerData& d, const std::vector<uint8_t>& mask,
                    const ptq161::Ptq161Params& params, int64_t tokens,
                    const std::vector<float>& y_fp32) {
  auto layer = ptq161::quantize(d.w.data(), d.d_out, d.d_in, mask, params);
  auto xq = ptq161::quantize_activations(d.x.data(), tokens, layer);
  return cli::relative_error(ptq161::gemm(xq, layer).out, y_fp32);
}

int run_ptq161(const Ptq161Options& options) {
  const cli::SiblingLayerOptions& o = options.layer;
  ptq161::validate(options.params);
  cli::require_out_for_rtl_checks(o);
  const cli::LayerData d = cli::load_layer(o);
  const auto mask = ptq161::choose_salient(
      ptq161::channel_magnitudes(d.x.data(), o.tokens, d.d_in), options.params.salient_fraction);
  const auto layer = ptq161::quantize(d.w.data(), d.d_out, d.d_in, mask, options.params);
  std::vector<float> deq(d.w.size());
  layer.dequantize(deq.data());
  const QuantizedTensor xq = ptq161::quantize_activations(d.x.data(), o.tokens, layer);
  const ptq161::Ptq161GemmResult y = ptq161::gemm(xq, layer);
  const std::vector<float> y_fp32 = reference_product(d.x, d.w, o.tokens, d.d_out, d.d_in);
  const double binary_only = output_error(d, std::vector<uint8_t>(d.d_in, 0), options.params, o.tokens, y_fp32);

  const ptq161::BitsBreakdown bits = ptq161::storage_bits(layer);
  const double weights = static_cast<double>(d.d_out) * d.d_in;
  nlohmann::json report = {
      {"method", "ptq1.61"},
      {"layer", {{"model", d.shape.name}, {"source", d.source}, {"layer", o.layer},
                 {"proj", o.proj}, {"d_out", d.d_out}, {"d_in", d.d_in}, {"tokens", o.tokens},
                 {"seed", o.seed}}},
      {"params", {{"salient_fraction", options.params.salient_fraction},
                  {"iterations", options.params.iterations}}},
      {"salient_channels", layer.salient_count()},
      {"bits_per_weight", ptq161::bits_per_weight(layer)},
      {"bits_breakdown_per_weight", {{"mask", bits.mask / weights},
                                     {"salient_codes", bits.salient_codes / weights},
                                     {"binary_codes", bits.binary_codes / weights},
                                     {"row_params", bits.row_params / weights},
                                     {"col_params", bits.col_params / weights}}},
      {"weight_error_vs_fp32", cli::relative_error(deq, d.w)},
      {"output_error_vs_fp32", cli::relative_error(y.out, y_fp32)},
      {"output_error_vs_fp32_binary_only", binary_only}};

  if (!o.out.empty()) {
    namespace fs = std::filesystem;
    const fs::path out(o.out);
    const ptq161::ArraySpec spec{options.rows, d.d_in};
    auto rtl = ptq161::generate_array(spec);
    rtlcheck::write_bundle(rtl, out / "ptq161_array");
    report["rtl"] = (out / "ptq161_array").string();
    if (o.verify) {
      rtlcheck::lint(rtl, out / "ptq161_array");
      auto r = ptq161::check_array(rtl, spec, layer, xq, out / "ptq161_array" / "check", 29);
      report["verify"] = {{"lint", "clean"}, {"vectors", r.checked}, {"errors", r.errors}};
      if (r.errors)
        throw MismatchError(fmt::format("generated PTQ1.61 array differs from the golden model: "
                                        "{} errors (log in {})", r.errors, out.string()));
    }
    if (o.synth)
      report["synth"] = cli::synthesize(rtl, out / "ptq161_array", o.clock_ns, o.input_activity, options.rows);
  }

  if (o.json) {
    fmt::print("{}\n", report.dump(2));
    return 0;
  }
  fmt::print("PTQ1.61 on {} layer {} {} ({} x {}, d_out x d_in), {} data, seed {}\n",
             d.shape.name, o.layer, o.proj, d.d_out, d.d_in, d.source, o.seed);
  fmt::print("  salient channels: {} of {} ({:.1f}%, by mean |activation| over {} tokens)\n",
             layer.salient_count(), d.d_in, 100.0 * layer.salient_count() / d.d_in, o.tokens);
  fmt::print("  bits/weight: {:.4f} = codes {:.4f} + mask {:.4f} + row scales {:.4f} + column "
             "scales {:.4f}\n",
             ptq161::bits_per_weight(layer), (bits.salient_codes + bits.binary_codes) / weights,
             bits.mask / weights, bits.row_params / weights, bits.col_params / weights);
  fmt::print("  weight error vs FP32 (rel. Frobenius): {:.5f}\n",
             report["weight_error_vs_fp32"].get<double>());
  fmt::print("  output error vs FP32 (INT8 per-token activations, integer GEMM): {:.5f} "
             "(all-binary layer: {:.5f})\n",
             report["output_error_vs_fp32"].get<double>(), binary_only);
  if (report.contains("rtl"))
    fmt::print("  RTL: {} ({} rows)\n", report["rtl"].get<std::string>(), options.rows);
  if (report.contains("verify"))
    fmt::print("  verify: lint clean; {} vectors bit-exact\n",
               report["verify"]["vectors"].get<int64_t>());
  if (report.contains("synth")) cli::print_synthesis(report["synth"]);
  return 0;
}

gsqhw::cli::Runner setup_ptq161(CLI::App& app) {
  auto o = std::make_shared<Ptq161Options>();
  cli::add_layer_options(app, o->layer, "Activation rows (synthetic), also the calibration set");
  app.add_option("--salient", o->params.salient_fraction,
                 "Fraction of input channels kept at 4 bits, in [0, 1]")
      ->capture_default_str();
  app.add_option("--iterations", o->params.iterations,
                 "Alternating least-squares rounds for the row/column scales (1..16)")
      ->capture_default_str();
  app.add_option("--rows", o->rows, "Rows R of the generated datapath (1..64)")->capture_default_str();
  cli::add_rtl_options(app, o->layer, "Write the datapath Verilog under this folder",
                       "Synthesize the array (Yosys + OpenSTA, default library; needs --out)");
  app.footer("Semantics (indices, scales, activation format, bit accounting): docs/siblings.md.");
  return [o]() { return run_ptq161(*o); };
}

}  // namespace

GSQHW_COMMAND("ptq161", "PTQ1.61 1.61-bit weights on a layer: bits/weight, error vs FP32, RTL",
              setup_ptq161);
