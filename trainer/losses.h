// Adversarial losses on D's logits, each a mean over the batch:
//   nonsaturating (BCE with logits): L_D = softplus(-D(x)) + softplus(D(G(z))),  L_G = softplus(-D(G(z)))
//   hinge:                          L_D = relu(1 - D(x)) + relu(1 + D(G(z))),   L_G = -D(G(z))
#pragma once

#include <torch/torch.h>

#include <string>

namespace distgan {

enum class LossKind { kNonSaturating, kHinge };

LossKind parse_loss(const std::string& name);  // "nonsaturating" | "hinge"

torch::Tensor discriminator_loss(LossKind kind, const torch::Tensor& real_logits, const torch::Tensor& fake_logits);
torch::Tensor generator_loss(LossKind kind, const torch::Tensor& fake_logits);

}  // namespace distgan
