// The k-NN support estimate (outside_support): where a Gaussian blob's region ends, how much fresh
// data it holds, and the argument errors.
#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <stdexcept>
#include <string>

#include "trainer/eval/support.h"

namespace distgan::eval {
namespace {

torch::Tensor gaussian(int64_t n, int64_t f, uint64_t seed) {
  at::Generator g = at::detail::createCPUGenerator(seed);
  return torch::randn({n, f}, g, torch::TensorOptions().dtype(torch::kFloat64));
}

TEST(OutsideSupport, AGaussianBlobsRegionEndsNearThreeStandardDeviations) {
  const torch::Tensor real = gaussian(4000, 2, 3);
  // With coverage 0.99 the density level set of a 2-D standard normal is the disc of radius
  // sqrt(-2 ln 0.01) = 3.03: points well inside and well outside it, along different directions.
  const torch::Tensor points =
      torch::tensor({0.0, 0.0, 1.0, 0.0, 0.0, -2.0, -1.5, 1.5, 4.5, 0.0, 0.0, -5.0, 10.0, 10.0}, torch::kFloat64)
          .reshape({-1, 2});
  const torch::Tensor expected = torch::tensor({false, false, false, false, true, true, true});
  EXPECT_TRUE(torch::equal(outside_support(real, points, 5, 0.99), expected)) << outside_support(real, points, 5, 0.99);
  // float32 points against float64 reals: the same answer.
  EXPECT_TRUE(torch::equal(outside_support(real, points.to(torch::kFloat32), 5, 0.99), expected));
}

TEST(OutsideSupport, FreshSamplesFallOutsideAboutOneMinusCoverageOfTheTime) {
  const torch::Tensor real = gaussian(2000, 2, 5);
  const torch::Tensor fresh = gaussian(5000, 2, 6);
  const double outside = outside_support(real, fresh, 5, 0.99).to(torch::kFloat64).mean().item<double>();
  EXPECT_GT(outside, 0.003);
  EXPECT_LT(outside, 0.025);
  // A wider region (coverage 1: the loosest real's radius) leaves fewer outside; a narrower one more.
  EXPECT_LT(outside_support(real, fresh, 5, 1.0).to(torch::kFloat64).mean().item<double>(), outside);
  const double half = outside_support(real, fresh, 5, 0.5).to(torch::kFloat64).mean().item<double>();
  EXPECT_GT(half, 0.35);
  EXPECT_LT(half, 0.65);
}

TEST(OutsideSupport, BadArgumentsAreRefusedNamingThem) {
  const torch::Tensor real = gaussian(10, 2, 1);
  auto message = [&](const torch::Tensor& r, const torch::Tensor& p, int64_t k, double coverage) -> std::string {
    try {
      outside_support(r, p, k, coverage);
    } catch (const std::invalid_argument& e) {
      return e.what();
    }
    return "accepted";
  };
  EXPECT_EQ(message(real, real, 0, 0.99), "outside_support: k must be >= 1, got 0");
  EXPECT_EQ(message(real, real, 3, 0.0).find("outside_support: coverage must be in (0, 1]"), 0u);
  EXPECT_EQ(message(real, real, 3, 1.5).find("outside_support: coverage must be in (0, 1]"), 0u);
  EXPECT_EQ(message(real, gaussian(4, 3, 2), 3, 0.99).find("outside_support: the two sets have different feature"), 0u);
  EXPECT_EQ(message(real, real, 10, 0.99), "outside_support: real needs at least 11 rows, got 10");
  EXPECT_EQ(message(real, torch::zeros({4}), 3, 0.99).find("outside_support: points must be a [N, F] matrix"), 0u);
}

}  // namespace
}  // namespace distgan::eval
