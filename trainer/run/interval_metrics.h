// One logging interval of the training loop: what each rank adds up between two log lines, and
// the averaging across ranks that turns it into the StepMetrics rank 0 writes.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "cluster/communicator.h"
#include "trainer/step/adversarial_step.h"
#include "trainer/outputs/metrics_log.h"

namespace distgan {

struct Interval {
  double loss_d = 0, loss_g = 0, d_real = 0, d_fake = 0, norm_d = 0, norm_g = 0;
  int64_t d_steps = 0, g_steps = 0;      // run (for the rates)
  int64_t d_applied = 0, g_applied = 0;  // applied (for the averages); the others were skipped
  int64_t skipped = 0;
  double penalty = 0;      // R1 or gradient penalty, summed over the applied D steps that had one
  int64_t penalised = 0;   // those steps
  double data_s = 0, comm_s = 0;
  double task_s = 0;  // periodic tasks (checkpoints, grids, evaluations): rank 0's mostly, so not "busy"
  std::chrono::steady_clock::time_point start = std::chrono::steady_clock::now();

  // An applied update's values (a skipped one only counts in d_steps/g_steps and skipped).
  void add(const DStepStats& d);
  void add(const GStepStats& g);
};

// One small collective (every rank calls it, an allgather): every rank's interval sums, averaged,
// and with more than one rank the spread of their busy times (`hosts`: every rank's host name, in
// rank order, for naming the slowest). The result is the same on every rank.
StepMetrics average_interval(const Interval& in, cluster::Communicator& comm, int64_t step, int64_t epoch,
                             int64_t total_steps, int64_t global_batch, double elapsed_s,
                             const std::vector<std::string>& hosts = {});

// The stragglers' summary from each rank's busy seconds (compute and data wait) and data-wait
// seconds per step, in rank order. Ties go to the lowest rank.
RankSpread summarize_ranks(const std::vector<double>& busy_s, const std::vector<double>& data_s,
                           const std::vector<std::string>& hosts);

}  // namespace distgan
