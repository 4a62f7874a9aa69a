#include "trainer/eval/precision_recall.h"

#include <algorithm>
#include <stdexcept>
#include <string>

#include "trainer/eval/knn.h"
#include "trainer/eval/tensor_checks.h"

namespace distgan::eval {

namespace {

using detail::block_rows;
using detail::knn_squared_radii;
using detail::squared_distances;

// Share of the rows of `query` that lie within the ball of at least one row of `ref`.
double share_inside(const torch::Tensor& query, const torch::Tensor& ref, const torch::Tensor& ref_radii) {
  const torch::Tensor norms = ref.pow(2).sum(1).unsqueeze(0);
  const torch::Tensor radii = ref_radii.unsqueeze(0);
  const int64_t n = query.size(0);
  const int64_t step = block_rows(ref.size(0));
  int64_t inside = 0;
  for (int64_t begin = 0; begin < n; begin += step) {
    const int64_t rows = std::min(step, n - begin);
    const torch::Tensor d2 = squared_distances(query.narrow(0, begin, rows), ref, norms);
    inside += (d2 <= radii).any(1).sum().item<int64_t>();
  }
  return static_cast<double>(inside) / static_cast<double>(n);
}

}  // namespace

PrecisionRecall precision_recall(const torch::Tensor& real, const torch::Tensor& fake, int64_t k) {
  torch::NoGradGuard no_grad;
  const char* metric = "precision_recall";
  if (k < 1) throw std::invalid_argument(std::string(metric) + ": k must be >= 1, got " + std::to_string(k));
  const torch::Tensor x = detail::float64_rows(real, metric, "real", k + 1);
  const torch::Tensor y = detail::float64_rows(fake, metric, "fake", k + 1).to(x.device());
  detail::require_same_width(x, y, metric);
  PrecisionRecall result;
  result.precision = share_inside(y, x, knn_squared_radii(x, k));
  result.recall = share_inside(x, y, knn_squared_radii(y, k));
  return result;
}

}  // namespace distgan::eval
