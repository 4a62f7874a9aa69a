// The GAN architectures, chosen by name in the config:
//   dcgan: for 28x28 (and 32x32) images, width `ch`, latent `z_dim` (see models.cpp for layers)
//   mlp:   for vectors, `mlp_depth` hidden layers of `mlp_width`, optional batch norm in G
// Both G and D are torch::nn::Sequential: G maps z [B, z_dim] to a sample, D maps a sample to one
// logit per sample [B]; D's last two modules are its output layer and a Flatten.
//
// Conditional models (num_classes > 0) keep that shape and add one registered child each, outside
// the Sequential's chain: G's "class_embedding" (z_dim values per class; G's input is
// z * embed(y), elementwise) and D's "class_projection" (the projection
// discriminator of Miyato & Koyama 2018: logit = out(h) + <embed(y), sum-pooled h>, with h the
// features before D's output layer). generate() and discriminate() run them.
//
// With spectral_norm, D's convolutions and linear layers are SNConv2d / SNLinear (weights divided by
// their largest singular value, estimated by one power iteration per training forward; the
// iteration's vectors are buffers, so checkpoints carry them) and D has no batch norm.
#pragma once

#include <torch/torch.h>

#include "trainer/model/onednn_conv_transpose.h"
#include "trainer/model/weight_first_conv.h"

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
  int64_t latent_categories = 0;  // mlp: > 0 puts a CategoricalLatent first in G
  double latent_noise_scale = 1;  // the CategoricalLatent's scale of z's continuous part
  int64_t num_classes = 0;  // > 0: class-conditional G and D
  bool d_spectral_norm = false;
  bool ema = false;         // also build generator_ema (a second G whose parameters track G's average)
  bool onednn_conv_transpose = true;  // G's transposed convolutions on oneDNN where they apply (CPU, float32)
};

// W / sigma(W) for a weight [out, ...] viewed as [out, in]; u [out] and v [in] are the power
// iteration's vectors, updated in place (under no_grad) when `update` is set. The gradient flows
// through W and sigma as in Miyato et al. 2018 (u and v held constant).
torch::Tensor spectral_normalized(const torch::Tensor& weight, torch::Tensor& u, torch::Tensor& v, bool update);
// One power iteration (v <- W^T u / |.|, u <- W v / |.|) in place, without gradient.
void power_iteration_step(const torch::Tensor& weight, torch::Tensor& u, torch::Tensor& v);

struct SNConv2dImpl : torch::nn::Module {
  SNConv2dImpl(int64_t in, int64_t out, int64_t kernel, int64_t stride, int64_t padding);
  torch::Tensor forward(const torch::Tensor& x);
  torch::Tensor weight, bias, sn_u, sn_v;
  int64_t stride, padding;
  bool power_iteration = true;  // false: a training forward leaves u and v as they are
};
TORCH_MODULE(SNConv2d);

struct SNLinearImpl : torch::nn::Module {
  SNLinearImpl(int64_t in, int64_t out);
  torch::Tensor forward(const torch::Tensor& x);
  torch::Tensor weight, bias, sn_u, sn_v;
  bool power_iteration = true;
};

// One power iteration in every spectrally normalised layer of `module`. The adversarial step calls
// it once per D update and runs every forward under a PowerIterationPause, so sigma is the same for
// the reals, the fakes, every micro-batch of training.accumulate and every rank (one power
// iteration per update, as Miyato et al.; a forward in training mode would otherwise advance it).
void advance_power_iteration(torch::nn::Module& module);

// While alive (and `pause` is set), the spectrally normalised layers of `module` do no power
// iteration in their forwards.
class PowerIterationPause {
 public:
  PowerIterationPause(torch::nn::Module& module, bool pause);
  ~PowerIterationPause();
  PowerIterationPause(const PowerIterationPause&) = delete;
  PowerIterationPause& operator=(const PowerIterationPause&) = delete;

 private:
  std::vector<bool*> flags_;
};
TORCH_MODULE(SNLinear);

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

// A categorical part of G's latent that needs no second noise stream: z's first coordinate,
// pushed through the normal CDF into K equally likely bins, picks one of K learned codes, which
// replaces it: [B, z_dim] -> [B, z_dim - 1 + z_dim]. G's inputs then fall into K disjoint groups, so
// a continuous G can map them onto disconnected modes; with a Gaussian latent alone it must spread
// some mass over bridges between the modes (the disconnected-manifold problem; cf. DeLiGAN,
// Gurumurthy et al. 2017, and Khayatkhoei et al. 2018). The rest of z is multiplied by
// `noise_scale`: below 1, the codes dominate G's input, so each code draws a small cluster that lands
// in one mode, and a mode's width comes from where its codes sit (cf. DeLiGAN's small sigma).
struct CategoricalLatentImpl : torch::nn::Module {
  CategoricalLatentImpl(int64_t z_dim, int64_t categories, double noise_scale = 1.0);
  torch::Tensor forward(const torch::Tensor& z);
  torch::Tensor category(const torch::Tensor& z) const;  // [B] int64 in [0, K)
  torch::Tensor codes;                                   // [K, z_dim], N(0, 1) at the start
  // Training state of training.code_reseed, a buffer so that checkpoints and every rank carry it:
  // for each code, the number of checks in a row at which it drew off the data. [K] int64.
  torch::Tensor off_data_checks;
  double noise_scale;
};
TORCH_MODULE(CategoricalLatent);

// torch::nn::ConvTranspose2d (same parameters, names, initialisation and checkpoints) whose forward
// runs on oneDNN when `use_onednn` is set and the tensors are ones it takes (onednn_conv_transpose.h:
// CPU, float32, no autocast, no explicit output size), and on LibTorch's kernel otherwise. Should
// oneDNN refuse a shape, the module warns once and stays on LibTorch's kernel.
struct OnednnConvTranspose2dImpl : torch::nn::ConvTranspose2dImpl {
  OnednnConvTranspose2dImpl(const torch::nn::ConvTranspose2dOptions& options, bool use_onednn);
  torch::Tensor forward(const torch::Tensor& input, const c10::optional<at::IntArrayRef>& output_size = c10::nullopt);
  // ConvTranspose2dImpl's clone() would make a plain ConvTranspose2dImpl, which a Sequential
  // holding this type cannot take back.
  std::shared_ptr<torch::nn::Module> clone(const c10::optional<torch::Device>& device = c10::nullopt) const override;
  torch::nn::ConvTranspose2dOptions transpose_options;
  bool use_onednn;
  bool onednn_takes_options;  // output padding 0, dilation 1, groups 1, zero padding
  ConvTranspose2dGeometry geometry;  // the options' stride and padding, for oneDNN
  bool weight_gradient_last = false;  // set by build_models (order_weight_gradients in models.cpp)
  // Whether backward computes this layer's weight gradient after every other node (oneDNN on the CPU).
  bool weight_gradient_runs_last() const;
};
TORCH_MODULE(OnednnConvTranspose2d);

struct GanModels {
  torch::nn::Sequential generator;
  torch::nn::Sequential discriminator;
  torch::nn::Sequential generator_ema{nullptr};  // when spec.ema: starts equal to generator
};

// G(z) for unconditional models (labels undefined) and G(z, labels) for conditional ones.
torch::Tensor generate(torch::nn::Sequential& g, const torch::Tensor& z, const torch::Tensor& labels);
// D's logits [B]; labels as for generate().
torch::Tensor discriminate(torch::nn::Sequential& d, const torch::Tensor& x, const torch::Tensor& labels);
// Whether `module` (G or D) was built conditional.
bool is_conditional(torch::nn::Sequential& module);

// Builds G and D with DCGAN initialisation (conv/linear weights normal(0, 0.02), BN weights
// normal(1, 0.02), biases zero), drawing from torch's default generator. Throws std::invalid_argument
// when the spec does not fit the data (e.g. dcgan on vectors, an image size other than 28 or 32).
GanModels build_models(const ModelSpec& spec);

// Makes the weight of every convolution in `module` channels_last (NHWC in memory): convolutions
// then take and give channels_last activations and run without layout changes
// (cluster.memory_format). Values are unchanged; other 4-D tensors (LatentProjection's weight, a
// matrix in disguise) keep their layout.
void to_channels_last(torch::nn::Module& module);

// Number of scalar parameters of a module.
int64_t parameter_count(const torch::nn::Module& module);

}  // namespace distgan
