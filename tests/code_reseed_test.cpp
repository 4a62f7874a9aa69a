// Re-seeding dead latent codes (trainer/code_reseed.h) on a generator set by hand so that G(z) is the
// first two coordinates of z's code: which codes count as dead is then known on paper.
#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>

#include <stdexcept>
#include <string>
#include <vector>

#include "trainer/code_reseed.h"
#include "trainer/config.h"
#include "trainer/model_file.h"
#include "trainer/optimizer_state.h"

namespace distgan {
namespace {

Config reseed_config() {
  Config config;
  apply_override(config, "model.name=mlp");
  apply_override(config, "model.z_dim=3");
  apply_override(config, "model.mlp_width=8");
  apply_override(config, "model.mlp_depth=2");
  apply_override(config, "model.latent_categories=6");
  apply_override(config, "model.latent_noise_scale=0.3");
  apply_override(config, "training.code_reseed.every=100");
  return config;
}

// G = [latent, Linear(5, 8), ReLU, Linear(8, 8), ReLU, Linear(8, 2)]: the first layer copies +-code[0]
// and +-code[1] into four units (the noise part gets weight 0), the second passes them on, the last
// takes the differences, so G(z) = (code[0], code[1]).
GanModels code_echoing_models() {
  GanModels m = build_models(model_spec(reseed_config(), {2}));
  torch::NoGradGuard no_grad;
  auto p = m.generator->named_parameters();
  for (auto& item : p) item.value().zero_();
  // Inputs 0-1 are the scaled noise, 2-4 the code.
  p["1.weight"][0][2] = 1;
  p["1.weight"][1][3] = 1;
  p["1.weight"][2][2] = -1;
  p["1.weight"][3][3] = -1;
  p["3.weight"].copy_(torch::eye(8));
  p["5.weight"][0][0] = 1;
  p["5.weight"][0][2] = -1;
  p["5.weight"][1][1] = 1;
  p["5.weight"][1][3] = -1;
  // Codes 0-3 sit inside a standard normal blob, 4 and 5 far outside it.
  p["0.codes"].copy_(torch::tensor({0.0, 0.0, 7.0, 0.5, 0.0, 7.0, 0.0, -0.5, 7.0,  //
                                    1.0, 1.0, 7.0, 8.0, 8.0, 7.0, -9.0, 0.0, 7.0})
                         .reshape({6, 3}));
  for (auto& item : m.generator_ema->named_parameters()) item.value().copy_(p[item.key()]);
  return m;
}

torch::Tensor blob(int64_t n, uint64_t seed) {
  at::Generator g = at::detail::createCPUGenerator(seed);
  return torch::randn({n, 2}, g);
}

TEST(CodeReseed, TheGeneratorEchoesItsCodes) {
  GanModels m = code_echoing_models();
  CategoricalLatentImpl* latent = categorical_latent(m.generator);
  ASSERT_NE(latent, nullptr);
  const torch::Tensor z = torch::randn({6, 3});
  const torch::Tensor codes = latent->codes.detach().index_select(0, latent->category(z)).narrow(1, 0, 2);
  EXPECT_TRUE(torch::allclose(m.generator->forward(z), codes));
}

TEST(CodeReseed, CodesOffTheDataBecomeCopiesOfLiveOnes) {
  GanModels m = code_echoing_models();
  const torch::Tensor real = blob(2000, 11);
  at::Generator rng = at::detail::createCPUGenerator(7);
  const CodeSources chosen = choose_code_sources(m, real, rng);
  EXPECT_EQ(chosen.codes, 6);
  EXPECT_EQ(chosen.dead, 2);
  EXPECT_TRUE(chosen.applied);
  const auto source = chosen.source.accessor<int64_t, 1>();
  for (int64_t i = 0; i < 4; ++i) EXPECT_EQ(source[i], i);
  for (int64_t i = 4; i < 6; ++i) {
    EXPECT_GE(source[i], 0);
    EXPECT_LT(source[i], 4);
  }
  // The same generator state picks the same sources.
  at::Generator again = at::detail::createCPUGenerator(7);
  EXPECT_TRUE(torch::equal(choose_code_sources(m, real, again).source, chosen.source));

  // Applying the map: G's codes, the EMA's codes and Adam's moments of the codes, row by row.
  torch::optim::Adam adam(m.generator->parameters(), torch::optim::AdamOptions(1e-3));
  m.generator->forward(torch::randn({8, 3})).sum().backward();
  adam.step();
  CategoricalLatentImpl* latent = categorical_latent(m.generator);
  auto& state = adam_state(adam, latent->codes);
  {
    torch::NoGradGuard no_grad;
    state.exp_avg().copy_(torch::arange(6, torch::kFloat32).unsqueeze(1).expand({6, 3}));
    state.exp_avg_sq().copy_(torch::arange(6, torch::kFloat32).unsqueeze(1).expand({6, 3}) + 10);
    categorical_latent(m.generator_ema)->codes.add_(100);
  }
  const torch::Tensor codes = latent->codes.detach().clone();
  const torch::Tensor ema = categorical_latent(m.generator_ema)->codes.detach().clone();
  apply_code_sources(m, adam, chosen.source);
  for (int64_t i = 0; i < 6; ++i) {
    EXPECT_TRUE(torch::equal(latent->codes[i], codes[source[i]])) << i;
    EXPECT_TRUE(torch::equal(categorical_latent(m.generator_ema)->codes[i], ema[source[i]])) << i;
    EXPECT_EQ(state.exp_avg()[i][0].item<float>(), float(source[i])) << i;
    EXPECT_EQ(state.exp_avg_sq()[i][2].item<float>(), float(source[i] + 10)) << i;
  }
  // Now every code is live.
  at::Generator third = at::detail::createCPUGenerator(8);
  const CodeSources after = choose_code_sources(m, real, third);
  EXPECT_EQ(after.dead, 0);
  EXPECT_FALSE(after.applied);
  EXPECT_TRUE(torch::equal(after.source, torch::arange(6, torch::kInt64)));
}

TEST(CodeReseed, TooManyDeadCodesMeanGHasNotSettledAndNothingChanges) {
  GanModels m = code_echoing_models();
  at::Generator rng = at::detail::createCPUGenerator(7);
  CodeReseedOptions options;
  options.max_dead_share = 0.25;  // 2 of 6 dead is more
  const CodeSources chosen = choose_code_sources(m, blob(2000, 11), rng, options);
  EXPECT_EQ(chosen.dead, 2);
  EXPECT_FALSE(chosen.applied);
  EXPECT_TRUE(torch::equal(chosen.source, torch::arange(6, torch::kInt64)));
}

TEST(CodeReseed, ChoosingLeavesBatchNormStatisticsAsTheyWere) {
  Config config = reseed_config();
  apply_override(config, "model.mlp_batchnorm=true");
  GanModels m = build_models(model_spec(config, {2}));
  std::vector<torch::Tensor> before;
  for (const auto& b : m.generator->buffers()) before.push_back(b.clone());
  ASSERT_FALSE(before.empty());
  at::Generator rng = at::detail::createCPUGenerator(3);
  choose_code_sources(m, blob(500, 2), rng);
  size_t i = 0;
  for (const auto& b : m.generator->buffers()) EXPECT_TRUE(torch::equal(b, before[i++])) << i;
  EXPECT_TRUE(m.generator->is_training());
}

TEST(CodeReseed, NeedsACategoricalLatent) {
  Config config = reseed_config();
  apply_override(config, "model.latent_categories=0");
  apply_override(config, "model.latent_noise_scale=1");
  try {
    model_spec(config, {2});
    FAIL() << "code re-seeding without latent categories was accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_EQ(std::string(e.what()), "training.code_reseed.every: re-seeds the codes of a categorical latent; set "
                                     "model.latent_categories too");
  }
  apply_override(config, "training.code_reseed.every=0");
  GanModels plain = build_models(model_spec(config, {2}));
  EXPECT_EQ(categorical_latent(plain.generator), nullptr);
  at::Generator rng = at::detail::createCPUGenerator(1);
  EXPECT_THROW(choose_code_sources(plain, blob(100, 1), rng), std::invalid_argument);
  EXPECT_THROW(parse_config("training:\n  code_reseed:\n    until: 1.5\n", "t.yaml"), ConfigError);
}

}  // namespace
}  // namespace distgan
