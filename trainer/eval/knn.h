// k-nearest-neighbour distances in row blocks, shared by precision/recall and the support estimate.
// Inputs are float64 [N, F] matrices (see tensor_checks.h); distances stay squared throughout, so
// comparisons with squared radii see no sqrt rounding.
#pragma once

#include <torch/torch.h>

#include <cstdint>

namespace distgan::eval::detail {

// Rows of one block of a distance matrix with `columns` columns: at most ~64 MiB of doubles.
int64_t block_rows(int64_t columns);

// Squared Euclidean distances of the rows of `a` to the rows of `b`, [A, B]; `b_norms` is
// b.pow(2).sum(1).unsqueeze(0).
torch::Tensor squared_distances(const torch::Tensor& a, const torch::Tensor& b, const torch::Tensor& b_norms);

// Squared distance from each row of x to its k-th nearest other row of x, [N].
torch::Tensor knn_squared_radii(const torch::Tensor& x, int64_t k);

// Squared distance from each row of `query` to its k-th nearest row of `ref`, [Q] (k = 1: the nearest).
torch::Tensor kth_nearest_squared(const torch::Tensor& query, const torch::Tensor& ref, int64_t k);

}  // namespace distgan::eval::detail
