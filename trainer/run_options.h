// Turns the YAML-level Config into the plain option structs of data/ (and later cluster/), for the
// rank and world size at hand. Settings that depend on the world size are checked here.
#pragma once

#include "data/prefetch_loader.h"
#include "trainer/config.h"

namespace distgan {

// Per-rank batch = training.batch_size / world_size; throws ConfigError if it does not divide.
int64_t per_rank_batch(const Config& config, int world_size);

data::LoaderOptions loader_options(const Config& config, int rank, int world_size);

}  // namespace distgan
