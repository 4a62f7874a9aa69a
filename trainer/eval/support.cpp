#include "trainer/eval/support.h"

#include <cmath>
#include <stdexcept>
#include <string>

#include "trainer/eval/knn.h"
#include "trainer/eval/tensor_checks.h"

namespace distgan::eval {

torch::Tensor outside_support(const torch::Tensor& real, const torch::Tensor& points, int64_t k, double coverage) {
  torch::NoGradGuard no_grad;
  const char* what = "outside_support";
  if (k < 1) throw std::invalid_argument(std::string(what) + ": k must be >= 1, got " + std::to_string(k));
  if (!(coverage > 0 && coverage <= 1))
    throw std::invalid_argument(std::string(what) + ": coverage must be in (0, 1], got " + std::to_string(coverage));
  const torch::Tensor x = detail::float64_rows(real, what, "real", k + 1);
  const torch::Tensor y = detail::float64_rows(points, what, "points", 0).to(x.device());
  detail::require_same_width(x, y, what);
  const torch::Tensor real_radii = detail::knn_squared_radii(x, k);
  // The smallest radius that covers ceil(coverage * Nr) of the reals.
  const auto rank = static_cast<int64_t>(std::ceil(coverage * static_cast<double>(x.size(0))));
  const double limit = std::get<0>(real_radii.kthvalue(std::max<int64_t>(rank, 1))).item<double>();
  return detail::kth_nearest_squared(y, x, k) > limit;
}

}  // namespace distgan::eval
