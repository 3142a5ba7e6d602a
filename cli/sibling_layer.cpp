// Layer loading, error measures and synthesis shared by `gsqhw lota` and `gsqhw ptq161`
// (cli/sibling_layer.h).
#include "cli/sibling_layer.h"

#include <fmt/format.h>

#include <cmath>
#include <memory>

#include "base/errors.h"
#include "synth/flow.h"
#include "synth/liberty.h"
#include "workloads/checkpoint.h"
#include "workloads/synthetic.h"

namespace gsqhw::cli {

void add_layer_options(CLI::App& app, SiblingLayerOptions& o, const std::string& tokens_help) {
  app.add_option("--model", o.model, "Built-in model shape for synthetic data (tiny, llama-7b, ...)")
      ->capture_default_str();
  app.add_option("--checkpoint", o.checkpoint, "Base weights from a llama2.c or safetensors checkpoint");
  app.add_option("--layer", o.layer, "Decoder layer")->capture_default_str();
  app.add_option("--proj", o.proj, "Projection: q, k, v, o, gate, up, down")->capture_default_str();
  app.add_option("--tokens", o.tokens, tokens_help)->capture_default_str();
  app.add_option("--seed", o.seed, "Seed of the synthetic data")->capture_default_str();
}

void add_rtl_options(CLI::App& app, SiblingLayerOptions& o, const std::string& out_help,
                     const std::string& synth_help) {
  app.add_option("--out", o.out, out_help);
  app.add_flag("--verify", o.verify, "Lint the RTL and check it bit-exact on this layer (needs --out)");
  app.add_flag("--synth", o.synth, synth_help);
  app.add_option("--clock", o.clock_ns, "Clock period in ns for --synth")->capture_default_str();
  app.add_option("--input-activity", o.input_activity,
                 "Vectorless toggle rate per input per cycle for --synth")->capture_default_str();
  app.add_flag("--json", o.json, "Print the report as JSON");
}

void require_out_for_rtl_checks(const SiblingLayerOptions& o) {
  if (o.out.empty() && (o.verify || o.synth))
    throw UsageError("--verify and --synth need --out DIR (where the RTL and the tool runs go)");
}

LayerData load_layer(const SiblingLayerOptions& o) {
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

}  // namespace gsqhw::cli
