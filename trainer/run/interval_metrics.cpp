#include "trainer/run/interval_metrics.h"

#include <algorithm>
#include <cmath>

#include <torch/torch.h>

namespace distgan {

void Interval::add(const DStepStats& d) {
  loss_d += d.loss_d;
  d_real += d.d_real;
  d_fake += d.d_fake;
  norm_d += d.grad_norm;
  ++d_applied;
  if (d.penalised) {
    penalty += d.penalty;
    ++penalised;
  }
}

void Interval::add(const GStepStats& g) {
  loss_g += g.loss_g;
  norm_g += g.grad_norm;
  ++g_applied;
}

StepMetrics average_interval(const Interval& in, cluster::Communicator& comm, int64_t step, int64_t epoch,
                             int64_t total_steps, int64_t global_batch, double elapsed_s) {
  const double wall =
      std::max(1e-9, std::chrono::duration<double>(std::chrono::steady_clock::now() - in.start).count());
  torch::Tensor v = torch::tensor({in.loss_d, in.d_real, in.d_fake, double(in.d_applied), in.loss_g,
                                   double(in.g_applied), in.data_s / wall, in.comm_s / wall, double(in.d_steps),
                                   double(in.g_steps), in.norm_d, in.norm_g, double(in.skipped),
                                   in.penalty, double(in.penalised)},
                                  torch::kFloat64);
  comm.allreduce(v, {cluster::ReduceOp::kAverage})->wait();
  const auto a = v.accessor<double, 1>();
  StepMetrics m;
  m.step = step;
  m.epoch = epoch;
  m.total_steps = total_steps;
  m.loss_d = a[0] / std::max(1.0, a[3]);
  m.d_real = a[1] / std::max(1.0, a[3]);
  m.d_fake = a[2] / std::max(1.0, a[3]);
  m.loss_g = a[4] / std::max(1.0, a[5]);
  m.images_per_s = double(global_batch) * a[8] / wall;  // real images consumed by D steps
  m.share_data = a[6];
  m.share_comm = a[7];
  m.share_compute = std::max(0.0, 1.0 - a[6] - a[7]);
  m.elapsed_s = elapsed_s;
  m.grad_norm_d = a[10] / std::max(1.0, a[3]);  // the same on every rank (averaged gradients)
  m.grad_norm_g = a[11] / std::max(1.0, a[5]);
  m.skipped = static_cast<int64_t>(std::llround(a[12]));
  m.has_penalty = a[14] > 0;  // the mean over every rank's penalised steps
  m.penalty = a[13] / std::max(1e-12, a[14]);
  const double per_step = wall / std::max(1.0, a[9]);
  m.eta_s = per_step * double(total_steps - step);
  return m;
}

}  // namespace distgan
