// One logging interval of the training loop: what each rank adds up between two log lines, and
// the averaging across ranks that turns it into the StepMetrics rank 0 writes.
#pragma once

#include <chrono>
#include <cstdint>

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
  std::chrono::steady_clock::time_point start = std::chrono::steady_clock::now();

  // An applied update's values (a skipped one only counts in d_steps/g_steps and skipped).
  void add(const DStepStats& d);
  void add(const GStepStats& g);
};

// One small collective (every rank calls it): every rank's interval sums, averaged. The result is
// the same on every rank.
StepMetrics average_interval(const Interval& in, cluster::Communicator& comm, int64_t step, int64_t epoch,
                             int64_t total_steps, int64_t global_batch, double elapsed_s);

}  // namespace distgan
