#include "trainer/eval/sliced_wasserstein.h"

#include <ATen/CPUGeneratorImpl.h>

#include <stdexcept>
#include <string>
#include <vector>

#include "trainer/eval/tensor_checks.h"

namespace distgan::eval {

namespace {

// The pieces on which both empirical quantile functions are constant. Qa(u) is the k-th sorted
// value (0-based) for u in (k/na, (k+1)/na]; merging the two sets of breakpoints gives pieces
// (index into a, index into b, length). Breakpoints are compared exactly as integers
// ((k+1) * nb against (j+1) * na) so that coinciding ones merge into one.
struct QuantilePieces {
  std::vector<int64_t> a_index, b_index;
  std::vector<double> length;
};

QuantilePieces quantile_pieces(int64_t na, int64_t nb) {
  QuantilePieces p;
  int64_t i = 0, j = 0;
  double previous = 0;
  while (i < na && j < nb) {
    const int64_t next_a = (i + 1) * nb, next_b = (j + 1) * na;  // both breakpoints scaled by na * nb
    const double u = next_a <= next_b ? static_cast<double>(i + 1) / static_cast<double>(na)
                                      : static_cast<double>(j + 1) / static_cast<double>(nb);
    p.a_index.push_back(i);
    p.b_index.push_back(j);
    p.length.push_back(u - previous);
    previous = u;
    if (next_a <= next_b) ++i;
    if (next_b <= next_a) ++j;
  }
  return p;
}

torch::Tensor long_tensor(const std::vector<int64_t>& v) {
  return torch::tensor(torch::ArrayRef<int64_t>(v), torch::TensorOptions().dtype(torch::kLong));
}

}  // namespace

double sliced_wasserstein(const torch::Tensor& a, const torch::Tensor& b, int64_t projections, uint64_t seed) {
  torch::NoGradGuard no_grad;
  const char* metric = "sliced_wasserstein";
  const torch::Tensor x = detail::float64_rows(a, metric, "first set", 1);
  const torch::Tensor y = detail::float64_rows(b, metric, "second set", 1).to(x.device());
  detail::require_same_width(x, y, metric);
  if (projections < 1)
    throw std::invalid_argument(std::string(metric) + ": projections must be >= 1, got " + std::to_string(projections));

  // Drawn on the CPU with a private generator: the same seed gives the same directions on every
  // device, and the caller's global random state is left alone.
  at::Generator generator = at::detail::createCPUGenerator(seed);
  const auto f64 = torch::TensorOptions().dtype(torch::kFloat64);
  torch::Tensor theta = torch::randn({x.size(1), projections}, generator, f64);
  theta = (theta / theta.pow(2).sum(0, /*keepdim=*/true).sqrt()).to(x.device());

  // [P, N] projections, each row sorted: the empirical quantile function per direction. Rows, not
  // columns: sorting along the contiguous dimension is several times faster.
  const torch::Tensor pa = std::get<0>(theta.t().mm(x.t()).sort(/*dim=*/1));
  const torch::Tensor pb = std::get<0>(theta.t().mm(y.t()).sort(/*dim=*/1));
  if (pa.size(1) == pb.size(1)) return (pa - pb).abs().mean().item<double>();

  const QuantilePieces pieces = quantile_pieces(pa.size(1), pb.size(1));
  const torch::Tensor ia = long_tensor(pieces.a_index).to(x.device());
  const torch::Tensor ib = long_tensor(pieces.b_index).to(x.device());
  const torch::Tensor length = torch::tensor(torch::ArrayRef<double>(pieces.length), f64).to(x.device());
  const torch::Tensor per_direction =
      ((pa.index_select(1, ia) - pb.index_select(1, ib)).abs() * length.unsqueeze(0)).sum(1);  // [P]
  return per_direction.mean().item<double>();
}

}  // namespace distgan::eval
