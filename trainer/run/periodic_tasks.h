// The periodic work of a training run: after every step, every rank walks this list in this fixed
// order and runs each task that is due at the step. The order is also the order of the collectives
// the tasks make, so it is written down once, here, and never depends on the rank:
//   1. code re-seeding     training.code_reseed.every   (rank 0 marks, broadcast, every rank re-seeds)
//   2. log                 logging.every and the last step (one allreduce of the interval sums)
//   3. samples             logging.sample_every         (BatchNorm statistics averaged; rank 0 draws)
//   4. evaluation          eval.every                   (BatchNorm averaged; rank 0 measures)
//   5. fault: perturb      DISTGAN_FAULT_PERTURB_STEP   (tests: the last rank changes a weight)
//   6. replica check       cluster.check_replicas_every (one allgather of checksums)
//   7. checkpoint          checkpoint.every             (BatchNorm averaged, RNG states to rank 0)
//   8. written checkpoints every step                   (rank 0 reports the background writer's results)
//   9. preemption          every step                   (one allreduce: a signal or a failed checkpoint,
//                                                        read at the next step)
// After the preemption task has agreed to stop, the loop writes a last checkpoint and ends. When any of
// tasks 1-4, 6 and 7 is due, the loop first finishes the G update still in flight (every rank
// alike: due() is a function of the step); the preemption task finishes it before it stops a run.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "trainer/run/run_state.h"

namespace distgan {

struct PeriodicTask {
  std::string name;
  std::function<bool(int64_t step)> due;
  std::function<void(RunState&, int64_t step)> run;
  // Whether it reads G, its optimizer or the step's statistics: the G update still in flight
  // (trainer/run/training_step.h) is finished before it runs. The tasks due at every step do not,
  // so that the update can travel on into the next step.
  bool needs_finished_g_update = true;
};

// The tasks of `config`'s run, in their fixed order.
std::vector<PeriodicTask> periodic_tasks(const Config& config);

// The checkpoint of the current position (unless one was just taken), handed to the background
// writer on rank 0. Every rank calls it.
void save_checkpoint(RunState& state);
// Rank 0: prints what the background writer finished or failed since the last call.
void report_written_checkpoints(RunState& state);
// Every rank (averages BatchNorm statistics first): rank 0 writes samples/<name>.png.
void write_samples(RunState& state, const std::string& name);
// Every rank: waits for the stop flags the last step's preemption task sent (if any) and acts on
// them: a failed checkpoint throws AgreedFailure; a signal marks the run preempted (unless
// `act_on_signal` is false: at the end of a complete run). Returns the seconds it waited (added to
// the interval's communication time).
double read_stop_flags(RunState& state, bool act_on_signal = true);
// Every rank, before a run ends: waits for those flags without acting on them (no collective is
// left in flight).
void drop_stop_flags(RunState& state);

}  // namespace distgan
