// training.augment: differentiable augmentation (DiffAugment, Zhao et al. 2020) of every image D
// sees, real and fake, in the D step and the G step, so that D cannot memorise a small dataset
// while G still learns the un-augmented distribution (the transforms are differentiable, G's
// gradient passes through them).
//   translation: shift by up to 1/8 of the size in x and y, zero-filled
//   color:       brightness +U(-0.5, 0.5), saturation x U(0, 2), contrast x U(0.5, 1.5)
//   cutout:      one zeroed square of half the size at a uniform position
// (in that order, each per sample). Images are in [-1, 1]. The random parameters are drawn on the
// host from the rank's noise stream, so a resumed run draws the same ones (exact resume stays exact).
#pragma once

#include <torch/torch.h>

#include <string>

namespace distgan {

struct AugmentPolicy {
  bool translation = false, color = false, cutout = false;
  bool any() const { return translation || color || cutout; }
};

// "none", or a comma-separated list of translation, color, cutout. Throws std::invalid_argument.
AugmentPolicy parse_augment_policy(const std::string& text);

// One batch's random parameters (undefined tensors for the transforms the policy leaves out).
struct AugmentDraw {
  torch::Tensor brightness, saturation, contrast;  // [B, 1, 1, 1]
  torch::Tensor shift_y, shift_x;                  // [B] int64 in [-H/8, H/8]
  torch::Tensor cutout_y, cutout_x;                // [B] int64: the square's centre
};

// Draws for a batch of `batch` images of [C, height, width], in a fixed order, from `generator`;
// moved to `device`.
AugmentDraw draw_augment(const AugmentPolicy& policy, int64_t batch, int64_t height, int64_t width,
                         torch::Generator& generator, const torch::Device& device);

// The augmented images [B, C, H, W] (differentiable in `images`). An empty draw returns `images`.
torch::Tensor augment(const torch::Tensor& images, const AugmentDraw& draw);

}  // namespace distgan
