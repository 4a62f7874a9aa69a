// Training checkpoints: what goes into one, how a run is restored from one, and which checkpoint
// `--resume auto` picks. The file format is trainer/state/tensor_file.h; the layout is
//   generator/<name>, discriminator/<name>                 parameters and buffers
//   optimizer/{generator,discriminator}/<param>/{exp_avg,exp_avg_sq,step}   Adam state
//   rng/noise                                               uint8 [world size, bytes]: every rank's noise generator
// with attributes config (YAML), sample_shape, step, epoch, epoch_position (the global sample index
// in that epoch's order where the next batch starts: the same at any world size), samples_seen,
// world_size, dataset_size, distgan_version, torch_version, created.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <vector>

#include "trainer/step/adversarial_step.h"
#include "trainer/state/tensor_file.h"
#include "trainer/config/config.h"
#include "trainer/model/models.h"

namespace distgan {

// Where training stands: what a resumed run needs besides the tensors.
struct TrainingPosition {
  int64_t step = 0;            // steps completed
  int64_t epoch = 0;           // epoch of the next batch
  int64_t epoch_position = 0;  // global sample index in that epoch's order where the next batch starts
  int64_t samples_seen = 0;    // real samples consumed by D steps, all ranks together
};

// A host copy of everything a checkpoint holds (taken on rank 0 in milliseconds; written later).
// `rng_states` is [world size, bytes] uint8, one row per rank.
TensorFileData snapshot_checkpoint(const Config& config, const ModelSpec& spec, AdversarialStep& step,
                                   const TrainingPosition& position, const torch::Tensor& rng_states,
                                   int64_t dataset_size);

// What a checkpoint says about the run it came from.
struct CheckpointInfo {
  std::string path;
  Config config;
  std::vector<int64_t> sample_shape;
  TrainingPosition position;
  int world_size = 1;
  int64_t dataset_size = 0;
  std::string distgan_version, torch_version;
};

CheckpointInfo read_checkpoint_info(const TensorFileReader& reader);

// Whether a resumed run may change `key` ("training.lr_d"): the schema's resume column
// (trainer/config/config_schema.cpp); false for unknown keys.
bool resume_may_change(const std::string& key);

// "model.ch: checkpoint 64, this run 32" for every key that must match and does not; the
// changes that are allowed go to `allowed_changes` ("training.lr_d: 0.0002 -> 0.0001").
std::vector<std::string> config_differences(const Config& saved, const Config& current,
                                            std::vector<std::string>* allowed_changes);

// Loads parameters, buffers and optimizer state into `step` (every tensor's name, shape and dtype
// checked first) and returns the rank RNG states ([world size, bytes] uint8). Throws DataError.
torch::Tensor restore_checkpoint(TensorFileReader& reader, AdversarialStep& step);

// Checkpoint file names in a run directory: <run_dir>/checkpoints/ckpt_<step, 8 digits>.h5
std::string checkpoint_directory(const std::string& run_dir);
std::string checkpoint_path(const std::string& run_dir, int64_t step);
struct CheckpointEntry {
  int64_t step;
  std::string path;
};
// The checkpoints in `directory`, newest (highest step) first. Other files are ignored.
std::vector<CheckpointEntry> list_checkpoints(const std::string& directory);

// Deletes all but the newest `keep` checkpoints of `directory` (never the newest). Returns what it deleted.
std::vector<std::string> prune_checkpoints(const std::string& directory, int64_t keep);

}  // namespace distgan
