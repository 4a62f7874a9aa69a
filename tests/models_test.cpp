// The image architectures of issue 17 (DCGAN-64, resnet at 32-256 px, conditional resnet) and
// training.augment's transforms, checked by shape, parameter count and known answers; bf16 autocast.
#include <gtest/gtest.h>

#include "trainer/model/augment.h"
#include "trainer/model/autocast.h"
#include "trainer/model/models.h"
#include "trainer/model/resnet.h"

namespace distgan {
namespace {

ModelSpec image_spec(const std::string& name, int64_t channels, int64_t size, int64_t ch) {
  ModelSpec s;
  s.name = name;
  s.sample_shape = {channels, size, size};
  s.z_dim = 8;
  s.ch = ch;
  s.d_spectral_norm = name == "resnet";
  return s;
}

TEST(Models, Dcgan64MakesAndScores64PixelImages) {
  torch::manual_seed(0);
  GanModels m = build_models(image_spec("dcgan", 3, 64, 4));
  const torch::Tensor x = m.generator->forward(torch::randn({2, 8}));
  EXPECT_EQ(x.sizes(), (std::vector<int64_t>{2, 3, 64, 64}));
  EXPECT_EQ(m.discriminator->forward(x).sizes(), (std::vector<int64_t>{2}));
}

TEST(Resnet, EverySizeMakesAndScoresItsImages) {
  for (int64_t size : {28, 32, 64, 128, 256}) {
    for (int64_t channels : {1, 3}) {
      torch::manual_seed(0);
      GanModels m = build_models(image_spec("resnet", channels, size, 2));
      const torch::Tensor x = m.generator->forward(torch::randn({2, 8}));
      EXPECT_EQ(x.sizes(), (std::vector<int64_t>{2, channels, size, size})) << size;
      EXPECT_LE(x.abs().max().item<float>(), 1.0f);  // tanh output
      EXPECT_EQ(m.discriminator->forward(x).sizes(), (std::vector<int64_t>{2})) << size;
    }
  }
}

TEST(Resnet, Resnet32HasTheSngangCifarLayout) {
  // Counted by hand from the layout in resnet.h (z 8, ch 4: G width 16, D width 8, RGB).
  GanModels m = build_models(image_spec("resnet", 3, 32, 4));
  const int64_t g_input = 8 * 256 + 256;                                   // Linear(8, 16*4*4)
  const int64_t up_block = 32 + 32 + (16 * 16 * 9 + 16) * 2 + 16 * 16 + 16;  // BN, BN, 2 conv3x3, conv1x1
  const int64_t g_output = 32 + 16 * 3 * 9 + 3;                            // BN, conv3x3 to RGB
  EXPECT_EQ(parameter_count(*m.generator), g_input + 3 * up_block + g_output);
  const int64_t first = (3 * 8 * 9 + 8) + (8 * 8 * 9 + 8) + (3 * 8 + 8);
  const int64_t down = 2 * (8 * 8 * 9 + 8) + (8 * 8 + 8);
  const int64_t last = 2 * (8 * 8 * 9 + 8);  // 4x4, same width: identity shortcut
  EXPECT_EQ(parameter_count(*m.discriminator), first + 2 * down + last + 8 + 1);
  // Spectral norm by default: every conv and linear layer of D carries the power iteration's u.
  int64_t sn_layers = 0;
  for (const auto& b : m.discriminator->named_buffers()) sn_layers += b.key().find("sn_u") != std::string::npos;
  EXPECT_EQ(sn_layers, 3 + 3 + 3 + 2 + 1);
  for (const auto& b : m.discriminator->named_buffers()) EXPECT_EQ(b.key().find("running_mean"), std::string::npos);
}

TEST(Resnet, ConditionalBatchNormFollowsTheLabels) {
  ModelSpec s = image_spec("resnet", 3, 32, 2);
  s.num_classes = 3;
  torch::manual_seed(0);
  GanModels m = build_models(s);
  EXPECT_TRUE(is_conditional(m.generator));
  EXPECT_TRUE(is_conditional(m.discriminator));
  const torch::Tensor z = torch::randn({4, 8});
  EXPECT_THROW(generate(m.generator, z, {}), std::invalid_argument);
  const torch::Tensor y0 = torch::zeros({4}, torch::kInt64), y1 = torch::ones({4}, torch::kInt64);
  // The class gains start at zero: every class draws the same image until they learn.
  EXPECT_TRUE(torch::allclose(generate(m.generator, z, y0), generate(m.generator, z, y1)));
  {
    torch::NoGradGuard no_grad;
    for (auto& p : m.generator->named_parameters())
      if (p.key().find("gain.weight") != std::string::npos) p.value()[1].fill_(0.5);
  }
  EXPECT_FALSE(torch::allclose(generate(m.generator, z, y0), generate(m.generator, z, y1)));
  EXPECT_EQ(discriminate(m.discriminator, generate(m.generator, z, y0), y0).sizes(), (std::vector<int64_t>{4}));
}

TEST(Resnet, TheEmaGeneratorStartsEqual) {
  ModelSpec s = image_spec("resnet", 1, 32, 2);
  s.ema = true;
  GanModels m = build_models(s);
  auto ema = m.generator_ema->named_parameters();
  for (const auto& p : m.generator->named_parameters()) EXPECT_TRUE(torch::equal(p.value(), ema[p.key()])) << p.key();
}

TEST(Resnet, UnsupportedSizesSayWhatIsSupported) {
  try {
    build_models(image_spec("resnet", 3, 48, 2));
    FAIL();
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("resnet supports square images of 28, 32, 64, 128 and 256 pixels"), std::string::npos);
  }
}

TEST(Augment, PolicyParsesAndRejects) {
  const AugmentPolicy p = parse_augment_policy("translation, cutout");
  EXPECT_TRUE(p.translation && p.cutout && !p.color);
  EXPECT_FALSE(parse_augment_policy("none").any());
  EXPECT_THROW(parse_augment_policy("translation,flip"), std::invalid_argument);
}

TEST(Augment, TranslationShiftsAndZeroFills) {
  torch::Tensor x = torch::zeros({1, 1, 8, 8});
  x[0][0][2][3] = 1;
  AugmentDraw d;
  d.shift_y = torch::tensor({1}, torch::kInt64);   // out(y, x) = in(y + 1, x - 1)
  d.shift_x = torch::tensor({-1}, torch::kInt64);
  const torch::Tensor out = augment(x, d);
  EXPECT_EQ(out[0][0][1][4].item<float>(), 1.0f);
  EXPECT_EQ(out.sum().item<float>(), 1.0f);
  d.shift_y = torch::tensor({-8}, torch::kInt64);  // shifted out entirely: zeros
  EXPECT_EQ(augment(x, d).abs().sum().item<float>(), 0.0f);
}

TEST(Augment, CutoutZeroesAHalfSizeSquare) {
  AugmentDraw d;
  d.cutout_y = torch::tensor({4}, torch::kInt64);
  d.cutout_x = torch::tensor({4}, torch::kInt64);
  const torch::Tensor out = augment(torch::ones({1, 3, 8, 8}), d);
  EXPECT_EQ(out.sum().item<float>(), 3 * (64 - 16));
  EXPECT_EQ(out[0][1][2][2].item<float>(), 0.0f);  // rows and columns 2..5
  EXPECT_EQ(out[0][1][6][6].item<float>(), 1.0f);
}

TEST(Augment, NeutralColourIsTheIdentityAndGradientsFlow) {
  torch::manual_seed(1);
  const torch::Tensor x = torch::rand({2, 3, 4, 4}).requires_grad_(true);
  AugmentDraw d;
  d.brightness = torch::zeros({2, 1, 1, 1});
  d.saturation = torch::ones({2, 1, 1, 1});
  d.contrast = torch::ones({2, 1, 1, 1});
  const torch::Tensor y = augment(x, d);
  EXPECT_TRUE(torch::allclose(y, x, 1e-6, 1e-6));
  d.contrast = torch::full({2, 1, 1, 1}, 0.5);
  augment(x, d).pow(2).sum().backward();
  ASSERT_TRUE(x.grad().defined());
  EXPECT_GT(x.grad().abs().sum().item<float>(), 0.0f);
}

TEST(Augment, DrawsRepeatFromTheSameStreamState) {
  AugmentPolicy p = parse_augment_policy("translation,color,cutout");
  auto g1 = at::detail::createCPUGenerator(5), g2 = at::detail::createCPUGenerator(5);
  const AugmentDraw a = draw_augment(p, 4, 32, 32, g1, torch::kCPU), b = draw_augment(p, 4, 32, 32, g2, torch::kCPU);
  EXPECT_TRUE(torch::equal(a.shift_x, b.shift_x) && torch::equal(a.contrast, b.contrast) && torch::equal(a.cutout_y, b.cutout_y));
  EXPECT_LE(a.shift_x.abs().max().item<int64_t>(), 4);  // 32 / 8
}

// training.amp: bf16 on the CPU: matrix products run in bf16 inside the scope, nested scopes leave
// it on until the outer one ends, a disabled scope changes nothing, and CUDA autocast leaves CPU
// work alone.
TEST(Autocast, Bf16OnTheCpuCastsMatrixProductsAndRestoresTheState) {
  torch::nn::Linear linear(8, 4);
  const torch::Tensor x = torch::randn({2, 8});
  {
    BF16Autocast on(true, c10::DeviceType::CPU);
    EXPECT_EQ(linear(x).scalar_type(), torch::kBFloat16);
    { BF16Autocast inner(true, c10::DeviceType::CPU); }
    EXPECT_EQ(linear(x).scalar_type(), torch::kBFloat16);
    BF16Autocast disabled(false, c10::DeviceType::CPU);
    EXPECT_EQ(linear(x).scalar_type(), torch::kBFloat16);
  }
  EXPECT_EQ(linear(x).scalar_type(), torch::kFloat32);
  {
    BF16Autocast cuda(true, c10::DeviceType::CUDA);
    EXPECT_EQ(linear(x).scalar_type(), torch::kFloat32);
  }
  EXPECT_EQ(linear(x).scalar_type(), torch::kFloat32);
}

}  // namespace
}  // namespace distgan
