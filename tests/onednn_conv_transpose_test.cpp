// G's transposed convolutions on oneDNN (trainer/model/onednn_conv_transpose.h) against LibTorch's
// own op: values, gradients, layouts, double backward, the fall-backs and the module's parameters.
#include "trainer/model/onednn_conv_transpose.h"

#include <gtest/gtest.h>

#include <map>
#include <torch/version.h>

#include "trainer/config/config.h"
#include "trainer/config/run_options.h"
#include "trainer/model/autocast.h"
#include "trainer/model/models.h"
#include "trainer/run/flop_counter.h"

namespace distgan {
namespace {

struct Case {
  int64_t batch, in, out, size, kernel, stride, padding;
  bool bias;
  bool channels_last;
};

struct Result {
  torch::Tensor y, grad_input, grad_weight, grad_bias;
};

// Forward and backward with a fixed dL/dy, on oneDNN or on LibTorch's op.
Result run(const Case& c, bool onednn) {
  torch::manual_seed(1);
  const auto format = c.channels_last ? torch::MemoryFormat::ChannelsLast : torch::MemoryFormat::Contiguous;
  torch::Tensor x = torch::randn({c.batch, c.in, c.size, c.size}).contiguous(format).requires_grad_(true);
  torch::Tensor w = (0.1 * torch::randn({c.in, c.out, c.kernel, c.kernel})).contiguous(format).requires_grad_(true);
  torch::Tensor b = c.bias ? torch::randn({c.out}).requires_grad_(true) : torch::Tensor();
  ConvTranspose2dGeometry g;
  g.stride = {c.stride, c.stride};
  g.padding = {c.padding, c.padding};
  const torch::Tensor y =
      onednn ? onednn_conv_transpose2d(x, w, b, g) : torch::conv_transpose2d(x, w, b, g.stride, g.padding);
  const torch::Tensor dy = torch::randn(y.sizes());
  y.backward(dy);
  return {y.detach(), x.grad(), w.grad(), c.bias ? b.grad() : torch::Tensor()};
}

void expect_close(const torch::Tensor& got, const torch::Tensor& want, const char* what) {
  ASSERT_TRUE(got.defined()) << what;
  ASSERT_EQ(got.sizes(), want.sizes()) << what;
  const double scale = want.abs().max().item<double>() + 1e-12;
  EXPECT_LT((got - want).abs().max().item<double>() / scale, 1e-5) << what;
}

class OnednnConvTranspose : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!onednn_compiled_in()) GTEST_SKIP() << "built without oneDNN (DISTGAN_WITH_ONEDNN)";
  }
};

TEST_F(OnednnConvTranspose, MatchesLibTorchForwardAndGradientsInEveryLayout) {
  // DCGAN's wide layer (NHWC kernels), its output layers (few channels: NCHW kernels), an odd size,
  // a stride-1 layer and a rectangular-free 3x3 kernel with padding 1.
  const std::vector<Case> cases{{4, 32, 16, 7, 4, 2, 1, false, false}, {4, 32, 16, 7, 4, 2, 1, false, true},
                                {3, 16, 1, 14, 4, 2, 1, true, false},  {3, 16, 3, 9, 4, 2, 1, true, true},
                                {2, 8, 24, 5, 3, 1, 1, true, false},   {5, 20, 17, 6, 5, 3, 2, false, true}};
  for (const Case& c : cases) {
    SCOPED_TRACE(::testing::Message() << c.in << "->" << c.out << " on " << c.size << " k" << c.kernel << " s"
                                      << c.stride << " p" << c.padding << (c.channels_last ? " NHWC" : " NCHW"));
    const Result ours = run(c, true), reference = run(c, false);
    expect_close(ours.y, reference.y, "output");
    expect_close(ours.grad_input, reference.grad_input, "dL/dx");
    expect_close(ours.grad_weight, reference.grad_weight, "dL/dW");
    if (c.bias) expect_close(ours.grad_bias, reference.grad_bias, "dL/db");
    // Layouts follow the caller's: the output and dL/dx the input's, dL/dW the weight's.
    const auto format = c.channels_last ? torch::MemoryFormat::ChannelsLast : torch::MemoryFormat::Contiguous;
    EXPECT_TRUE(ours.y.is_contiguous(format));
    EXPECT_TRUE(ours.grad_input.is_contiguous(format));
    EXPECT_TRUE(ours.grad_weight.is_contiguous(format));
  }
}

TEST_F(OnednnConvTranspose, GradientsOfGradientsGoThroughLibTorch) {
  // A penalty on dL/dx (as a gradient penalty through G would be): its gradient with respect to the
  // weight must be the one LibTorch's op gives.
  auto penalty_grad = [](bool onednn) {
    torch::manual_seed(2);
    torch::Tensor x = torch::randn({2, 6, 5, 5}).requires_grad_(true);
    torch::Tensor w = (0.2 * torch::randn({6, 4, 4, 4})).requires_grad_(true);
    ConvTranspose2dGeometry g;
    g.stride = {2, 2};
    g.padding = {1, 1};
    const torch::Tensor y = onednn ? onednn_conv_transpose2d(x, w, {}, g) : torch::conv_transpose2d(x, w, {}, 2, 1);
    const torch::Tensor dx = torch::autograd::grad({(y * y).sum()}, {x}, {}, true, true)[0];
    dx.pow(2).sum().backward();
    return w.grad();
  };
  expect_close(penalty_grad(true), penalty_grad(false), "d(|dL/dx|^2)/dW");
}

TEST_F(OnednnConvTranspose, OnlyTheGradientsAskedForAreComputed) {
  torch::Tensor x = torch::randn({2, 8, 4, 4});  // no gradient wanted for the input (G's first layer)
  torch::Tensor w = torch::randn({8, 16, 4, 4}).requires_grad_(true);
  ConvTranspose2dGeometry g;
  g.stride = {2, 2};
  g.padding = {1, 1};
  onednn_conv_transpose2d(x, w, {}, g).sum().backward();
  EXPECT_FALSE(x.grad().defined());
  expect_close(w.grad(), torch::autograd::grad({torch::conv_transpose2d(x, w, {}, 2, 1).sum()}, {w})[0], "dL/dW");
}

TEST_F(OnednnConvTranspose, TakesWhatItCanRunAndRefusesTheRestClearly) {
  const torch::Tensor x = torch::randn({2, 4, 3, 3}), w = torch::randn({4, 2, 4, 4});
  EXPECT_TRUE(onednn_conv_transpose_applies(x, w));
  EXPECT_FALSE(onednn_conv_transpose_applies(x.to(torch::kDouble), w.to(torch::kDouble)));
  EXPECT_FALSE(onednn_conv_transpose_applies(x.to(torch::kBFloat16), w));
  EXPECT_FALSE(onednn_conv_transpose_applies(x.flatten(2), w));
  EXPECT_FALSE(onednn_conv_transpose_applies(torch::randn({0, 4, 3, 3}), w));
  {
    BF16Autocast autocast(true, c10::DeviceType::CPU);
    // LibTorch 1.13 runs transposed convolutions in float32 under CPU autocast (bf16 inputs cast
    // up); 2.x runs them in bf16.
    EXPECT_EQ(onednn_conv_transpose_applies(x, w), TORCH_VERSION_MAJOR < 2);
    EXPECT_EQ(onednn_conv_transpose_applies(x.to(torch::kBFloat16), w), TORCH_VERSION_MAJOR < 2);
  }
  EXPECT_TRUE(onednn_conv_transpose_applies(x, w));
  try {
    onednn_conv_transpose2d(x.to(torch::kDouble), w, {}, {});
    FAIL() << "a double input was taken";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("float32"), std::string::npos) << e.what();
  }
  try {
    onednn_conv_transpose2d(torch::randn({2, 5, 3, 3}), w, {}, {});
    FAIL() << "an input with the wrong channel count was taken";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("5 channels"), std::string::npos) << e.what();
  }
}

TEST_F(OnednnConvTranspose, ModuleKeepsConvTranspose2dParametersAndAutocastsLikeLibTorch) {
  torch::manual_seed(3);
  OnednnConvTranspose2d fast(torch::nn::ConvTranspose2dOptions(6, 3, 4).stride(2).padding(1), true);
  torch::manual_seed(3);
  torch::nn::ConvTranspose2d plain(torch::nn::ConvTranspose2dOptions(6, 3, 4).stride(2).padding(1));
  // Same names and initial values: checkpoints of either load into the other.
  const auto ours = fast->named_parameters(), theirs = plain->named_parameters();
  ASSERT_EQ(ours.keys(), theirs.keys());
  for (const auto& key : ours.keys()) EXPECT_TRUE(torch::equal(ours[key], theirs[key])) << key;
  const torch::Tensor x = torch::randn({2, 6, 5, 5});
  expect_close(fast->forward(x), plain->forward(x), "module output");
  {
    // Under CPU autocast: the dtype LibTorch's own op gives (float32 in 1.13, bf16 in 2.x).
    BF16Autocast autocast(true, c10::DeviceType::CPU);
    for (const auto dtype : {torch::kFloat, torch::kBFloat16}) {  // as G's layers give it under autocast
      const torch::Tensor ours = fast->forward(x.to(dtype)), theirs = plain->forward(x.to(dtype));
      EXPECT_EQ(ours.scalar_type(), theirs.scalar_type());
      expect_close(ours.to(torch::kFloat), theirs.to(torch::kFloat), "module output under autocast");
    }
  }
  // An explicit output size (output padding) is LibTorch's.
  EXPECT_EQ(fast->forward(x, at::IntArrayRef{11, 11}).sizes(), (std::vector<int64_t>{2, 3, 11, 11}));
}

TEST_F(OnednnConvTranspose, FlopCounterCountsItAsLibTorchsOp) {
  // The same FLOPs as LibTorch's transposed convolution: forward, and one pass per gradient.
  auto count = [](bool onednn, bool input_grad) {
    torch::Tensor x = torch::randn({2, 16, 7, 7}).requires_grad_(input_grad);
    torch::Tensor w = torch::randn({16, 4, 4, 4}).requires_grad_(true);
    ConvTranspose2dGeometry g;
    g.stride = {2, 2};
    g.padding = {1, 1};
    FlopCounter counter;
    const torch::Tensor y = onednn ? onednn_conv_transpose2d(x, w, {}, g) : torch::conv_transpose2d(x, w, {}, 2, 1);
    const double forward = counter.flops();
    y.sum().backward();
    return std::make_pair(forward, counter.flops());
  };
  const double forward = 2.0 * (2 * 16 * 7 * 7) * (4 * 4 * 4);
  EXPECT_EQ(count(true, true), std::make_pair(forward, 3 * forward));
  EXPECT_EQ(count(true, true), count(false, true));
  EXPECT_EQ(count(true, false), std::make_pair(forward, 2 * forward));
}

TEST(OnednnConvTransposeBuild, ClonesKeepTheModuleItsSettingAndItsValues) {
  torch::manual_seed(4);
  torch::nn::Sequential g(OnednnConvTranspose2d(torch::nn::ConvTranspose2dOptions(4, 2, 4).stride(2).padding(1), true),
                          torch::nn::Tanh());
  g->eval();
  auto copy = std::dynamic_pointer_cast<torch::nn::SequentialImpl>(g->clone());
  ASSERT_TRUE(copy);
  auto layer = std::dynamic_pointer_cast<OnednnConvTranspose2dImpl>(copy->ptr(0));
  ASSERT_TRUE(layer);
  EXPECT_TRUE(layer->use_onednn);
  EXPECT_FALSE(layer->is_training());
  const torch::Tensor x = torch::randn({2, 4, 3, 3});
  EXPECT_TRUE(torch::equal(copy->forward(x), g->forward(x)));
  // A copy, not a view: training the original leaves the clone as it was.
  torch::NoGradGuard no_grad;
  g->ptr(0)->named_parameters()["weight"].add_(1);
  EXPECT_FALSE(torch::equal(copy->forward(x), g->forward(x)));
}

TEST(OnednnConvTransposeBuild, DcganUsesTheOnednnModuleUnlessTurnedOff) {
  ModelSpec s;
  s.sample_shape = {1, 28, 28};
  s.ch = 8;
  s.z_dim = 4;
  for (bool on : {true, false}) {
    s.onednn_conv_transpose = on;
    GanModels m = build_models(s);
    int found = 0;
    for (const auto& module : m.generator->modules(false))
      if (auto t = std::dynamic_pointer_cast<OnednnConvTranspose2dImpl>(module)) {
        EXPECT_EQ(t->use_onednn, on);
        ++found;
      }
    EXPECT_EQ(found, 2);  // 7 -> 14 and 14 -> 28 (the 1 -> 7 projection is a matrix product)
  }
}

TEST_F(OnednnConvTranspose, DcganGeneratorGivesLibTorchsOutputAndGradients) {
  // The whole G of DCGAN-28 and DCGAN-64 (batch norm in training mode, ReLU, Tanh), one step's
  // forward and backward: every parameter's gradient as with LibTorch's kernel.
  for (const int64_t size : {28, 64}) {
    SCOPED_TRACE(size);
    auto run = [&](bool onednn) {
      ModelSpec s;
      s.sample_shape = {size == 28 ? 1 : 3, size, size};
      s.ch = 16;
      s.z_dim = 10;
      s.onednn_conv_transpose = onednn;
      torch::manual_seed(5);
      GanModels m = build_models(s);
      const torch::Tensor z = torch::randn({8, 10});
      const torch::Tensor x = m.generator->forward(z);
      (x * torch::randn(x.sizes())).sum().backward();
      std::vector<torch::Tensor> out{x.detach()};
      for (const auto& p : m.generator->parameters()) out.push_back(p.grad());
      return out;
    };
    const auto ours = run(true), reference = run(false);
    ASSERT_EQ(ours.size(), reference.size());
    for (size_t i = 0; i < ours.size(); ++i) expect_close(ours[i], reference[i], i == 0 ? "G(z)" : "a gradient of G");
  }
}

TEST_F(OnednnConvTranspose, WeightGradientsComeAfterEveryOtherGradientOfG) {
  // A transposed convolution's weight gradient runs in a node of the lowest priority, so G's first
  // layer (whose gradient DCGAN's all-reduce waits for longest) gets its gradient before them.
  // (DCGAN-28's first layer holds more of G's parameters than its transposed convolutions: the
  // models choose it then.)
  ModelSpec s;
  s.sample_shape = {1, 28, 28};
  s.ch = 16;
  s.z_dim = 100;
  s.onednn_conv_transpose = true;
  torch::manual_seed(5);
  GanModels m = build_models(s);
  std::vector<std::string> arrived;
  std::map<std::string, bool> transposed;
  for (const auto& child : m.generator->named_modules("", /*include_self=*/false))
    if (const auto conv = std::dynamic_pointer_cast<OnednnConvTranspose2dImpl>(child.value())) {
      EXPECT_TRUE(conv->weight_gradient_runs_last()) << child.key();
      for (const auto& p : child.value()->named_parameters(/*recurse=*/false))
        transposed[child.key() + "." + p.key()] = true;
    }
  ASSERT_EQ(transposed.size(), 3u);  // two layers' weights, and the bias of the output layer (the other feeds BatchNorm)
  for (const auto& p : m.generator->named_parameters()) {
    const std::string name = p.key();
    p.value().register_hook([&arrived, name](const torch::Tensor&) { arrived.push_back(name); });
  }
  const torch::Tensor x = m.generator->forward(torch::randn({8, 100}));
  (x * torch::randn(x.sizes())).sum().backward();
  ASSERT_EQ(arrived.size(), m.generator->parameters().size());
  const size_t others = arrived.size() - transposed.size();
  for (size_t i = 0; i < arrived.size(); ++i)
    EXPECT_EQ(transposed.count(arrived[i]) > 0, i >= others) << "gradient " << i << ": " << arrived[i];
}

TEST_F(OnednnConvTranspose, WeightGradientsRunLastOnlyWhereThatUnblocksMoreBytes) {
  // DCGAN-64's transposed convolutions hold most of G (2.8 M of 3.6 M parameters at ch 64): computing
  // their weight gradients last would make the largest bucket the last one. There the gradients come
  // in the ordinary order: each weight gradient right after its layer's input gradient.
  auto flags = [](int64_t size, bool onednn) {
    ModelSpec s;
    s.sample_shape = {size == 64 ? 3 : 1, size, size};
    s.onednn_conv_transpose = onednn;
    GanModels m = build_models(s);
    std::vector<bool> out;
    for (const auto& child : m.generator->modules(/*include_self=*/false))
      if (const auto conv = std::dynamic_pointer_cast<OnednnConvTranspose2dImpl>(child))
        out.push_back(conv->weight_gradient_runs_last());
    return out;
  };
  EXPECT_EQ(flags(28, true), std::vector<bool>(2, true));
  EXPECT_EQ(flags(64, true), std::vector<bool>(4, false));
  EXPECT_EQ(flags(28, false), std::vector<bool>(2, false));  // LibTorch's kernel: its own order
}

TEST(OnednnConvTransposeBuild, ConfigChoosesTheKernelAndRefusesWhatCannotRun) {
  auto spec_for = [](const std::string& kernel, const std::string& device) {
    Config c = parse_config("cluster:\n  conv_transpose: " + kernel + "\n  device: " + device + "\n", "c.yaml");
    return model_spec(c, {1, 28, 28});
  };
  EXPECT_FALSE(spec_for("libtorch", "cpu").onednn_conv_transpose);
  EXPECT_TRUE(spec_for("auto", "cpu").onednn_conv_transpose);   // used where it applies
  EXPECT_TRUE(spec_for("auto", "cuda").onednn_conv_transpose);  // ...which CUDA tensors never are
  auto error_of = [&](const std::string& kernel, const std::string& device) {
    try {
      spec_for(kernel, device);
    } catch (const std::invalid_argument& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  EXPECT_NE(error_of("onednn", "cuda").find("cluster.conv_transpose: onednn runs on the CPU"), std::string::npos)
      << error_of("onednn", "cuda");
  if (onednn_compiled_in()) {
    EXPECT_TRUE(spec_for("onednn", "cpu").onednn_conv_transpose);
  } else {
    EXPECT_NE(error_of("onednn", "cpu").find("this build has no oneDNN"), std::string::npos)
        << error_of("onednn", "cpu");
  }
  try {
    parse_config("cluster:\n  conv_transpose: mkldnn\n", "c.yaml");
    FAIL() << "an unknown kernel was taken";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("conv_transpose"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace distgan
