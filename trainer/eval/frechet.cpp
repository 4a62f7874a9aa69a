#include "trainer/eval/frechet.h"

#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include "trainer/eval/tensor_checks.h"

namespace distgan::eval {

namespace {

// Averages out the asymmetry that round-off leaves in products such as S Cb S, so eigh (which
// reads one triangle only) sees the matrix we mean.
torch::Tensor symmetrized(const torch::Tensor& m) { return (m + m.t()) * 0.5; }

void check_stats(const FeatureStats& s, const char* name) {
  const std::string where = std::string("frechet_distance: ") + name;
  if (!s.mean.defined() || !s.cov.defined()) throw std::invalid_argument(where + " has undefined statistics");
  const int64_t f = s.mean.dim() == 1 ? s.mean.size(0) : -1;
  if (f < 1 || s.cov.dim() != 2 || s.cov.size(0) != f || s.cov.size(1) != f)
    throw std::invalid_argument(where + ": mean " + detail::shape_text(s.mean) + " and covariance " +
                                detail::shape_text(s.cov) + " are not [F] and [F, F]");
}

}  // namespace

FeatureStats feature_stats(const torch::Tensor& features) {
  torch::NoGradGuard no_grad;
  const torch::Tensor x = detail::float64_rows(features, "feature_stats", "features", 2);
  const int64_t n = x.size(0);
  const torch::Tensor mean = x.mean(0);
  const torch::Tensor centered = x - mean;
  // One product instead of torch::cov: the same estimator (N-1), and no dependence on an op that
  // LibTorch 1.13 and 2.x spell differently.
  const torch::Tensor cov = symmetrized(centered.t().mm(centered) / static_cast<double>(n - 1));
  return {mean, cov, n};
}

double frechet_distance(const FeatureStats& a, const FeatureStats& b) {
  torch::NoGradGuard no_grad;
  check_stats(a, "first set");
  check_stats(b, "second set");
  if (a.mean.size(0) != b.mean.size(0))
    throw std::invalid_argument("frechet_distance: the two sets have different feature dimensions (" +
                                std::to_string(a.mean.size(0)) + " and " + std::to_string(b.mean.size(0)) + ")");
  const auto device = a.mean.device();
  const torch::Tensor mu_a = a.mean.to(device, torch::kFloat64);
  const torch::Tensor mu_b = b.mean.to(device, torch::kFloat64);
  const torch::Tensor ca = symmetrized(a.cov.to(device, torch::kFloat64));
  const torch::Tensor cb = symmetrized(b.cov.to(device, torch::kFloat64));

  // S = Ca^(1/2): eigenvalues a hair below zero are round-off of a PSD matrix, hence the clamp.
  const auto eig = torch::linalg_eigh(ca, "L");
  const torch::Tensor& w = std::get<0>(eig);
  const torch::Tensor& v = std::get<1>(eig);
  const torch::Tensor s = (v * w.clamp_min(0).sqrt().unsqueeze(0)).mm(v.t());
  const torch::Tensor m = symmetrized(s.mm(cb).mm(s));
  const double tr_sqrt = torch::linalg_eigvalsh(m, "L").clamp_min(0).sqrt().sum().item<double>();

  const double mean_term = (mu_a - mu_b).pow(2).sum().item<double>();
  const double fd = mean_term + ca.trace().item<double>() + cb.trace().item<double>() - 2.0 * tr_sqrt;
  return fd > 0 ? fd : 0.0;
}

KidResult kernel_inception_distance(const torch::Tensor& real, const torch::Tensor& fake, int64_t subsets,
                                    int64_t subset_size, uint64_t seed) {
  torch::NoGradGuard no_grad;
  const char* metric = "kernel_inception_distance";
  const torch::Tensor x = detail::float64_rows(real, metric, "real", 2);
  const torch::Tensor y = detail::float64_rows(fake, metric, "fake", 2).to(x.device());
  detail::require_same_width(x, y, metric);
  if (subsets < 1) throw std::invalid_argument(std::string(metric) + ": subsets must be >= 1");
  if (subset_size < 2) throw std::invalid_argument(std::string(metric) + ": subset_size must be >= 2");

  const int64_t m = std::min({subset_size, x.size(0), y.size(0)});
  const double d = static_cast<double>(x.size(1));
  const double md = static_cast<double>(m);
  auto kernel = [d](const torch::Tensor& p, const torch::Tensor& q) { return (p.mm(q.t()) / d + 1.0).pow(3); };
  auto off_diagonal_sum = [](const torch::Tensor& k) { return k.sum() - k.diagonal().sum(); };

  // Indices are drawn on the CPU with a private generator so that the same seed gives the same
  // subsets on every device and the caller's global random state is left alone.
  at::Generator generator = at::detail::createCPUGenerator(seed);
  const auto index_options = torch::TensorOptions().dtype(torch::kLong);
  std::vector<double> mmds;
  mmds.reserve(static_cast<size_t>(subsets));
  for (int64_t i = 0; i < subsets; ++i) {
    const torch::Tensor fi = torch::randperm(y.size(0), generator, index_options).narrow(0, 0, m).to(x.device());
    const torch::Tensor ri = torch::randperm(x.size(0), generator, index_options).narrow(0, 0, m).to(x.device());
    const torch::Tensor ys = y.index_select(0, fi);
    const torch::Tensor xs = x.index_select(0, ri);
    const torch::Tensor same = (off_diagonal_sum(kernel(xs, xs)) + off_diagonal_sum(kernel(ys, ys))) / (md * (md - 1));
    const torch::Tensor cross = kernel(xs, ys).sum() * (2.0 / (md * md));
    mmds.push_back((same - cross).item<double>());
  }

  KidResult result;
  for (double v : mmds) result.mean += v;
  result.mean /= static_cast<double>(mmds.size());
  double var = 0;
  for (double v : mmds) var += (v - result.mean) * (v - result.mean);
  result.std = std::sqrt(var / static_cast<double>(mmds.size()));
  return result;
}

}  // namespace distgan::eval
