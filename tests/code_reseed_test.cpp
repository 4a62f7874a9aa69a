// Re-seeding dead latent codes (trainer/run/code_reseed.h) on a generator set by hand so that G(z) is the
// first two coordinates of z's code: which codes count as dead is then known on paper.
#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>

#include <stdexcept>
#include <string>
#include <vector>

#include "trainer/run/code_reseed.h"
#include "trainer/config/config.h"
#include "trainer/config/run_options.h"
#include "trainer/state/model_file.h"
#include "trainer/model/optimizer_state.h"

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

TEST(CodeReseed, CodesOffTheDataAtTwoChecksInARowBecomeCopiesOfLiveOnes) {
  GanModels m = code_echoing_models();
  const torch::Tensor real = blob(2000, 11);
  at::Generator rng = at::detail::createCPUGenerator(7);
  const torch::Tensor off = codes_off_data(m, real, rng);
  EXPECT_TRUE(torch::equal(off, torch::tensor({false, false, false, false, true, true}))) << off;

  torch::optim::Adam adam(m.generator->parameters(), torch::optim::AdamOptions(1e-3));
  m.generator->forward(torch::randn({8, 3})).sum().backward();
  adam.step();
  CategoricalLatentImpl* latent = categorical_latent(m.generator);
  CategoricalLatentImpl* ema_latent = categorical_latent(m.generator_ema);
  auto& state = adam_state(adam, latent->codes);
  {
    torch::NoGradGuard no_grad;
    state.exp_avg().copy_(torch::arange(6, torch::kFloat32).unsqueeze(1).expand({6, 3}));
    state.exp_avg_sq().copy_(torch::arange(6, torch::kFloat32).unsqueeze(1).expand({6, 3}) + 10);
    ema_latent->codes.add_(100);
  }
  const torch::Tensor codes = latent->codes.detach().clone();
  const torch::Tensor ema = ema_latent->codes.detach().clone();
  // The first check only counts; code 5 was off the data at a check before (set by hand), so it is due.
  latent->off_data_checks[5] = 1;
  at::Generator choice = at::detail::createCPUGenerator(9);
  CodeReseedResult r = reseed_codes(m, adam, off, choice);
  EXPECT_EQ(r.codes, 6);
  EXPECT_EQ(r.off_data, 2);
  EXPECT_EQ(r.reseeded, 1);
  EXPECT_TRUE(r.settled);
  EXPECT_TRUE(torch::equal(latent->off_data_checks, torch::tensor({0, 0, 0, 0, 1, 0}, torch::kInt64)));
  EXPECT_TRUE(torch::equal(ema_latent->off_data_checks, latent->off_data_checks));
  EXPECT_TRUE(torch::equal(latent->codes[4], codes[4]));  // counted, not moved
  // Code 5 became one of the live codes 0-3: in G, in the EMA and in Adam's moments.
  int64_t source = -1;
  for (int64_t i = 0; i < 4; ++i)
    if (torch::equal(latent->codes[5], codes[i])) source = i;
  ASSERT_GE(source, 0) << latent->codes;
  EXPECT_TRUE(torch::equal(ema_latent->codes[5], ema[source]));
  EXPECT_EQ(state.exp_avg()[5][0].item<float>(), float(source));
  EXPECT_EQ(state.exp_avg_sq()[5][2].item<float>(), float(source + 10));
  for (int64_t i = 0; i < 5; ++i) {
    EXPECT_TRUE(torch::equal(latent->codes[i], codes[i])) << i;
    EXPECT_EQ(state.exp_avg()[i][1].item<float>(), float(i)) << i;
  }
  // A second check that finds code 4 off the data again re-seeds it too.
  at::Generator second = at::detail::createCPUGenerator(8);
  const torch::Tensor off_again = codes_off_data(m, real, second);
  EXPECT_TRUE(torch::equal(off_again, torch::tensor({false, false, false, false, true, false})));
  r = reseed_codes(m, adam, off_again, choice);
  EXPECT_EQ(r.reseeded, 1);
  EXPECT_TRUE(torch::equal(latent->off_data_checks, torch::zeros({6}, torch::kInt64)));
  at::Generator third = at::detail::createCPUGenerator(10);
  EXPECT_EQ(codes_off_data(m, real, third).sum().item<int64_t>(), 0);  // every code is live now
}

TEST(CodeReseed, EveryRankDecidesAlikeFromTheSameMarksAndSeed) {
  GanModels a = code_echoing_models(), b = code_echoing_models();
  torch::optim::Adam adam_a(a.generator->parameters()), adam_b(b.generator->parameters());
  const torch::Tensor off = torch::tensor({false, false, false, false, true, true});
  for (int check = 0; check < 2; ++check) {
    at::Generator ga = at::detail::createCPUGenerator(100 + check), gb = at::detail::createCPUGenerator(100 + check);
    reseed_codes(a, adam_a, off, ga);
    reseed_codes(b, adam_b, off, gb);
  }
  EXPECT_TRUE(torch::equal(categorical_latent(a.generator)->codes, categorical_latent(b.generator)->codes));
  EXPECT_FALSE(torch::equal(categorical_latent(a.generator)->codes[4], torch::tensor({8.0f, 8.0f, 7.0f})));
}

TEST(CodeReseed, TooManyCodesOffTheDataMeanGHasNotSettledAndCountingStartsAgain) {
  GanModels m = code_echoing_models();
  torch::optim::Adam adam(m.generator->parameters());
  CategoricalLatentImpl* latent = categorical_latent(m.generator);
  latent->off_data_checks.fill_(1);
  CodeReseedOptions options;
  options.max_off_share = 0.25;  // 2 of 6 off the data is more
  at::Generator rng = at::detail::createCPUGenerator(7);
  const torch::Tensor codes = latent->codes.detach().clone();
  const CodeReseedResult r = reseed_codes(m, adam, torch::tensor({false, false, false, false, true, true}), rng, options);
  EXPECT_EQ(r.off_data, 2);
  EXPECT_EQ(r.reseeded, 0);
  EXPECT_FALSE(r.settled);
  EXPECT_TRUE(torch::equal(latent->codes, codes));
  EXPECT_TRUE(torch::equal(latent->off_data_checks, torch::zeros({6}, torch::kInt64)));
}

TEST(CodeReseed, ChoosingLeavesBatchNormStatisticsAsTheyWere) {
  Config config = reseed_config();
  apply_override(config, "model.mlp_batchnorm=true");
  GanModels m = build_models(model_spec(config, {2}));
  std::vector<torch::Tensor> before;
  for (const auto& b : m.generator->buffers()) before.push_back(b.clone());
  ASSERT_GT(before.size(), 1u);
  at::Generator rng = at::detail::createCPUGenerator(3);
  codes_off_data(m, blob(500, 2), rng);
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
  EXPECT_THROW(codes_off_data(plain, blob(100, 1), rng), std::invalid_argument);
  torch::optim::Adam adam(plain.generator->parameters());
  EXPECT_THROW(reseed_codes(plain, adam, torch::zeros({6}, torch::kBool), rng), std::invalid_argument);
  EXPECT_THROW(parse_config("training:\n  code_reseed:\n    until: 1.5\n", "t.yaml"), ConfigError);
}

}  // namespace
}  // namespace distgan
