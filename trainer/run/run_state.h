// Everything a training run holds between steps, on every rank: made by set_up_run
// (trainer/run/run_setup.h), advanced by run_training_step (trainer/run/training_step.h), read
// and written by the periodic tasks (trainer/run/periodic_tasks.h). Members marked "rank 0" are
// null elsewhere: only rank 0 writes files.
#pragma once

#include <ATen/core/Generator.h>
#include <torch/torch.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "cluster/communicator.h"
#include "cluster/world.h"
#include "data/prefetch_loader.h"
#include "trainer/config/config.h"
#include "trainer/eval/evaluation.h"
#include "trainer/model/models.h"
#include "trainer/outputs/run_outputs.h"
#include "trainer/run/fault_plan.h"
#include "trainer/run/interval_metrics.h"
#include "trainer/state/checkpoint.h"
#include "trainer/state/checkpoint_writer.h"
#include "trainer/step/adversarial_step.h"

namespace distgan {

using Clock = std::chrono::steady_clock;

inline double seconds_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

// The non-finite policy's memory: steps in a row with a skipped update (training.max_consecutive_skips).
struct SkipCount {
  int64_t consecutive = 0;
  int64_t last_step = -1;  // the last step with a skipped update
};

struct RunState {
  Config config;
  const cluster::World* world = nullptr;
  FaultPlan faults;
  std::filesystem::path run_dir;
  std::unique_ptr<cluster::Communicator> comm;
  std::unique_ptr<data::PrefetchLoader> loader;
  std::unique_ptr<AdversarialStep> step;
  ModelSpec spec;
  torch::Device device = torch::kCPU;
  at::Generator noise;  // this rank's: on the host, so its state is checkpointed alike on CPU and GPU
  int64_t global_batch = 0, per_rank_batch = 0;
  AugmentPolicy augment;  // training.augment
  bool channels_last = false;  // cluster.memory_format: models and real batches in NHWC memory
  int threads = 1;
  std::vector<std::string> hosts;  // every rank's host name, in rank order (run_info.json, stragglers)

  TrainingPosition position;  // after the last completed step
  int64_t last_batch_epoch = 0;  // the epoch of the last batch read (for the log line)
  int resumed_world_size = 0;  // 0: a new run
  Interval interval;           // since the last log line
  double flops_per_step = 0;   // counted on this process's second step (trainer/run/flop_counter.h)
  SkipCount skips;
  // The step whose G update is still in flight (0: none): with cluster.overlap its all-reduce
  // finishes during the next step's D pass on the reals (trainer/run/training_step.h).
  int64_t g_update_in_flight = 0;

  torch::Tensor fixed_noise, fixed_labels;  // the samples of every grid (labels: conditional models)
  torch::Tensor real_points;                // rank 0, 2-D data: reals for scatter plots and code re-seeding

  std::unique_ptr<RunOutputs> outputs;      // rank 0
  std::unique_ptr<Evaluator> evaluator;     // every rank, with eval.every (the reference on rank 0)
  std::unique_ptr<CheckpointWriter> writer;  // rank 0
  int64_t last_checkpoint_step = -1;
  double last_checkpoint_stall_s = 0;  // rank 0: how long the last snapshot paused training
  bool checkpoint_failed = false;      // rank 0: a write failed and checkpoint.on_error is abort
  bool preempted = false;              // every rank agreed to stop after this step's checkpoint
  // The stop flags (a signal, a failed checkpoint) sent by the last step's preemption task: every
  // rank reads them one step later, so the per-step check never waits on the link.
  torch::Tensor stop_flags;
  std::unique_ptr<cluster::Work> stop_flags_in_flight;

  Clock::time_point started = Clock::now();

  bool is_root() const { return world->rank() == 0; }
  int rank() const { return world->rank(); }
  int world_size() const { return world->size(); }
};

}  // namespace distgan
