// The set-up of a training run, on every rank, in this order (it is also the order of the
// collectives every rank takes part in): the device and the communicator; the checkpoint to
// resume from (rank 0 finds and vets it, every rank learns the position); the loader, positioned
// where the checkpoint stopped; the models and the adversarial step; the checkpoint's tensors
// broadcast from rank 0 and each rank's noise stream; the run directory (rank 0); the evaluator
// (rank 0, with eval.every). Returns the state the step loop runs on.
#pragma once

#include <string>

#include "cluster/world.h"
#include "trainer/config/config.h"
#include "trainer/run/fault_plan.h"
#include "trainer/run/run_state.h"

namespace distgan {

// Seed streams: each kind of randomness draws from its own generator, seeded from training.seed
// mixed with its stream id, so that adding one never shifts another.
inline constexpr uint64_t kNoiseStream = 0x6e6f697365ULL;   // z, labels and penalty draws, per rank
inline constexpr uint64_t kSampleStream = 0x73616d706cULL;  // the fixed noise of the sample grids
inline constexpr uint64_t kReseedStream = 0x7265736565ULL;  // code re-seeding, per step: resumes repeat it

// `resume`: "" (a new run), "auto" or a checkpoint file (trainer/run/training_loop.h). Throws
// AgreedFailure for a refused resume or a bad eval reference, anything else on errors.
RunState set_up_run(const Config& config, const cluster::World& world, const std::string& resume,
                    const FaultPlan& faults);

}  // namespace distgan
