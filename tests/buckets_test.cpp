// Bucket assignment (pure) and loss values against hand-computed cases, model output shapes.
#include <gtest/gtest.h>

#include <cmath>

#include "cluster/gradient_buckets.h"
#include "trainer/model/losses.h"
#include "trainer/model/models.h"

namespace distgan {
namespace {

using Buckets = std::vector<std::vector<size_t>>;

TEST(Buckets, ParametersFillBucketsInOrderUpToTheCap) {
  // Sizes in bytes; cap 100: a bucket closes once it holds >= 100 bytes.
  EXPECT_EQ(cluster::assign_buckets({40, 40, 40, 40}, 100), (Buckets{{0, 1, 2}, {3}}));
  EXPECT_EQ(cluster::assign_buckets({10, 500, 10}, 100), (Buckets{{0, 1}, {2}}));
  EXPECT_EQ(cluster::assign_buckets({500, 10, 10}, 100), (Buckets{{0}, {1, 2}}));
  EXPECT_EQ(cluster::assign_buckets({1, 2, 3}, 1 << 20), (Buckets{{0, 1, 2}}));
  EXPECT_TRUE(cluster::assign_buckets({}, 100).empty());
}

TEST(Buckets, SmallModelsGetSeveralBucketsLargeOnesTheCap) {
  constexpr int64_t kKiB = 1024, kMiB = 1024 * 1024, cap = 4 * kMiB;
  EXPECT_EQ(cluster::effective_bucket_bytes(64 * kMiB, cap), cap);            // large: the cap
  EXPECT_EQ(cluster::effective_bucket_bytes(8 * kMiB, cap), 1 * kMiB);        // an eighth
  EXPECT_EQ(cluster::effective_bucket_bytes(400 * kKiB, cap), 256 * kKiB);    // not under 256 KiB
  EXPECT_EQ(cluster::effective_bucket_bytes(8 * kMiB, 300), 300);            // a smaller cap wins
}

TEST(Buckets, EveryParameterIsInExactlyOneBucket) {
  std::vector<int64_t> sizes;
  for (int i = 0; i < 50; ++i) sizes.push_back((i * 37) % 300 + 1);
  const auto buckets = cluster::assign_buckets(sizes, 256);
  size_t next = 0;
  for (const auto& b : buckets)
    for (size_t i : b) EXPECT_EQ(i, next++);
  EXPECT_EQ(next, sizes.size());
}

TEST(Losses, NonSaturatingMatchesHandComputedValues) {
  const auto real = torch::tensor({0.0, 2.0}), fake = torch::tensor({-1.0, 1.0});
  // softplus(x) = log(1 + e^x); L_D = mean softplus(-real) + mean softplus(fake)
  const double expected_d = (std::log(2.0) + std::log1p(std::exp(-2.0))) / 2 +
                            (std::log1p(std::exp(-1.0)) + std::log1p(std::exp(1.0))) / 2;
  EXPECT_NEAR(discriminator_loss(LossKind::kNonSaturating, real, fake).item<double>(), expected_d, 1e-6);
  const double expected_g = (std::log1p(std::exp(1.0)) + std::log1p(std::exp(-1.0))) / 2;
  EXPECT_NEAR(generator_loss(LossKind::kNonSaturating, fake).item<double>(), expected_g, 1e-6);
}

TEST(Losses, HingeMatchesHandComputedValues) {
  const auto real = torch::tensor({0.5, 2.0}), fake = torch::tensor({-3.0, 0.25});
  // relu(1 - real) = {0.5, 0}; relu(1 + fake) = {0, 1.25}
  EXPECT_NEAR(discriminator_loss(LossKind::kHinge, real, fake).item<double>(), 0.25 + 0.625, 1e-6);
  EXPECT_NEAR(generator_loss(LossKind::kHinge, fake).item<double>(), 1.375, 1e-6);
  EXPECT_THROW(parse_loss("wasserstein"), std::invalid_argument);
}

TEST(Models, OutputShapes) {
  for (int64_t size : {28, 32}) {
    ModelSpec s;
    s.sample_shape = {3, size, size};
    s.ch = 8;
    s.z_dim = 10;
    GanModels m = build_models(s);
    const auto x = m.generator->forward(torch::randn({5, 10}));
    EXPECT_EQ(x.sizes(), (std::vector<int64_t>{5, 3, size, size}));
    EXPECT_LE(x.abs().max().item<double>(), 1.0);  // tanh output
    EXPECT_EQ(m.discriminator->forward(x).sizes(), (std::vector<int64_t>{5}));
  }
  ModelSpec v;
  v.name = "mlp";
  v.sample_shape = {2};
  v.z_dim = 4;
  v.mlp_batchnorm = true;
  GanModels m = build_models(v);
  const auto x = m.generator->forward(torch::randn({6, 4}));
  EXPECT_EQ(x.sizes(), (std::vector<int64_t>{6, 2}));
  EXPECT_EQ(m.discriminator->forward(x).sizes(), (std::vector<int64_t>{6}));
}

TEST(Models, Dcgan28HasThePublishedLayout) {
  ModelSpec s;
  s.sample_shape = {1, 28, 28};
  GanModels m = build_models(s);
  // G: 100*256*7*7 + 2*256 (BN) + 256*128*4*4 + 2*128 + 128*1*4*4 + 1; D: 1*64*16 + 64 + 64*128*16 + 2*128 + 128*49 + 1
  EXPECT_EQ(parameter_count(*m.generator), 1254400 + 512 + 524288 + 256 + 2048 + 1);
  EXPECT_EQ(parameter_count(*m.discriminator), 1024 + 64 + 131072 + 256 + 6272 + 1);
}

TEST(Models, MismatchedDataIsAClearError) {
  ModelSpec s;
  s.sample_shape = {2};
  EXPECT_THROW(build_models(s), std::invalid_argument);
  s.sample_shape = {1, 48, 48};
  try {
    build_models(s);
    FAIL();
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("supports 28x28, 32x32 and 64x64 images; this dataset's are 48x48"),
              std::string::npos);
  }
}

TEST(Models, LatentProjectionEqualsTheTransposedConvolution) {
  torch::manual_seed(3);
  LatentProjection projection(10, 6, 7);
  auto conv = torch::nn::ConvTranspose2d(torch::nn::ConvTranspose2dOptions(10, 6, 7).bias(false));
  {
    torch::NoGradGuard no_grad;
    projection->weight.normal_();
    conv->weight.copy_(projection->weight);
  }
  const auto z = torch::randn({4, 10});
  const auto a = projection->forward(z), b = conv->forward(z.view({4, 10, 1, 1}));
  EXPECT_EQ(a.sizes(), b.sizes());
  EXPECT_TRUE(torch::allclose(a, b, 1e-5, 1e-5));
  // The gradients with respect to the weight agree too.
  a.pow(2).sum().backward();
  b.pow(2).sum().backward();
  EXPECT_TRUE(torch::allclose(projection->weight.grad(), conv->weight.grad(), 1e-4, 1e-4));
}

TEST(Models, InitialisationFollowsDcgan) {
  ModelSpec s;
  s.sample_shape = {1, 28, 28};
  torch::manual_seed(0);
  GanModels m = build_models(s);
  for (auto& p : m.generator->named_parameters()) {
    if (p.key().find("weight") == std::string::npos) continue;
    const bool bn = p.value().dim() == 1;
    EXPECT_NEAR(p.value().mean().item<double>(), bn ? 1.0 : 0.0, 0.01) << p.key();
    EXPECT_NEAR(p.value().std().item<double>(), 0.02, 0.005) << p.key();
  }
}

}  // namespace
}  // namespace distgan
