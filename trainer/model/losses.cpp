#include "trainer/model/losses.h"

#include <stdexcept>

namespace distgan {

LossKind parse_loss(const std::string& name) {
  if (name == "nonsaturating") return LossKind::kNonSaturating;
  if (name == "hinge") return LossKind::kHinge;
  if (name == "wgan-gp") return LossKind::kWganGp;
  throw std::invalid_argument("training.loss: unknown loss '" + name + "' (expected nonsaturating, hinge or wgan-gp)");
}

torch::Tensor discriminator_loss_real(LossKind kind, const torch::Tensor& real) {
  if (kind == LossKind::kHinge) return torch::relu(1 - real).mean();
  if (kind == LossKind::kWganGp) return -real.mean();
  // softplus(-x) = -log(sigmoid(x)): BCE with target 1, computed stably.
  return torch::softplus(-real).mean();
}

torch::Tensor discriminator_loss_fake(LossKind kind, const torch::Tensor& fake) {
  if (kind == LossKind::kHinge) return torch::relu(1 + fake).mean();
  if (kind == LossKind::kWganGp) return fake.mean();  // the penalty is added by the step
  return torch::softplus(fake).mean();
}

torch::Tensor discriminator_loss(LossKind kind, const torch::Tensor& real, const torch::Tensor& fake) {
  return discriminator_loss_real(kind, real) + discriminator_loss_fake(kind, fake);
}

torch::Tensor generator_loss(LossKind kind, const torch::Tensor& fake) {
  if (kind == LossKind::kHinge || kind == LossKind::kWganGp) return -fake.mean();
  return torch::softplus(-fake).mean();
}

namespace {
torch::Tensor input_gradient(const torch::Tensor& logits, const torch::Tensor& inputs) {
  return torch::autograd::grad({logits.sum()}, {inputs}, /*grad_outputs=*/{}, /*retain_graph=*/true,
                               /*create_graph=*/true)[0];
}
}  // namespace

torch::Tensor squared_input_gradient(const torch::Tensor& logits, const torch::Tensor& inputs) {
  return input_gradient(logits, inputs).reshape({inputs.size(0), -1}).pow(2).sum(1).mean();
}

torch::Tensor gradient_penalty(const std::function<torch::Tensor(const torch::Tensor&)>& critic,
                               const torch::Tensor& real, const torch::Tensor& fake, const torch::Tensor& eps) {
  std::vector<int64_t> shape(static_cast<size_t>(real.dim()), 1);
  shape[0] = real.size(0);
  const torch::Tensor e = eps.to(real.dtype()).reshape(shape);
  const torch::Tensor x_hat = (e * real.detach() + (1 - e) * fake.detach()).requires_grad_(true);
  const torch::Tensor g = input_gradient(critic(x_hat), x_hat).reshape({real.size(0), -1});
  // +1e-12: the norm's gradient at exactly 0 is NaN.
  return ((g.pow(2).sum(1) + 1e-12).sqrt() - 1).pow(2).mean();
}

}  // namespace distgan
