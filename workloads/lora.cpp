// LoRA GEMM list, trace generation and the built-in tiny trace set (workloads/lora.h).
#include "workloads/lora.h"
#include "base/files.h"

#include <cblas.h>
#include <fmt/format.h>

#include <chrono>
#include <cmath>
#include <limits>
#include <optional>

#include "gsqhw_version.h"
#include "base/errors.h"
#include "workloads/checkpoint.h"
#include "workloads/safetensors.h"
#include "workloads/synthetic.h"
#include "workloads/trace.h"

namespace gsqhw {
namespace {

// Bump when the synthetic data or the GEMM list changes, so cached trace sets are rebuilt.
constexpr int kGeneratorVersion = 2;

std::string canonical_spec(std::string_view spec, std::string_view role) {
  if (spec.empty()) throw UsageError(fmt::format("--formats: role '{}' has an empty spec", role));
  try {
    return parse_format(spec)->spec();
  } catch (const UsageError& e) {
    throw UsageError(fmt::format("--formats: role '{}': {}", role, e.what()));
  }
}

// Quantizes a small zero block with each role's format and runs the golden GEMM on the role
// pairs that meet in the LoRA GEMMs, so that incompatible assignments fail before any work,
// with golden_gemm's own reason.
void check_roles_meet(const FormatAssignment& f) {
  const std::vector<float> zeros(2 * 64, 0.0f);
  const std::pair<const char*, const char*> pairs[] = {{"act", "weight"}, {"grad", "weight"}, {"grad", "act"}};
  for (const auto& [ra, rb] : pairs) {
    try {
      const auto qa = parse_format(f.role(ra))->quantize(zeros.data(), 2, 64);
      const auto qb = parse_format(f.role(rb))->quantize(zeros.data(), 2, 64);
      golden_gemm(qa, qb, AccumulatorSpec{}, 1);
    } catch (const UsageError& e) {
      throw UsageError(fmt::format("--formats: {}={} and {}={} cannot be the two operands of one "
                                   "GEMM: {}", ra, f.role(ra), rb, f.role(rb), e.what()));
    }
  }
  canonical_spec(f.storage, "storage");
}

std::vector<float> transpose(const std::vector<float>& x, int64_t rows, int64_t cols) {
  std::vector<float> t(x.size());
  constexpr int64_t kBlock = 64;  // cache blocking: a 4096 x 4096 transpose stays fast
  for (int64_t r0 = 0; r0 < rows; r0 += kBlock)
    for (int64_t c0 = 0; c0 < cols; c0 += kBlock)
      for (int64_t r = r0; r < std::min(rows, r0 + kBlock); ++r)
        for (int64_t c = c0; c < std::min(cols, c0 + kBlock); ++c) t[c * rows + r] = x[r * cols + c];
  return t;
}

// The tensors of one layer/projection, produced on demand so that only the current GEMM's
// operands are alive. H and G (T x r) are kept: they come from earlier GEMMs' outputs.
class LayerTensors {
 public:
  explicit LayerTensors(const LoraTraceRequest& r)
      : r_(r), dims_(proj_dims(r.model, r.proj)), storage_(parse_format(r.formats.storage)) {}

  // The base weight as the GEMMs see it: stored in the storage format (NF4), dequantized.
  std::vector<float> w() const {
    std::vector<float> master = r_.checkpoint
                                    ? r_.checkpoint->read_projection(r_.layer, r_.proj)
                                    : synthetic::base_weight(r_.model, r_.layer, r_.proj, r_.seed);
    const QuantizedTensor stored = storage_->quantize(master.data(), dims_.out, dims_.in,
                                                      synthetic::derive_seed(r_.seed, 0x5707));
    storage_->dequantize(stored, master.data());
    return master;
  }
  std::vector<float> x() const {
    return r_.real ? r_.real->x : synthetic::activations(r_.model, r_.layer, r_.proj, r_.tokens, r_.seed);
  }
  std::vector<float> dy() const {
    return r_.real ? r_.real->dy : synthetic::output_grad(r_.model, r_.layer, r_.proj, r_.tokens, r_.seed);
  }
  std::vector<float> lora_a() const {
    return r_.real && !r_.real->a.empty() ? r_.real->a : synthetic::lora_a(r_.model, r_.layer, r_.proj, r_.rank, r_.seed);
  }
  std::vector<float> lora_b() const {
    return r_.real && !r_.real->b.empty() ? r_.real->b : synthetic::lora_b(r_.model, r_.layer, r_.proj, r_.rank, r_.seed);
  }

  // FP32 operands (A_op, B_op) of GEMM `gemm`, laid out M x K and N x K.
  std::pair<std::vector<float>, std::vector<float>> operands(const std::string& gemm) const {
    const int64_t T = r_.tokens, R = r_.rank, in = dims_.in, out = dims_.out;
    if (gemm == "fwd.base") return {x(), w()};
    if (gemm == "fwd.lora_a") return {x(), lora_a()};
    if (gemm == "fwd.lora_b") return {need(h, "H"), lora_b()};
    if (gemm == "bwd.dx_base") return {dy(), transpose(w(), out, in)};
    if (gemm == "bwd.dh") return {dy(), transpose(lora_b(), out, R)};
    if (gemm == "bwd.dx_lora") return {need(g, "G"), transpose(lora_a(), R, in)};
    if (gemm == "bwd.da") return {transpose(need(g, "G"), T, R), transpose(x(), T, in)};
    if (gemm == "bwd.db") return {transpose(dy(), T, out), transpose(need(h, "H"), T, R)};
    throw std::logic_error("unknown LoRA GEMM " + gemm);
  }

  std::optional<std::vector<float>> h, g;  // fwd.lora_a and bwd.dh outputs

 private:
  static const std::vector<float>& need(const std::optional<std::vector<float>>& v, const char* what) {
    if (!v) throw std::logic_error(fmt::format("LoRA GEMM order: {} used before it was computed", what));
    return *v;
  }

  const LoraTraceRequest& r_;
  ProjDims dims_;
  std::unique_ptr<Format> storage_;
};

uint64_t fnv1a(std::string_view s) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : s) h = (h ^ c) * 0x100000001b3ull;
  return h;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// FormatAssignment

FormatAssignment FormatAssignment::defaults() {
  FormatAssignment f;
  f.act = canonical_spec("gse:b=6,g=32,e=5", "act");
  f.weight = canonical_spec("gse:b=6,g=32,e=5", "weight");
  f.grad = canonical_spec("gse:b=6,g=32,e=5,round=stochastic", "grad");
  f.storage = canonical_spec("nf4:block=64", "storage");
  return f;
}

FormatAssignment FormatAssignment::uniform(std::string_view spec) {
  FormatAssignment f = defaults();
  f.act = f.weight = f.grad = canonical_spec(spec, "all");
  check_roles_meet(f);
  return f;
}

FormatAssignment FormatAssignment::parse(std::string_view text) {
  static const std::vector<std::string_view> roles = {"act", "weight", "grad", "storage", "all"};
  std::vector<std::pair<std::string, std::string>> given;  // (role, spec) in order
  size_t start = 0;
  while (start <= text.size()) {
    size_t comma = text.find(',', start);
    std::string_view token = text.substr(start, comma == text.npos ? text.npos : comma - start);
    const size_t eq = token.find('=');
    const std::string_view key = eq == token.npos ? token : token.substr(0, eq);
    if (std::find(roles.begin(), roles.end(), key) != roles.end()) {
      given.emplace_back(std::string(key), std::string(token.substr(eq == token.npos ? token.size() : eq + 1)));
    } else if (given.empty()) {
      given.emplace_back("all", std::string(token));  // a bare leading spec: every role
    } else {
      given.back().second.append(",").append(token);  // a parameter of the current spec
    }
    if (comma == text.npos) break;
    start = comma + 1;
  }
  FormatAssignment f = defaults();
  std::vector<std::string> seen;
  for (const auto& [role, spec] : given) {
    if (std::find(seen.begin(), seen.end(), role) != seen.end())
      throw UsageError(fmt::format("--formats: role '{}' given twice", role));
    seen.push_back(role);
    const std::string canonical = canonical_spec(spec, role);
    if (role == "all") f.act = f.weight = f.grad = canonical;
    else if (role == "act") f.act = canonical;
    else if (role == "weight") f.weight = canonical;
    else if (role == "grad") f.grad = canonical;
    else f.storage = canonical;
  }
  check_roles_meet(f);
  return f;
}

std::string FormatAssignment::str() const {
  return fmt::format("act={},weight={},grad={},storage={}", act, weight, grad, storage);
}

const std::string& FormatAssignment::role(std::string_view name) const {
  if (name == "act") return act;
  if (name == "weight") return weight;
  if (name == "grad") return grad;
  if (name == "storage") return storage;
  throw UsageError(fmt::format("unknown operand role '{}' (act, weight, grad, storage)", name));
}

// ---------------------------------------------------------------------------------------------
// GEMM list

std::vector<LoraGemmShape> lora_gemm_shapes(const ModelShape& model, Proj proj, int64_t rank,
                                            int64_t tokens, double alpha) {
  const ProjDims d = proj_dims(model, proj);
  const int64_t T = tokens, R = rank;
  const double s = alpha / static_cast<double>(rank);
  return {
      {"fwd.base", "forward", T, d.out, d.in, "act", "weight", "X", "W", 1.0},
      {"fwd.lora_a", "forward", T, R, d.in, "act", "weight", "X", "A", 1.0},
      {"fwd.lora_b", "forward", T, d.out, R, "act", "weight", "H", "B", s},
      {"bwd.dx_base", "backward", T, d.in, d.out, "grad", "weight", "dY", "W^T", 1.0},
      {"bwd.dh", "backward", T, R, d.out, "grad", "weight", "dY", "B^T", 1.0},
      {"bwd.dx_lora", "backward", T, d.in, R, "grad", "weight", "G", "A^T", s},
      {"bwd.da", "backward", R, d.in, T, "grad", "act", "G^T", "X^T", s},
      {"bwd.db", "backward", d.out, R, T, "grad", "act", "dY^T", "H^T", s},
  };
}

ErrorStats error_stats(const float* approx, const float* exact, int64_t count) {
  ErrorStats s;
  s.count = count;
  double sum_err = 0, sum_ref = 0;
  for (int64_t i = 0; i < count; ++i) {
    if (!std::isfinite(approx[i]) || !std::isfinite(exact[i])) {
      ++s.nonfinite;
      continue;
    }
    const double e = static_cast<double>(approx[i]) - exact[i];
    sum_err += e * e;
    sum_ref += static_cast<double>(exact[i]) * exact[i];
    s.max_abs = std::max(s.max_abs, std::abs(e));
  }
  const double inf = std::numeric_limits<double>::infinity();
  s.rel_rms = sum_ref > 0 ? std::sqrt(sum_err / sum_ref) : (sum_err > 0 ? inf : 0.0);
  s.sqnr_db = sum_err > 0 ? (sum_ref > 0 ? 10.0 * std::log10(sum_ref / sum_err) : -inf) : inf;
  return s;
}

nlohmann::json error_stats_json(const ErrorStats& s) {
  auto finite_or_null = [](double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(); };
  return {{"count", s.count}, {"nonfinite", s.nonfinite}, {"rel_rms", finite_or_null(s.rel_rms)},
          {"max_abs", finite_or_null(s.max_abs)}, {"sqnr_db", finite_or_null(s.sqnr_db)}};
}

std::string error_stats_text(const ErrorStats& s) {
  std::string text = fmt::format("relRMS {:9.3e}  maxAbs {:9.3e}  SQNR {:6.1f} dB", s.rel_rms,
                                 s.max_abs, s.sqnr_db);
  if (s.nonfinite) text += fmt::format("  nonfinite {}", s.nonfinite);
  return text;
}

std::vector<float> reference_product(const std::vector<float>& a, const std::vector<float>& b,
                                     int64_t m, int64_t n, int64_t k) {
  std::vector<float> out(static_cast<size_t>(m * n), 0.0f);
  if (m == 0 || n == 0 || k == 0) return out;
  std::vector<double> ad(a.begin(), a.end()), bd(b.begin(), b.end()), cd(out.size());
  cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(m), static_cast<int>(n),
              static_cast<int>(k), 1.0, ad.data(), static_cast<int>(k), bd.data(),
              static_cast<int>(k), 0.0, cd.data(), static_cast<int>(n));
  for (size_t i = 0; i < out.size(); ++i) out[i] = static_cast<float>(cd[i]);
  return out;
}

void LoraTraceRequest::validate() const {
  model.validate();
  if (layer < 0 || layer >= model.n_layers)
    throw UsageError(fmt::format("--layer {} is out of range: model '{}' has layers 0..{}", layer,
                                 model.name, model.n_layers - 1));
  if (rank < 1 || rank > 65536) throw UsageError(fmt::format("--rank {} must be in 1..65536", rank));
  if (tokens < 1 || tokens > (int64_t{1} << 20))
    throw UsageError(fmt::format("--tokens {} must be in 1..1048576", tokens));
  if (threads < 0 || threads > 1024) throw UsageError(fmt::format("--threads {} must be in 0..1024", threads));
  if (!std::isfinite(alpha) || alpha <= 0)
    throw UsageError(fmt::format("--alpha {} must be a positive number", alpha));
  if (checkpoint && !checkpoint->shape().same_dims(model))
    throw UsageError(fmt::format("checkpoint {} does not have the dimensions of model '{}'",
                                 checkpoint->path().string(), model.name));
  check_roles_meet(formats);
  if (real) {
    const ProjDims pd = proj_dims(model, proj);
    if (static_cast<int64_t>(real->x.size()) != tokens * pd.in || static_cast<int64_t>(real->dy.size()) != tokens * pd.out ||
        (!real->a.empty() && static_cast<int64_t>(real->a.size()) != rank * pd.in) ||
        (!real->b.empty() && static_cast<int64_t>(real->b.size()) != pd.out * rank))
      throw UsageError("recorded operands do not have the shapes of the requested layer, tokens and rank");
  }
  // Keep every GEMM dimension within what the BLAS reference (int) and the operands can index.
  const ProjDims d = proj_dims(model, proj);
  for (int64_t v : {d.in * tokens, d.out * tokens, d.in * rank, d.out * rank, d.in * d.out})
    if (v > (int64_t{1} << 31) - 1)
      throw UsageError("a GEMM operand of this request would exceed 2^31 elements; use fewer tokens");
}

// ---------------------------------------------------------------------------------------------
// Trace generation

std::vector<GemmReport> generate_lora_traces(const LoraTraceRequest& r,
                                             const std::filesystem::path& out_dir,
                                             const std::function<void(const GemmReport&)>& on_gemm) {
  r.validate();
  std::error_code ec;
  std::filesystem::create_directories(out_dir, ec);
  if (ec || !std::filesystem::is_directory(out_dir))
    throw UsageError(fmt::format("--out {}: cannot create the folder ({})", out_dir.string(), ec.message()));

  LayerTensors tensors(r);
  std::vector<GemmReport> reports;
  const auto shapes = lora_gemm_shapes(r.model, r.proj, r.rank, r.tokens, r.alpha);
  for (size_t index = 0; index < shapes.size(); ++index) {
    const LoraGemmShape& shape = shapes[index];
    const auto started = std::chrono::steady_clock::now();
    GemmReport rep;
    rep.shape = shape;
    rep.name = fmt::format("L{}.{}.{}", r.layer, proj_name(r.proj), shape.gemm);
    rep.file = out_dir / (rep.name + ".safetensors");
    rep.a_format = r.formats.role(shape.a_role);
    rep.b_format = r.formats.role(shape.b_role);

    Trace t;
    t.name = rep.name;
    t.acc = r.acc;
    std::tie(t.a_fp32, t.b_fp32) = tensors.operands(shape.gemm);
    const uint64_t seed_a = synthetic::derive_seed(r.seed, 2 * index);
    const uint64_t seed_b = synthetic::derive_seed(r.seed, 2 * index + 1);
    const auto fa = parse_format(rep.a_format), fb = parse_format(rep.b_format);
    t.a = fa->quantize(t.a_fp32.data(), shape.m, shape.k, seed_a);
    t.b = fb->quantize(t.b_fp32.data(), shape.n, shape.k, seed_b);
    // Operand errors, and the accumulator's own error: golden output vs the exact (double)
    // product of the dequantized operands. The dequantized copies die at the end of the block.
    t.golden = golden_gemm(t.a, t.b, r.acc, r.threads);
    {
      std::vector<float> deq_a(t.a_fp32.size()), deq_b(t.b_fp32.size());
      fa->dequantize(t.a, deq_a.data());
      fb->dequantize(t.b, deq_b.data());
      rep.a_error = error_stats(deq_a.data(), t.a_fp32.data(), shape.m * shape.k);
      rep.b_error = error_stats(deq_b.data(), t.b_fp32.data(), shape.n * shape.k);
      const auto exact = reference_product(deq_a, deq_b, shape.m, shape.n, shape.k);
      rep.acc_error = error_stats(t.golden.out.data(), exact.data(), shape.m * shape.n);
    }
    t.reference_fp32 = reference_product(t.a_fp32, t.b_fp32, shape.m, shape.n, shape.k);
    rep.out_error = error_stats(t.golden.out.data(), t.reference_fp32.data(), shape.m * shape.n);
    for (uint8_t f : t.golden.flags) {
      rep.overflow_outputs += (f & kFlagOverflow) != 0;
      rep.nan_outputs += (f & kFlagNaN) != 0;
    }

    const bool uses_w = shape.b_tensor == "W" || shape.b_tensor == "W^T";
    t.metadata = {
        {"model", r.model.name},
        {"model_dims", {{"dim", r.model.dim}, {"hidden_dim", r.model.hidden_dim},
                        {"n_layers", r.model.n_layers}, {"n_heads", r.model.n_heads},
                        {"n_kv_heads", r.model.n_kv_heads}, {"vocab_size", r.model.vocab_size}}},
        {"layer", r.layer},
        {"proj", std::string(proj_name(r.proj))},
        {"gemm", shape.gemm},
        {"pass", shape.pass},
        {"index", index},
        {"tokens", r.tokens},
        {"rank", r.rank},
        {"alpha", r.alpha},
        {"lora_scale", r.alpha / static_cast<double>(r.rank)},
        {"post_scale", shape.post_scale},
        {"seed", r.seed},
        {"quantize_seeds", {{"a", seed_a}, {"b", seed_b}}},
        {"data", r.checkpoint ? r.checkpoint->path().string() : std::string("synthetic")},
        {"weights", uses_w ? (r.checkpoint ? "checkpoint" : "synthetic")
                           : (r.real && !r.real->a.empty() ? r.real->lora_source : "synthetic (LoRA master)")},
        {"activations", r.real ? r.real->x_source : "synthetic"},
        {"output_grad", r.real ? r.real->dy_source : "synthetic"},
        {"roles", {{"a", shape.a_role}, {"b", shape.b_role}}},
        {"tensors", {{"a", shape.a_tensor}, {"b", shape.b_tensor}}},
        {"formats", r.formats.str()},
        {"base_weight_storage", uses_w ? nlohmann::json(r.formats.storage) : nlohmann::json()},
        {"tool", "gsqhw " GSQHW_VERSION},
        {"generator_version", kGeneratorVersion},
        {"stats", {{"a", error_stats_json(rep.a_error)}, {"b", error_stats_json(rep.b_error)},
                   {"out", error_stats_json(rep.out_error)}, {"acc", error_stats_json(rep.acc_error)},
                   {"overflow_outputs", rep.overflow_outputs},
                   {"nan_outputs", rep.nan_outputs}}},
    };
    write_trace(t, rep.file);

    if (shape.gemm == "fwd.lora_a") tensors.h = t.golden.out;
    if (shape.gemm == "bwd.dh") tensors.g = t.golden.out;
    rep.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    reports.push_back(rep);
    if (on_gemm) on_gemm(rep);
  }
  return reports;
}

// ---------------------------------------------------------------------------------------------
// Built-in tiny trace set

std::vector<std::filesystem::path> ensure_builtin_tiny_traces(const std::filesystem::path& dir,
                                                              const FormatAssignment& formats,
                                                              const AccumulatorSpec& acc) {
  LoraTraceRequest r;
  r.model = builtin_model("tiny");
  r.layer = 0;
  r.rank = 8;
  r.alpha = 16;
  r.tokens = 16;
  r.seed = 1;
  r.formats = formats;
  r.acc = acc;
  r.threads = 1;
  // The group size of minifloat group sums is not in acc.str() but changes the golden outputs.
  const std::string acc_key =
      acc.group > 0 ? fmt::format("{}/group{}", acc.str(), acc.group) : acc.str();
  const std::string key = fmt::format("{}|{}|v{}|tiny,L0,T16,r8,a16,s1", formats.str(), acc_key,
                                      kGeneratorVersion);
  const auto folder = dir / fmt::format("tiny-{:016x}", fnv1a(key));

  std::vector<std::filesystem::path> files;
  bool complete = true;
  for (Proj p : all_projections())
    for (const auto& s : lora_gemm_shapes(r.model, p, r.rank, r.tokens, r.alpha)) {
      files.push_back(folder / fmt::format("L0.{}.{}.safetensors", proj_name(p), s.gemm));
      complete = complete && std::filesystem::is_regular_file(files.back());
    }
  std::sort(files.begin(), files.end());
  if (complete) return files;

  for (Proj p : all_projections()) {
    r.proj = p;
    generate_lora_traces(r, folder);
  }
  // A human-readable note of what the folder holds.
  const nlohmann::json about = {{"set", "builtin-tiny"}, {"formats", formats.str()},
                                {"acc", acc_key}, {"key", key}, {"traces", files.size()}};
  write_file_atomically(folder / "set.json",
                                     [&](std::ostream& out) { out << about.dump(2) << "\n"; });
  return files;
}

std::vector<std::filesystem::path> ensure_builtin_tiny_traces(const std::filesystem::path& dir,
                                                              std::string_view format_spec,
                                                              const AccumulatorSpec& acc) {
  return ensure_builtin_tiny_traces(dir, FormatAssignment::uniform(format_spec), acc);
}

}  // namespace gsqhw
