// Improved precision and recall of a generated feature set against a real one (Kynkäänniemi et
// al. 2019, "Improved Precision and Recall Metric for Assessing Generative Models", and
// the authors' precision_recall.py): each set's manifold is approximated by the union of balls
// around its points, the radius of each ball being the distance to that point's k-th nearest
// other point of the same set.
//   precision = share of fake samples inside at least one real ball (are the samples realistic?)
//   recall    = share of real samples inside at least one fake ball (is the real data covered?)
// A point on a ball's boundary counts as inside (<=), as in the reference code. Precision falls
// when samples leave the data manifold; recall falls when modes are dropped.
#pragma once

#include <torch/torch.h>

#include <cstdint>

namespace distgan::eval {

struct PrecisionRecall {
  double precision = 0;
  double recall = 0;
};

// real: [Nr, F], fake: [Nf, F], both with more than k rows; k >= 1 (the paper uses 3).
// Distances are computed in float64 in row blocks of at most ~64 MiB each, so 10,000 x 10,000
// sets never hold the full distance matrix. Throws std::invalid_argument on bad arguments.
PrecisionRecall precision_recall(const torch::Tensor& real, const torch::Tensor& fake, int64_t k = 3);

}  // namespace distgan::eval
