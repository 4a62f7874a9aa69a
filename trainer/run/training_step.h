// One training step on every rank: training.n_critic D updates, each on the next batch of this
// rank's shard and fresh noise from its stream, then one G update on the last fakes and the EMA
// update; the non-finite policy decides whether each update counts; the position moves past the
// batches read. The math is in the adversarial step (trainer/step/); this is its bookkeeping.
#pragma once

#include <cstdint>

#include "trainer/run/run_state.h"

namespace distgan {

// Runs step `s` (1-based) and adds its statistics to `state.interval`. Throws AgreedFailure when
// the non-finite policy stops the run (every rank alike: its decision comes from averaged values).
void run_training_step(RunState& state, int64_t s);

}  // namespace distgan
