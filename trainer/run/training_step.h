// One training step on every rank: training.n_critic D updates, each on the next batch of this
// rank's shard and fresh noise from its stream, then one G update on the last fakes and the EMA
// update; the non-finite policy decides whether each update counts; the position moves past the
// batches read. The math is in the adversarial step (trainer/step/); this is its bookkeeping.
//
// With cluster.overlap (the default) step s ends with G's gradient all-reduce in flight: G's
// first layer gets its gradient last and holds most of its bytes, so no backward is left to hide
// that traffic behind. Step s + 1 then reads its batch and backpropagates D on the reals while it
// travels (MPI moves it from a progress thread, cluster/mpi_progress.h), and only then finishes
// step s's G update (its Adam step, EMA update, statistics and non-finite decision, all still
// counted as step s's) and makes the fakes that need it. Nothing reads G in between, so the numbers
// are the same bit for bit as finishing it at once; every periodic task that reads G, its
// statistics or its optimizer finishes it first (finish_g_update).
#pragma once

#include <cstdint>

#include "trainer/run/run_state.h"

namespace distgan {

// Runs step `s` (1-based) and adds its statistics to `state.interval`. Throws AgreedFailure when
// the non-finite policy stops the run (every rank alike: its decision comes from averaged values).
void run_training_step(RunState& state, int64_t s);

// Finishes the G update still in flight, if any (every rank alike): waits for its all-reduce,
// applies it and the EMA update, and counts its statistics for its own step.
void finish_g_update(RunState& state);

}  // namespace distgan
