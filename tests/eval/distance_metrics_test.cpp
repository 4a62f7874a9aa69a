// Fréchet distance, KID and sliced Wasserstein against closed forms and direct computations.
#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <stdexcept>

#include "trainer/eval/frechet.h"
#include "trainer/eval/sliced_wasserstein.h"

namespace distgan::eval {
namespace {

torch::Tensor gaussian(int64_t n, int64_t f, uint64_t seed) {
  at::Generator g = at::detail::createCPUGenerator(seed);
  return torch::randn({n, f}, g, torch::TensorOptions().dtype(torch::kFloat64));
}

torch::Tensor vec(std::vector<double> v) { return torch::tensor(v, torch::kFloat64); }

FeatureStats exact(const torch::Tensor& mean, const torch::Tensor& cov) { return {mean, cov, 0}; }

// ---- Fréchet distance ----

TEST(FrechetDistance, FeatureStatsAreMeanAndUnbiasedCovariance) {
  const auto x = torch::tensor({1.0, 2.0, 3.0, 6.0, 5.0, 4.0}, torch::kFloat32).reshape({3, 2});
  const FeatureStats s = feature_stats(x);
  EXPECT_EQ(s.count, 3);
  EXPECT_EQ(s.mean.scalar_type(), torch::kFloat64);
  EXPECT_TRUE(torch::allclose(s.mean, vec({3, 4})));
  // Centred rows (-2,-2), (0,2), (2,0); sums of products divided by N-1 = 2.
  EXPECT_TRUE(torch::allclose(s.cov, vec({4, 2, 2, 4}).reshape({2, 2})));
}

TEST(FrechetDistance, IdenticalSetsGiveZero) {
  const FeatureStats s = feature_stats(gaussian(500, 16, 1) * 3.0 + 1.0);
  const double scale = 2.0 * s.cov.trace().item<double>();
  EXPECT_LT(frechet_distance(s, s), 1e-6 * scale);
}

TEST(FrechetDistance, RankDeficientCovarianceStaysFiniteAndZeroAgainstItself) {
  // Fewer samples than features: Ca has a null space, where scipy's sqrtm needs an epsilon.
  const FeatureStats s = feature_stats(gaussian(10, 32, 2));
  const double fd = frechet_distance(s, s);
  EXPECT_TRUE(std::isfinite(fd));
  EXPECT_LT(fd, 1e-6 * 2.0 * s.cov.trace().item<double>());
}

TEST(FrechetDistance, ShiftedUnitGaussiansGiveSquaredShift) {
  const torch::Tensor mu = vec({1, 1, 1, 1, 0, 0, 0, 0});  // |mu|^2 = 4
  const FeatureStats a = feature_stats(gaussian(20000, 8, 3));
  const FeatureStats b = feature_stats(gaussian(20000, 8, 4) + mu);
  // Sampling error: the cross term 2 mu.(mean error) has std 2|mu| sqrt(2/N) = 0.04.
  EXPECT_NEAR(frechet_distance(a, b), 4.0, 0.15);
}

TEST(FrechetDistance, DiagonalCovariancesMatchClosedForm) {
  // |mu_a - mu_b|^2 + sum (sqrt(s_a) - sqrt(s_b))^2 = 9 + (1 + 1 + 6.25).
  const auto a = exact(vec({1, 2, 3}), torch::diag(vec({1, 4, 9})));
  const auto b = exact(vec({0, 0, 1}), torch::diag(vec({4, 1, 0.25})));
  EXPECT_NEAR(frechet_distance(a, b), 17.25, 1e-9);
  EXPECT_NEAR(frechet_distance(b, a), 17.25, 1e-9);
}

TEST(FrechetDistance, RotatedCovariancesMatchClosedForm) {
  // The same two Gaussians in a rotated basis: the distance is rotation invariant, and the
  // covariances are no longer diagonal.
  const double c = std::cos(0.7), s = std::sin(0.7);
  const torch::Tensor rz = vec({c, -s, 0, s, c, 0, 0, 0, 1}).reshape({3, 3});
  const torch::Tensor rx = vec({1, 0, 0, 0, c, -s, 0, s, c}).reshape({3, 3});
  const torch::Tensor r = rz.mm(rx);
  auto rotate = [&r](const torch::Tensor& mean, const torch::Tensor& diag) {
    return exact(r.mv(mean), r.mm(torch::diag(diag)).mm(r.t()));
  };
  const auto a = rotate(vec({1, 2, 3}), vec({1, 4, 9}));
  const auto b = rotate(vec({0, 0, 1}), vec({4, 1, 0.25}));
  EXPECT_NEAR(frechet_distance(a, b), 17.25, 1e-9);
}

TEST(FrechetDistance, NonCommutingCovariancesMatchTwoByTwoFormula) {
  // For 2x2 PSD matrices tr sqrt(M) = sqrt(tr M + 2 sqrt(det M)); here M ~ Ca Cb with
  // tr(Ca Cb) = 8 and det = det Ca det Cb = 9, so FD = tr Ca + tr Cb - 2 sqrt(14) (equal means).
  const auto a = exact(vec({0.5, -1}), vec({2, 1, 1, 2}).reshape({2, 2}));
  const auto b = exact(vec({0.5, -1}), vec({1, 0, 0, 3}).reshape({2, 2}));
  EXPECT_NEAR(frechet_distance(a, b), 8.0 - 2.0 * std::sqrt(14.0), 1e-12);
}

TEST(FrechetDistance, RejectsMismatchedDimensions) {
  EXPECT_THROW(frechet_distance(feature_stats(gaussian(5, 3, 0)), feature_stats(gaussian(5, 4, 0))),
               std::invalid_argument);
  EXPECT_THROW(feature_stats(gaussian(1, 3, 0)), std::invalid_argument);
  EXPECT_THROW(feature_stats(torch::zeros({4})), std::invalid_argument);
}

// ---- Kernel inception distance ----

// The unbiased MMD^2 with k(x, y) = (x.y / d + 1)^3, by explicit loops over all pairs.
double direct_mmd2(const torch::Tensor& x, const torch::Tensor& y) {
  const int64_t m = x.size(0), d = x.size(1);
  auto k = [d](const torch::Tensor& p, const torch::Tensor& q) {
    double dot = 0;
    for (int64_t i = 0; i < d; ++i) dot += p[i].item<double>() * q[i].item<double>();
    return std::pow(dot / static_cast<double>(d) + 1.0, 3);
  };
  double xx = 0, yy = 0, xy = 0;
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < m; ++j) {
      if (i != j) {
        xx += k(x[i], x[j]);
        yy += k(y[i], y[j]);
      }
      xy += k(x[i], y[j]);
    }
  return (xx + yy) / static_cast<double>(m * (m - 1)) - 2.0 * xy / static_cast<double>(m * m);
}

TEST(KernelInceptionDistance, MatchesDirectComputationWhenOneSubsetHoldsEverything) {
  const torch::Tensor real = vec({0.1, 0.5, -0.3, 1.2, 0.0, 0.4, -0.7, 0.2, 0.9, 0.3, -1.1, 0.6}).reshape({4, 3});
  const torch::Tensor fake = vec({0.8, -0.2, 0.5, 0.3, 1.4, -0.6, -0.4, 0.7, 0.1, 1.0, 0.2, 0.9}).reshape({4, 3});
  const double expected = direct_mmd2(real, fake);
  // subset_size is capped at min(n_real, n_fake) = 4: each subset is a permutation of all rows.
  const KidResult one = kernel_inception_distance(real, fake, /*subsets=*/1, /*subset_size=*/1000);
  EXPECT_NEAR(one.mean, expected, 1e-12 * std::abs(expected) + 1e-15);
  EXPECT_EQ(one.std, 0.0);
  const KidResult several = kernel_inception_distance(real, fake, /*subsets=*/5, /*subset_size=*/4, /*seed=*/9);
  EXPECT_NEAR(several.mean, expected, 1e-12 * std::abs(expected) + 1e-15);
  EXPECT_LT(several.std, 1e-12);
}

TEST(KernelInceptionDistance, NearZeroForOneDistributionAndClearlyPositiveForAShift) {
  const torch::Tensor real = gaussian(1000, 16, 10);
  const KidResult same = kernel_inception_distance(real, gaussian(1000, 16, 11), 20, 500);
  const KidResult shifted = kernel_inception_distance(real, gaussian(1000, 16, 12) + 0.5, 20, 500);
  EXPECT_LT(std::abs(same.mean), 0.01);
  EXPECT_GT(shifted.mean, 0.1);
  EXPECT_GT(shifted.mean, 20 * std::abs(same.mean));
}

TEST(KernelInceptionDistance, DeterministicForASeed) {
  const torch::Tensor real = gaussian(300, 8, 20), fake = gaussian(200, 8, 21) * 1.2;
  const KidResult a = kernel_inception_distance(real, fake, 10, 100, 7);
  const KidResult b = kernel_inception_distance(real, fake, 10, 100, 7);
  const KidResult c = kernel_inception_distance(real, fake, 10, 100, 8);
  EXPECT_EQ(a.mean, b.mean);
  EXPECT_EQ(a.std, b.std);
  EXPECT_NE(a.mean, c.mean);
  EXPECT_GT(a.std, 0.0);
}

TEST(KernelInceptionDistance, RejectsBadArguments) {
  EXPECT_THROW(kernel_inception_distance(gaussian(10, 3, 0), gaussian(10, 4, 0)), std::invalid_argument);
  EXPECT_THROW(kernel_inception_distance(gaussian(10, 3, 0), gaussian(1, 3, 0)), std::invalid_argument);
  EXPECT_THROW(kernel_inception_distance(gaussian(10, 3, 0), gaussian(10, 3, 0), 0), std::invalid_argument);
}

// ---- Sliced Wasserstein ----

TEST(SlicedWasserstein, IdenticalSetsGiveZero) {
  const torch::Tensor a = gaussian(300, 5, 30);
  EXPECT_EQ(sliced_wasserstein(a, a), 0.0);
}

TEST(SlicedWasserstein, OneDimensionalShiftIsExact) {
  // In 1-D every direction is +1 or -1, and W1 of a shift is the shift.
  const torch::Tensor a = vec({0, 3, 1, 2}).reshape({4, 1});
  EXPECT_NEAR(sliced_wasserstein(a, a + 2.5, 16), 2.5, 1e-12);
}

TEST(SlicedWasserstein, UnequalSizesIntegrateTheQuantileFunctions) {
  // 1-D, so each direction is +1 or -1. Qa steps through 0, 1, 2, 3 in quarters, Qb through
  // 0, 0.5, ..., 3.5 in eighths: they differ by 0.5 on half of (0, 1), so W1 = 0.25 exactly,
  // whichever way the line is oriented and whichever set comes first.
  const torch::Tensor a = vec({0, 1, 2, 3}).reshape({4, 1});
  const torch::Tensor b = vec({3.5, 0, 0.5, 1, 1.5, 2, 2.5, 3}).reshape({8, 1});
  EXPECT_NEAR(sliced_wasserstein(a, b, 8), 0.25, 1e-12);
  EXPECT_NEAR(sliced_wasserstein(b, a, 8), 0.25, 1e-12);
  // Sizes 2 and 3 share no inner breakpoint: pieces (0,1/3], (1/3,1/2], (1/2,2/3], (2/3,1] give
  // |0-0|/3 + |0-6|/6 + |9-6|/6 + |9-12|/3 = 2.5.
  const torch::Tensor c = vec({0, 9}).reshape({2, 1});
  const torch::Tensor d = vec({0, 6, 12}).reshape({3, 1});
  EXPECT_NEAR(sliced_wasserstein(c, d, 8), 2.5, 1e-12);
}

TEST(SlicedWasserstein, ShiftAveragesTheProjectedShiftOverDirections) {
  // A shift by v moves every projection by <v, theta>: E|<v, theta>| = |v| 2/pi in 2-D, |v|/2 in 3-D.
  // Monte Carlo error over 4096 directions is under 1% (std of |cos| is 0.31 in 2-D, 0.29 in 3-D).
  const torch::Tensor a2 = gaussian(400, 2, 40);
  EXPECT_NEAR(sliced_wasserstein(a2, a2 + vec({3, 4}), 4096), 5.0 * 2.0 / M_PI, 0.03 * 5.0 * 2.0 / M_PI);
  const torch::Tensor a3 = gaussian(400, 3, 41);
  EXPECT_NEAR(sliced_wasserstein(a3, a3 + vec({2, -1, 2}), 4096), 1.5, 0.03 * 1.5);
}

TEST(SlicedWasserstein, DeterministicForASeed) {
  const torch::Tensor a = gaussian(200, 6, 50), b = gaussian(150, 6, 51) + 0.3;
  EXPECT_EQ(sliced_wasserstein(a, b, 64, 3), sliced_wasserstein(a, b, 64, 3));
  EXPECT_NE(sliced_wasserstein(a, b, 64, 3), sliced_wasserstein(a, b, 64, 4));
  EXPECT_THROW(sliced_wasserstein(a, gaussian(10, 5, 0)), std::invalid_argument);
}

}  // namespace
}  // namespace distgan::eval
