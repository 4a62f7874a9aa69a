// The adversarial step on one rank, in lock-step with every other rank:
//   fake = G(z)
//   D step: loss_D(D(real)) -> backward, then loss_D(D(fake.detach())) -> backward
//           -> average D grads -> Adam step
//   G step: loss_G(D(fake))                   -> backward -> average G grads -> Adam step -> EMA update
// Every D loss is a term on the reals plus a term on the fakes (trainer/model/losses.h), so the D
// step backpropagates the reals' term first: that part needs no fakes, and so no G update. The
// training loop uses this to hide G's gradient all-reduce (begin_g_step) behind the next step's D
// pass on the reals, finishing G's update (finish_g_step) just before the fakes are made
// (d_step's before_fakes). The math is the same whenever the update finishes.
// Conditional models take labels: real ones with the real batch, drawn ones with z. The R1 penalty
// (every r1_every-th D step, weighted gamma / 2 * r1_every) joins the reals' term; WGAN-GP's
// penalty, which needs both, the fakes' term.
// Replicas start identical (broadcast from rank 0) and stay identical: the same averaged gradient
// goes into the same optimizer everywhere (trainer/step/replica_sync.h). BatchNorm uses each rank's
// own batch statistics while training; average_batchnorm_statistics() makes the running statistics
// equal before they are used.
#pragma once

#include <torch/torch.h>

#include <functional>
#include <memory>

#include "cluster/communicator.h"
#include "cluster/gradient_buckets.h"
#include "trainer/step/replica_sync.h"
#include "trainer/model/augment.h"
#include "trainer/model/losses.h"
#include "trainer/model/models.h"

namespace distgan {

struct StepOptions {
  LossKind loss = LossKind::kNonSaturating;
  double lr_g = 2e-4, lr_d = 2e-4;
  std::array<double, 2> betas_g{0.5, 0.999}, betas_d{0.5, 0.999};
  int64_t bucket_bytes = cluster::kDefaultBucketBytes;
  bool overlap = true;    // all-reduce each gradient bucket during backward (cluster.overlap)
  bool bf16_gradients = false;  // gradients travel as bfloat16 (cluster.grad_dtype)
  bool amp_bf16 = false;  // forward passes under bf16 autocast (CUDA or CPU); losses in float32
  double r1_gamma = 0;    // R1 weight (0: off)
  int64_t r1_every = 16;  // lazy R1: applied on D steps the caller marks, scaled by this
  double gp_lambda = 10;  // wgan-gp's penalty weight
};

// One D step's inputs. Labels are undefined for unconditional models; gp_eps [B] (U(0, 1)) only for
// wgan-gp; apply_r1 on the D steps that carry the lazy R1 penalty. The augment draws (empty unless
// training.augment) transform the reals and the fakes before D sees them.
struct DStepInput {
  torch::Tensor real, real_labels, fake, fake_labels, gp_eps;
  bool apply_r1 = false;
  AugmentDraw augment_real, augment_fake;
};

// A step whose averaged loss or gradient is not finite is not applied (on every rank alike: the
// averaged values are the same everywhere), and says so in `skipped`.
struct DStepStats {
  double loss_d = 0;  // this rank's
  double d_real = 0;  // mean D(real) as a probability (sigmoid of the logit)
  double d_fake = 0;
  double grad_norm = 0;  // of the averaged gradient
  double penalty = 0;    // this rank's R1 or gradient penalty (unweighted; 0 when none this step)
  bool penalised = false;  // R1 or the gradient penalty was part of this step's loss
  bool skipped = false;
};

// One micro-batch of an accumulated G step: G's input and the augmentation of its output.
struct GMicroBatch {
  torch::Tensor z, labels;
  AugmentDraw augment_fake;
};

struct GStepStats {
  double loss_g = 0;
  double grad_norm = 0;
  bool skipped = false;
};

// training.lr_schedule linear: the learning-rate factor at step s (1-based) of `steps`; 1 until
// s - 1 reaches decay_start x steps, then linear to 0 at `steps`. A function of the step alone,
// so a resumed run continues the schedule exactly.
double linear_decay_factor(int64_t step, int64_t steps, double decay_start);
// training.top_k: the share of fakes the G step learns from in `epoch` (0-based), max(keep, decay^epoch).
double top_k_share(double keep, double decay, int64_t epoch);

class AdversarialStep {
 public:
  AdversarialStep(GanModels models, cluster::Communicator& comm, const StepOptions& options);
  AdversarialStep(const AdversarialStep&) = delete;  // its ReplicaSync refers to models_
  AdversarialStep& operator=(const AdversarialStep&) = delete;

  // Replica management (trainer/step/replica_sync.h), here for the callers' convenience.
  ReplicaSync& replicas() { return *sync_; }
  void broadcast_from_root() { sync_->broadcast_from_root(*opt_g_, *opt_d_); }
  void average_batchnorm_statistics() { sync_->average_batchnorm_statistics(); }
  std::string compare_replicas() { return sync_->compare_replicas(); }
  double take_communication_seconds() { return sync_->take_communication_seconds(); }

  // G(z, labels) for the step. With `for_g_step` the graph is kept so g_step() can backpropagate.
  torch::Tensor generate_for_step(const torch::Tensor& z, const torch::Tensor& labels, bool for_g_step);
  torch::Tensor generate_for_step(const torch::Tensor& z, bool for_g_step) { return generate_for_step(z, {}, for_g_step); }
  // One D update on this rank's real batch and fake batch (detached inside).
  DStepStats d_step(const DStepInput& in) { return d_step(std::vector<DStepInput>{in}); }
  DStepStats d_step(const torch::Tensor& real, const torch::Tensor& fake) {
    DStepInput in;
    in.real = real;
    in.fake = fake;
    return d_step(in);
  }
  // training.accumulate: one D update from K micro-batches, each forward and backward in turn with
  // its loss weighted 1/K, then one gradient all-reduce (none for the first K-1, as DDP's no_sync):
  // the update of the mean loss over all K micro-batches.
  // `before_fakes`, when given, runs after the first micro-batch's reals have been backpropagated
  // and before any micro-batch's `fake` is read: the caller may finish a G update there and fill
  // in the fakes of `micro_batches` (a G update may be in flight only when it is given).
  DStepStats d_step(const std::vector<DStepInput>& micro_batches, const std::function<void()>& before_fakes = {});
  // One G update through D(fake, labels), from the ceil(keep_share x B) fakes D scores highest
  // (top-k training, Sinha et al. 2020; 1: all of them). `augment_fake` (training.augment)
  // transforms the fakes before D, differentiably.
  GStepStats g_step(const torch::Tensor& fake, const torch::Tensor& fake_labels, double keep_share = 1.0,
                    const AugmentDraw& augment_fake = {});
  GStepStats g_step(const torch::Tensor& fake) { return g_step(fake, {}); }
  // training.accumulate: one G update from K micro-batches; each G(z) is generated again here (with
  // its graph) and backpropagated before the next, so one G graph is alive at a time. top-k acts
  // within each micro-batch.
  GStepStats g_step(const std::vector<GMicroBatch>& micro_batches, double keep_share = 1.0);
  // G's update in two halves: backward, whose hooks start the gradient all-reduces (returns with
  // them in flight), and finish_g_step(): wait, average, Adam step. Between them the caller may run
  // anything that needs neither G's gradients nor its new weights (a D step's reals). One update in
  // flight at a time; g_step() does both at once.
  void begin_g_step(const torch::Tensor& fake, const torch::Tensor& fake_labels, double keep_share = 1.0,
                    const AugmentDraw& augment_fake = {});
  void begin_g_step(const std::vector<GMicroBatch>& micro_batches, double keep_share = 1.0);
  GStepStats finish_g_step();
  bool g_step_in_flight() const { return g_pending_; }
  // Both optimizers' learning rates become `factor` x the configured ones (a schedule). G's may
  // not change while its update is in flight.
  void scale_learning_rates(double factor) {
    scale_learning_rate_g(factor);  // first: it refuses while G's update is in flight
    scale_learning_rate_d(factor);
  }
  void scale_learning_rate_d(double factor);
  void scale_learning_rate_g(double factor);
  // Moves G's EMA (if the models have one) towards G with this beta (trainer/model/ema.h).
  void update_ema(double beta);

  // G(z, labels) in eval mode without gradients (for samples): the EMA generator when the models
  // have one and use_ema is set.
  torch::Tensor sample(const torch::Tensor& z, const torch::Tensor& labels = {}, bool use_ema = true);

  GanModels& models() { return models_; }
  torch::optim::Adam& optimizer_g() { return *opt_g_; }
  torch::optim::Adam& optimizer_d() { return *opt_d_; }

 private:
  // `loss_sum` accumulates the weighted losses of the update's micro-batches (on the device); on the
  // final one it is handed to the reducer before backward, which then starts the all-reduces.
  // An update's sums over its micro-batches, kept on the device: the weighted loss (it rides with
  // the gradients) and the logged statistics (read back with the update's one host read).
  struct UpdateSums {
    torch::Tensor loss, stats;
  };
  // One D micro-batch's reals' part, detached: its loss term (with R1), mean D(real), R1's value.
  struct DRealPart {
    torch::Tensor loss, d_real, penalty;
    bool penalised = false;
  };
  DRealPart d_real_backward(const DStepInput& in, double weight);
  bool d_fake_backward(const DStepInput& in, const DRealPart& real, double weight, UpdateSums& sums, bool final);
  void g_backward(const torch::Tensor& fake, const torch::Tensor& fake_labels, double keep_share,
                  const AugmentDraw& augment_fake, double weight, UpdateSums& sums, bool final);

  GanModels models_;
  c10::DeviceType amp_device_ = c10::DeviceType::CPU;  // where bf16 autocast applies (the models' device)
  cluster::Communicator& comm_;
  StepOptions options_;
  std::unique_ptr<torch::optim::Adam> opt_g_, opt_d_;
  std::unique_ptr<ReplicaSync> sync_;  // after models_: it refers to them
  bool g_pending_ = false;             // begin_g_step ran, finish_g_step not yet
};

}  // namespace distgan
