// The GAN-quality building blocks against hand-computed cases: EMA arithmetic, the R1 and WGAN-GP
// penalties, spectral normalisation, and the conditional (embedding / projection) models.
#include <gtest/gtest.h>

#include <cmath>

#include "trainer/step/adversarial_step.h"
#include "trainer/config/config.h"
#include "trainer/config/run_options.h"
#include "trainer/model/ema.h"
#include "trainer/model/losses.h"
#include "trainer/state/model_file.h"
#include "trainer/model/models.h"
#include "tests/test_models.h"

namespace distgan {
namespace {

namespace nn = torch::nn;

TEST(Ema, BetaFollowsTheHalfLifeInImagesAndTheRampUp) {
  // 10 kimg half-life, 128 images a step: beta = 0.5^(128 / 10000).
  EXPECT_NEAR(ema_beta(10, 0, 1'000'000, 128), std::pow(0.5, 128.0 / 10000.0), 1e-15);
  // Ramp-up 0.05 after 1,280 images: half-life min(10000, 64) = 64 images, so beta = 0.5^2.
  EXPECT_NEAR(ema_beta(10, 0.05, 1280, 128), 0.25, 1e-15);
  // Late in training the ramp-up no longer binds.
  EXPECT_NEAR(ema_beta(10, 0.05, 10'000'000, 128), std::pow(0.5, 128.0 / 10000.0), 1e-15);
  EXPECT_EQ(ema_beta(0, 0.05, 1000, 128), 0.0);  // no EMA: a copy
  // After n updates the old value weighs 0.5^(n * batch / half-life): one half-life = half.
  double weight = 1;
  for (int i = 0; i < 100; ++i) weight *= ema_beta(12.8, 0, 1'000'000, 128);
  EXPECT_NEAR(weight, 0.5, 1e-12);
}

TEST(Ema, UpdateMovesParametersAndCopiesBuffers) {
  nn::Sequential model(nn::Linear(2, 2), nn::BatchNorm1d(2));
  nn::Sequential ema(nn::Linear(2, 2), nn::BatchNorm1d(2));
  torch::NoGradGuard no_grad;
  for (auto& p : model->parameters()) p.fill_(1.0);
  for (auto& p : ema->parameters()) p.fill_(3.0);
  model->named_buffers()["1.running_mean"].fill_(7.0);
  ema_update(*ema, *model, 0.75);
  for (auto& p : ema->parameters()) EXPECT_TRUE(torch::allclose(p, torch::full_like(p, 0.75 * 3 + 0.25 * 1)));
  EXPECT_TRUE(torch::equal(ema->named_buffers()["1.running_mean"], torch::full({2}, 7.0)));
  for (auto& p : model->parameters()) EXPECT_TRUE(torch::equal(p, torch::ones_like(p)));  // G untouched
}

TEST(Ema, ModelsWithEmaStartEqualAndTheEmaTakesNoGradient) {
  ModelSpec spec = testing::small_dcgan();
  spec.ema = true;
  GanModels m = build_models(spec);
  ASSERT_TRUE(m.generator_ema);
  auto g = m.generator->named_parameters();
  for (const auto& p : m.generator_ema->named_parameters()) {
    EXPECT_TRUE(torch::equal(p.value(), g[p.key()])) << p.key();
    EXPECT_FALSE(p.value().requires_grad()) << p.key();
  }
}

// D(x) = v . tanh(W x): grad_x D = W^T (v * (1 - tanh^2(W x))), written out by hand.
TEST(Penalties, R1IsTheSquaredInputGradientOfATinyNetwork) {
  torch::manual_seed(3);
  const torch::Tensor w = torch::randn({3, 2}, torch::kFloat64).requires_grad_(true);
  const torch::Tensor v = torch::randn({3}, torch::kFloat64);
  const torch::Tensor x = torch::randn({4, 2}, torch::kFloat64).requires_grad_(true);
  const torch::Tensor logits = torch::mv(torch::tanh(torch::mm(x, w.t())), v);
  const torch::Tensor penalty = squared_input_gradient(logits, x);
  double expected = 0;
  const torch::Tensor a = torch::tanh(torch::mm(x, w.t())).detach();
  for (int64_t i = 0; i < 4; ++i) {
    const torch::Tensor grad = torch::mv(w.detach().t(), v * (1 - a[i].pow(2)));
    expected += grad.pow(2).sum().item<double>() / 4;
  }
  EXPECT_NEAR(penalty.item<double>(), expected, 1e-12);
  // The penalty's graph reaches W (create_graph): its gradient matches central differences.
  const torch::Tensor dw = torch::autograd::grad({penalty}, {w})[0];
  auto penalty_at = [&](const torch::Tensor& wt) {
    const torch::Tensor xx = x.detach().clone().requires_grad_(true);
    return squared_input_gradient(torch::mv(torch::tanh(torch::mm(xx, wt.t())), v), xx).item<double>();
  };
  const double h = 1e-6;
  torch::Tensor wp = w.detach().clone(), wm = w.detach().clone();
  wp[1][0] += h;
  wm[1][0] -= h;
  EXPECT_NEAR(dw[1][0].item<double>(), (penalty_at(wp) - penalty_at(wm)) / (2 * h), 1e-6);
}

// A linear critic w . x has gradient w everywhere: the penalty is (|w| - 1)^2 for any eps.
TEST(Penalties, GradientPenaltyOfALinearCriticIsHandComputed) {
  const torch::Tensor w = torch::tensor({3.0, 4.0}, torch::kFloat64);  // |w| = 5
  auto critic = [&](const torch::Tensor& x) { return torch::mv(x, w); };
  const torch::Tensor real = torch::randn({6, 2}, torch::kFloat64), fake = torch::randn({6, 2}, torch::kFloat64);
  const torch::Tensor gp = gradient_penalty(critic, real, fake, torch::rand({6}, torch::kFloat64));
  EXPECT_NEAR(gp.item<double>(), 16.0, 1e-9);
  // WGAN losses: D = mean D(fake) - mean D(real); G = -mean D(fake).
  const torch::Tensor r = torch::tensor({1.0, 3.0}), f = torch::tensor({-2.0, 0.0});
  EXPECT_FLOAT_EQ(discriminator_loss(LossKind::kWganGp, r, f).item<float>(), -1.0f - 2.0f);
  EXPECT_FLOAT_EQ(generator_loss(LossKind::kWganGp, f).item<float>(), 1.0f);
  EXPECT_EQ(parse_loss("wgan-gp"), LossKind::kWganGp);
}

TEST(SpectralNorm, PowerIterationsNormaliseTheLargestSingularValueToOne) {
  torch::manual_seed(5);
  SNLinear layer(6, 4);
  {
    torch::NoGradGuard no_grad;
    layer->weight.copy_(torch::randn({4, 6}) * 3);
  }
  layer->train();
  const torch::Tensor x = torch::randn({2, 6});
  for (int i = 0; i < 30; ++i) layer->forward(x);  // each training forward runs one iteration
  const torch::Tensor normalised = spectral_normalized(layer->weight, layer->sn_u, layer->sn_v, false);
  const double top = std::get<1>(torch::svd(normalised.detach()))[0].item<double>();
  EXPECT_NEAR(top, 1.0, 1e-3);
  // The forward uses W / sigma: same output as a plain linear layer with the normalised weight.
  layer->eval();
  EXPECT_TRUE(torch::allclose(layer->forward(x), torch::linear(x, normalised, layer->bias), 1e-5, 1e-6));
  // The iteration state is in the buffers (so checkpoints carry it).
  EXPECT_EQ(layer->named_buffers().size(), 2u);
}

TEST(SpectralNorm, DcganDiscriminatorUsesItAndDropsBatchNorm) {
  ModelSpec spec = testing::small_dcgan();
  spec.d_spectral_norm = true;
  GanModels m = build_models(spec);
  int sn = 0, bn = 0;
  for (const auto& child : m.discriminator->modules(false)) {
    sn += child->name().find("SNConv2d") != std::string::npos;
    bn += child->name().find("BatchNorm") != std::string::npos;
  }
  EXPECT_EQ(sn, 3);
  EXPECT_EQ(bn, 0);
  EXPECT_EQ(discriminate(m.discriminator, torch::randn({5, 1, 28, 28}), {}).sizes(), (std::vector<int64_t>{5}));
}

TEST(Conditional, ProjectionDiscriminatorAddsTheClassTermByHand) {
  ModelSpec spec = testing::small_mlp(5, 1);
  spec.num_classes = 4;
  GanModels m = build_models(spec);
  ASSERT_TRUE(is_conditional(m.generator));
  ASSERT_TRUE(is_conditional(m.discriminator));
  const torch::Tensor x = torch::randn({3, 2});
  const torch::Tensor y = torch::tensor({0, 2, 3}, torch::kInt64);
  torch::NoGradGuard no_grad;
  // D = Linear(2, 5), LeakyReLU, Linear(5, 1), Flatten; projection embedding [4, 5].
  auto params = m.discriminator->named_parameters();
  const torch::Tensor h = torch::leaky_relu(torch::linear(x, params["0.weight"], params["0.bias"]), 0.2);
  const torch::Tensor out = torch::linear(h, params["2.weight"], params["2.bias"]).reshape({3});
  const torch::Tensor expected = out + (params["class_projection.weight"].index_select(0, y) * h).sum(1);
  EXPECT_TRUE(torch::allclose(discriminate(m.discriminator, x, y), expected, 1e-5, 1e-6));
  // Without the labels the unconditional output would be `out`; a conditional D refuses that.
  EXPECT_THROW(discriminate(m.discriminator, x, {}), std::invalid_argument);

  // G: the same z with another class gives another sample; the same class the same one.
  m.generator->eval();
  const torch::Tensor z = torch::randn({1, 3}).repeat({2, 1});
  const torch::Tensor a = generate(m.generator, z, torch::tensor({1, 1}, torch::kInt64));
  EXPECT_TRUE(torch::allclose(a[0], a[1]));
  const torch::Tensor b = generate(m.generator, z, torch::tensor({1, 2}, torch::kInt64));
  EXPECT_FALSE(torch::allclose(b[0], b[1]));
  // G's input is z scaled elementwise by the class code.
  const torch::Tensor code = m.generator->named_parameters()["class_embedding.weight"][2];
  EXPECT_TRUE(torch::allclose(b[1], m.generator->forward(z[1].unsqueeze(0) * code)[0], 1e-5, 1e-6));
}

TEST(Conditional, DcganTakesLabelsAndItsEmaCopiesTheEmbedding) {
  ModelSpec spec = testing::small_dcgan();
  spec.num_classes = 10;
  spec.ema = true;
  GanModels m = build_models(spec);
  const torch::Tensor labels = torch::arange(10);
  EXPECT_EQ(generate(m.generator, torch::randn({10, 8}), labels).sizes(), (std::vector<int64_t>{10, 1, 28, 28}));
  EXPECT_EQ(discriminate(m.discriminator, torch::randn({10, 1, 28, 28}), labels).sizes(),
            (std::vector<int64_t>{10}));
  EXPECT_TRUE(torch::equal(m.generator_ema->named_parameters()["class_embedding.weight"],
                           m.generator->named_parameters()["class_embedding.weight"]));
}

TEST(Config, NestedKeysParseValidateAndPrint) {
  const Config c = parse_config("training:\n  ema:\n    half_life_kimg: 2.5\n  r1:\n    gamma: 0.1\n    every: 4\n",
                                "t.yaml");
  EXPECT_EQ(c.training.ema_half_life_kimg, 2.5);
  EXPECT_EQ(c.training.r1_gamma, 0.1);
  EXPECT_EQ(c.training.r1_every, 4);
  const std::string printed = print_config(c);
  EXPECT_NE(printed.find("  ema:\n    half_life_kimg: 2.5"), std::string::npos) << printed;
  const Config again = parse_config(printed, "printed");
  EXPECT_EQ(again.training.r1_every, 4);
  try {
    parse_config("training:\n  r1:\n    gama: 1\n", "t.yaml");
    FAIL() << "a misspelt nested key was accepted";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("t.yaml:3: unknown key 'training.r1.gama'; did you mean 'training.r1.gamma'?"),
              std::string::npos)
        << e.what();
  }
  Config o;
  apply_override(o, "training.ema.half_life_kimg=0");
  EXPECT_EQ(o.training.ema_half_life_kimg, 0);
  EXPECT_THROW(apply_override(o, "training.r1.every=0"), ConfigError);
}

TEST(CategoricalLatent, FirstCoordinatePicksAnEquallyLikelyCodeThatReplacesIt) {
  torch::manual_seed(3);
  CategoricalLatent latent(3, 4);
  // Phi(-1) = 0.159, Phi(-0.1) = 0.460, Phi(0.1) = 0.540, Phi(2) = 0.977: bins 0, 1, 2, 3 of 4.
  const torch::Tensor z = torch::tensor({-1.0f, 5.0f, 6.0f, -0.1f, 7.0f, 8.0f, 0.1f, 9.0f, 1.0f, 2.0f, 3.0f, 4.0f})
                              .view({4, 3});
  EXPECT_TRUE(torch::equal(latent->category(z), torch::tensor({0, 1, 2, 3}, torch::kInt64)));
  const torch::Tensor out = latent->forward(z);
  ASSERT_EQ(out.sizes(), (std::vector<int64_t>{4, 5}));
  EXPECT_TRUE(torch::equal(out.narrow(1, 0, 2), z.narrow(1, 1, 2)));     // the rest of z passes through
  EXPECT_TRUE(torch::equal(out.narrow(1, 2, 3), latent->codes.detach()));  // code c for category c
  // Equally likely under z ~ N(0, 1): 200,000 draws, each of 8 bins within 1% of 1/8.
  CategoricalLatent eight(2, 8);
  const torch::Tensor share = torch::bincount(eight->category(torch::randn({200000, 2})), {}, 8).to(torch::kDouble) / 200000;
  EXPECT_LT((share - 0.125).abs().max().item<double>(), 0.01) << share;
  // G's codes learn: they get a gradient through G's loss.
  latent->forward(z).sum().backward();
  EXPECT_TRUE(torch::equal(latent->codes.grad(), torch::full({4, 3}, 1.0f)));
}

TEST(CategoricalLatent, MlpGeneratorTakesItAndOtherModelsRefuseIt) {
  Config config;
  apply_override(config, "model.name=mlp");
  apply_override(config, "model.z_dim=4");
  apply_override(config, "model.latent_categories=16");
  apply_override(config, "training.ema.half_life_kimg=10");
  GanModels m = build_models(model_spec(config, {2}));
  EXPECT_EQ(m.generator->forward(torch::randn({5, 4})).sizes(), (std::vector<int64_t>{5, 2}));
  EXPECT_EQ(m.generator->named_parameters()["0.codes"].sizes(), (std::vector<int64_t>{16, 4}));
  EXPECT_TRUE(torch::equal(m.generator_ema->named_parameters()["0.codes"], m.generator->named_parameters()["0.codes"]));
  apply_override(config, "model.name=dcgan");
  try {
    model_spec(config, {1, 28, 28});
    FAIL() << "dcgan with latent categories was accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("model.latent_categories: only for unconditional mlp models (this one is dcgan)"),
              std::string::npos)
        << e.what();
  }
  // The noise scale reaches G's CategoricalLatent, and is refused without categories.
  apply_override(config, "model.name=mlp");
  apply_override(config, "model.latent_noise_scale=0.25");
  GanModels scaled = build_models(model_spec(config, {2}));
  auto latent = std::dynamic_pointer_cast<CategoricalLatentImpl>(scaled.generator->ptr(0));
  ASSERT_TRUE(latent);
  EXPECT_EQ(latent->noise_scale, 0.25);
  EXPECT_THROW(parse_config("model:\n  latent_noise_scale: 0\n", "t.yaml"), ConfigError);
  apply_override(config, "model.latent_categories=0");
  try {
    model_spec(config, {2});
    FAIL() << "a latent noise scale without latent categories was accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("model.latent_noise_scale: scales the continuous part of a categorical latent; "
                                         "set model.latent_categories too"),
              std::string::npos)
        << e.what();
  }
}

TEST(CategoricalLatent, NoiseScaleShrinksTheContinuousPartOnly) {
  torch::manual_seed(4);
  CategoricalLatent latent(3, 4, 0.3);
  const torch::Tensor z = torch::tensor({-1.0f, 5.0f, 6.0f, 2.0f, -7.0f, 8.0f}).view({2, 3});
  const torch::Tensor out = latent->forward(z);
  // [5, 6] * 0.3 and [-7, 8] * 0.3, then the codes of bins 0 (Phi(-1) = 0.16) and 3 (Phi(2) = 0.98).
  EXPECT_TRUE(torch::allclose(out.narrow(1, 0, 2), torch::tensor({1.5f, 1.8f, -2.1f, 2.4f}).view({2, 2})));
  EXPECT_TRUE(torch::equal(out.narrow(1, 2, 3), latent->codes.detach().index_select(0, torch::tensor({0, 3}))));
}

TEST(LearningRateSchedule, LinearDecayStartsAtItsShareOfTheSteps) {
  // From step 1: 1 at step 1, (1 - 50/100) at step 51, (1 - 99/100) at the last step.
  EXPECT_NEAR(linear_decay_factor(1, 100, 0), 1.0, 1e-12);
  EXPECT_NEAR(linear_decay_factor(51, 100, 0), 0.5, 1e-12);
  EXPECT_NEAR(linear_decay_factor(100, 100, 0), 0.01, 1e-12);
  // Decay over the last 20 steps: full rate through step 81, then 19/20, ..., 1/20.
  EXPECT_NEAR(linear_decay_factor(81, 100, 0.8), 1.0, 1e-12);
  EXPECT_NEAR(linear_decay_factor(82, 100, 0.8), 0.95, 1e-12);
  EXPECT_NEAR(linear_decay_factor(91, 100, 0.8), 0.5, 1e-12);
  EXPECT_NEAR(linear_decay_factor(100, 100, 0.8), 0.05, 1e-12);
  EXPECT_NEAR(linear_decay_factor(150, 100, 0.8), 0.0, 1e-12);  // past the end (steps lowered on resume)
  const Config c = parse_config("training:\n  lr_schedule: linear\n  lr_decay_start: 0.75\n", "t.yaml");
  EXPECT_EQ(c.training.lr_decay_start, 0.75);
  EXPECT_THROW(parse_config("training:\n  lr_decay_start: 1\n", "t.yaml"), ConfigError);
}

}  // namespace
}  // namespace distgan
