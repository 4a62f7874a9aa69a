#include "trainer/run/training_loop.h"
#include "trainer/outputs/console_log.h"

#include <chrono>
#include <cstdio>
#include <stdexcept>

#include "trainer/run/agreed_failure.h"
#include "trainer/run/flop_counter.h"
#include "trainer/run/periodic_tasks.h"
#include "trainer/run/run_setup.h"
#include "trainer/run/training_step.h"
#include "trainer/state/model_file.h"

namespace distgan {

namespace {

// After the preemption task agreed to stop: a checkpoint on disk before any rank exits.
TrainingOutcome finish_preempted(RunState& r) {
  finish_g_update(r);
  save_checkpoint(r);
  if (r.is_root()) r.writer->flush();
  report_written_checkpoints(r);
  r.comm->barrier();
  return TrainingOutcome::kPreempted;
}

// training.steps reached: the final checkpoint (unless the last step just wrote one), then the
// model file, then the final samples (a failure drawing samples must not lose the model).
TrainingOutcome finish_completed(RunState& r) {
  // A checkpoint that failed in the last step stops every rank cleanly; a signal changes nothing:
  // the run is complete.
  read_stop_flags(r, /*act_on_signal=*/false);
  finish_g_update(r);
  save_checkpoint(r);  // averages BatchNorm statistics
  if (r.is_root()) {
    r.writer->flush();
    report_written_checkpoints(r);
    if (r.checkpoint_failed)
      throw std::runtime_error("the final checkpoint could not be written (checkpoint.on_error: abort)");
    save_model_file((r.run_dir / "final.h5").string(), r.config, r.spec, r.step->models(), r.position.step);
  }
  write_samples(r, "final");
  if (r.is_root())
    log_info("distgan: done in %.1f s: metrics %s, samples %s, model %s\n", seconds_between(r.started, Clock::now()),
                (r.run_dir / "metrics.jsonl").c_str(), (r.run_dir / "samples").c_str(),
                (r.run_dir / "final.h5").c_str());
  r.comm->barrier();
  return TrainingOutcome::kCompleted;
}

// The steps from the position after set-up to training.steps, each followed by its due tasks.
TrainingOutcome train_steps(RunState& state) {
  const std::vector<PeriodicTask> tasks = periodic_tasks(state.config);
  const int64_t first_step = state.position.step + 1;
  for (int64_t s = first_step; s <= state.config.training.steps; ++s) {
    state.comm->set_label("step " + std::to_string(s));
    // The arithmetic of one step, for the log's GFLOP/s: this process's second step, one without
    // lazy R1 (which runs on the first) unless every step has it.
    if (s == first_step + 1) {
      FlopCounter counter;
      run_training_step(state, s);
      state.flops_per_step = counter.flops();
    } else {
      run_training_step(state, s);
    }
    // Before the tasks' clock starts: the wait for G's all-reduce counts as communication.
    for (const PeriodicTask& task : tasks)
      if (task.due(s) && task.needs_finished_g_update) finish_g_update(state);
    const auto tasks_start = std::chrono::steady_clock::now();
    for (const PeriodicTask& task : tasks)
      if (task.due(s)) task.run(state, s);
    state.interval.task_s += std::chrono::duration<double>(std::chrono::steady_clock::now() - tasks_start).count();
    if (state.preempted) return finish_preempted(state);
  }
  return finish_completed(state);
}

}  // namespace

TrainingOutcome run_training(const Config& config, const cluster::World& world, const std::string& resume,
                             const FaultPlan& faults) {
  RunState state = set_up_run(config, world, resume, faults);
  try {
    return train_steps(state);
  } catch (const AgreedFailure&) {
    drop_stop_flags(state);  // every rank stops at the same point: the flags every rank sent arrive
    throw;
  }
}

}  // namespace distgan
