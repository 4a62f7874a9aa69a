// Re-seeding the dead codes of a categorical latent (CategoricalLatent, model.latent_categories).
// Each code draws a small cluster; a code that G maps between the modes gets almost no push back,
// because D is nearly flat there once training has settled (measured on the 5x5 grid: D's median
// logit -0.014 on such codes, 0.004 on the others), so it stays off the data to the end. Every
// training.code_reseed.every steps rank 0 draws a few samples per code with the raw G, marks the
// codes whose samples lie mostly outside the real data's support (eval::outside_support), and each
// of those becomes a copy of a random live code: its value in G and in the EMA G and its Adam
// moments, so it goes on as that code would (cf. the codebook restarts of VQ-VAE training). Rank 0
// decides; every rank applies the same map of sources, so the replicas stay identical.
#pragma once

#include <ATen/core/Generator.h>
#include <torch/torch.h>

#include <cstdint>

#include "trainer/models.h"

namespace distgan {

struct CodeReseedOptions {
  int64_t samples_per_code = 4;
  int64_t neighbours = 5;       // k of the support estimate
  double coverage = 0.99;       // share of the real data inside the support (about 3 std of a blob)
  double max_dead_share = 0.5;  // more dead codes than this: G has not settled yet, change nothing
};

struct CodeSources {
  torch::Tensor source;  // [K] int64 on the host: the code each code becomes (itself when alive)
  int64_t codes = 0;
  int64_t dead = 0;
  bool applied = false;  // false: none dead, or more than max_dead_share (source is then the identity)
};

// The CategoricalLatent that begins `generator`, or nullptr.
CategoricalLatentImpl* categorical_latent(torch::nn::Sequential& generator);

// Rank 0: which codes of models.generator's categorical latent are dead against the reals [N, F],
// and a random live code for each, drawn from `rng`. Changes nothing (BatchNorm running statistics
// are restored after G's forward pass). Throws std::invalid_argument when G has no categorical latent.
CodeSources choose_code_sources(GanModels& models, const torch::Tensor& real, at::Generator& rng,
                                const CodeReseedOptions& options = {});

// Every rank: code i becomes code source[i] in G, in the EMA G (when there is one) and in
// `optimizer_g`'s moments for the codes.
void apply_code_sources(GanModels& models, torch::optim::Adam& optimizer_g, const torch::Tensor& source);

}  // namespace distgan
