#include "trainer/state/checkpoint.h"
#include "trainer/outputs/console_log.h"

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
#include "trainer/state/module_tensors.h"
#include "trainer/outputs/version.h"

namespace distgan {

namespace {

namespace fs = std::filesystem;
using data::DataError;

constexpr int64_t kMaxCount = int64_t{1} << 53;  // integers that survive a round trip through double
constexpr int64_t kMaxRngElements = int64_t{1} << 30;

void snapshot_adam(const std::string& prefix, torch::nn::Module& module, torch::optim::Adam& optimizer,
                   TensorFileData& out) {
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

void restore_adam(TensorFileReader& reader, const std::string& prefix, torch::nn::Module& module,
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
    // In the parameter's layout (channels_last weights): the moments are broadcast as raw memory to
    // ranks whose fresh state has that layout, and Adam then reads them without layout changes.
    const auto like_param = [&](const std::string& name) {
      return torch::empty_like(p.value(), torch::MemoryFormat::Preserve)
          .copy_(reader.read(base + name, p.value().scalar_type(), shape));
    };
    state.exp_avg(like_param("exp_avg"));
    state.exp_avg_sq(like_param("exp_avg_sq"));
    if (reader.has_tensor(base + "max_exp_avg_sq")) state.max_exp_avg_sq(like_param("max_exp_avg_sq"));
  }
}

}  // namespace

TensorFileData snapshot_checkpoint(const Config& config, const ModelSpec& spec, AdversarialStep& step,
                                   const TrainingPosition& position, const torch::Tensor& rng_states,
                                   int64_t dataset_size) {
  TensorFileData out;
  GanModels& models = step.models();
  add_module_tensors("generator/", *models.generator, out);
  add_module_tensors("discriminator/", *models.discriminator, out);
  if (models.generator_ema) add_module_tensors("generator_ema/", *models.generator_ema, out);
  snapshot_adam("optimizer/generator/", *models.generator, step.optimizer_g(), out);
  snapshot_adam("optimizer/discriminator/", *models.discriminator, step.optimizer_d(), out);
  out.tensors.emplace_back("rng/noise", host_copy(rng_states));
  auto& a = out.attributes;
  a["config"] = print_config(config);
  a["format"] = kCheckpointFormat;
  a["sample_shape"] = shape_attribute(spec.sample_shape);
  a["step"] = std::to_string(position.step);
  a["epoch"] = std::to_string(position.epoch);
  a["epoch_position"] = std::to_string(position.epoch_position);
  a["samples_seen"] = std::to_string(position.samples_seen);
  a["world_size"] = std::to_string(rng_states.size(0));
  a["dataset_size"] = std::to_string(dataset_size);
  a["distgan_version"] = distgan_version();
  a["torch_version"] = TORCH_VERSION;
  char created[32];
  const std::time_t now = std::time(nullptr);
  std::strftime(created, sizeof(created), "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
  a["created"] = created;
  return out;
}

CheckpointInfo read_checkpoint_info(const TensorFileReader& reader) {
  CheckpointInfo info;
  info.path = reader.path();
  info.config = parse_config(reader.attribute("config"), reader.path() + " (its config)");
  info.sample_shape = parse_shape_attribute(reader.attribute("sample_shape"), reader.path());
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
  const ConfigKey* found = find_config_key(key);
  return found != nullptr && found->may_change_on_resume;
}

std::vector<std::string> config_differences(const Config& saved, const Config& current,
                                            std::vector<std::string>* allowed_changes) {
  std::vector<std::string> refused;
  for (const auto& key : config_schema()) {
    const std::string before = key.get(saved), now = key.get(current);
    if (before == now) continue;
    if (key.may_change_on_resume) {
      if (allowed_changes) allowed_changes->push_back(key.path() + ": " + before + " -> " + now);
    } else {
      refused.push_back(key.path() + ": checkpoint " + before + ", this run " + now);
    }
  }
  return refused;
}

torch::Tensor restore_checkpoint(TensorFileReader& reader, AdversarialStep& step) {
  GanModels& models = step.models();
  load_module_tensors(reader, "generator/", *models.generator);
  load_module_tensors(reader, "discriminator/", *models.discriminator);
  if (models.generator_ema) {
    if (reader.tensor_names("generator_ema/").empty()) {  // EMA switched on at this resume: start from G
      log_info("distgan: %s has no generator EMA: the EMA starts from the generator\n", reader.path().c_str());
      torch::NoGradGuard no_grad;
      ema_update(*models.generator_ema, *models.generator, 0.0);
    } else {
      load_module_tensors(reader, "generator_ema/", *models.generator_ema);
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
