// model.name: resnet — residual G and D in the SNGAN / BigGAN style (Miyato et al. 2018; Brock et
// al. 2019) for square images of 28, 32, 64, 128 and 256 pixels with 1 or 3 channels.
//
// G: Linear(z, b*b*c0) -> [c0, b, b] (b = 7 for 28 px, else 4), one up block per doubling, then
//    BN ReLU Conv3x3(->C) Tanh. Up block(in, out): BN ReLU Upsample2x Conv3x3(in, out) BN ReLU
//    Conv3x3(out, out), plus the shortcut Upsample2x Conv1x1(in, out).
// D: down blocks to b x b (then one more block, two for 28 px, without downsampling), ReLU, sum over H and W,
//    Linear(->1). Down block(in, out): ReLU Conv3x3(in, out) ReLU Conv3x3(out, out) AvgPool2, plus
//    the shortcut Conv1x1(in, out) AvgPool2; D's first block has no leading ReLU and pools before
//    its shortcut conv (SNGAN's "optimized" block).
// Widths in units of model.ch:
//   28:  G 4 -> 4,4 (SNGAN's CIFAR widths at 7-14-28)  D 2,2,2,2 (two at 7x7)
//   32:  G 4 -> 4,4,4 (SNGAN's CIFAR layout)        D 2,2,2,2
//   64:  G 16 -> 16,8,4,2                           D 1,2,4,8,16
//   128: G 16 -> 16,8,4,2,1                         D 1,2,4,8,16,16
//   256: G 16 -> 16,8,8,4,2,1                       D 1,2,4,8,8,16,16
// (the 64-256 rows are BigGAN's). With spectral_norm (the default for resnet) every conv and
// linear layer of D is spectrally normalised; D has no batch norm either way.
//
// Conditional (num_classes > 0): every batch norm of G is class-conditional (its gain 1 + g[y] and
// bias b[y] come from per-class embeddings, gains starting at 0 and biases at 0), and D has the
// projection head of models.h ("class_projection", over the sum-pooled features).
#pragma once

#include <torch/torch.h>

#include "trainer/model/models.h"

namespace distgan {

// A conditional G's batch norm: BatchNorm2d without affine parameters, then a per-class gain
// 1 + gain[y] and bias bias[y], with the labels handed over by a ClassLabelScope.
struct ConditionalBatchNorm2dImpl : torch::nn::Module {
  ConditionalBatchNorm2dImpl(int64_t channels, int64_t num_classes);
  torch::Tensor forward(const torch::Tensor& x);
  torch::nn::BatchNorm2d norm{nullptr};
  torch::nn::Embedding gain{nullptr}, bias{nullptr};  // [num_classes, channels], zero at the start
  torch::Tensor labels;                                // set by ClassLabelScope during a forward
};
TORCH_MODULE(ConditionalBatchNorm2d);

// Hands the labels to every ConditionalBatchNorm2d in `module` for the scope's lifetime.
class ClassLabelScope {
 public:
  ClassLabelScope(torch::nn::Module& module, const torch::Tensor& labels);
  ~ClassLabelScope();
  ClassLabelScope(const ClassLabelScope&) = delete;
  ClassLabelScope& operator=(const ClassLabelScope&) = delete;

 private:
  std::vector<std::shared_ptr<ConditionalBatchNorm2dImpl>> norms_;
};

// Whether G has class-conditional batch norms (a conditional resnet G).
bool has_class_conditional_norm(torch::nn::Module& module);

// The resnet G and D for the spec (which must be square images of a supported size), before
// resnet_init.
GanModels resnet(const ModelSpec& spec);
// SNGAN's initialisation: Xavier-uniform conv and linear weights, zero biases, batch norm gains 1,
// conditional batch norm gains and biases 0, the projection head's embedding N(0, 0.02).
void resnet_init(torch::nn::Module& module);
// The channels of D's features before its output layer (the projection head's size).
int64_t resnet_d_features(const ModelSpec& spec);

}  // namespace distgan
