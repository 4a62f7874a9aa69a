// A k-nearest-neighbour estimate of where real data lives, to tell generated points that landed off
// it. The k-NN density estimate at x is proportional to 1 / r_k(x)^F, r_k(x) being the distance to
// the k-th nearest real point, so a level set of the density is a threshold on r_k. The threshold is
// the `coverage` quantile of the reals' own r_k (each real measured against the other reals): the
// region holds that share of the real data and nothing of lower density. For a Gaussian blob and
// coverage 0.99 it ends near 3 standard deviations, where the 2-D mixtures' high-quality test ends.
#pragma once

#include <torch/torch.h>

#include <cstdint>

namespace distgan::eval {

// real: [Nr, F] with more than k rows, points: [N, F]; k >= 1; coverage in (0, 1]. Returns a bool
// [N] tensor, true where a point lies outside the region. Throws std::invalid_argument on bad
// arguments, naming the one at fault.
torch::Tensor outside_support(const torch::Tensor& real, const torch::Tensor& points, int64_t k, double coverage);

}  // namespace distgan::eval
