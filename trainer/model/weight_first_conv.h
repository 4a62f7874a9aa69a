// Convolutions whose backward computes the weight gradient before the input gradient.
//
// LibTorch backpropagates a convolution in one node that computes dL/dx, then dL/dW and dL/db.
// Nothing in the backward pass waits for dL/dW, but the gradient all-reduce does: the bucket that
// holds W can start only once it is in. Here the two products run in two nodes, dL/dW (and dL/db)
// first, then dL/dx. Backward runs its nodes one after another (on a CPU core or a CUDA stream), so
// the pass does the same work and ends at the same time, while every weight gradient arrives
// earlier: by one input-gradient product per layer. DCGAN-28's D, for one: its middle layer holds
// 94% of D's bytes, and its all-reduce now travels while that layer's input gradient and the first
// layer's weight gradient compute, instead of after them.
//
// Both products are LibTorch's own (at::convolution_backward, one call each), so the numbers are
// those of its single node, and gradients of gradients (R1, WGAN-GP: create_graph) go through that
// op's own derivative. Under autocast the modules keep LibTorch's ordinary path.
#pragma once

#include <torch/torch.h>

#include <array>
#include <memory>

namespace distgan {

struct Conv2dGeometry {
  std::array<int64_t, 2> stride{1, 1};
  std::array<int64_t, 2> padding{0, 0};
  std::array<int64_t, 2> dilation{1, 1};
  int64_t groups = 1;
};

// torch::conv2d(x, w, b, stride, padding, dilation, groups) (zero padding; `b` may be undefined),
// backpropagated weight gradient first.
torch::Tensor conv2d_weight_gradient_first(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b,
                                           const Conv2dGeometry& geometry);

// Whether a convolution's forward here would use it: not under autocast (CPU or CUDA).
bool weight_gradient_first_applies();

// torch::nn::Conv2d(in, out, kernel) with that stride, zero padding and bias (the same parameters,
// names, initialisation and checkpoints), backpropagated weight gradient first unless autocast is on.
struct WeightFirstConv2dImpl : torch::nn::Conv2dImpl {
  WeightFirstConv2dImpl(int64_t in, int64_t out, int64_t kernel, int64_t stride, int64_t padding, bool bias);
  torch::Tensor forward(const torch::Tensor& input);
  // Conv2dImpl's clone() would make a plain Conv2dImpl, which a Sequential holding this type
  // cannot take back.
  std::shared_ptr<torch::nn::Module> clone(const c10::optional<torch::Device>& device = c10::nullopt) const override;
  struct Shape {
    int64_t in, out, kernel, stride, padding;
    bool bias;
  } shape;
  Conv2dGeometry geometry;
};
TORCH_MODULE(WeightFirstConv2d);

}  // namespace distgan
