#include "trainer/state/checkpoint.h"

#include <torch/version.h>

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <set>
#include <sstream>

#include "data/data_error.h"
#include "trainer/config/config_schema.h"
#include "trainer/model/ema.h"
#include "trainer/model/optimizer_state.h"

#ifndef DISTGAN_VERSION
#define DISTGAN_VERSION "unknown"
#endif

namespace distgan {

namespace {

namespace fs = std::filesystem;
using data::DataError;

constexpr int64_t kMaxCount = int64_t{1} << 53;  // integers that survive a round trip through double
constexpr int64_t kMaxRngElements = int64_t{1} << 30;

torch::Tensor host_copy(const torch::Tensor& t) { return t.detach().to(torch::kCPU).contiguous().clone(); }

void snapshot_module(const std::string& prefix, torch::nn::Module& module, CheckpointData& out) {
  for (const auto& p : module.named_parameters()) out.tensors.emplace_back(prefix + p.key(), host_copy(p.value()));
  for (const auto& b : module.named_buffers()) out.tensors.emplace_back(prefix + b.key(), host_copy(b.value()));
}

void snapshot_adam(const std::string& prefix, torch::nn::Module& module, torch::optim::Adam& optimizer,
                   CheckpointData& out) {
  for (const auto& p : module.named_parameters()) {
    const auto* state = find_adam_state(optimizer, p.value());
    if (state == nullptr) continue;  // no step taken yet
    const std::string base = prefix + p.key() + "/";
    out.tensors.emplace_back(base + "step", torch::tensor(state->step(), torch::kInt64).reshape({}));
    out.tensors.emplace_back(base + "exp_avg", host_copy(state->exp_avg()));
    out.tensors.emplace_back(base + "exp_avg_sq", host_copy(state->exp_avg_sq()));
    if (state->max_exp_avg_sq().defined())
      out.tensors.emplace_back(base + "max_exp_avg_sq", host_copy(state->max_exp_avg_sq()));
  }
}

std::string join(const std::vector<int64_t>& v) {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) s += (i ? "," : "") + std::to_string(v[i]);
  return s;
}

void restore_module(CheckpointReader& reader, const std::string& prefix, torch::nn::Module& module) {
  torch::NoGradGuard no_grad;
  std::set<std::string> expected;
  auto load = [&](const std::string& name, torch::Tensor& target) {
    expected.insert(prefix + name);
    target.copy_(reader.read(prefix + name, target.scalar_type(), target.sizes().vec()));
  };
  for (auto& p : module.named_parameters()) load(p.key(), p.value());
  for (auto& b : module.named_buffers()) load(b.key(), b.value());
  for (const auto& name : reader.tensor_names(prefix))
    if (!expected.count(name))
      throw DataError(reader.path() + ": " + name + " is not part of this run's model: the checkpoint does not match");
}

void restore_adam(CheckpointReader& reader, const std::string& prefix, torch::nn::Module& module,
                  torch::optim::Adam& optimizer) {
  torch::NoGradGuard no_grad;
  for (const auto& p : module.named_parameters()) {
    const std::string base = prefix + p.key() + "/";
    if (!reader.has_tensor(base + "step")) continue;
    const std::vector<int64_t> shape = p.value().sizes().vec();
    auto& state = adam_state(optimizer, p.value());
    const int64_t step = reader.read(base + "step", torch::kInt64, {}).item<int64_t>();
    if (step < 0 || step > kMaxCount) throw DataError(reader.path() + ": " + base + "step is out of range");
    state.step(step);
    const auto device = p.value().device();
    state.exp_avg(reader.read(base + "exp_avg", p.value().scalar_type(), shape).to(device));
    state.exp_avg_sq(reader.read(base + "exp_avg_sq", p.value().scalar_type(), shape).to(device));
    if (reader.has_tensor(base + "max_exp_avg_sq"))
      state.max_exp_avg_sq(reader.read(base + "max_exp_avg_sq", p.value().scalar_type(), shape).to(device));
  }
}

}  // namespace

CheckpointData snapshot_checkpoint(const Config& config, const ModelSpec& spec, AdversarialStep& step,
                                   const TrainingPosition& position, const torch::Tensor& rng_states,
                                   int64_t dataset_size) {
  CheckpointData out;
  GanModels& models = step.models();
  snapshot_module("generator/", *models.generator, out);
  snapshot_module("discriminator/", *models.discriminator, out);
  if (models.generator_ema) snapshot_module("generator_ema/", *models.generator_ema, out);
  snapshot_adam("optimizer/generator/", *models.generator, step.optimizer_g(), out);
  snapshot_adam("optimizer/discriminator/", *models.discriminator, step.optimizer_d(), out);
  out.tensors.emplace_back("rng/noise", host_copy(rng_states));
  auto& a = out.attributes;
  a["config"] = print_config(config);
  a["sample_shape"] = join(spec.sample_shape);
  a["step"] = std::to_string(position.step);
  a["epoch"] = std::to_string(position.epoch);
  a["epoch_position"] = std::to_string(position.epoch_position);
  a["samples_seen"] = std::to_string(position.samples_seen);
  a["world_size"] = std::to_string(rng_states.size(0));
  a["dataset_size"] = std::to_string(dataset_size);
  a["distgan_version"] = DISTGAN_VERSION;
  a["torch_version"] = TORCH_VERSION;
  char created[32];
  const std::time_t now = std::time(nullptr);
  std::strftime(created, sizeof(created), "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
  a["created"] = created;
  return out;
}

CheckpointInfo read_checkpoint_info(const CheckpointReader& reader) {
  CheckpointInfo info;
  info.path = reader.path();
  info.config = parse_config(reader.attribute("config"), reader.path() + " (its config)");
  std::stringstream dims(reader.attribute("sample_shape"));
  for (std::string item; std::getline(dims, item, ',');) {
    char* end = nullptr;
    const long long v = std::strtoll(item.c_str(), &end, 10);
    if (end == item.c_str() || *end != '\0' || v <= 0 || v > (1 << 20))
      throw DataError(reader.path() + ": attribute sample_shape '" + reader.attribute("sample_shape") +
                      "' is not [D] or [C, H, W]");
    info.sample_shape.push_back(v);
  }
  if (info.sample_shape.empty() || info.sample_shape.size() > 3)
    throw DataError(reader.path() + ": attribute sample_shape '" + reader.attribute("sample_shape") +
                    "' is not [D] or [C, H, W]");
  info.position.step = reader.integer_attribute("step", 0, kMaxCount);
  info.position.epoch = reader.integer_attribute("epoch", 0, kMaxCount);
  info.position.epoch_position = reader.integer_attribute("epoch_position", 0, kMaxCount);
  info.position.samples_seen = reader.integer_attribute("samples_seen", 0, kMaxCount);
  info.world_size = static_cast<int>(reader.integer_attribute("world_size", 1, 1 << 24));
  info.dataset_size = reader.integer_attribute("dataset_size", 1, kMaxCount);
  info.distgan_version = reader.attribute("distgan_version");
  info.torch_version = reader.attribute("torch_version");
  return info;
}

bool resume_may_change(const std::string& key) {
  static const std::set<std::string> sections{"checkpoint", "logging", "cluster"};
  static const std::set<std::string> sections_more{"eval"};
  static const std::set<std::string> keys{"training.steps",        "training.lr_g",         "training.lr_d",         "training.lr_schedule",
                                          "training.lr_decay_start",
                                          "training.betas_g",      "training.betas_d",      "training.amp",
                                          "training.on_nonfinite", "training.max_consecutive_skips",
                                          "training.ema.half_life_kimg", "training.ema.rampup",
                                          "training.r1.gamma",     "training.top_k.keep",   "training.top_k.decay",     "training.r1.every",     "training.gp.lambda",
                                          "training.code_reseed.every", "training.code_reseed.until",
                                          "data.path",             "data.prefetch_batches", "data.chunk_cache_mb"};
  if (sections_more.count(key.substr(0, key.find('.')))) return true;
  return sections.count(key.substr(0, key.find('.'))) != 0 || keys.count(key) != 0;
}

std::vector<std::string> config_differences(const Config& saved, const Config& current,
                                            std::vector<std::string>* allowed_changes) {
  std::vector<std::string> refused;
  for (const auto& key : config_schema()) {
    const std::string before = key.get(saved), now = key.get(current);
    if (before == now) continue;
    if (resume_may_change(key.path())) {
      if (allowed_changes) allowed_changes->push_back(key.path() + ": " + before + " -> " + now);
    } else {
      refused.push_back(key.path() + ": checkpoint " + before + ", this run " + now);
    }
  }
  return refused;
}

torch::Tensor restore_checkpoint(CheckpointReader& reader, AdversarialStep& step) {
  GanModels& models = step.models();
  restore_module(reader, "generator/", *models.generator);
  restore_module(reader, "discriminator/", *models.discriminator);
  if (models.generator_ema) {
    if (reader.tensor_names("generator_ema/").empty()) {  // EMA switched on at this resume: start from G
      std::printf("distgan: %s has no generator EMA: the EMA starts from the generator\n", reader.path().c_str());
      torch::NoGradGuard no_grad;
      ema_update(*models.generator_ema, *models.generator, 0.0);
    } else {
      restore_module(reader, "generator_ema/", *models.generator_ema);
    }
  }
  restore_adam(reader, "optimizer/generator/", *models.generator, step.optimizer_g());
  restore_adam(reader, "optimizer/discriminator/", *models.discriminator, step.optimizer_d());
  torch::Tensor rng = reader.read_any_shape("rng/noise", torch::kUInt8, kMaxRngElements);
  if (rng.dim() != 2 || rng.size(0) != reader.integer_attribute("world_size", 1, 1 << 24))
    throw DataError(reader.path() + ": rng/noise is not [world_size, bytes]");
  return rng;
}

std::string checkpoint_directory(const std::string& run_dir) { return (fs::path(run_dir) / "checkpoints").string(); }

std::string checkpoint_path(const std::string& run_dir, int64_t step) {
  char name[40];
  std::snprintf(name, sizeof(name), "ckpt_%08lld.h5", static_cast<long long>(step));
  return (fs::path(checkpoint_directory(run_dir)) / name).string();
}

std::vector<CheckpointEntry> list_checkpoints(const std::string& directory) {
  std::vector<CheckpointEntry> found;
  std::error_code ec;
  for (fs::directory_iterator it(directory, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    // ckpt_<at least 8 digits>.h5 and nothing else (hidden temporaries start with '.').
    if (name.size() < 16 || name.compare(0, 5, "ckpt_") != 0 || name.compare(name.size() - 3, 3, ".h5") != 0) continue;
    const std::string digits = name.substr(5, name.size() - 8);
    if (digits.size() > 15 || !std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; }))
      continue;
    found.push_back({std::stoll(digits), it->path().string()});
  }
  std::sort(found.begin(), found.end(), [](const auto& a, const auto& b) { return a.step > b.step; });
  return found;
}

std::vector<std::string> prune_checkpoints(const std::string& directory, int64_t keep) {
  std::vector<std::string> removed;
  const auto all = list_checkpoints(directory);
  for (size_t i = static_cast<size_t>(std::max<int64_t>(keep, 1)); i < all.size(); ++i) {
    std::error_code ec;
    if (fs::remove(all[i].path, ec)) removed.push_back(all[i].path);
  }
  return removed;
}

}  // namespace distgan
