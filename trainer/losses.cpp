#include "trainer/losses.h"

#include <stdexcept>

namespace distgan {

LossKind parse_loss(const std::string& name) {
  if (name == "nonsaturating") return LossKind::kNonSaturating;
  if (name == "hinge") return LossKind::kHinge;
  throw std::invalid_argument("training.loss: unknown loss '" + name + "' (expected nonsaturating or hinge)");
}

torch::Tensor discriminator_loss(LossKind kind, const torch::Tensor& real, const torch::Tensor& fake) {
  if (kind == LossKind::kHinge) return torch::relu(1 - real).mean() + torch::relu(1 + fake).mean();
  // softplus(-x) = -log(sigmoid(x)): BCE with target 1, computed stably.
  return torch::softplus(-real).mean() + torch::softplus(fake).mean();
}

torch::Tensor generator_loss(LossKind kind, const torch::Tensor& fake) {
  if (kind == LossKind::kHinge) return -fake.mean();
  return torch::softplus(-fake).mean();
}

}  // namespace distgan
