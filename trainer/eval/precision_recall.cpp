#include "trainer/eval/precision_recall.h"

#include <algorithm>
#include <stdexcept>
#include <string>

#include "trainer/eval/tensor_checks.h"

namespace distgan::eval {

namespace {

// Upper bound on the elements of one block of the distance matrix: 8 Mi doubles = 64 MiB.
constexpr int64_t kBlockElements = int64_t{8} << 20;

int64_t block_rows(int64_t columns) { return std::max<int64_t>(1, kBlockElements / std::max<int64_t>(1, columns)); }

// Squared Euclidean distances of the rows of `a` to the rows of `b`, [A, B], via
// |a|^2 + |b|^2 - 2 a.b (one matrix product; float64 keeps the cancellation harmless). Squared
// values are compared with squared radii throughout, as the reference code does, so no sqrt
// rounding moves a point across a boundary.
torch::Tensor squared_distances(const torch::Tensor& a, const torch::Tensor& b, const torch::Tensor& b_norms) {
  const torch::Tensor a_norms = a.pow(2).sum(1, /*keepdim=*/true);
  // In place: one block-sized buffer instead of three temporaries.
  return a.mm(b.t()).mul_(-2.0).add_(a_norms).add_(b_norms).clamp_min_(0);
}

// Squared distance from each row of x to its k-th nearest other row. The smallest entry of a
// row is the point itself (0), so the k-th other neighbour is entry k of the sorted row.
torch::Tensor knn_squared_radii(const torch::Tensor& x, int64_t k) {
  const int64_t n = x.size(0);
  const torch::Tensor norms = x.pow(2).sum(1).unsqueeze(0);
  torch::Tensor radii = torch::empty({n}, x.options());
  const int64_t step = block_rows(n);
  for (int64_t begin = 0; begin < n; begin += step) {
    const int64_t rows = std::min(step, n - begin);
    const torch::Tensor d2 = squared_distances(x.narrow(0, begin, rows), x, norms);
    const torch::Tensor nearest = std::get<0>(d2.topk(k + 1, /*dim=*/1, /*largest=*/false, /*sorted=*/true));
    radii.narrow(0, begin, rows).copy_(nearest.select(1, k));
  }
  return radii;
}

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
