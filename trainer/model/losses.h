// Adversarial losses on D's logits, each a mean over the batch:
//   nonsaturating (BCE with logits): L_D = softplus(-D(x)) + softplus(D(G(z))),  L_G = softplus(-D(G(z)))
//   hinge:                          L_D = relu(1 - D(x)) + relu(1 + D(G(z))),   L_G = -D(G(z))
//   wgan-gp (Gulrajani et al. 2017): L_D = D(G(z)) - D(x) + lambda * GP,       L_G = -D(G(z))
// and the gradient penalties, both mean over the batch of per-sample squared input-gradient terms:
//   R1 (Mescheder et al. 2018):  ||grad_x D(x)||^2 on real x (the caller weighs it by gamma / 2)
//   GP (WGAN-GP):                (||grad D(x_hat)|| - 1)^2, x_hat = eps x + (1 - eps) G(z), eps ~ U(0, 1)
#pragma once

#include <torch/torch.h>

#include <functional>
#include <string>

namespace distgan {

enum class LossKind { kNonSaturating, kHinge, kWganGp };

LossKind parse_loss(const std::string& name);  // "nonsaturating" | "hinge" | "wgan-gp"

torch::Tensor discriminator_loss(LossKind kind, const torch::Tensor& real_logits, const torch::Tensor& fake_logits);
// Its two terms, which it is the sum of: every D loss here is one term on the reals plus one on the
// fakes, so the step can backpropagate the reals' term before the fakes exist.
torch::Tensor discriminator_loss_real(LossKind kind, const torch::Tensor& real_logits);
torch::Tensor discriminator_loss_fake(LossKind kind, const torch::Tensor& fake_logits);
torch::Tensor generator_loss(LossKind kind, const torch::Tensor& fake_logits);

// Mean squared norm of d(sum of logits)/d(inputs) per sample; `inputs` must require grad and
// `logits` be computed from them. The graph is kept, so the penalty's gradient reaches D's weights.
torch::Tensor squared_input_gradient(const torch::Tensor& logits, const torch::Tensor& inputs);
// WGAN-GP's penalty at x_hat = eps * real + (1 - eps) * fake, with eps [B] given by the caller (its
// random stream). `critic` maps x_hat to logits [B].
torch::Tensor gradient_penalty(const std::function<torch::Tensor(const torch::Tensor&)>& critic,
                               const torch::Tensor& real, const torch::Tensor& fake, const torch::Tensor& eps);

}  // namespace distgan
