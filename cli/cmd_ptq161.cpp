// `gsqhw ptq161`: PTQ1.61 on one layer. Chooses the salient input channels from the
// activations, quantizes (4-bit salient, binary rest with row/column scales), runs the integer
// GEMM, and prints bits/weight and errors vs FP32. --out writes the datapath RTL; --verify also
// lints it and checks it bit-exact against the golden model on this layer.
#include <fmt/format.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "cli/command.h"
#include "gen/ptq161.h"
#include "sim/errors.h"
#include "synth/flow.h"
#include "synth/liberty.h"
#include "sim/ptq161.h"
#include "workloads/checkpoint.h"
#include "workloads/synthetic.h"

namespace {

using namespace gsqhw;

struct Ptq161Options {
  std::string model = "tiny", checkpoint, proj = "q", out;
  int64_t layer = 0, tokens = 16;
  uint64_t seed = 1;
  ptq161::Ptq161Params params;
  int rows = 4;
  bool verify = false, json = false, synth = false;
  double clock_ns = 20.0, input_activity = 0.1;  // the defaults of `gsqhw synth`
};

struct LayerData {
  std::string source;
  ModelShape shape;
  int64_t d_out = 0, d_in = 0;
  std::vector<float> w, x;  // d_out x d_in, tokens x d_in
};

LayerData load_layer(const Ptq161Options& o) {
  LayerData d;
  std::unique_ptr<Checkpoint> ckpt;
  if (!o.checkpoint.empty()) {
    ckpt = open_checkpoint(o.checkpoint);
    d.shape = ckpt->shape();
    d.source = ckpt->path().string();
  } else {
    d.shape = builtin_model(o.model);
    d.source = "synthetic";
  }
  if (o.layer < 0 || o.layer >= d.shape.n_layers)
    throw UsageError(fmt::format("--layer {} is outside 0..{}", o.layer, d.shape.n_layers - 1));
  if (o.tokens < 1 || o.tokens > 4096)
    throw UsageError(fmt::format("--tokens {} is outside 1..4096", o.tokens));
  const Proj proj = parse_proj(o.proj);
  const ProjDims dims = proj_dims(d.shape, proj);
  d.d_out = dims.out;
  d.d_in = dims.in;
  d.w = ckpt ? ckpt->read_projection(o.layer, proj)
             : synthetic::base_weight(d.shape, o.layer, proj, o.seed);
  d.x = synthetic::activations(d.shape, o.layer, proj, o.tokens, o.seed);
  return d;
}

double relative_error(const std::vector<float>& a, const std::vector<float>& ref) {
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    const double e = static_cast<double>(a[i]) - ref[i];
    num += e * e;
    den += static_cast<double>(ref[i]) * ref[i];
  }
  return den > 0 ? std::sqrt(num / den) : std::sqrt(num);
}

std::vector<float> fp32_product(const std::vector<float>& x, const std::vector<float>& w,
                                int64_t tokens, int64_t d_out, int64_t d_in) {
  std::vector<float> y(tokens * d_out);
  for (int64_t t = 0; t < tokens; ++t)
    for (int64_t o = 0; o < d_out; ++o) {
      double s = 0;
      for (int64_t i = 0; i < d_in; ++i) s += static_cast<double>(x[t * d_in + i]) * w[o * d_in + i];
      y[t * d_out + o] = static_cast<float>(s);
    }
  return y;
}

// Output error vs FP32 of the integer GEMM of a layer quantized with `mask`.
double output_error(const LayerData& d, const std::vector<uint8_t>& mask,
                    const ptq161::Ptq161Params& params, int64_t tokens,
                    const std::vector<float>& y_fp32) {
  auto layer = ptq161::quantize(d.w.data(), d.d_out, d.d_in, mask, params);
  auto xq = ptq161::quantize_activations(d.x.data(), tokens, layer);
  return relative_error(ptq161::gemm(xq, layer).out, y_fp32);
}

// Yosys + OpenSTA on the default library (synth/flow.h, vectorless power): the same flow and
// settings as `gsqhw synth` / the sweep, so the figures sit next to their GSE-INT/FP8 rows.
nlohmann::json synthesize(const rtlcheck::RtlBundle& rtl, const std::filesystem::path& dir,
                          double clock_ns, double input_activity, double macs_per_cycle) {
  std::vector<std::filesystem::path> files;
  for (const auto& f : rtl.files) files.push_back(dir / f.first);
  synth::FlowOptions options;
  options.clock_ns = clock_ns;
  options.input_activity = input_activity;
  options.work_dir = dir / "synth";
  const synth::LibrarySet library = synth::resolve_library({});
  const synth::FlowResult flow = synth::run_flow(files, rtl.top, library, options);
  const double pj_per_mac = flow.power_vectorless.total * clock_ns * 1e-9 / macs_per_cycle * 1e12;
  return {{"top", rtl.top},
          {"library", library.name},
          {"area_um2", flow.stat.area},
          {"cells", flow.stat.cells},
          {"clock_ns", clock_ns},
          {"critical_path_ns", flow.critical_path_ns},
          {"fmax_mhz", flow.fmax_mhz},
          {"power_mw", flow.power_vectorless.total * 1e3},
          {"input_activity", input_activity},
          {"macs_per_cycle", macs_per_cycle},
          {"pj_per_mac_vectorless", pj_per_mac}};
}

void print_synthesis(const nlohmann::json& s) {
  fmt::print("  synth {} ({}, {} ns, activity {}): area {:.0f} um^2, {} cells, fmax {:.1f} MHz, "
             "{:.4f} mW, {:.4f} pJ per MAC/op\n",
             s["top"].get<std::string>(), s["library"].get<std::string>(),
             s["clock_ns"].get<double>(), s["input_activity"].get<double>(),
             s["area_um2"].get<double>(), s["cells"].get<long>(), s["fmax_mhz"].get<double>(),
             s["power_mw"].get<double>(), s["pj_per_mac_vectorless"].get<double>());
}

int run_ptq161(const Ptq161Options& o) {
  ptq161::validate(o.params);
  const LayerData d = load_layer(o);
  const auto mask = ptq161::choose_salient(
      ptq161::channel_magnitudes(d.x.data(), o.tokens, d.d_in), o.params.salient_fraction);
  const auto layer = ptq161::quantize(d.w.data(), d.d_out, d.d_in, mask, o.params);
  std::vector<float> deq(d.w.size());
  layer.dequantize(deq.data());
  const QuantizedTensor xq = ptq161::quantize_activations(d.x.data(), o.tokens, layer);
  const ptq161::Ptq161GemmResult y = ptq161::gemm(xq, layer);
  const std::vector<float> y_fp32 = fp32_product(d.x, d.w, o.tokens, d.d_out, d.d_in);
  const double binary_only = output_error(d, std::vector<uint8_t>(d.d_in, 0), o.params, o.tokens, y_fp32);

  const ptq161::BitsBreakdown bits = ptq161::storage_bits(layer);
  const double weights = static_cast<double>(d.d_out) * d.d_in;
  nlohmann::json report = {
      {"method", "ptq1.61"},
      {"layer", {{"model", d.shape.name}, {"source", d.source}, {"layer", o.layer},
                 {"proj", o.proj}, {"d_out", d.d_out}, {"d_in", d.d_in}, {"tokens", o.tokens},
                 {"seed", o.seed}}},
      {"params", {{"salient_fraction", o.params.salient_fraction},
                  {"iterations", o.params.iterations}}},
      {"salient_channels", layer.salient_count()},
      {"bits_per_weight", ptq161::bits_per_weight(layer)},
      {"bits_breakdown_per_weight", {{"mask", bits.mask / weights},
                                     {"salient_codes", bits.salient_codes / weights},
                                     {"binary_codes", bits.binary_codes / weights},
                                     {"row_params", bits.row_params / weights},
                                     {"col_params", bits.col_params / weights}}},
      {"weight_error_vs_fp32", relative_error(deq, d.w)},
      {"output_error_vs_fp32", relative_error(y.out, y_fp32)},
      {"output_error_vs_fp32_binary_only", binary_only}};

  if (!o.out.empty()) {
    namespace fs = std::filesystem;
    const fs::path out(o.out);
    const ptq161::ArraySpec spec{o.rows, d.d_in};
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
      report["synth"] = synthesize(rtl, out / "ptq161_array", o.clock_ns, o.input_activity, o.rows);
  } else if (o.verify || o.synth) {
    throw UsageError("--verify and --synth need --out DIR (where the RTL and the tool runs go)");
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
    fmt::print("  RTL: {} ({} rows)\n", report["rtl"].get<std::string>(), o.rows);
  if (report.contains("verify"))
    fmt::print("  verify: lint clean; {} vectors bit-exact\n",
               report["verify"]["vectors"].get<int64_t>());
  if (report.contains("synth")) print_synthesis(report["synth"]);
  return 0;
}

gsqhw::cli::Runner setup_ptq161(CLI::App& app) {
  auto o = std::make_shared<Ptq161Options>();
  app.add_option("--model", o->model, "Built-in model shape for synthetic data (tiny, llama-7b, ...)")
      ->capture_default_str();
  app.add_option("--checkpoint", o->checkpoint, "Base weights from a llama2.c or safetensors checkpoint");
  app.add_option("--layer", o->layer, "Decoder layer")->capture_default_str();
  app.add_option("--proj", o->proj, "Projection: q, k, v, o, gate, up, down")->capture_default_str();
  app.add_option("--tokens", o->tokens, "Activation rows (synthetic), also the calibration set")
      ->capture_default_str();
  app.add_option("--seed", o->seed, "Seed of the synthetic data")->capture_default_str();
  app.add_option("--salient", o->params.salient_fraction,
                 "Fraction of input channels kept at 4 bits, in [0, 1]")
      ->capture_default_str();
  app.add_option("--iterations", o->params.iterations,
                 "Alternating least-squares rounds for the row/column scales (1..16)")
      ->capture_default_str();
  app.add_option("--rows", o->rows, "Rows R of the generated datapath (1..64)")->capture_default_str();
  app.add_option("--out", o->out, "Write the datapath Verilog under this folder");
  app.add_flag("--verify", o->verify, "Lint the RTL and check it bit-exact on this layer (needs --out)");
  app.add_flag("--synth", o->synth,
               "Synthesize the array (Yosys + OpenSTA, default library; needs --out)");
  app.add_option("--clock", o->clock_ns, "Clock period in ns for --synth")->capture_default_str();
  app.add_option("--input-activity", o->input_activity,
                 "Vectorless toggle rate per input per cycle for --synth")->capture_default_str();
  app.add_flag("--json", o->json, "Print the report as JSON");
  app.footer("Semantics (indices, scales, activation format, bit accounting): docs/siblings.md.");
  return [o]() { return run_ptq161(*o); };
}

}  // namespace

GSQHW_COMMAND("ptq161", "PTQ1.61 1.61-bit weights on a layer: bits/weight, error vs FP32, RTL",
              setup_ptq161);
