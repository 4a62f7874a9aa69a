#include "trainer/state/resume.h"
#include "trainer/outputs/console_log.h"

#include <cstdio>
#include <filesystem>

#include "data/data_error.h"

namespace distgan {

namespace {

std::string join_shape(const std::vector<int64_t>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + std::to_string(v[i]);
  return s + "]";
}

ResumeSource open_verified(const std::string& path) {
  ResumeSource source;
  source.reader = std::make_unique<TensorFileReader>(path);
  source.info = read_checkpoint_info(*source.reader);
  source.reader->verify_all();  // a damaged tensor is found before anything is loaded
  return source;
}

}  // namespace

ResumeSource open_resume_source(const std::string& request, const std::string& run_dir) {
  if (request != "auto") return open_verified(request);
  const std::string directory = checkpoint_directory(run_dir);
  const auto candidates = list_checkpoints(directory);
  for (const auto& c : candidates) {
    try {
      return open_verified(c.path);
    } catch (const std::exception& e) {  // damaged or unreadable: fall back to the previous one
      log_warning("distgan: warning: skipping checkpoint %s: %s\n", c.path.c_str(), e.what());
    }
  }
  if (!candidates.empty())
    throw data::DataError(directory + ": none of its " + std::to_string(candidates.size()) +
                          " checkpoints is valid (see the warnings above); nothing to resume");
  return {};
}

std::vector<std::string> check_resume_config(const CheckpointInfo& info, const Config& current,
                                             const std::vector<int64_t>& sample_shape, int64_t dataset_size) {
  std::vector<std::string> allowed;
  std::vector<std::string> refused = config_differences(info.config, current, &allowed);
  if (info.sample_shape != sample_shape)
    refused.push_back("sample shape: checkpoint " + join_shape(info.sample_shape) + ", this run's dataset " +
                      join_shape(sample_shape));
  if (info.dataset_size != dataset_size)
    refused.push_back("dataset size: checkpoint " + std::to_string(info.dataset_size) + " samples, this run's " +
                      std::to_string(dataset_size) + " (the sampler position would mean something else)");
  if (!refused.empty()) {
    std::string message = info.path + " does not fit this run:";
    for (const auto& r : refused) message += "\n  " + r;
    message += "\nonly learning rates, betas, training.steps, training.amp, the non-finite policy, data.path and the "
               "logging, checkpoint and cluster sections may change on resume; start a new run (another "
               "logging.run_dir) to change the rest";
    throw ConfigError(message);
  }
  return allowed;
}

void refuse_fresh_start_over_checkpoints(const std::string& run_dir) {
  const auto existing = list_checkpoints(checkpoint_directory(run_dir));
  if (existing.empty()) return;
  throw ConfigError(checkpoint_directory(run_dir) + " already holds checkpoints (newest: step " +
                    std::to_string(existing.front().step) +
                    "); continue that run with --resume auto, or start a new one with another logging.run_dir");
}

std::vector<std::string> set_aside_newer_checkpoints(const std::string& run_dir, int64_t step) {
  std::vector<std::string> renamed;
  for (const auto& c : list_checkpoints(checkpoint_directory(run_dir))) {
    if (c.step <= step) continue;
    std::error_code ec;
    std::filesystem::rename(c.path, c.path + ".abandoned", ec);
    if (!ec) renamed.push_back(c.path);
  }
  return renamed;
}

}  // namespace distgan
