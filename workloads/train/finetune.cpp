// LoRA fine-tuning runs (workloads/train/finetune.h).
#include "workloads/train/finetune.h"
#include "base/files.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <optional>
#include <regex>
#include <sstream>

#include "base/errors.h"

#include "workloads/memory_model.h"
#include "workloads/safetensors.h"
#include "workloads/train/adapters.h"
#include "workloads/train/data.h"
#include "workloads/train/lota_train.h"
#include "workloads/train/tokenizer.h"

namespace gsqhw::train {

namespace {

constexpr int kStateVersion = 1;

struct EvalPoint {
  int64_t step;
  double loss;
};

// Everything a run needs to continue: weights and moments are tensors, the rest is JSON.
struct RunState {
  int64_t step = 0;             // steps done
  int64_t updates = 0;          // AdamW updates applied (skipped steps excluded)
  double loss_scale = 1;
  int64_t good_since_growth = 0;
  int64_t skipped = 0;
  double train_seconds = 0;
  int64_t train_tokens = 0;
  std::vector<double> train_loss;      // per step
  std::vector<double> scale_history;   // loss scale used per step
  std::vector<EvalPoint> evals;
  nlohmann::json counters = nlohmann::json::object();
};

std::string slug(const std::string& s) {
  std::string out;
  for (char c : s) out += std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' ? c : '_';
  if (out.size() > 80) out = out.substr(0, 60) + fmt::format("_{:016x}", std::hash<std::string>{}(s));
  return out;
}

nlohmann::json counters_json(const std::map<std::string, GemmCounters>& c) {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [k, v] : c)
    j[k] = {{"calls", v.calls}, {"outputs", v.outputs}, {"overflow", v.overflow}, {"underflow", v.underflow},
            {"nonfinite", v.nonfinite}, {"macs", v.macs}};
  return j;
}

void add_counters(nlohmann::json& total, const nlohmann::json& more) {
  for (auto it = more.begin(); it != more.end(); ++it) {
    nlohmann::json& t = total[it.key()];
    if (t.is_null()) t = nlohmann::json::object();
    for (auto f = it->begin(); f != it->end(); ++f)
      t[f.key()] = t.value(f.key(), 0.0) + f->get<double>();
  }
}

struct Optimizer {
  std::vector<std::vector<float>> m, v;
  double lr, wd;
  void init(LoraWeights& w) {
    for (auto* t : w.tensors()) {
      m.emplace_back(t->size(), 0.0f);
      v.emplace_back(t->size(), 0.0f);
    }
  }
  // AdamW (decoupled weight decay), bias-corrected with the update count t.
  void update(LoraWeights& w, LoraWeights& g, int64_t t) {
    const double b1 = 0.9, b2 = 0.999, eps = 1e-8;
    const double c1 = 1 - std::pow(b1, static_cast<double>(t)), c2 = 1 - std::pow(b2, static_cast<double>(t));
    auto params = w.tensors();
    auto grads = g.tensors();
    for (size_t i = 0; i < params.size(); ++i) {
      std::vector<float>& p = *params[i];
      const std::vector<float>& gr = *grads[i];
      for (size_t j = 0; j < p.size(); ++j) {
        m[i][j] = static_cast<float>(b1 * m[i][j] + (1 - b1) * gr[j]);
        v[i][j] = static_cast<float>(b2 * v[i][j] + (1 - b2) * static_cast<double>(gr[j]) * gr[j]);
        const double mh = m[i][j] / c1, vh = v[i][j] / c2;
        p[j] = static_cast<float>(p[j] - lr * (mh / (std::sqrt(vh) + eps) + wd * p[j]));
      }
    }
  }
};

void save_state(const std::filesystem::path& file, const nlohmann::json& settings, const RunState& s,
                LoraWeights& lora, Optimizer& opt) {
  nlohmann::json meta = {{"version", kStateVersion},
                         {"settings", settings},
                         {"step", s.step},
                         {"updates", s.updates},
                         {"loss_scale", s.loss_scale},
                         {"good_since_growth", s.good_since_growth},
                         {"skipped", s.skipped},
                         {"train_seconds", s.train_seconds},
                         {"train_tokens", s.train_tokens},
                         {"train_loss", s.train_loss},
                         {"scale_history", s.scale_history},
                         {"counters", s.counters}};
  nlohmann::json ev = nlohmann::json::array();
  for (const auto& e : s.evals) ev.push_back({e.step, e.loss});
  meta["evals"] = ev;
  safetensors::Writer w;
  w.set_metadata("gsqhw.finetune", meta.dump());
  const auto names = lora.peft_names();
  const auto shapes = lora.shapes();
  const auto tensors = lora.tensors();
  for (size_t i = 0; i < tensors.size(); ++i) {
    w.add(names[i], "F32", shapes[i], tensors[i]->data());
    w.add("adam_m." + names[i], "F32", shapes[i], opt.m[i].data());
    w.add("adam_v." + names[i], "F32", shapes[i], opt.v[i].data());
  }
  w.write(file);
  // A copy per saved step (runs/<run>/states/step-N.safetensors): `gsqhw trace --step N` traces
  // the model as it was at that step.
  if (s.step > 0) {
    const auto snapshots = file.parent_path() / "states";
    std::filesystem::create_directories(snapshots);
    std::filesystem::copy_file(file, snapshots / fmt::format("step-{}.safetensors", s.step),
                               std::filesystem::copy_options::overwrite_existing);
  }
}

// Loads a saved state; false when there is none. Throws UsageError when it was written with
// other settings.
bool load_state(const std::filesystem::path& file, const nlohmann::json& settings, RunState& s, LoraWeights& lora,
                Optimizer& opt) {
  if (!std::filesystem::exists(file)) return false;
  const auto h = safetensors::read_header(file);
  auto it = h.metadata.find("gsqhw.finetune");
  if (it == h.metadata.end()) throw UsageError(fmt::format("{}: not a gsqhw finetune state", file.string()));
  nlohmann::json meta;
  try {
    meta = nlohmann::json::parse(it->second);
  } catch (const nlohmann::json::exception& e) {
    throw UsageError(fmt::format("{}: corrupt state metadata ({})", file.string(), e.what()));
  }
  if (meta.value("version", 0) != kStateVersion || meta["settings"] != settings)
    throw UsageError(fmt::format(
        "{}: this output folder holds a run with other settings (saved: {}; now: {}). Use another --out, "
        "or delete the folder to start over", file.string(), meta["settings"].dump(), settings.dump()));
  s.step = meta["step"];
  s.updates = meta["updates"];
  s.loss_scale = meta["loss_scale"];
  s.good_since_growth = meta["good_since_growth"];
  s.skipped = meta["skipped"];
  s.train_seconds = meta["train_seconds"];
  s.train_tokens = meta["train_tokens"];
  s.train_loss = meta["train_loss"].get<std::vector<double>>();
  s.scale_history = meta["scale_history"].get<std::vector<double>>();
  s.counters = meta["counters"];
  s.evals.clear();
  for (const auto& e : meta["evals"]) s.evals.push_back({e[0].get<int64_t>(), e[1].get<double>()});
  const auto names = lora.peft_names();
  const auto tensors = lora.tensors();
  for (size_t i = 0; i < tensors.size(); ++i) {
    for (auto [prefix, dst] : {std::pair<std::string, float*>{"", tensors[i]->data()},
                               {"adam_m.", opt.m[i].data()}, {"adam_v.", opt.v[i].data()}}) {
      const auto* e = h.find(prefix + names[i]);
      if (!e || e->numel() != static_cast<int64_t>(tensors[i]->size()))
        throw UsageError(fmt::format("{}: tensor {} missing or of the wrong size", file.string(), prefix + names[i]));
      safetensors::read_bytes(h, *e, dst);
    }
  }
  return true;
}

double evaluate(LlamaModel& model, GemmEngine& engine, const std::vector<Batch>& batches, int64_t seq) {
  double sum = 0;
  int64_t n = 0;
  for (size_t i = 0; i < batches.size(); ++i) {
    const int64_t rows = static_cast<int64_t>(batches[i].tokens.size()) / seq;
    const StepResult r = model.step(batches[i].tokens, batches[i].targets, rows, seq, engine, nullptr, 1,
                                    0xe7a1000 + i);
    sum += r.loss * static_cast<double>(r.tokens);
    n += r.tokens;
  }
  return sum / static_cast<double>(n);
}

bool grads_finite(Gradients& g) {
  for (auto* t : g.lora.tensors())
    for (float x : *t)
      if (!std::isfinite(x)) return false;
  for (const auto& layer : g.weight)
    for (const auto& w : layer)
      for (float x : w)
        if (!std::isfinite(x)) return false;
  return true;
}

struct RunPlan {
  RunSpec spec;
  uint64_t seed;
  int64_t rank;
  std::string name;   // folder name
  std::string label;  // table and plot label
  std::string group;  // run spec and rank: runs of one group differ only in their seed
};

// The runs of `o`: the FP32 seeds first (at --rank), then every --formats spec and every grid
// width (gse:b=B) at every grid rank (or --rank), each with --seeds seeds.
std::vector<RunPlan> plan_runs(const FinetuneOptions& o) {
  const std::string& acc = o.acc;
  if (acc != "natural") (void)AccumulatorSpec::parse(acc);  // a bad --acc fails before any work
  if (o.seeds < 1) throw UsageError("--seeds must be at least 1");
  if (o.fp32_seeds < 1) throw UsageError("--fp32-seeds must be at least 1");
  const GridSpec grid = o.grid.empty() ? GridSpec{} : parse_grid(o.grid);
  const std::vector<int64_t> ranks = grid.ranks.empty() ? std::vector<int64_t>{o.rank} : grid.ranks;
  std::vector<std::string> specs;
  for (const auto& f : o.formats)
    if (f != "fp32") specs.push_back(f);
  for (int b : grid.bits) {
    const std::string spec = fmt::format("gse:b={}", b);
    if (std::find(specs.begin(), specs.end(), spec) == specs.end()) specs.push_back(spec);
  }
  auto add = [&](std::vector<RunPlan>& plans, const RunSpec& spec, int64_t rank, int64_t seeds) {
    const std::string rank_name = rank != o.rank ? fmt::format(".r{}", rank) : "";
    const std::string rank_label = rank != o.rank ? fmt::format(" r={}", rank) : "";
    for (int64_t s = 0; s < seeds; ++s) {
      RunPlan p{spec, o.seed + static_cast<uint64_t>(s), rank, "", "", spec.label() + rank_label};
      p.name = (spec.kind == "fp32" ? std::string("fp32") : slug(spec.label())) + rank_name;
      p.label = p.group;
      if (s > 0) {
        p.name += fmt::format(".seed{}", p.seed);
        p.label += fmt::format(" (seed {})", p.seed);
      }
      plans.push_back(p);
    }
  };
  std::vector<RunPlan> plans;
  add(plans, RunSpec::parse("fp32", acc), o.rank, std::max(o.fp32_seeds, o.seeds));
  for (const auto& f : specs) {
    const RunSpec spec = RunSpec::parse(f, acc);
    for (int64_t r : ranks) add(plans, spec, r, o.seeds);
  }
  for (size_t i = 0; i < plans.size(); ++i)
    for (size_t j = 0; j < i; ++j)
      if (plans[i].name == plans[j].name)
        throw UsageError(fmt::format("--formats / --grid list {} twice", plans[i].spec.text));
  return plans;
}

// The format assignment a run's step stores its tensors in, for the memory model: the QCD
// formats, or FP32 / BF16 for the unquantized baselines; the base weights as --storage.
FormatAssignment memory_formats(const RunSpec& spec, const std::string& storage) {
  FormatAssignment f = spec.formats;
  if (spec.kind != "qcd") f.act = f.weight = f.grad = spec.kind;  // "fp32" / "bf16"
  f.storage = storage;
  return f;
}

// Mean and spread over the values (spread = max - min).
std::pair<double, double> mean_and_spread(const std::vector<double>& v) {
  if (v.empty()) return {NAN, 0};
  double sum = 0;
  for (double x : v) sum += x;
  const auto [lo, hi] = std::minmax_element(v.begin(), v.end());
  return {sum / static_cast<double>(v.size()), *hi - *lo};
}

}  // namespace

GridSpec parse_grid(const std::string& text) {
  GridSpec g;
  std::string key;
  std::stringstream in(text);
  auto bad = [&](const std::string& why) {
    return UsageError(fmt::format("--grid {}: {} (expected e.g. bits=4..8,rank=2,4,8,16)", text, why));
  };
  for (std::string item; std::getline(in, item, ',');) {
    std::string value = item;
    if (const auto eq = item.find('='); eq != std::string::npos) {
      key = item.substr(0, eq);
      value = item.substr(eq + 1);
      if (key != "bits" && key != "rank") throw bad(fmt::format("unknown key '{}' (keys: bits, rank)", key));
      if ((key == "bits" && !g.bits.empty()) || (key == "rank" && !g.ranks.empty()))
        throw bad(fmt::format("'{}' given twice", key));
    }
    if (key.empty()) throw bad(fmt::format("'{}' has no key", item));
    static const std::regex range(R"(^(\d+)\.\.(\d+)$)"), number(R"(^\d+$)");
    std::smatch m;
    if (key == "bits" && std::regex_match(value, m, range)) {
      const int a = std::stoi(m[1]), b = std::stoi(m[2]);
      if (a > b) throw bad(fmt::format("empty range {}", value));
      for (int x = a; x <= b; ++x) g.bits.push_back(x);
    } else if (std::regex_match(value, number) && value.size() <= 6) {
      if (key == "bits") g.bits.push_back(std::stoi(value));
      else g.ranks.push_back(std::stoll(value));
    } else {
      throw bad(fmt::format("'{}' is not a number{}", value, key == "bits" ? " or a range A..B" : ""));
    }
  }
  for (int b : g.bits)
    if (b < 2 || b > 8) throw bad(fmt::format("GSE-INT width {} is not within 2..8", b));
  for (int64_t r : g.ranks)
    if (r < 1) throw bad(fmt::format("rank {} must be at least 1", r));
  if (g.bits.empty() && g.ranks.empty()) throw bad("nothing to run");
  return g;
}

void mark_pareto(std::vector<RunGroup>& groups) {
  for (auto& a : groups) {
    a.pareto = std::isfinite(a.mean);
    for (const auto& b : groups) {
      if (&a == &b || !std::isfinite(b.mean)) continue;
      const bool no_worse = b.memory_bytes <= a.memory_bytes && b.mean <= a.mean;
      const bool better = b.memory_bytes < a.memory_bytes || b.mean < a.mean;
      if (no_worse && better) {
        a.pareto = false;
        break;
      }
    }
  }
}

std::vector<std::string> finetune_run_names(const FinetuneOptions& o) {
  std::vector<std::string> names;
  for (const auto& p : plan_runs(o)) names.push_back(p.name);
  return names;
}

FinetuneResult finetune(const FinetuneOptions& o, const Progress& progress) {
  // ---- validate everything before any work ----
  if (o.steps < 1) throw UsageError("--steps must be at least 1");
  if (o.batch < 1) throw UsageError("--batch must be at least 1");
  if (o.seq < 2) throw UsageError("--seq must be at least 2");
  if (o.eval_every < 1 || o.save_every < 1) throw UsageError("--eval-every and --save-every must be at least 1");
  if (o.eval_windows < 1) throw UsageError("--eval-windows must be at least 1");
  if (o.fp32_seeds < 1) throw UsageError("--fp32-seeds must be at least 1");
  if (!(o.lr > 0) || !std::isfinite(o.lr)) throw UsageError("--lr must be positive");
  if (!(o.weight_decay >= 0)) throw UsageError("--weight-decay must be >= 0");
  double fixed_scale = 1;
  const bool dynamic = o.loss_scale == "dynamic";
  if (!dynamic) {
    try {
      size_t used = 0;
      fixed_scale = std::stod(o.loss_scale, &used);
      if (used != o.loss_scale.size()) throw std::invalid_argument("trailing");
    } catch (const std::exception&) {
      fixed_scale = 0;
    }
    if (!(fixed_scale > 0) || std::ilogb(fixed_scale) != std::log2(fixed_scale))
      throw UsageError(fmt::format("--loss-scale {}: give 1 (off), a power of two, or dynamic", o.loss_scale));
  }
  const std::vector<RunPlan> plans = plan_runs(o);
  if (!o.only_run.empty() && std::none_of(plans.begin(), plans.end(), [&](const RunPlan& p) { return p.name == o.only_run; }))
    throw UsageError(fmt::format("--only-run {}: no such run among --formats", o.only_run));
  const auto checkpoint = open_checkpoint(o.checkpoint);
  const Tokenizer tok(o.tokenizer, checkpoint->shape().vocab_size);
  if (checkpoint->shape().seq_len > 0 && o.seq > checkpoint->shape().seq_len)
    throw UsageError(fmt::format("--seq {} exceeds the model's context of {} tokens", o.seq,
                                 checkpoint->shape().seq_len));
  const TokenData data = load_text(o.data, tok, o.val_fraction, o.seq);
  const LlamaWeights weights = LlamaWeights::load(*checkpoint, o.storage);
  TSignSgdConfig tsign;
  const bool ternary = parse_optimizer(o.optimizer, tsign);
  // LoTA-QAF quantizes the targeted projections from the checkpoint's FP32 weights.
  const LlamaWeights fp32_weights = ternary ? LlamaWeights::load(*checkpoint, "fp32") : LlamaWeights{};
  LoraConfig lc;
  lc.targets = LoraConfig::parse_targets(o.targets);
  lc.alpha = o.alpha;
  for (const auto& plan : plans) {  // validates every rank / alpha against the shapes
    lc.rank = plan.rank;
    (void)LoraWeights::init(weights.config, lc, 0);
  }
  const std::vector<Batch> val_batches = validation_batches(data, o.batch, o.seq, o.eval_windows);
  // Memory per step of every run, from `gsqhw memory`'s model; computed first, so that a format
  // the model cannot size fails before any training.
  std::map<std::string, double> memory_of_group;
  for (const auto& plan : plans)
    memory_of_group[plan.group] = memory_model(checkpoint->shape(), o.batch * o.seq, plan.rank,
                                               memory_formats(plan.spec, o.storage), "bf16", lc.targets)
                                      .total_bytes;
  std::filesystem::create_directories(o.out);

  FinetuneResult result;
  result.complete = true;
  std::ofstream csv;
  nlohmann::json runs_json = nlohmann::json::array();
  std::vector<std::string> csv_rows;

  for (size_t ri = 0; ri < plans.size(); ++ri) {
    const RunPlan& plan = plans[ri];
    if (!o.only_run.empty() && plan.name != o.only_run) continue;
    const auto dir = o.out / "runs" / plan.name;
    std::filesystem::create_directories(dir);
    nlohmann::json settings = {
        {"checkpoint", std::filesystem::absolute(o.checkpoint).string()},
        {"tokenizer", std::filesystem::absolute(o.tokenizer).string()},
        {"data", std::filesystem::absolute(o.data).string()},
        {"data_tokens", data.train.size() + data.val.size()},
        {"run", plan.spec.text},
        {"acc", plan.spec.kind == "qcd" ? plan.spec.acc.str() : ""},
        {"storage", o.storage},
        {"targets", o.targets},
        {"rank", plan.rank},
        {"alpha", o.alpha},
        {"batch", o.batch},
        {"seq", o.seq},
        {"lr", o.lr},
        {"weight_decay", o.weight_decay},
        {"seed", plan.seed},
        {"eval_every", o.eval_every},
        {"eval_windows", o.eval_windows},
        {"val_fraction", o.val_fraction},
        {"loss_scale", o.loss_scale}};
    // Options added later are recorded only when set, so that older states still resume.
    if (ternary) settings["optimizer"] = tsign.str();
    if (o.quantize_attention) settings["quantize_attention"] = true;
    lc.rank = plan.rank;
    LoraWeights lora = LoraWeights::init(weights.config, lc, plan.seed);
    // t-SignSGD: the LoRA tensors hold the ternary adapters (A_T^T, B_T^T) for the state file,
    // and the model computes with the merged base weights of its own copy of the weights.
    std::optional<TernaryAdapters> ternary_adapters;
    LlamaWeights merged_weights;
    if (ternary) {
      ternary_adapters.emplace(fp32_weights, lora, tsign);
      ternary_adapters->to_lora(lora);
      merged_weights = weights;
    }
    Optimizer opt{{}, {}, o.lr, o.weight_decay};
    opt.init(lora);
    RunState st;
    st.loss_scale = dynamic ? 4096 : fixed_scale;
    const auto state_file = dir / "state.safetensors";
    load_state(state_file, settings, st, lora, opt);
    if (ternary) {
      ternary_adapters->from_lora(lora);
      ternary_adapters->merge_into(merged_weights);
    }
    auto engine = plan.spec.engine(o.threads);
    LlamaModel model(ternary ? merged_weights : weights, ternary ? nullptr : &lora);
    if (ternary) model.set_trained_projections(lc.targets);
    model.set_quantize_attention(o.quantize_attention);
    const std::string& label = plan.label;
    auto flush_counters = [&] {
      add_counters(st.counters, counters_json(engine->counters()));
      engine->reset_counters();
    };
    if (st.evals.empty()) st.evals.push_back({0, evaluate(model, *engine, val_batches, o.seq)});
    int64_t done_here = 0;
    if (progress) progress(ri, plans.size(), label, st.step, o.steps, st.train_loss.empty() ? NAN : st.train_loss.back());
    while (st.step < o.steps && !o.no_training) {
      if (o.stop_after > 0 && done_here >= o.stop_after) break;
      const int64_t step = st.step + 1;
      const Batch b = train_batch(data, o.batch, o.seq, plan.seed, step);
      Gradients g;
      engine->clear_nonfinite();
      engine->clear_overflowed();
      const auto t0 = std::chrono::steady_clock::now();
      const StepResult r = model.step(b.tokens, b.targets, o.batch, o.seq, *engine, &g,
                                      static_cast<float>(st.loss_scale),
                                      plan.seed * 0x100000001b3ull + static_cast<uint64_t>(step));
      bool apply = true;
      if (!std::isfinite(r.loss) || (!dynamic && (!engine->first_nonfinite().empty() || !grads_finite(g)))) {
        // Keep the last good state (the weights before this step), then stop.
        flush_counters();
        save_state(state_file, settings, st, lora, opt);
        const std::string gemm = engine->first_nonfinite().empty() ? "none (the loss itself)" : engine->first_nonfinite();
        throw UsageError(fmt::format(
            "run {}: training diverged at step {}: loss {} (first GEMM with a NaN/Inf output: {}). The last "
            "good state (step {}) is saved in {}; lower --lr, or use --loss-scale dynamic / a wider accumulator",
            label, step, r.loss, gemm, st.step, state_file.string()));
      }
      if (dynamic && (engine->overflowed() || !grads_finite(g))) {
        apply = false;  // skip the update, back off the scale
        st.loss_scale = std::max(1.0, st.loss_scale / 2);
        st.good_since_growth = 0;
        st.skipped += 1;
      }
      if (apply) {
        const float inv = static_cast<float>(1.0 / st.loss_scale);
        if (ternary) {
          // Sign and rank of the gradients only: the loss scale cancels.
          st.updates += 1;
          ternary_adapters->step(g);
          ternary_adapters->merge_into(merged_weights);
          ternary_adapters->to_lora(lora);
        } else {
          for (auto* t : g.lora.tensors())
            for (float& x : *t) x *= inv;
          st.updates += 1;
          opt.update(lora, g.lora, st.updates);
        }
        if (dynamic && ++st.good_since_growth >= 50) {
          st.loss_scale = std::min(st.loss_scale * 2, 0x1p24);
          st.good_since_growth = 0;
        }
      }
      st.train_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      st.train_tokens += o.batch * o.seq;
      st.train_loss.push_back(r.loss);
      st.scale_history.push_back(st.loss_scale);
      st.step = step;
      ++done_here;
      if (step % o.eval_every == 0 || step == o.steps) {
        const double vl = evaluate(model, *engine, val_batches, o.seq);
        if (!std::isfinite(vl)) {
          flush_counters();
          throw UsageError(fmt::format("run {}: validation loss is {} after step {}; stopping", label, vl, step));
        }
        st.evals.push_back({step, vl});
      }
      if (step % o.save_every == 0 || step == o.steps) {
        flush_counters();
        save_state(state_file, settings, st, lora, opt);
      }
      if (progress) progress(ri, plans.size(), label, st.step, o.steps, r.loss);
    }
    flush_counters();
    if (st.step < o.steps) {
      save_state(state_file, settings, st, lora, opt);
      result.complete = false;
    }
    // PEFT adapters are LoRA's; ternary adapters stay in the state file (they act through the merge).
    if (st.step == o.steps && !ternary)
      save_adapters(dir / "adapter", lora, std::filesystem::absolute(o.checkpoint).string());

    RunSummary sum;
    sum.label = label;
    sum.dir = dir.string();
    sum.seed = plan.seed;
    sum.steps = st.step;
    sum.final_val_loss = st.evals.back().loss;
    sum.final_train_loss = st.train_loss.empty() ? NAN : st.train_loss.back();
    sum.tokens_per_s = st.train_seconds > 0 ? static_cast<double>(st.train_tokens) / st.train_seconds : 0;
    sum.skipped_steps = st.skipped;
    sum.counters = st.counters;
    sum.complete = st.step == o.steps;
    result.runs.push_back(sum);
    for (size_t i = 0; i < st.train_loss.size(); ++i)
      csv_rows.push_back(fmt::format("{},{},{},train,{:.6f},{:.4f},{}", label, plan.seed, i + 1, st.train_loss[i],
                                     std::exp(st.train_loss[i]), st.scale_history[i]));
    for (const auto& e : st.evals)
      csv_rows.push_back(fmt::format("{},{},{},val,{:.6f},{:.4f},", label, plan.seed, e.step, e.loss, std::exp(e.loss)));
    nlohmann::json ev = nlohmann::json::array();
    for (const auto& e : st.evals) ev.push_back({{"step", e.step}, {"val_loss", e.loss}});
    runs_json.push_back({{"label", label},
                         {"run", plan.spec.text},
                         {"kind", plan.spec.kind},
                         {"formats", plan.spec.kind == "qcd" ? plan.spec.formats.str() : plan.spec.kind},
                         {"acc", plan.spec.kind == "qcd" ? plan.spec.acc.str() : "fp32 (BLAS)"},
                         {"seed", plan.seed},
                         {"rank", plan.rank},
                         {"group", plan.group},
                         {"steps", st.step},
                         {"complete", sum.complete},
                         {"final_val_loss", sum.final_val_loss},
                         {"final_val_perplexity", std::exp(sum.final_val_loss)},
                         {"final_train_loss", st.train_loss.empty() ? nlohmann::json(nullptr) : nlohmann::json(sum.final_train_loss)},
                         {"tokens_per_s", sum.tokens_per_s},
                         {"skipped_steps", st.skipped},
                         {"final_loss_scale", st.loss_scale},
                         {"gemm_counters", st.counters},
                         {"evals", ev},
                         {"adapter", ternary ? nlohmann::json(nullptr) : nlohmann::json((dir / "adapter").string())}});
  }

  if (!o.only_run.empty()) return result;  // one task of several: the controller writes the summary

  // ---- summary: FP32 reference and spread, table, verdict ----
  std::vector<double> fp32_losses;
  for (size_t i = 0; i < result.runs.size(); ++i)
    if (plans[i].spec.kind == "fp32") fp32_losses.push_back(result.runs[i].final_val_loss);
  const double fp32 = fp32_losses.front();
  const std::pair<double, double> fp32_stats = mean_and_spread(fp32_losses);
  const double fp32_mean = fp32_stats.first, spread = fp32_stats.second;
  auto verdict_of = [&](double delta) -> std::string {
    return fp32_losses.size() < 2     ? (delta <= 0 ? "no worse" : "worse (spread unknown)")
           : std::fabs(delta) <= spread ? "tie (within FP32 spread)"
           : delta < 0                  ? "better"
                                        : "worse";
  };
  std::string table =
      "| run | final val loss | val ppl | delta to FP32 | verdict | train tok/s | overflow outputs | underflow outputs | skipped steps |\n"
      "|---|---|---|---|---|---|---|---|---|\n";
  for (size_t i = 0; i < result.runs.size(); ++i) {
    const RunSummary& r = result.runs[i];
    int64_t over = 0, under = 0, outputs = 0;
    for (auto it = r.counters.begin(); it != r.counters.end(); ++it) {
      over += static_cast<int64_t>(it->value("overflow", 0.0));
      under += static_cast<int64_t>(it->value("underflow", 0.0));
      outputs += static_cast<int64_t>(it->value("outputs", 0.0));
    }
    const double delta = r.final_val_loss - fp32;
    const std::string verdict = plans[i].spec.kind == "fp32" ? "baseline" : verdict_of(delta);
    table += fmt::format("| {} | {:.4f} | {:.3f} | {:+.4f} | {} | {:.0f} | {} | {} | {} |\n", r.label,
                         r.final_val_loss, std::exp(r.final_val_loss), delta, verdict, r.tokens_per_s,
                         over, outputs ? fmt::format("{} ({:.2g}%)", under, 100.0 * under / outputs) : "0",
                         r.skipped_steps);
  }
  table += fmt::format("\nFP32 seed-to-seed spread of the final validation loss: {} ({} seed{}).\n",
                       fp32_losses.size() > 1 ? fmt::format("{:.4f}", spread) : "unknown",
                       fp32_losses.size(), fp32_losses.size() > 1 ? "s" : "; run --fp32-seeds 3 to measure it");

  // Per run spec and rank, over seeds: the verdict on the means, each group's own spread, and
  // memory per step against validation loss (the grid's Pareto frontier).
  for (size_t i = 0; i < result.runs.size(); ++i) {
    auto it = std::find_if(result.groups.begin(), result.groups.end(),
                           [&](const RunGroup& g) { return g.label == plans[i].group; });
    if (it == result.groups.end()) {
      RunGroup g;
      g.label = plans[i].group;
      g.run = plans[i].spec.text;
      g.rank = plans[i].rank;
      g.memory_bytes = memory_of_group.at(plans[i].group);
      result.groups.push_back(g);
      it = result.groups.end() - 1;
    }
    it->val_losses.push_back(result.runs[i].final_val_loss);
  }
  for (auto& g : result.groups) std::tie(g.mean, g.spread) = mean_and_spread(g.val_losses);
  mark_pareto(result.groups);
  const bool several_seeds = std::any_of(result.groups.begin(), result.groups.end(),
                                         [](const RunGroup& g) { return g.val_losses.size() > 1; });
  const bool grid = !o.grid.empty();
  if (several_seeds || grid) {
    table += fmt::format(
        "\nPer run over its seeds (verdict: mean against the FP32 mean {:.4f}, ties within the FP32 spread); "
        "memory per step from `gsqhw memory`'s model ({} tokens, LoRA on {}), Pareto: on the frontier of "
        "memory against mean validation loss.\n\n"
        "| run | rank | seeds | mean val loss | spread (max-min) | delta to FP32 mean | verdict | memory/step (MiB) | Pareto |\n"
        "|---|---|---|---|---|---|---|---|---|\n",
        fp32_mean, o.batch * o.seq, o.targets);
    for (const auto& g : result.groups) {
      const bool is_fp32 = g.run == "fp32";
      table += fmt::format("| {} | {} | {} | {:.4f} | {} | {:+.4f} | {} | {:.3f} | {} |\n", g.label, g.rank,
                           g.val_losses.size(), g.mean,
                           g.val_losses.size() > 1 ? fmt::format("{:.4f}", g.spread) : "-", g.mean - fp32_mean,
                           is_fp32 ? "baseline" : verdict_of(g.mean - fp32_mean), g.memory_bytes / (1024.0 * 1024.0),
                           g.pareto ? "yes" : "");
    }
  }
  result.table = table;
  result.json = {{"tool", "gsqhw finetune"},
                 {"data_source", "real"},
                 {"model", std::filesystem::absolute(o.checkpoint).string()},
                 {"text", std::filesystem::absolute(o.data).string()},
                 {"text_bytes", data.bytes},
                 {"train_tokens", data.train.size()},
                 {"val_tokens", data.val.size()},
                 {"val_windows", o.eval_windows},
                 {"steps", o.steps},
                 {"batch", o.batch},
                 {"seq", o.seq},
                 {"rank", o.rank},
                 {"alpha", o.alpha},
                 {"targets", o.targets},
                 {"lr", o.lr},
                 {"storage", o.storage},
                 {"loss_scale", o.loss_scale},
                 {"optimizer", o.optimizer},
                 {"quantize_attention", o.quantize_attention},
                 {"complete", result.complete},
                 {"fp32_val_loss", fp32},
                 {"fp32_spread", fp32_losses.size() > 1 ? nlohmann::json(spread) : nlohmann::json(nullptr)},
                 {"fp32_seeds", fp32_losses.size()},
                 {"fp32_mean_val_loss", fp32_mean},
                 {"seeds", o.seeds},
                 {"grid", o.grid.empty() ? nlohmann::json(nullptr) : nlohmann::json(o.grid)},
                 {"runs", runs_json}};
  nlohmann::json groups_json = nlohmann::json::array();
  for (const auto& g : result.groups)
    groups_json.push_back({{"label", g.label}, {"run", g.run}, {"rank", g.rank}, {"seeds", g.val_losses.size()},
                           {"val_losses", g.val_losses}, {"mean_val_loss", g.mean}, {"spread", g.spread},
                           {"memory_bytes", g.memory_bytes}, {"pareto", g.pareto}});
  result.json["groups"] = groups_json;
  result.json["iso_accuracy"] = iso_accuracy(result.json);
  write_file_atomically(o.out / "results.json",
                                     [&](std::ostream& out) { out << result.json.dump(2) << "\n"; });
  write_file_atomically(o.out / "losses.csv", [&](std::ostream& out) {
    out << "run,seed,step,split,loss,perplexity,loss_scale\n";
    for (const auto& row : csv_rows) out << row << "\n";
  });
  write_file_atomically(o.out / "summary.md", [&](std::ostream& out) { out << table; });
  write_file_atomically(o.out / "memory_loss.csv", [&](std::ostream& out) {
    out << "run,rank,seeds,mean_val_loss,spread,memory_bytes,memory_mib,pareto\n";
    for (const auto& g : result.groups)
      out << fmt::format("\"{}\",{},{},{:.6f},{:.6f},{:.0f},{:.4f},{}\n", g.label, g.rank, g.val_losses.size(), g.mean,
                         g.spread, g.memory_bytes, g.memory_bytes / (1024.0 * 1024.0), g.pareto ? 1 : 0);
  });
  return result;
}

RunStateAdapters load_run_state_adapters(const std::filesystem::path& run_dir, int64_t step,
                                         const LlamaConfig& model) {
  std::filesystem::path dir = run_dir;
  if (!std::filesystem::exists(dir / "state.safetensors") && dir.filename() == "adapter") dir = dir.parent_path();
  if (!std::filesystem::exists(dir / "state.safetensors"))
    throw UsageError(fmt::format("{}: not a `gsqhw finetune` run folder (no state.safetensors); give "
                                 "OUT/runs/<run> of a fine-tuning run", run_dir.string()));
  // The settings (targets, rank, alpha, seed) from the latest state.
  auto read_meta = [](const std::filesystem::path& file) {
    const auto h = safetensors::read_header(file);
    auto it = h.metadata.find("gsqhw.finetune");
    if (it == h.metadata.end()) throw UsageError(fmt::format("{}: not a gsqhw finetune state", file.string()));
    nlohmann::json meta = nlohmann::json::parse(it->second, nullptr, false);
    if (meta.is_discarded() || !meta.contains("settings") || !meta.contains("step"))
      throw UsageError(fmt::format("{}: corrupt state metadata", file.string()));
    return std::make_pair(h, meta);
  };
  const auto [latest_header, latest] = read_meta(dir / "state.safetensors");
  RunStateAdapters out;
  out.settings = latest["settings"];
  if (out.settings.contains("optimizer"))
    throw UsageError(fmt::format("{}: a {} run: its ternary adapters act through the merge into the base "
                                 "weights, not as LoRA masters, so they cannot be traced as LoRA operands",
                                 dir.string(), out.settings["optimizer"].get<std::string>()));
  out.step = step;
  LoraConfig lc;
  try {
    lc.targets = LoraConfig::parse_targets(out.settings.at("targets").get<std::string>());
    lc.rank = out.settings.at("rank").get<int64_t>();
    lc.alpha = out.settings.at("alpha").get<double>();
    out.lora = LoraWeights::init(model, lc, out.settings.at("seed").get<uint64_t>());
  } catch (const nlohmann::json::exception& e) {
    throw UsageError(fmt::format("{}: state settings lack targets / rank / alpha / seed ({})", dir.string(), e.what()));
  }
  if (step < 0) throw UsageError(fmt::format("--step {} must be at least 0", step));
  if (step == 0) {  // before the first update: the run's seeded initialisation, never saved
    out.source = fmt::format("the initial adapter (step 0: seed {}) of the fine-tuning run {}",
                             out.settings["seed"].get<uint64_t>(), dir.string());
    return out;
  }
  const auto file = dir / "states" / fmt::format("step-{}.safetensors", step);
  if (!std::filesystem::exists(file)) {
    std::vector<int64_t> saved;
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(dir / "states", ec)) {
      int64_t n = 0;
      if (std::sscanf(e.path().filename().string().c_str(), "step-%ld.safetensors", &n) == 1) saved.push_back(n);
    }
    std::sort(saved.begin(), saved.end());
    throw UsageError(fmt::format("--step {}: the run {} saved no state at that step (saved steps: {}; the run "
                                 "saves every --save-every steps and at its last step; step 0 is its initial adapter)",
                                 step, dir.string(), saved.empty() ? "none" : fmt::format("{}", fmt::join(saved, ", "))));
  }
  const auto [h, meta] = read_meta(file);
  if (meta["step"].get<int64_t>() != step)
    throw UsageError(fmt::format("{}: holds step {}, not {}", file.string(), meta["step"].get<int64_t>(), step));
  const auto names = out.lora.peft_names();
  const auto tensors = out.lora.tensors();
  for (size_t i = 0; i < tensors.size(); ++i) {
    const auto* e = h.find(names[i]);
    if (!e || e->numel() != static_cast<int64_t>(tensors[i]->size()))
      throw UsageError(fmt::format("{}: tensor {} missing or of the wrong size", file.string(), names[i]));
    safetensors::read_bytes(h, *e, tensors[i]->data());
  }
  out.source = fmt::format("the LoRA masters at step {} of the fine-tuning run {} ({})", step, dir.string(),
                           file.string());
  return out;
}

nlohmann::json iso_accuracy(const nlohmann::json& results) {
  nlohmann::json out = {{"b_star", nullptr}, {"source", "fine-tuning (real model and text)"}};
  const auto& runs = results.at("runs");
  const double spread = results.value("fp32_spread", nlohmann::json(nullptr)).is_number()
                            ? results["fp32_spread"].get<double>() : 0.0;
  out["spread"] = spread;
  out["fp32_seeds"] = results.value("fp32_seeds", 1);
  // Complete runs at --rank only (a grid's other ranks are another question), grouped over seeds.
  const int64_t main_rank = results.value("rank", int64_t{0});
  static const std::regex gse_b(R"(^(?:all=)?gse:b=(\d+)(?:,|@|$))");
  std::vector<double> fp8;
  std::map<int, std::vector<double>> gse;
  for (const auto& r : runs) {
    if (!r.value("complete", false) || r.value("rank", main_rank) != main_rank) continue;
    const std::string f = r.value("formats", "");
    const double loss = r.value("final_val_loss", static_cast<double>(NAN));
    if (f.find("act=fp8:e4m3") != std::string::npos && f.find("weight=fp8:e4m3") != std::string::npos &&
        f.find("grad=fp8:e5m2") != std::string::npos)
      fp8.push_back(loss);
    std::smatch m;
    const std::string run = r.value("run", "");
    if (std::regex_search(run, m, gse_b)) gse[std::stoi(m[1])].push_back(loss);
  }
  nlohmann::json cands = nlohmann::json::array();
  for (const auto& [b, losses] : gse) {
    const auto [mean, sp] = mean_and_spread(losses);
    cands.push_back({{"b", b}, {"val_loss", mean}, {"spread", sp}, {"seeds", losses.size()}});
  }
  out["candidates"] = cands;
  if (fp8.empty()) {
    out["note"] = "no complete FP8 run (give --formats fp8): b* not decided";
    return out;
  }
  const auto [fp8_mean, fp8_spread] = mean_and_spread(fp8);
  out["fp8_val_loss"] = fp8_mean;
  out["fp8_spread"] = fp8_spread;
  out["fp8_seeds"] = fp8.size();
  for (const auto& c : cands)
    if (c["val_loss"].get<double>() <= fp8_mean + spread) {
      out["b_star"] = c["b"];
      break;
    }
  if (out["b_star"].is_null()) out["note"] = "no GSE-INT width reached FP8's validation loss";
  return out;
}

}  // namespace gsqhw::train
