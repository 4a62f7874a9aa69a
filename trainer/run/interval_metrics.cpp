#include "trainer/run/interval_metrics.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

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

RankSpread summarize_ranks(const std::vector<double>& busy_s, const std::vector<double>& data_s,
                           const std::vector<std::string>& hosts) {
  RankSpread r;
  if (busy_s.empty()) return r;
  const auto slowest = std::max_element(busy_s.begin(), busy_s.end());
  r.slowest_rank = static_cast<int>(slowest - busy_s.begin());
  r.slowest_host = static_cast<size_t>(r.slowest_rank) < hosts.size() ? hosts[r.slowest_rank] : "?";
  std::vector<double> sorted = busy_s;
  std::sort(sorted.begin(), sorted.end());
  r.busy_ms_min = 1000 * sorted.front();
  r.busy_ms_max = 1000 * sorted.back();
  const size_t n = sorted.size();
  r.busy_ms_median = 1000 * (n % 2 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2);
  r.spread = r.busy_ms_min > 0 ? r.busy_ms_max / r.busy_ms_min - 1 : 0;
  const auto data = std::max_element(data_s.begin(), data_s.end());
  if (data != data_s.end()) {
    r.data_rank = static_cast<int>(data - data_s.begin());
    r.data_ms_max = 1000 * *data;
  }
  return r;
}

StepMetrics average_interval(const Interval& in, cluster::Communicator& comm, int64_t step, int64_t epoch,
                             int64_t total_steps, int64_t global_batch, double elapsed_s,
                             const std::vector<std::string>& hosts) {
  const double wall =
      std::max(1e-9, std::chrono::duration<double>(std::chrono::steady_clock::now() - in.start).count());
  const torch::Tensor mine = torch::tensor({in.loss_d, in.d_real, in.d_fake, double(in.d_applied), in.loss_g,
                                            double(in.g_applied), in.data_s / wall, in.comm_s / wall,
                                            double(in.d_steps), double(in.g_steps), in.norm_d, in.norm_g,
                                            double(in.skipped), in.penalty, double(in.penalised), wall,
                                            in.task_s / wall},
                                           torch::kFloat64);
  const torch::Tensor ranks = comm.allgather(mine).to(torch::kCPU).contiguous();  // [size, 17]: the spread needs every row
  const torch::Tensor v = ranks.mean(0);
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
  m.steps_per_s = a[9] / wall;
  const double per_step = wall / std::max(1.0, a[9]);
  m.eta_s = per_step * double(total_steps - step);
  if (ranks.size(0) > 1) {  // busy: all but the wait for other ranks in collectives and the periodic tasks
    std::vector<double> busy, data;
    const auto rows = ranks.accessor<double, 2>();
    for (int64_t r = 0; r < ranks.size(0); ++r) {
      const double steps = std::max(1.0, rows[r][9]), rank_wall = rows[r][15];
      busy.push_back(rank_wall * std::max(0.0, 1 - rows[r][7] - rows[r][16]) / steps);
      data.push_back(rank_wall * rows[r][6] / steps);
    }
    m.has_ranks = true;
    m.ranks = summarize_ranks(busy, data, hosts);
  }
  return m;
}

}  // namespace distgan
