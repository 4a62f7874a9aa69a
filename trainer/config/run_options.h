// The one place that turns the YAML-level Config into the plain option structs of every part: the
// loader (data/), the communicator (cluster/), the model spec, the adversarial step, the
// evaluation. Settings that depend on the world size or on each other are checked here.
#pragma once

#include "cluster/communicator.h"
#include "data/prefetch_loader.h"
#include "trainer/config/config.h"
#include "trainer/eval/evaluation.h"
#include "trainer/model/augment.h"
#include "trainer/model/models.h"
#include "trainer/step/adversarial_step.h"

namespace distgan {

// Per-rank batch = training.batch_size / world_size; throws ConfigError if it does not divide.
int64_t per_rank_batch(const Config& config, int world_size);

data::LoaderOptions loader_options(const Config& config, int rank, int world_size);

// For model.conditional: checks that the dataset has labels in [0, num_classes) and sets
// model.num_classes from them when it is 0 (the largest label + 1). Throws ConfigError naming the
// file. Other configs are left alone.
void resolve_classes(Config& config);

// The class counts of the dataset's labels (empty when it has none).
std::vector<int64_t> class_counts(const data::ReaderOptions& reader);

// What `eval.*` asks the in-training evaluation for (trainer/eval/evaluation.h).
EvalOptions eval_options(const Config& config);

// The communicator for this rank's local rank (the GPU it drives).
cluster::CommunicatorOptions communicator_options(const Config& config, int local_rank);

// This rank's device ("cpu" or "cuda:N"), checked: CUDA present, one GPU per local rank unless the
// MPI backend shares GPUs. Throws ConfigError or cluster::ClusterError.
std::string rank_device(const Config& config, int local_rank);
// Whether this CPU has native bfloat16 arithmetic (AVX512-BF16 or AMX), from /proc/cpuinfo: without
// it, training.amp: bf16 on the CPU is emulated and slower than float32.
bool cpu_has_native_bf16();

// The ModelSpec of `config` for samples of `sample_shape`. Throws std::invalid_argument for model
// keys that do not go together (the message names the key).
ModelSpec model_spec(const Config& config, const std::vector<int64_t>& sample_shape);
// training.augment for the model's data; throws std::invalid_argument for an unknown transform or
// augmentation of vectors.
AugmentPolicy augment_policy(const Config& config, const ModelSpec& spec);
// cluster.memory_format for the model: auto is channels_last for resnet, contiguous otherwise.
bool uses_channels_last(const Config& config, const ModelSpec& spec);

// What training.* and cluster.bucket_mb ask of the adversarial step.
StepOptions step_options(const Config& config);

}  // namespace distgan
