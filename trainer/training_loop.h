// The training run on every rank: data, models, the adversarial step, metrics, samples, and the
// final model file. All ranks execute the same schedule of collectives; rank 0 alone writes.
#pragma once

#include "cluster/world.h"
#include "trainer/config.h"

namespace distgan {

// Trains `config` on this rank of `world`. Returns normally when the run is complete; throws on
// any error (the launcher brings the whole job down).
void run_training(const Config& config, const cluster::World& world);

}  // namespace distgan
