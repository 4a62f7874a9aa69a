// Convolutions backpropagated weight gradient first (trainer/model/weight_first_conv.h) against
// LibTorch's own op: values, gradients, double backward, the order of the products, the module.
#include "trainer/model/weight_first_conv.h"

#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "trainer/model/autocast.h"

namespace distgan {
namespace {

struct Case {
  int64_t in, out, kernel, stride, padding;
  bool bias, channels_last, input_needs_grad;
  bool weights_need_grad = true;  // false: D frozen in the G step, only dL/dx flows
};

struct Grads {
  torch::Tensor y, x, w, b;
};

// Forward, backward with a fixed dL/dy; with `second_order` also R1's penalty: |dL/dx|^2 backpropagated
// to the weights through the gradient's own graph.
Grads run(const Case& c, bool weight_first, bool second_order = false) {
  torch::manual_seed(3);
  const auto format = c.channels_last ? torch::MemoryFormat::ChannelsLast : torch::MemoryFormat::Contiguous;
  torch::Tensor x = torch::randn({6, c.in, 12, 12}).contiguous(format).requires_grad_(c.input_needs_grad);
  torch::Tensor w = (0.1 * torch::randn({c.out, c.in, c.kernel, c.kernel})).requires_grad_(c.weights_need_grad);
  torch::Tensor b = c.bias ? torch::randn({c.out}).requires_grad_(c.weights_need_grad) : torch::Tensor();
  Conv2dGeometry g;
  g.stride = {c.stride, c.stride};
  g.padding = {c.padding, c.padding};
  const torch::Tensor y =
      weight_first ? conv2d_weight_gradient_first(x, w, b, g) : torch::conv2d(x, w, b, g.stride, g.padding);
  const torch::Tensor dy = torch::randn(y.sizes());
  if (second_order) {
    const torch::Tensor dx = torch::autograd::grad({(y * dy).sum()}, {x}, {}, true, /*create_graph=*/true)[0];
    (dx.square().sum() + (y * dy).sum()).backward();
  } else {
    y.backward(dy);
  }
  return {y.detach(), c.input_needs_grad ? x.grad() : torch::Tensor(), w.grad(), c.bias ? b.grad() : torch::Tensor()};
}

void expect_same(const torch::Tensor& ours, const torch::Tensor& reference, const char* what) {
  ASSERT_EQ(ours.defined(), reference.defined()) << what;
  if (!ours.defined()) return;
  ASSERT_EQ(ours.sizes(), reference.sizes()) << what;
  // The same LibTorch products, one call each instead of one call for both.
  EXPECT_TRUE(torch::equal(ours, reference))
      << what << ": max difference " << (ours - reference).abs().max().item<double>();
}

TEST(WeightFirstConv, ValuesAndGradientsAreLibTorchs) {
  for (const Case& c : {Case{3, 8, 4, 2, 1, true, false, true}, Case{8, 16, 3, 1, 1, false, false, true},
                        Case{4, 8, 4, 2, 1, true, true, true}, Case{1, 8, 4, 2, 1, true, false, false},
                        Case{8, 1, 3, 1, 0, true, false, true}, Case{3, 8, 4, 2, 1, true, true, true, false}}) {
    SCOPED_TRACE(std::to_string(c.in) + "->" + std::to_string(c.out) + (c.channels_last ? " NHWC" : " NCHW"));
    const Grads ours = run(c, true), reference = run(c, false);
    expect_same(ours.y, reference.y, "y");
    expect_same(ours.x, reference.x, "dL/dx");
    expect_same(ours.w, reference.w, "dL/dW");
    expect_same(ours.b, reference.b, "dL/db");
  }
}

TEST(WeightFirstConv, GradientsOfGradientsReachTheWeights) {  // R1 and WGAN-GP take them
  for (const Case& c : {Case{3, 8, 4, 2, 1, true, false, true}, Case{4, 8, 3, 1, 1, false, true, true}}) {
    SCOPED_TRACE(c.channels_last ? "NHWC, no bias" : "NCHW, bias");
    const Grads ours = run(c, true, true), reference = run(c, false, true);
    ASSERT_TRUE(ours.w.defined());
    EXPECT_TRUE(torch::allclose(ours.w, reference.w, 1e-5, 1e-6));
    EXPECT_TRUE(torch::allclose(ours.x, reference.x, 1e-5, 1e-6));
    EXPECT_EQ(ours.b.defined(), c.bias);
    if (c.bias) EXPECT_TRUE(torch::allclose(ours.b, reference.b, 1e-5, 1e-6));
  }
}

// The log of a backward pass: "dx" / "dW" for each convolution product as it starts, and the
// parameter names whose gradient hooks fire.
std::vector<std::string>* g_log = nullptr;
std::unique_ptr<at::ObserverContext> log_product(const at::RecordFunction& fn) {
  if (g_log == nullptr || std::strcmp(fn.name(), "aten::convolution_backward") != 0) return nullptr;
  const auto mask = fn.inputs()[10].toBoolList();
  if (mask.get(0)) g_log->push_back("dx");
  if (mask.get(1)) g_log->push_back("dW");
  return nullptr;
}

std::vector<std::string> backward_log(bool weight_first) {
  torch::manual_seed(4);
  torch::nn::Sequential net;
  if (weight_first) {
    net->push_back(WeightFirstConv2d(3, 8, 4, 2, 1, true));
    net->push_back(WeightFirstConv2d(8, 16, 4, 2, 1, true));
  } else {
    net->push_back(torch::nn::Conv2d(torch::nn::Conv2dOptions(3, 8, 4).stride(2).padding(1)));
    net->push_back(torch::nn::Conv2d(torch::nn::Conv2dOptions(8, 16, 4).stride(2).padding(1)));
  }
  std::vector<std::string> log;
  for (const auto& p : net->named_parameters())
    if (p.key().find("weight") != std::string::npos)
      p.value().register_hook([&log, name = p.key()](const torch::Tensor&) { log.push_back(name); });
  const torch::Tensor y = net->forward(torch::randn({4, 3, 16, 16}));  // the input needs no gradient, as D's fakes
  g_log = &log;
  const auto handle = at::addThreadLocalCallback(
      at::RecordFunctionCallback(&log_product).needsInputs(true).scopes({at::RecordScope::FUNCTION}));
  y.square().sum().backward();
  at::removeCallback(handle);
  g_log = nullptr;
  return log;
}

TEST(WeightFirstConv, EachWeightGradientArrivesBeforeItsLayersInputGradientIsComputed) {
  // The second layer's weight gradient reaches its hook (where the all-reduce bucket fills) before
  // any input-gradient product has run; LibTorch's single node computes dL/dx first.
  EXPECT_EQ(backward_log(true), (std::vector<std::string>{"dW", "1.weight", "dx", "dW", "0.weight"}));
  const std::vector<std::string> libtorch = backward_log(false);
  ASSERT_GE(libtorch.size(), 2u);
  EXPECT_EQ(libtorch[0], "dx");  // the reference order, so the test above can tell the two apart
}

TEST(WeightFirstConv, TheModuleIsAConv2dWithTheSameParametersAndClonesAsItself) {
  WeightFirstConv2d conv(4, 8, 3, 1, 1, true);
  EXPECT_EQ(conv->weight.sizes(), (torch::IntArrayRef{8, 4, 3, 3}));
  EXPECT_TRUE(conv->bias.defined());
  EXPECT_FALSE(WeightFirstConv2d(4, 8, 3, 2, 0, false)->bias.defined());
  torch::nn::Sequential seq(conv);
  const auto copy = std::dynamic_pointer_cast<torch::nn::SequentialImpl>(seq->clone());
  ASSERT_TRUE(copy);
  const auto cloned = copy->ptr<WeightFirstConv2dImpl>(0);
  ASSERT_TRUE(cloned);
  EXPECT_TRUE(torch::equal(cloned->weight, conv->weight));
  EXPECT_NE(cloned->weight.data_ptr(), conv->weight.data_ptr());
  const torch::Tensor x = torch::randn({2, 4, 6, 6});
  EXPECT_TRUE(torch::equal(cloned->forward(x), conv->forward(x)));
}

TEST(WeightFirstConv, UnderAutocastTheModuleKeepsLibTorchsPath) {
  WeightFirstConv2d conv(4, 8, 3, 1, 1, true);
  const torch::Tensor x = torch::randn({2, 4, 6, 6});
  EXPECT_TRUE(weight_gradient_first_applies(x));
  BF16Autocast autocast(true, c10::DeviceType::CPU);
  EXPECT_FALSE(weight_gradient_first_applies(x));
  const torch::Tensor y = conv->forward(x);
  EXPECT_EQ(y.scalar_type(), torch::kBFloat16);  // LibTorch's autocast ran it
  ASSERT_TRUE(y.grad_fn());
  EXPECT_EQ(y.grad_fn()->name().find("distgan::"), std::string::npos) << y.grad_fn()->name();
}

}  // namespace
}  // namespace distgan
