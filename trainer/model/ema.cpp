#include "trainer/model/ema.h"

#include <algorithm>
#include <cmath>

namespace distgan {

double ema_beta(double half_life_kimg, double rampup, int64_t images_seen, int64_t images_per_step) {
  double half_life = half_life_kimg * 1000.0;
  if (rampup > 0) half_life = std::min(half_life, rampup * static_cast<double>(images_seen));
  if (half_life <= 0) return 0.0;
  return std::pow(0.5, static_cast<double>(images_per_step) / half_life);
}

void ema_update(torch::nn::Module& ema, torch::nn::Module& model, double beta) {
  torch::NoGradGuard no_grad;
  const auto ema_params = ema.parameters();
  const auto params = model.parameters();
  TORCH_CHECK(ema_params.size() == params.size(), "ema_update: the EMA does not match the model's layout");
  // lerp_(end, weight): ema + weight * (model - ema) = beta * ema + (1 - beta) * model.
  for (size_t i = 0; i < params.size(); ++i) ema_params[i].lerp_(params[i], 1.0 - beta);
  ema_copy_buffers(ema, model);
}

void ema_copy_buffers(torch::nn::Module& ema, torch::nn::Module& model) {
  torch::NoGradGuard no_grad;
  const auto ema_buffers = ema.buffers();
  const auto buffers = model.buffers();
  TORCH_CHECK(ema_buffers.size() == buffers.size(), "ema_update: the EMA does not match the model's layout");
  for (size_t i = 0; i < buffers.size(); ++i) ema_buffers[i].copy_(buffers[i]);
}

}  // namespace distgan
