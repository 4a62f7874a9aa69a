// What rank 0 reports every `logging.every` steps: one console line and one JSON object appended
// to metrics.jsonl in the run directory (flushed each time, so a killed run keeps its metrics).
#pragma once

#include <cstdint>
#include <fstream>
#include <string>

namespace distgan {

// Stragglers: each rank's busy time (compute plus waiting for data, i.e. everything but waiting for
// the other ranks in collectives) per step over the interval, so a slow node is visible by name.
struct RankSpread {
  int slowest_rank = 0;
  std::string slowest_host;
  double busy_ms_min = 0, busy_ms_median = 0, busy_ms_max = 0;  // per step, over the ranks
  double spread = 0;              // busy_ms_max / busy_ms_min - 1: 0.12 is 12% slower than the fastest
  int data_rank = 0;              // the rank that waited longest for data
  double data_ms_max = 0;         // its data wait per step
};

struct StepMetrics {
  int64_t step = 0, epoch = 0, total_steps = 0;
  double loss_d = 0, loss_g = 0;
  double d_real = 0, d_fake = 0;   // mean D output on real and generated samples, as probabilities
  double images_per_s = 0;         // global: all ranks' real images per second
  double steps_per_s = 0;          // training steps (a D and a G update each) per second
  double gflops_per_rank = 0;      // achieved: the counted FLOPs of a step x steps/s (0: not counted)
  double share_data = 0, share_compute = 0, share_comm = 0;  // of the interval's wall time
  double elapsed_s = 0, eta_s = 0;
  double grad_norm_d = 0, grad_norm_g = 0;  // of the averaged gradients, mean over the interval
  int64_t skipped = 0;                      // updates not applied (non-finite) in the interval
  bool has_penalty = false;                 // R1 or WGAN-GP's penalty ran in the interval:
  double penalty = 0;                       // its unweighted value, mean over the steps it ran
  bool has_ranks = false;                   // more than one rank: `ranks` is filled
  RankSpread ranks;
};

class MetricsLog {
 public:
  // Appends to `path` (metrics.jsonl); creates it if needed.
  explicit MetricsLog(const std::string& path);
  void write(const StepMetrics& m);  // console line and JSON line
  static std::string console_line(const StepMetrics& m);
  static std::string json_line(const StepMetrics& m);
  // Drops the lines of `path` logged after `step` (a resumed run logs those steps again); a line
  // that is not JSON with a "step" is kept. Rewrites the file atomically; returns the lines dropped.
  static int64_t truncate_after(const std::string& path, int64_t step);

 private:
  std::string path_;
  std::ofstream out_;
};

}  // namespace distgan
