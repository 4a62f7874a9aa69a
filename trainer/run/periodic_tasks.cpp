#include "trainer/run/periodic_tasks.h"
#include "trainer/outputs/console_log.h"

#include <csignal>
#include <cstdio>
#include <utility>

#include "cluster/preemption.h"
#include "data/sampler.h"
#include "trainer/outputs/png_image.h"
#include "trainer/run/agreed_failure.h"
#include "trainer/run/code_reseed.h"
#include "trainer/run/distributed_eval.h"
#include "trainer/run/run_setup.h"
#include "trainer/run/training_loop.h"
#include "trainer/run/training_step.h"

namespace distgan {

namespace {

using data::splitmix64;

// Every `every` steps (0: never).
std::function<bool(int64_t)> every(int64_t n) {
  return [n](int64_t s) { return n > 0 && s % n == 0; };
}

void reseed_codes_task(RunState& r, int64_t s) {
  const uint64_t seed = splitmix64(static_cast<uint64_t>(r.config.training.seed) ^ kReseedStream ^
                                   splitmix64(static_cast<uint64_t>(s)));
  check_latent_codes(r.step->models(), r.step->optimizer_g(), *r.comm, r.real_points, {seed, splitmix64(seed)}, s);
}

void log_task(RunState& r, int64_t s) {
  StepMetrics m = average_interval(r.interval, *r.comm, s, r.last_batch_epoch, r.config.training.steps,
                                         r.global_batch, seconds_between(r.started, Clock::now()), r.hosts);
  m.gflops_per_rank = r.flops_per_step * m.steps_per_s / 1e9;
  if (r.is_root()) r.outputs->metrics(m);
  r.interval = Interval{};
}

// Every rank: equal BatchNorm statistics; each rank generates with the EMA (or raw) G and
// featurises its share of the samples, and rank 0 measures (trainer/run/distributed_eval.h).
void evaluate_task(RunState& r, int64_t s) {
  r.step->average_batchnorm_statistics();
  GanModels& m = r.step->models();
  const bool ema = r.config.eval.ema && m.generator_ema;
  const std::optional<EvalResult> result =
      evaluate_across_ranks(*r.evaluator, ema ? m.generator_ema : m.generator, r.spec,
                            static_cast<uint64_t>(r.config.training.seed), r.device, *r.comm);
  if (result) r.outputs->evaluation(s, ema, *result);
}

void perturb_weight_task(RunState& r, int64_t) {
  torch::NoGradGuard no_grad;
  r.step->models().discriminator->parameters().back().add_(1e-3);
}

void replica_check_task(RunState& r, int64_t s) {
  const std::string diverged = r.step->compare_replicas();
  if (!diverged.empty())
    throw AgreedFailure("replica check at step " + std::to_string(s) + ": " + diverged +
                            " (a silent hardware or software fault); the last checkpoint is kept: resume with "
                            "--resume auto",
                        1, r.is_root());
}

// Whether any rank has received SIGTERM or SIGUSR1: one tiny collective per step, so every rank
// stops at the same step boundary. Rank 0's "a checkpoint failed and checkpoint.on_error is abort"
// rides in the same collective and stops every rank. The flags sent at step s are read at step s+1
// (every rank alike), so the check never waits: with G's all-reduce still in flight
// (cluster.overlap) a flag sent now would queue behind its bytes on a slow link, and on NCCL behind
// its buckets on the stream. A signal thus stops the run one step later than it arrived.
void preemption_task(RunState& r, int64_t s) {
  if (r.faults.signals(s, r.rank(), r.world_size())) std::raise(SIGTERM);  // recorded by the handler
  r.interval.task_s -= read_stop_flags(r);  // that wait counts as communication; the loop adds the task time
  if (r.preempted) return;
  r.stop_flags = torch::tensor({static_cast<int64_t>(cluster::preemption_signal()),
                                int64_t{r.checkpoint_failed ? 1 : 0}},
                               torch::kInt64);
  r.stop_flags_in_flight = r.comm->allreduce(r.stop_flags, {cluster::ReduceOp::kMax});
}

}  // namespace

double read_stop_flags(RunState& r, bool act_on_signal) {
  if (!r.stop_flags_in_flight) return 0;
  // Sent a step ago, so normally arrived; what waiting remains is communication.
  const auto start = Clock::now();
  std::exchange(r.stop_flags_in_flight, nullptr)->wait();
  const double waited = seconds_between(start, Clock::now());
  r.interval.comm_s += waited;
  if (r.stop_flags[1].item<int64_t>() != 0) {
    finish_g_update(r);  // no all-reduce left in flight when every rank stops
    throw AgreedFailure("stopping after a failed checkpoint (checkpoint.on_error: abort; the reason is above); the "
                        "previous checkpoint stays",
                        1, r.is_root());
  }
  const int64_t signal = r.stop_flags[0].item<int64_t>();
  if (signal == 0 || !act_on_signal) return waited;
  r.preempted = true;
  if (!r.is_root()) return waited;
  log_info("distgan: preempted (%s) at step %lld: writing a checkpoint, then exiting with code %d; continue "
           "with --resume auto\n",
           signal == SIGUSR1 ? "SIGUSR1" : signal == SIGTERM ? "SIGTERM" : "signal",
           static_cast<long long>(r.position.step), kExitPreempted);
  std::fflush(stdout);
  return waited;
}

void drop_stop_flags(RunState& r) {
  if (r.stop_flags_in_flight) std::exchange(r.stop_flags_in_flight, nullptr)->wait();
}

std::vector<PeriodicTask> periodic_tasks(const Config& config) {
  const TrainingConfig& t = config.training;
  const int64_t steps = t.steps;
  const double reseed_until = t.code_reseed_until * double(steps);
  const auto always = [](int64_t) { return true; };
  return {
      {"code re-seeding", [e = every(t.code_reseed_every), reseed_until](int64_t s) { return e(s) && double(s) <= reseed_until; },
       reseed_codes_task},
      {"log", [e = every(config.logging.every), steps](int64_t s) { return e(s) || s == steps; }, log_task},
      {"samples", every(config.logging.sample_every),
       [](RunState& r, int64_t s) {
         char name[32];
         std::snprintf(name, sizeof(name), "step_%07lld", static_cast<long long>(s));
         write_samples(r, name);
       }},
      {"evaluation", every(config.eval.every), evaluate_task},
      {"fault: perturb a weight", always,
       [](RunState& r, int64_t s) {
         if (r.faults.perturbs_weight(s, r.rank(), r.world_size())) perturb_weight_task(r, s);  // D's
       },
       false},
      {"replica check", every(config.cluster.check_replicas_every), replica_check_task},
      {"checkpoint", every(config.checkpoint.every), [](RunState& r, int64_t) { save_checkpoint(r); }},
      {"written checkpoints", always, [](RunState& r, int64_t) { report_written_checkpoints(r); }, false},
      {"preemption", always, preemption_task, false},
  };
}

void write_samples(RunState& r, const std::string& name) {
  r.step->average_batchnorm_statistics();  // every rank: the running statistics become equal
  if (!r.is_root()) return;
  const torch::Tensor samples = r.step->sample(r.fixed_noise, r.fixed_labels).cpu();
  if (r.spec.sample_shape.size() == 3) {
    r.outputs->samples(name, r.position.step, image_grid(samples, 8));  // conditional models: a row per class
  } else if (r.spec.sample_shape[0] >= 2) {  // a scatter plot of the first two coordinates
    r.outputs->samples(name, r.position.step, scatter_plot(r.real_points, samples));
  }
}

// Every rank: equal BatchNorm statistics, every rank's noise generator state to rank 0; rank 0
// copies everything to host memory and hands it to the background writer. Training pauses only
// for that copy (measured and logged).
void save_checkpoint(RunState& r) {
  if (r.last_checkpoint_step == r.position.step) return;
  const auto start = Clock::now();
  r.step->average_batchnorm_statistics();
  const torch::Tensor mine = r.noise.get_state();
  torch::Tensor all = torch::zeros({r.world_size(), mine.numel()}, torch::kInt32);
  all[r.rank()].copy_(mine);
  r.comm->allreduce(all, {cluster::ReduceOp::kSum})->wait();
  if (r.is_root()) {
    TensorFileData data = snapshot_checkpoint(r.config, r.spec, *r.step, r.position, all.to(torch::kUInt8),
                                              r.loader->dataset_size());
    r.writer->submit(checkpoint_path(r.run_dir.string(), r.position.step), std::move(data));
    r.last_checkpoint_stall_s = seconds_between(start, Clock::now());
  }
  r.last_checkpoint_step = r.position.step;
}

void report_written_checkpoints(RunState& r) {
  if (!r.is_root()) return;
  if (auto failure = r.writer->take_failure()) {
    const auto previous = list_checkpoints(checkpoint_directory(r.run_dir.string()));
    const bool abort = r.config.checkpoint.on_error == "abort";
    std::fprintf(stderr,
                 "distgan: ERROR: a checkpoint could not be written: %s. The previous checkpoint %s stays; %s\n",
                 failure->c_str(), previous.empty() ? "(none)" : previous.front().path.c_str(),
                 abort ? "stopping (checkpoint.on_error: abort)"
                       : "training continues and retries at the next interval (checkpoint.on_error: continue)");
    std::fflush(stderr);
    if (abort) r.checkpoint_failed = true;
  }
  while (auto written = r.writer->take_completed()) {
    log_info("distgan: checkpoint %s (%.1f MB): training paused %.0f ms, written in the background in %.0f ms\n",
                written->path.c_str(), double(written->bytes) / 1e6, 1e3 * r.last_checkpoint_stall_s,
                1e3 * written->write_seconds);
    std::fflush(stdout);
  }
}

}  // namespace distgan
