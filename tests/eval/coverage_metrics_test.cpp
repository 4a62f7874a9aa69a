// Improved precision/recall and the 2-D mixture mode metrics, on hand-placed points whose answers
// can be worked out on paper, and on sampled sets with known behaviour.
#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <stdexcept>

#include "data/importers.h"
#include "trainer/eval/mode_metrics.h"
#include "trainer/eval/precision_recall.h"

namespace distgan::eval {
namespace {

torch::Tensor gaussian(int64_t n, int64_t f, uint64_t seed) {
  at::Generator g = at::detail::createCPUGenerator(seed);
  return torch::randn({n, f}, g, torch::TensorOptions().dtype(torch::kFloat64));
}

torch::Tensor points(std::vector<double> v, int64_t dim) {
  return torch::tensor(v, torch::kFloat64).reshape({-1, dim});
}

// ---- precision and recall ----

TEST(PrecisionRecall, IdenticalSetsGiveOneAndOne) {
  const torch::Tensor x = gaussian(200, 4, 1);
  const PrecisionRecall pr = precision_recall(x, x);
  EXPECT_EQ(pr.precision, 1.0);
  EXPECT_EQ(pr.recall, 1.0);
}

TEST(PrecisionRecall, FarAwaySamplesHaveZeroPrecision) {
  const PrecisionRecall pr = precision_recall(gaussian(200, 4, 2), gaussian(200, 4, 3) + 100.0);
  EXPECT_EQ(pr.precision, 0.0);
  EXPECT_EQ(pr.recall, 0.0);
}

TEST(PrecisionRecall, ModeDroppingKeepsPrecisionAndLosesRecall) {
  // Real: two well separated clusters; fake: fresh samples of the first cluster only.
  const torch::Tensor left = torch::tensor({-10.0, 0.0, 0.0}, torch::kFloat64);
  const torch::Tensor right = torch::tensor({10.0, 0.0, 0.0}, torch::kFloat64);
  const torch::Tensor real = torch::cat({gaussian(400, 3, 4) + left, gaussian(400, 3, 5) + right});
  const torch::Tensor fake = gaussian(400, 3, 6) + left;
  const PrecisionRecall pr = precision_recall(real, fake);
  EXPECT_GT(pr.precision, 0.9);
  EXPECT_GT(pr.recall, 0.35);
  EXPECT_LT(pr.recall, 0.55);
}

TEST(PrecisionRecall, HandPlacedPointsOnALineWithKOne) {
  // Real {0, 1, 3}: radii (nearest other point) 1, 1, 2 -> union [-1, 5].
  //   fake 0.5 and 0.9 inside, 5 exactly on the boundary of 3's ball (counts), 10.5 outside: 3/4.
  // Fake {0.5, 0.9, 5, 10.5}: radii 0.4, 0.4, 4.1, 5.5.
  //   real 0 is 0.5 from 0.5 (> 0.4) and 5 from 5 (> 4.1): outside; 1 is 0.1 from 0.9: inside;
  //   3 is 2 from 5: inside. Recall 2/3.
  const PrecisionRecall pr = precision_recall(points({0, 1, 3}, 1), points({0.5, 0.9, 5, 10.5}, 1), /*k=*/1);
  EXPECT_DOUBLE_EQ(pr.precision, 0.75);
  EXPECT_DOUBLE_EQ(pr.recall, 2.0 / 3.0);
}

TEST(PrecisionRecall, HandPlacedPointsInThePlane) {
  // Real: the unit square's corners, each of radius 1 with k=1 (the adjacent corners).
  // Fake (0.5,0.5) is 0.71 from a corner: in; (2,0) is exactly 1 from (1,0): in (boundary);
  // (2,2) is 1.41 from (1,1) and (-1.5,0.5) is 1.58 from (0,0): out. Precision 1/2.
  // Fake radii: 1.58, 1.58, 2, 2; every corner is 0.71 from (0.5,0.5): recall 1.
  const torch::Tensor real = points({0, 0, 1, 0, 0, 1, 1, 1}, 2);
  const torch::Tensor fake = points({0.5, 0.5, 2, 0, 2, 2, -1.5, 0.5}, 2);
  const PrecisionRecall pr = precision_recall(real, fake, /*k=*/1);
  EXPECT_DOUBLE_EQ(pr.precision, 0.5);
  EXPECT_DOUBLE_EQ(pr.recall, 1.0);
  // k=3: each corner's third neighbour is the opposite corner, radius 1.414: (2,2) is now in.
  EXPECT_DOUBLE_EQ(precision_recall(real, points({0.5, 0.5, 2, 0, 2, 2, -1.5, 0.5, 9, 9}, 2), 3).precision, 0.6);
}

// The metric with the whole distance matrix at once, to check the blocked computation against.
PrecisionRecall unblocked(const torch::Tensor& real, const torch::Tensor& fake, int64_t k) {
  auto radii = [k](const torch::Tensor& x) {
    return std::get<0>(torch::cdist(x, x).topk(k + 1, 1, /*largest=*/false)).select(1, k);
  };
  auto share = [](const torch::Tensor& q, const torch::Tensor& ref, const torch::Tensor& r) {
    return (torch::cdist(q, ref) <= r.unsqueeze(0)).any(1).to(torch::kFloat64).mean().item<double>();
  };
  return {share(fake, real, radii(real)), share(real, fake, radii(fake))};
}

TEST(PrecisionRecall, BlockedComputationMatchesTheFullMatrix) {
  // 4000 reference rows make each 64 MiB block hold ~2100 rows: two blocks with a ragged end.
  const torch::Tensor real = gaussian(4000, 4, 7);
  const torch::Tensor fake = gaussian(3000, 4, 8) * 1.3 + 0.2;
  const PrecisionRecall blocked = precision_recall(real, fake, 3);
  const PrecisionRecall full = unblocked(real, fake, 3);
  // cdist and the |a|^2+|b|^2-2ab route may round a boundary point differently: allow 2 points.
  EXPECT_NEAR(blocked.precision, full.precision, 2.0 / 3000);
  EXPECT_NEAR(blocked.recall, full.recall, 2.0 / 4000);
  EXPECT_GT(blocked.precision, 0.3);
  EXPECT_LT(blocked.precision, 0.99);
}

TEST(PrecisionRecall, RejectsBadArguments) {
  EXPECT_THROW(precision_recall(gaussian(3, 2, 0), gaussian(10, 2, 0), 3), std::invalid_argument);
  EXPECT_THROW(precision_recall(gaussian(10, 2, 0), gaussian(10, 3, 0)), std::invalid_argument);
  EXPECT_THROW(precision_recall(gaussian(10, 2, 0), gaussian(10, 2, 0), 0), std::invalid_argument);
}

// ---- mode metrics ----

torch::Tensor centers_of(data::Mixture kind) {
  std::vector<double> flat;
  for (const auto& [x, y] : data::mixture_modes(kind)) flat.insert(flat.end(), {x, y});
  return points(flat, 2);
}

TEST(ModeMetrics, HandPlacedGridSamples) {
  const torch::Tensor centers = centers_of(data::Mixture::kGrid);
  const double std = data::mixture_default_std(data::Mixture::kGrid);
  ASSERT_EQ(centers.size(0), 25);
  std::vector<double> s;
  auto at = [&](int64_t mode, double dx, double dy) {
    s.push_back(centers[mode][0].item<double>() + dx);
    s.push_back(centers[mode][1].item<double>() + dy);
  };
  for (int64_t j = 0; j < 10; ++j) {  // modes 0-9: two each
    at(j, 0, 0);
    at(j, 0, 0);
  }
  for (int64_t j = 10; j < 20; ++j) at(j, 0, 0);  // modes 10-19: one each
  at(0, 0, 2.9 * std);                            // within 3 std: a third for mode 0
  at(21, 3.1 * std, 0);                           // beyond 3 std: not high quality
  s.insert(s.end(), {100, 100, 1, 1});            // far away; halfway between four modes
  const ModeReport r = mode_metrics(points(s, 2), centers, std);

  EXPECT_EQ(r.modes_captured, 20);
  ASSERT_EQ(r.counts.size(), 25u);
  EXPECT_EQ(r.counts[0], 3);
  EXPECT_EQ(r.counts[9], 2);
  EXPECT_EQ(r.counts[10], 1);
  EXPECT_EQ(r.counts[21], 0);
  EXPECT_DOUBLE_EQ(r.high_quality, 31.0 / 34.0);
  // p over modes: 3/31 once, 2/31 nine times, 1/31 ten times; KL(p || 1/25).
  const double kl = 3.0 / 31 * std::log(3.0 / 31 * 25) + 9 * (2.0 / 31) * std::log(2.0 / 31 * 25) +
                    10 * (1.0 / 31) * std::log(1.0 / 31 * 25);
  EXPECT_NEAR(r.reverse_kl, kl, 1e-12);
}

TEST(ModeMetrics, OneSampleOnEveryModeIsPerfect) {
  const torch::Tensor centers = centers_of(data::Mixture::kGrid);
  const ModeReport r = mode_metrics(centers, centers, 0.05);
  EXPECT_EQ(r.modes_captured, 25);
  EXPECT_EQ(r.high_quality, 1.0);
  EXPECT_NEAR(r.reverse_kl, 0.0, 1e-15);
}

TEST(ModeMetrics, CollapseOnOneModeGivesLogM) {
  const torch::Tensor centers = centers_of(data::Mixture::kRing);
  const torch::Tensor samples = centers[3].unsqueeze(0).repeat({10, 1});
  const ModeReport r = mode_metrics(samples, centers, 0.02);
  EXPECT_EQ(r.modes_captured, 1);
  EXPECT_EQ(r.counts[3], 10);
  EXPECT_NEAR(r.reverse_kl, std::log(8.0), 1e-12);
}

TEST(ModeMetrics, NoHighQualitySampleGivesZeroModesAndNaNKL) {
  const ModeReport r = mode_metrics(points({0, 0, 0.5, 0.5}, 2), centers_of(data::Mixture::kRing), 0.02);
  EXPECT_EQ(r.modes_captured, 0);
  EXPECT_EQ(r.high_quality, 0.0);
  EXPECT_TRUE(std::isnan(r.reverse_kl));
}

TEST(ModeMetrics, TrueRingSamplesCoverEveryModeWithChiSquareQuality) {
  // Samples of the true mixture: all 8 modes, and the share within 3 std of an isotropic 2-D
  // Gaussian is 1 - exp(-9/2) = 0.9889.
  data::MixtureSpec spec;
  spec.kind = data::Mixture::kRing;
  spec.num_samples = 20000;
  spec.seed = 5;
  const data::DatasetContents c = data::make_mixture(spec);
  const torch::Tensor samples = torch::tensor(c.f32).reshape({-1, 2});
  const ModeReport r = mode_metrics(samples, centers_of(data::Mixture::kRing), data::mixture_default_std(spec.kind));
  EXPECT_EQ(r.modes_captured, 8);
  EXPECT_NEAR(r.high_quality, 1.0 - std::exp(-4.5), 0.003);
  EXPECT_LT(r.reverse_kl, 0.002);
  EXPECT_NEAR(r.spread, 1.0, 0.01);  // the data's own spread
  // Squeezed to half the distance from every centre: E[r^2] becomes 2 std^2 / 4 (almost every sample
  // is now within 3 std), against the truncated 2 - 9 e^-4.5 / (1 - e^-4.5) of the data.
  const torch::Tensor centre = centers_of(data::Mixture::kRing).index_select(
      0, std::get<1>((samples.unsqueeze(1) - centers_of(data::Mixture::kRing).unsqueeze(0)).pow(2).sum(2).min(1)));
  const ModeReport squeezed = mode_metrics(centre + 0.5 * (samples - centre), centers_of(data::Mixture::kRing), 0.02);
  EXPECT_NEAR(squeezed.spread, std::sqrt(0.5 / (2 - 9 * std::exp(-4.5) / (1 - std::exp(-4.5)))), 0.01);
  std::vector<int64_t> per_label(8, 0);
  for (int64_t label : c.labels) ++per_label[static_cast<size_t>(label)];
  for (size_t j = 0; j < 8; ++j) EXPECT_LE(r.counts[j], per_label[j]) << "mode " << j;
}

TEST(ModeMetrics, RejectsBadArguments) {
  const torch::Tensor centers = centers_of(data::Mixture::kRing);
  EXPECT_THROW(mode_metrics(gaussian(5, 3, 0), centers, 0.02), std::invalid_argument);
  EXPECT_THROW(mode_metrics(gaussian(5, 2, 0), centers, 0.0), std::invalid_argument);
}

}  // namespace
}  // namespace distgan::eval
