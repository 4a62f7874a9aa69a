// The GAN architectures, chosen by name in the config:
//   dcgan: for 28x28 (and 32x32) images, width `ch`, latent `z_dim` (see models.cpp for layers)
//   mlp:   for vectors, `mlp_depth` hidden layers of `mlp_width`, optional batch norm in G
// Both G and D are torch::nn::Sequential: G maps z [B, z_dim] to a sample, D maps a sample to one
// logit per sample [B].
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <vector>

namespace distgan {

struct ModelSpec {
  std::string name = "dcgan";             // dcgan | mlp
  std::vector<int64_t> sample_shape;      // [C, H, W] for images, [D] for vectors
  int64_t z_dim = 100;
  int64_t ch = 64;
  int64_t mlp_width = 256;
  int64_t mlp_depth = 3;
  bool mlp_batchnorm = false;
};

// DCGAN's first generator layer, ConvTranspose2d(z, C, k, stride 1, padding 0) on a 1x1 input,
// computed as what it is: one matrix product z [B, z] x W [z, C*k*k] -> [B, C, k, k]. The weight
// keeps ConvTranspose2d's layout [z, C, k, k] and the result is the same, but it skips the
// col2im path of the transposed convolution (measured: +15% on the whole DCGAN-28 step).
struct LatentProjectionImpl : torch::nn::Module {
  LatentProjectionImpl(int64_t z_dim, int64_t channels, int64_t kernel);
  torch::Tensor forward(const torch::Tensor& z);
  torch::Tensor weight;
};
TORCH_MODULE(LatentProjection);

struct GanModels {
  torch::nn::Sequential generator;
  torch::nn::Sequential discriminator;
};

// Builds G and D with DCGAN initialisation (conv/linear weights normal(0, 0.02), BN weights
// normal(1, 0.02), biases zero), drawing from torch's default generator. Throws std::invalid_argument
// when the spec does not fit the data (e.g. dcgan on vectors, an image size other than 28 or 32).
GanModels build_models(const ModelSpec& spec);

// Number of scalar parameters of a module.
int64_t parameter_count(const torch::nn::Module& module);

}  // namespace distgan
