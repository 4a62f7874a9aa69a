// The adversarial step on one rank, in lock-step with every other rank (DESIGN.md):
//   fake = G(z)
//   D step: loss_D(D(real), D(fake.detach())) -> backward -> average D grads -> Adam step
//   G step: loss_G(D(fake))                   -> backward -> average G grads -> Adam step
// Replicas start identical (broadcast from rank 0) and stay identical: the same averaged gradient
// goes into the same optimizer everywhere. BatchNorm uses each rank's own batch statistics while
// training; average_batchnorm_statistics() makes the running statistics equal before they are used.
#pragma once

#include <torch/torch.h>

#include <memory>

#include "cluster/communicator.h"
#include "cluster/gradient_buckets.h"
#include "trainer/losses.h"
#include "trainer/models.h"

namespace distgan {

struct StepOptions {
  LossKind loss = LossKind::kNonSaturating;
  double lr_g = 2e-4, lr_d = 2e-4;
  std::array<double, 2> betas_g{0.5, 0.999}, betas_d{0.5, 0.999};
  int64_t bucket_bytes = cluster::kDefaultBucketBytes;
  bool amp_bf16 = false;  // forward passes under bf16 autocast (CUDA); losses in float32
};

// A step whose averaged loss or gradient is not finite is not applied (on every rank alike: the
// averaged values are the same everywhere), and says so in `skipped`.
struct DStepStats {
  double loss_d = 0;  // this rank's
  double d_real = 0;  // mean D(real) as a probability (sigmoid of the logit)
  double d_fake = 0;
  double grad_norm = 0;  // of the averaged gradient
  bool skipped = false;
};

struct GStepStats {
  double loss_g = 0;
  double grad_norm = 0;
  bool skipped = false;
};

class AdversarialStep {
 public:
  AdversarialStep(GanModels models, cluster::Communicator& comm, const StepOptions& options);

  // Rank 0's parameters, buffers and optimizer state to every rank.
  void broadcast_from_root();

  // G(z) for the step. With `for_g_step` the graph is kept so g_step() can backpropagate through it.
  torch::Tensor generate_for_step(const torch::Tensor& z, bool for_g_step);
  // One D update on this rank's real batch and fake batch (detached inside).
  DStepStats d_step(const torch::Tensor& real, const torch::Tensor& fake);
  // One G update through D(fake).
  GStepStats g_step(const torch::Tensor& fake);

  // Averages BatchNorm running statistics across ranks (a collective: every rank calls it).
  void average_batchnorm_statistics();
  // Compares a checksum (crc32 of the bytes) of every parameter across ranks (one
  // allgather); returns "" when all replicas are identical, else which tensor differs first and on
  // which ranks. Every rank gets the same answer.
  std::string compare_replicas();
  // G(z) in eval mode without gradients (for samples).
  torch::Tensor sample(const torch::Tensor& z);

  GanModels& models() { return models_; }
  torch::optim::Adam& optimizer_g() { return *opt_g_; }
  torch::optim::Adam& optimizer_d() { return *opt_d_; }
  // Seconds waited for gradient all-reduces since the last call (and resets the count).
  double take_communication_seconds();

 private:
  void broadcast_optimizer_state(torch::optim::Adam& optimizer, const std::vector<torch::Tensor>& params);

  GanModels models_;
  cluster::Communicator& comm_;
  StepOptions options_;
  std::unique_ptr<torch::optim::Adam> opt_g_, opt_d_;
  std::unique_ptr<cluster::GradientReducer> reduce_g_, reduce_d_;
  double comm_seconds_ = 0;
};

}  // namespace distgan
