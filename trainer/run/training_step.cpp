#include "trainer/run/training_step.h"
#include "trainer/outputs/console_log.h"

#include <cmath>
#include <cstdio>

#include "trainer/model/ema.h"
#include "trainer/run/agreed_failure.h"

namespace distgan {

namespace {

// The non-finite policy. `skipped` comes from the averaged loss and gradient, identical on every
// rank, so every rank takes the same decision without a collective. Returns whether it was applied.
bool update_applied(RunState& r, bool skipped, const char* which, int64_t step, double loss, double norm) {
  if (!skipped) return true;
  ++r.interval.skipped;
  if (r.skips.last_step != step) ++r.skips.consecutive;  // counted in steps: D and G updates alternate
  r.skips.last_step = step;
  char what[200];
  std::snprintf(what, sizeof(what), "non-finite %s update at step %lld (rank 0's loss %g, gradient norm %g)", which,
                static_cast<long long>(step), loss, norm);
  const std::string keep = "; the last checkpoint is kept: resume with --resume auto (a lower learning rate helps)";
  const TrainingConfig& t = r.config.training;
  if (t.on_nonfinite == "abort")
    throw AgreedFailure(std::string(what) + " and training.on_nonfinite is abort" + keep, 1, r.is_root());
  if (r.skips.consecutive > t.max_consecutive_skips)
    throw AgreedFailure(std::string(what) + ": " + std::to_string(r.skips.consecutive) +
                            " steps in a row had a skipped update (training.max_consecutive_skips = " +
                            std::to_string(t.max_consecutive_skips) + ")" + keep,
                        1, r.is_root());
  if (r.is_root()) log_warning("distgan: warning: skipped the %s on every rank\n", what);
  return false;
}

// training.augment's random parameters for one batch (none when it is off), from the rank's stream.
AugmentDraw draw_augmentation(RunState& r) {
  if (!r.augment.any()) return {};
  const auto& shape = r.spec.sample_shape;
  return draw_augment(r.augment, r.per_rank_batch, shape[1], shape[2], r.noise, r.device);
}

// The D step's inputs for critic iteration `c` of step `s`: the next real batch, and from this
// rank's noise stream, in this order (a resumed run repeats it): z, the fake labels, WGAN-GP's eps.
DStepInput next_d_input(RunState& r, int64_t s, int64_t c, data::Batch& batch, torch::Tensor& z) {
  const auto t0 = Clock::now();
  batch = r.loader->next();
  r.interval.data_s += seconds_between(t0, Clock::now());
  const int64_t b = r.per_rank_batch, classes = r.spec.num_classes;
  DStepInput in;
  // Pinned host batches copy asynchronously while the G forward runs.
  in.real = batch.data.to(r.device, /*non_blocking=*/true);
  if (r.faults.poisons_batch(s, r.rank(), r.world_size())) in.real = in.real * NAN;
  z = torch::randn({b, r.spec.z_dim}, r.noise).to(r.device, /*non_blocking=*/true);
  if (classes > 0) {  // real labels with the batch; fake ones drawn uniformly, from the rank's stream
    in.real_labels = batch.labels.to(r.device, /*non_blocking=*/true);
    in.fake_labels = torch::randint(classes, {b}, r.noise, torch::kInt64).to(r.device);
  }
  if (parse_loss(r.config.training.loss) == LossKind::kWganGp) in.gp_eps = torch::rand({b}, r.noise).to(r.device);
  in.augment_real = draw_augmentation(r);
  in.augment_fake = draw_augmentation(r);
  // By D-step count, so a resumed run applies it at the same steps.
  in.apply_r1 = ((s - 1) * r.config.training.n_critic + c) % r.config.training.r1_every == 0;
  return in;
}

}  // namespace

void run_training_step(RunState& r, int64_t s) {
  const TrainingConfig& t = r.config.training;
  if (t.lr_schedule == "linear")  // a function of the step: resumes continue it exactly
    r.step->scale_learning_rates(linear_decay_factor(s, t.steps, t.lr_decay_start));
  torch::Tensor fake, fake_labels;
  data::Batch batch;
  for (int64_t c = 0; c < t.n_critic; ++c) {
    torch::Tensor z;
    DStepInput in = next_d_input(r, s, c, batch, z);
    fake = r.step->generate_for_step(z, in.fake_labels, /*for_g_step=*/c == t.n_critic - 1);
    in.fake = fake;
    fake_labels = in.fake_labels;
    const DStepStats d = r.step->d_step(in);
    ++r.interval.d_steps;
    if (update_applied(r, d.skipped, "D", s, d.loss_d, d.grad_norm)) r.interval.add(d);
  }
  const GStepStats g = r.step->g_step(fake, fake_labels, top_k_share(t.top_k_keep, t.top_k_decay, batch.epoch),
                                      draw_augmentation(r));
  ++r.interval.g_steps;
  if (update_applied(r, g.skipped, "G", s, g.loss_g, g.grad_norm)) {
    r.step->update_ema(ema_beta(t.ema_half_life_kimg, t.ema_rampup, s * r.global_batch, r.global_batch));
    r.interval.add(g);
  }
  r.interval.comm_s += r.step->take_communication_seconds();
  if (r.skips.last_step != s) r.skips.consecutive = 0;
  // Where the next step's data starts: the batch after the last one read.
  const bool epoch_done = batch.batch + 1 == r.loader->batches_per_epoch();
  r.last_batch_epoch = batch.epoch;
  r.position = {s, epoch_done ? batch.epoch + 1 : batch.epoch, epoch_done ? 0 : (batch.batch + 1) * r.global_batch,
                r.position.samples_seen + t.n_critic * r.global_batch};
}

}  // namespace distgan
