// The training loop's evaluation (eval.every) split across the ranks: each rank generates and
// summarizes (featurises) its share of the samples, the expensive part, so its cost falls as 1/N;
// rank 0 gathers the summaries and computes the metrics against the reference. The same samples
// (noise and classes per sample index) and so the same numbers, within float tolerance, as one
// rank evaluating them all.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <optional>

#include "cluster/communicator.h"
#include "trainer/eval/evaluation.h"
#include "trainer/model/models.h"

namespace distgan {

// A collective: every rank calls it, with its own Evaluator (rank 0's holds the reference). Rank 0
// gets the result; the others get nothing.
std::optional<EvalResult> evaluate_across_ranks(Evaluator& evaluator, torch::nn::Sequential& g, const ModelSpec& spec,
                                                uint64_t seed, torch::Device device, cluster::Communicator& comm);

}  // namespace distgan
