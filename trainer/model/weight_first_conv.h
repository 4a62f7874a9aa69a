// Convolutions whose backward computes the weight gradient before the input gradient.
//
// LibTorch backpropagates a convolution in one node that computes dL/dx, then dL/dW and dL/db.
// Nothing in the backward pass waits for dL/dW, but the gradient all-reduce does: the bucket that
// holds W can start only once it is in. Here the two products run in two nodes, dL/dW (and dL/db)
// first, then dL/dx. On the CPU backward runs its nodes one after another on one thread, so
// the pass does the same products and ends at about the same time (the second call converts dL/dy
// to the kernel's layout again where it needs one), while every weight gradient arrives earlier:
// by one input-gradient product per layer. DCGAN-28's D, for one: its middle layer holds
// 94% of D's bytes, and its all-reduce now travels while that layer's input gradient and the first
// layer's weight gradient compute, instead of after them.
//
// Both products are LibTorch's own (at::convolution_backward, one call each), so the numbers are
// those of its single node, and gradients of gradients (R1, WGAN-GP: create_graph) go through that
// op's own derivative. Under autocast and on CUDA the modules keep LibTorch's ordinary path.
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

// Whether the modules use it for `input`: a CPU tensor, not under autocast. (On CUDA the gradient
// hooks run on the device threads and the reducer starts every bucket after backward anyway, so
// the order would gain nothing there.)
bool weight_gradient_first_applies(const torch::Tensor& input);

// torch::nn::Conv2d(in, out, kernel) with that stride, zero padding and bias (the same parameters,
// names, initialisation and checkpoints), backpropagated weight gradient first where
// weight_gradient_first_applies.
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
