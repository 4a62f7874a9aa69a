#include "trainer/run/training_step.h"
#include "trainer/outputs/console_log.h"

#include <cmath>
#include <cstdio>
#include <utility>

#include "trainer/model/ema.h"
#include "trainer/model/host_to_device.h"
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

// training.augment's random parameters for one micro-batch (none when it is off), from the rank's stream.
AugmentDraw draw_augmentation(RunState& r, int64_t micro) {
  if (!r.augment.any()) return {};
  const auto& shape = r.spec.sample_shape;
  return draw_augment(r.augment, micro, shape[1], shape[2], r.noise, r.device);
}

// The D step's inputs for micro-batch `j` of `batch` (critic iteration `c` of step `s`): its slice
// of the real batch, and from this rank's noise stream, in this order (a resumed run repeats it):
// z, the fake labels, WGAN-GP's eps, the augmentation of the reals and of the fakes.
DStepInput next_d_input(RunState& r, int64_t s, int64_t c, const data::Batch& batch, int64_t j, torch::Tensor& z) {
  const int64_t k = r.config.training.accumulate, b = r.per_rank_batch / k, classes = r.spec.num_classes;
  DStepInput in;
  // Pinned host batches copy asynchronously while the step goes on.
  in.real = (k == 1 ? batch.data : batch.data.narrow(0, j * b, b)).to(r.device, /*non_blocking=*/true);
  if (r.channels_last) in.real = in.real.contiguous(torch::MemoryFormat::ChannelsLast);
  if (r.faults.poisons_batch(s, r.rank(), r.world_size())) in.real = in.real * NAN;
  z = host_to_device(torch::randn({b, r.spec.z_dim}, r.noise), r.device);
  if (classes > 0) {  // real labels with the batch; fake ones drawn uniformly, from the rank's stream
    in.real_labels = (k == 1 ? batch.labels : batch.labels.narrow(0, j * b, b)).to(r.device, /*non_blocking=*/true);
    in.fake_labels = host_to_device(torch::randint(classes, {b}, r.noise, torch::kInt64), r.device);
  }
  if (parse_loss(r.config.training.loss) == LossKind::kWganGp)
    in.gp_eps = host_to_device(torch::rand({b}, r.noise), r.device);
  in.augment_real = draw_augmentation(r, b);
  in.augment_fake = draw_augmentation(r, b);
  // By D-step count, so a resumed run applies it at the same steps.
  in.apply_r1 = ((s - 1) * r.config.training.n_critic + c) % r.config.training.r1_every == 0;
  return in;
}

data::Batch next_batch(RunState& r) {
  const auto t0 = Clock::now();
  data::Batch batch = r.loader->next();
  r.interval.data_s += seconds_between(t0, Clock::now());
  return batch;
}

}  // namespace

void finish_g_update(RunState& r) {
  if (r.g_update_in_flight == 0) return;
  const int64_t s = std::exchange(r.g_update_in_flight, 0);
  const GStepStats g = r.step->finish_g_step();
  const TrainingConfig& t = r.config.training;
  if (update_applied(r, g.skipped, "G", s, g.loss_g, g.grad_norm)) {
    r.step->update_ema(ema_beta(t.ema_half_life_kimg, t.ema_rampup, s * r.global_batch, r.global_batch));
    r.interval.add(g);
  }
  if (r.skips.last_step != s) r.skips.consecutive = 0;  // G's is the step's last decision
  r.interval.comm_s += r.step->take_communication_seconds();  // in the interval a log task is about to close
}

namespace {

// One D update (critic iteration `c` of step `s`): its inputs, then, once the first micro-batch's
// reals are backpropagated, the G update still in flight is finished and the fakes are made.
// `fake`, `fake_labels` and `g_micro` receive what the G step needs (see run_training_step).
DStepStats run_d_update(RunState& r, int64_t s, int64_t c, const data::Batch& batch, torch::Tensor& fake,
                        torch::Tensor& fake_labels, std::vector<GMicroBatch>& g_micro) {
  const TrainingConfig& t = r.config.training;
  const int64_t k = t.accumulate;
  const bool last = c == t.n_critic - 1;
  std::vector<DStepInput> micro;
  std::vector<torch::Tensor> z(static_cast<size_t>(k));
  for (int64_t j = 0; j < k; ++j) micro.push_back(next_d_input(r, s, c, batch, j, z[static_cast<size_t>(j)]));
  const auto make_fakes = [&] {
    finish_g_update(r);
    for (int64_t j = 0; j < k; ++j) {
      DStepInput& in = micro[static_cast<size_t>(j)];
      // Without accumulation the G step reuses the last fakes and their graph; with it, the G step
      // generates each micro-batch again, so no graph is kept here.
      in.fake = r.step->generate_for_step(z[static_cast<size_t>(j)], in.fake_labels, /*for_g_step=*/k == 1 && last);
      fake = in.fake;
      fake_labels = in.fake_labels;
      if (k > 1 && last) g_micro.push_back({z[static_cast<size_t>(j)], in.fake_labels, {}});
    }
  };
  return r.step->d_step(micro, make_fakes);
}

}  // namespace

void run_training_step(RunState& r, int64_t s) {
  const TrainingConfig& t = r.config.training;
  // A function of the step, so resumes continue it exactly. G's rate changes only once the last
  // G update, made at its own step's rate, is finished.
  const double lr_factor = t.lr_schedule == "linear" ? linear_decay_factor(s, t.steps, t.lr_decay_start) : 1.0;
  if (t.lr_schedule == "linear") r.step->scale_learning_rate_d(lr_factor);
  const int64_t k = t.accumulate;
  torch::Tensor fake, fake_labels;
  std::vector<GMicroBatch> g_micro;  // with accumulation: the last D step's z and labels, for the G step
  data::Batch batch;
  for (int64_t c = 0; c < t.n_critic; ++c) {
    batch = next_batch(r);
    const DStepStats d = run_d_update(r, s, c, batch, fake, fake_labels, g_micro);
    ++r.interval.d_steps;
    if (update_applied(r, d.skipped, "D", s, d.loss_d, d.grad_norm)) r.interval.add(d);
  }
  if (t.lr_schedule == "linear") r.step->scale_learning_rate_g(lr_factor);
  const double keep = top_k_share(t.top_k_keep, t.top_k_decay, batch.epoch);
  if (k == 1) {
    r.step->begin_g_step(fake, fake_labels, keep, draw_augmentation(r, r.per_rank_batch));
  } else {
    for (GMicroBatch& m : g_micro) m.augment_fake = draw_augmentation(r, r.per_rank_batch / k);
    r.step->begin_g_step(g_micro, keep);
  }
  ++r.interval.g_steps;
  r.g_update_in_flight = s;
  if (!r.config.cluster.overlap) finish_g_update(r);
  r.interval.comm_s += r.step->take_communication_seconds();
  // Where the next step's data starts: the batch after the last one read.
  const bool epoch_done = batch.batch + 1 == r.loader->batches_per_epoch();
  r.last_batch_epoch = batch.epoch;
  r.position = {s, epoch_done ? batch.epoch + 1 : batch.epoch, epoch_done ? 0 : (batch.batch + 1) * r.global_batch,
                r.position.samples_seen + t.n_critic * r.global_batch};
}

}  // namespace distgan
