// The generator's exponential moving average (EMA), as in StyleGAN2-ADA (Karras et al. 2020):
// after each G step, ema = beta * ema + (1 - beta) * G for every parameter, and G's buffers (batch
// norm statistics) are copied. beta comes from a half-life counted in images:
//   beta = 0.5 ^ (images per step / half-life in images),
// and during the ramp-up the half-life is at most `rampup` x the images seen so far, so the early,
// poor generators are forgotten quickly.
// G's parameters are identical on every rank after each step (averaged gradients, same optimizer),
// so every rank computes the same EMA without any communication.
#pragma once

#include <torch/torch.h>

#include <cstdint>

namespace distgan {

// beta for one update; 0 (= copy G) when half_life_kimg is 0.
double ema_beta(double half_life_kimg, double rampup, int64_t images_seen, int64_t images_per_step);

// ema <- beta * ema + (1 - beta) * model for parameters; buffers copied. Modules of the same layout.
void ema_update(torch::nn::Module& ema, torch::nn::Module& model, double beta);

// Copies only the buffers (batch norm statistics) of `model` into `ema`.
void ema_copy_buffers(torch::nn::Module& ema, torch::nn::Module& model);

}  // namespace distgan
