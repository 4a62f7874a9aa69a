// Transposed convolutions on oneDNN's deconvolution kernels, for the CPU.
//
// LibTorch 1.13 (Debian 12's) runs a transposed convolution on the CPU as one matrix product per
// sample followed by col2im (slow_conv_transpose2d), forward and backward, and that path is about
// 3/4 of a DCGAN step. oneDNN, the library LibTorch already loads for its ordinary convolutions, has
// direct JIT kernels for it: measured on one core (AVX-512), forward and backward of
// ConvTranspose2d(256, 128, 4, 2, 1) on 64 x 7 x 7 take 42 ms against LibTorch's 103-113 ms
// (docs/benchmarks.md). LibTorch 2.x takes oneDNN for this itself; distgan then builds without it.
//
// onednn_conv_transpose2d() is a differentiable function with LibTorch's conv_transpose2d semantics
// (weight [C_in, C_out, kH, kW], output padding 0, dilation 1, groups 1). Gradients of gradients
// (create_graph) are computed by LibTorch's own op, so double backward still works.
#pragma once

#include <torch/torch.h>

#include <array>
#include <string>

namespace distgan {

// The names under which the op shows in profilers and the FlopCounter: the forward with inputs
// (input, weight), the backward with (grad_output, input, weight, gradients computed: 0-2).
extern const char* const kOnednnConvTransposeForwardName;
extern const char* const kOnednnConvTransposeBackwardName;

// Whether this build has the oneDNN path (CMake: DISTGAN_WITH_ONEDNN); its version, or "".
bool onednn_compiled_in();
std::string onednn_version();

struct ConvTranspose2dGeometry {
  std::array<int64_t, 2> stride{1, 1};
  std::array<int64_t, 2> padding{0, 0};
};

// Whether onednn_conv_transpose2d() takes these tensors: compiled in, CPU, float32, 4-D, non-empty,
// strided, and not under a CPU autocast that would run the op in bf16 (LibTorch 2.x's does). Under
// LibTorch 1.13's CPU autocast, which runs transposed convolutions in float32 after casting bf16
// inputs up, bf16 tensors are taken too and cast the same way.
bool onednn_conv_transpose_applies(const torch::Tensor& input, const torch::Tensor& weight);

// torch::conv_transpose2d(input, weight, bias, stride, padding) on oneDNN. bias may be undefined.
// The result has the input's memory format. Throws std::runtime_error naming the shapes and
// oneDNN's message when oneDNN refuses, and std::invalid_argument for tensors it does not take.
// weight_gradient_last: backward computes dL/dW and dL/db after every other autograd node that is
// ready (the lowest priority), instead of right after dL/dx: the layers before this one then
// backpropagate first, so their gradients (and all-reduces) come sooner.
torch::Tensor onednn_conv_transpose2d(const torch::Tensor& input, const torch::Tensor& weight,
                                      const torch::Tensor& bias, const ConvTranspose2dGeometry& geometry,
                                      bool weight_gradient_last = false);

}  // namespace distgan
