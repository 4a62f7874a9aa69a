// The FLOP counter behind the log's GFLOP/s: convolutions (normal and transposed, forward and
// backward) and matrix products counted from their shapes, 2 per multiply-add.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "trainer/run/flop_counter.h"

namespace distgan {
namespace {

TEST(FlopCounter, CountsAConvolutionForwardAndItsTwoGradients) {
  torch::nn::Conv2d conv(torch::nn::Conv2dOptions(3, 8, 4).stride(2).padding(1));
  const torch::Tensor x = torch::randn({5, 3, 16, 16}, torch::requires_grad());
  FlopCounter counter;
  const torch::Tensor y = conv->forward(x);  // [5, 8, 8, 8]
  const double forward = 2.0 * (5 * 8 * 8 * 8) * (3 * 4 * 4);
  EXPECT_DOUBLE_EQ(counter.flops(), forward);
  y.sum().backward();  // the input's and the weight's gradients: the forward's work twice more
  EXPECT_DOUBLE_EQ(counter.flops(), 3 * forward);
}

TEST(FlopCounter, CountsATransposedConvolutionByItsInput) {
  torch::nn::ConvTranspose2d up(torch::nn::ConvTranspose2dOptions(16, 4, 4).stride(2).padding(1).bias(false));
  const torch::Tensor x = torch::randn({2, 16, 7, 7});
  FlopCounter counter;
  torch::NoGradGuard no_grad;
  EXPECT_EQ(up->forward(x).sizes(), (std::vector<int64_t>{2, 4, 14, 14}));
  EXPECT_DOUBLE_EQ(counter.flops(), 2.0 * (2 * 16 * 7 * 7) * (4 * 4 * 4));
}

TEST(FlopCounter, CountsLinearLayersAndNothingAfterItIsGone) {
  torch::nn::Linear fc(10, 6);
  const torch::Tensor x = torch::randn({4, 10});
  double counted = 0;
  {
    FlopCounter counter;
    torch::NoGradGuard no_grad;
    fc->forward(x);
    torch::relu(x);  // elementwise: not counted
    counted = counter.flops();
  }
  EXPECT_DOUBLE_EQ(counted, 2.0 * 4 * 10 * 6);
  FlopCounter fresh;  // starts from zero; the layer above ran before it
  EXPECT_EQ(fresh.flops(), 0);
}

}  // namespace
}  // namespace distgan
