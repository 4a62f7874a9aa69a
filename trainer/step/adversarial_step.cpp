#include "trainer/step/adversarial_step.h"

#include <algorithm>
#include <cmath>
#include <functional>

#include "trainer/model/autocast.h"
#include "trainer/model/ema.h"

namespace distgan {

AdversarialStep::AdversarialStep(GanModels models, cluster::Communicator& comm, const StepOptions& options)
    : models_(std::move(models)), comm_(comm), options_(options) {
  opt_g_ = std::make_unique<torch::optim::Adam>(
      models_.generator->parameters(),
      torch::optim::AdamOptions(options.lr_g).betas({options.betas_g[0], options.betas_g[1]}));
  opt_d_ = std::make_unique<torch::optim::Adam>(
      models_.discriminator->parameters(),
      torch::optim::AdamOptions(options.lr_d).betas({options.betas_d[0], options.betas_d[1]}));
  const auto g_params = models_.generator->parameters();
  if (!g_params.empty()) amp_device_ = g_params.front().device().type();
  sync_ = std::make_unique<ReplicaSync>(models_, comm, options.bucket_bytes, options.overlap,
                                       options.bf16_gradients ? torch::kBFloat16 : torch::kFloat32);
}

torch::Tensor AdversarialStep::generate_for_step(const torch::Tensor& z, const torch::Tensor& labels, bool for_g_step) {
  models_.generator->train();
  BF16Autocast autocast(options_.amp_bf16, amp_device_);
  if (for_g_step) return generate(models_.generator, z, labels);
  torch::NoGradGuard no_grad;
  return generate(models_.generator, z, labels);
}

namespace {

// Adds `weight` x this micro-batch's values to an update's device-side sums.
void accumulate(torch::Tensor& sum, const torch::Tensor& value, double weight) {
  const torch::Tensor weighted = weight == 1.0 ? value.detach() : value.detach() * weight;
  sum = sum.defined() ? sum + weighted : weighted;
}

}  // namespace

// The part of one D micro-batch that needs no fakes: D(real), the reals' loss term (and R1 on the
// steps that carry it) scaled by `weight` (1/K of K micro-batches), backward. Its gradients
// accumulate; its statistics come back detached, for d_fake_backward to add to the update's sums.
AdversarialStep::DRealPart AdversarialStep::d_real_backward(const DStepInput& in, double weight) {
  auto& d = models_.discriminator;
  const bool r1 = in.apply_r1 && options_.r1_gamma > 0;
  // R1 needs the gradient of D(real) with respect to the real images: a leaf that requires grad.
  const torch::Tensor real = r1 ? in.real.detach().requires_grad_(true) : in.real;
  torch::Tensor real_logits;
  {
    BF16Autocast autocast(options_.amp_bf16, amp_device_);
    real_logits = discriminate(d, augment(real, in.augment_real), in.real_labels).to(torch::kFloat32);
  }
  torch::Tensor loss = discriminator_loss_real(options_.loss, real_logits);
  DRealPart part;
  part.penalty = torch::zeros({}, loss.options());
  if (r1) {
    const torch::Tensor penalty = squared_input_gradient(real_logits, real);
    part.penalty = penalty.detach();
    // Lazy regularisation (StyleGAN2): every r1_every-th step, weighted by r1_every.
    loss = loss + (options_.r1_gamma / 2 * static_cast<double>(options_.r1_every)) * penalty;
  }
  part.penalised = r1;
  part.loss = loss.detach();
  part.d_real = torch::sigmoid(real_logits.detach()).mean();
  (weight == 1.0 ? loss : loss * weight).backward();
  return part;
}

// The rest of the micro-batch: D(fake), the fakes' loss term (and WGAN-GP's penalty, which needs
// both), backward; the final micro-batch's backward starts the all-reduces. The whole loss and its
// statistics (loss, D(real), D(fake), penalty) are added to `sums` on the device; returns whether a
// penalty ran.
bool AdversarialStep::d_fake_backward(const DStepInput& in, const DRealPart& real, double weight, UpdateSums& sums,
                                      bool final) {
  auto& d = models_.discriminator;
  torch::Tensor fake_logits;
  {
    BF16Autocast autocast(options_.amp_bf16, amp_device_);
    fake_logits = discriminate(d, augment(in.fake.detach(), in.augment_fake), in.fake_labels).to(torch::kFloat32);
  }
  torch::Tensor loss = discriminator_loss_fake(options_.loss, fake_logits);
  torch::Tensor penalty_value = real.penalty;
  if (options_.loss == LossKind::kWganGp) {
    TORCH_CHECK(in.gp_eps.defined(), "d_step: the wgan-gp loss needs gp_eps");
    const torch::Tensor penalty = gradient_penalty(
        [&](const torch::Tensor& x) {
          BF16Autocast autocast(options_.amp_bf16, amp_device_);
          return discriminate(d, x, in.real_labels).to(torch::kFloat32);
        },
        augment(in.real, in.augment_real), augment(in.fake.detach(), in.augment_fake), in.gp_eps);
    penalty_value = penalty.detach();
    loss = loss + options_.gp_lambda * penalty;
  }
  const torch::Tensor whole = real.loss + loss.detach();
  accumulate(sums.loss, whole, weight);
  accumulate(sums.stats,
             torch::stack({whole, real.d_real, torch::sigmoid(fake_logits.detach()).mean(), penalty_value})
                 .to(torch::kFloat64),
             weight);
  if (final) sync_->reducer_d().begin_final_backward(sums.loss, sums.stats);
  (weight == 1.0 ? loss : loss * weight).backward();
  return real.penalised || options_.loss == LossKind::kWganGp;
}

DStepStats AdversarialStep::d_step(const std::vector<DStepInput>& micro_batches, const std::function<void()>& before_fakes) {
  TORCH_CHECK(!micro_batches.empty(), "d_step: no micro-batch");
  TORCH_CHECK(!g_pending_ || before_fakes, "d_step: G's update is still in flight (finish_g_step first)");
  models_.discriminator->train();
  sync_->reducer_d().zero_grad();
  const double weight = 1.0 / static_cast<double>(micro_batches.size());
  DStepStats stats;
  advance_power_iteration(*models_.discriminator);
  PowerIterationPause pause(*models_.discriminator, true);
  UpdateSums sums;
  for (const DStepInput& in : micro_batches) {  // gradients accumulate; communication in the last backward only
    const DRealPart real = d_real_backward(in, weight);
    if (&in == &micro_batches.front() && before_fakes) before_fakes();
    stats.penalised = d_fake_backward(in, real, weight, sums, &in == &micro_batches.back());
  }
  const AveragedUpdate update = sync_->apply_averaged_update(sync_->reducer_d(), *opt_d_);
  stats.loss_d = update.riders.at(0);
  stats.d_real = update.riders.at(1);
  stats.d_fake = update.riders.at(2);
  stats.penalty = update.riders.at(3);
  stats.grad_norm = update.grad_norm;
  stats.skipped = update.skipped;
  return stats;
}

double top_k_share(double keep, double decay, int64_t epoch) {
  return keep >= 1 ? 1.0 : std::max(keep, std::pow(decay, static_cast<double>(epoch)));
}

// G's loss on `fake` through D (D's weights frozen), backpropagated with `weight`; the loss is
// added to `sums` on the device.
void AdversarialStep::g_backward(const torch::Tensor& fake, const torch::Tensor& fake_labels, double keep_share,
                                 const AugmentDraw& augment_fake, double weight, UpdateSums& sums, bool final) {
  // D's weights need no gradient here (only its input does): skipping them saves a third of D's
  // backward work, and D's gradients are not left holding the G step's values.
  auto d_params = models_.discriminator->parameters();
  for (auto& p : d_params) p.requires_grad_(false);
  torch::Tensor loss;
  try {
    torch::Tensor logits;
    {
      BF16Autocast autocast(options_.amp_bf16, amp_device_);
      logits = discriminate(models_.discriminator, augment(fake, augment_fake), fake_labels).to(torch::kFloat32);
    }
    const int64_t b = logits.size(0), keep = std::clamp<int64_t>(std::ceil(keep_share * double(b) - 1e-9), 1, b);
    // Sinha et al.: the gradients of the fakes D scores lowest help G least (they pull it off good modes).
    if (keep < b) logits = std::get<0>(logits.topk(keep));
    loss = generator_loss(options_.loss, logits);
    accumulate(sums.loss, loss, weight);
    accumulate(sums.stats, loss.detach().to(torch::kFloat64).reshape({1}), weight);
    if (final) sync_->reducer_g().begin_final_backward(sums.loss, sums.stats);
    (weight == 1.0 ? loss : loss * weight).backward();
  } catch (...) {
    for (auto& p : d_params) p.requires_grad_(true);
    throw;
  }
  for (auto& p : d_params) p.requires_grad_(true);
}

void AdversarialStep::begin_g_step(const torch::Tensor& fake, const torch::Tensor& fake_labels, double keep_share,
                                   const AugmentDraw& augment_fake) {
  TORCH_CHECK(!g_pending_, "begin_g_step: the last G update is still in flight (finish_g_step first)");
  sync_->reducer_g().zero_grad();
  PowerIterationPause pause(*models_.discriminator, true);  // D is not updated here
  UpdateSums sums;  // the reducer keeps what it needs of them
  g_backward(fake, fake_labels, keep_share, augment_fake, 1.0, sums, true);
  sync_->reducer_g().start_remaining_buckets();
  g_pending_ = true;
}

void AdversarialStep::begin_g_step(const std::vector<GMicroBatch>& micro_batches, double keep_share) {
  TORCH_CHECK(!micro_batches.empty(), "g_step: no micro-batch");
  TORCH_CHECK(!g_pending_, "begin_g_step: the last G update is still in flight (finish_g_step first)");
  sync_->reducer_g().zero_grad();
  const double weight = 1.0 / static_cast<double>(micro_batches.size());
  PowerIterationPause pause(*models_.discriminator, true);  // D is not updated here
  UpdateSums sums;
  for (const GMicroBatch& m : micro_batches) {  // one G graph alive at a time
    const torch::Tensor fake = generate_for_step(m.z, m.labels, /*for_g_step=*/true);
    g_backward(fake, m.labels, keep_share, m.augment_fake, weight, sums, &m == &micro_batches.back());
  }
  sync_->reducer_g().start_remaining_buckets();
  g_pending_ = true;
}

GStepStats AdversarialStep::finish_g_step() {
  TORCH_CHECK(g_pending_, "finish_g_step: no G update in flight");
  g_pending_ = false;
  const AveragedUpdate update = sync_->apply_averaged_update(sync_->reducer_g(), *opt_g_);
  GStepStats stats;
  stats.loss_g = update.riders.at(0);
  stats.grad_norm = update.grad_norm;
  stats.skipped = update.skipped;
  return stats;
}

GStepStats AdversarialStep::g_step(const torch::Tensor& fake, const torch::Tensor& fake_labels, double keep_share,
                                   const AugmentDraw& augment_fake) {
  begin_g_step(fake, fake_labels, keep_share, augment_fake);
  return finish_g_step();
}

GStepStats AdversarialStep::g_step(const std::vector<GMicroBatch>& micro_batches, double keep_share) {
  begin_g_step(micro_batches, keep_share);
  return finish_g_step();
}

double linear_decay_factor(int64_t step, int64_t steps, double decay_start) {
  const double begin = decay_start * double(steps), done = double(step - 1);
  if (steps <= 0 || done <= begin) return 1.0;
  return std::max(0.0, 1.0 - (done - begin) / (double(steps) - begin));
}

namespace {
void scale_learning_rate(torch::optim::Adam& optimizer, double lr, double factor) {
  for (auto& group : optimizer.param_groups()) static_cast<torch::optim::AdamOptions&>(group.options()).lr(lr * factor);
}
}  // namespace

void AdversarialStep::scale_learning_rate_g(double factor) {
  TORCH_CHECK(!g_pending_, "scale_learning_rate_g: a G update is in flight; it would take the new rate");
  scale_learning_rate(*opt_g_, options_.lr_g, factor);
}

void AdversarialStep::scale_learning_rate_d(double factor) { scale_learning_rate(*opt_d_, options_.lr_d, factor); }

void AdversarialStep::update_ema(double beta) {
  if (models_.generator_ema) ema_update(*models_.generator_ema, *models_.generator, beta);
}

torch::Tensor AdversarialStep::sample(const torch::Tensor& z, const torch::Tensor& labels, bool use_ema) {
  torch::NoGradGuard no_grad;
  auto& g = use_ema && models_.generator_ema ? models_.generator_ema : models_.generator;
  g->eval();
  torch::Tensor out = generate(g, z, labels);
  models_.generator->train();
  return out;
}

}  // namespace distgan
