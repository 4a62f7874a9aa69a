// Re-seeding the dead codes of a categorical latent (CategoricalLatent, model.latent_categories).
// Each code draws a small cluster; a code that G maps between the modes gets almost no push back,
// because D is nearly flat there once training has settled (measured on the 5x5 grid: D's median
// logit -0.014 on such codes, 0.004 on the others), so it stays off the data to the end. Every
// training.code_reseed.every steps rank 0 draws a few samples per code with the raw G and marks the
// codes whose samples lie mostly outside the real data's support (eval::outside_support). A code
// marked at two checks in a row becomes a copy of a random live code: its value in G and in the EMA
// G and its Adam moments, so it goes on as that code would (cf. the codebook restarts of VQ-VAE
// training). Two in a row, because G also swings: at single checks late in training up to 28% of
// the codes were off the data, whole modes among them, and copying those away lost the modes.
// Rank 0 broadcasts its marks; every rank then takes the same decisions with an identically seeded
// generator, so the replicas stay identical.
#pragma once

#include <ATen/core/Generator.h>
#include <torch/torch.h>

#include <cstdint>

#include "cluster/communicator.h"
#include "trainer/model/models.h"

namespace distgan {

struct CodeReseedOptions {
  int64_t samples_per_code = 4;
  int64_t neighbours = 5;      // k of the support estimate
  double coverage = 0.99;      // share of the real data inside the support (about 3 std of a blob)
  double max_off_share = 0.5;  // more codes off the data than this: G has not settled, start counting again
  int64_t checks_in_a_row = 2;  // a code is re-seeded after this many checks off the data in a row
};

struct CodeReseedResult {
  int64_t codes = 0;
  int64_t off_data = 0;   // codes off the data at this check
  int64_t reseeded = 0;   // codes that became copies of live ones
  bool settled = false;   // false: more than max_off_share off the data, nothing counted
};

// The CategoricalLatent that begins `generator`, or nullptr.
CategoricalLatentImpl* categorical_latent(torch::nn::Sequential& generator);

// Rank 0: which codes of models.generator's categorical latent draw off the data, with the reals
// [N, F] as the data: [K] bool, true where most of a code's samples (z drawn from `rng`) lie outside
// the support. Changes no state of the models (BatchNorm running statistics are put back). Throws
// std::invalid_argument when G has no categorical latent.
torch::Tensor codes_off_data(GanModels& models, const torch::Tensor& real, at::Generator& rng,
                             const CodeReseedOptions& options = {});

// Every rank, with rank 0's `off_data` and a `rng` in the same state on every rank: counts the
// checks in a row each code has been off the data (CategoricalLatent::off_data_checks), and makes
// each code at options.checks_in_a_row a copy of a random live code in G, in the EMA G (when there
// is one) and in `optimizer_g`'s moments; its count starts again from 0.
CodeReseedResult reseed_codes(GanModels& models, torch::optim::Adam& optimizer_g, const torch::Tensor& off_data,
                              at::Generator& rng, const CodeReseedOptions& options = {});

struct CodeCheckSeeds {
  uint64_t samples;  // rank 0's noise for the samples per code
  uint64_t choice;   // every rank's choice of live codes: the same on every rank
};

// One check of training.code_reseed at `step`, on every rank: rank 0 marks the codes off the data
// (its error, if any, reaches every rank through on_root_agreed), broadcasts the marks, and every
// rank re-seeds alike; rank 0 logs the counts and the time taken.
CodeReseedResult check_latent_codes(GanModels& models, torch::optim::Adam& optimizer_g, cluster::Communicator& comm,
                                    const torch::Tensor& real, CodeCheckSeeds seeds, int64_t step);

}  // namespace distgan
