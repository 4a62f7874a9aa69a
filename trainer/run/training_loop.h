// The training run on every rank: set-up (trainer/run/run_setup.h), then for each step the step
// itself (trainer/run/training_step.h) and the periodic tasks in their fixed order
// (trainer/run/periodic_tasks.h), then the final checkpoint, model file and samples. All ranks
// execute the same schedule of collectives; rank 0 alone writes files.
#pragma once

#include <string>

#include "cluster/world.h"
#include "trainer/config/config.h"
#include "trainer/run/agreed_failure.h"
#include "trainer/run/fault_plan.h"

namespace distgan {

// The exit code of every rank after a preemption checkpoint (EX_TEMPFAIL: "try again"): job scripts
// requeue on it and the next run continues with --resume auto.
inline constexpr int kExitPreempted = 75;

enum class TrainingOutcome {
  kCompleted,  // training.steps reached; final checkpoint, model file and samples written
  kPreempted,  // a SIGTERM/SIGUSR1 reached some rank: every rank stopped at the same step after a checkpoint
};

// Trains `config` on this rank of `world`. `resume` is "" (a new run), "auto" (the newest valid
// checkpoint of the run directory, or a new run when there is none) or a checkpoint file. `faults`
// are the test seams the launcher read from the environment. Throws AgreedFailure for a refused
// resume, anything else on errors (the launcher aborts the job).
TrainingOutcome run_training(const Config& config, const cluster::World& world, const std::string& resume = "",
                             const FaultPlan& faults = {});

}  // namespace distgan
