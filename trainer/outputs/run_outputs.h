// What rank 0 writes into the run directory while training, besides checkpoints:
//   config.yaml      the effective configuration
//   run_info.json    the environment: versions, ranks, hosts, device, backend, threads
//   metrics.jsonl    one JSON line per logging interval (trainer/outputs/metrics_log.h), also printed
//   eval.jsonl       one JSON line per evaluation: {"step", "generator": "ema"|"raw", "metrics": {...}}
//   samples/*.png    sample grids (scatter plots for 2-D data)
//   tensorboard/     TensorBoard event files with the same scalars, metrics and grids
// A resumed run drops the metrics and evaluations logged after its checkpoint (they are logged
// again). TensorBoard output is best effort: a failure to write it is reported once and training
// goes on without it.
#pragma once

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include "trainer/config/config.h"
#include "trainer/eval/evaluation.h"
#include "trainer/outputs/metrics_log.h"
#include "trainer/outputs/png_image.h"

namespace distgan {

class EventWriter;

struct RunInfo {
  int world_size = 1;
  std::string device, backend;
  int threads = 1;
  std::vector<std::string> hosts;  // one per rank
  std::string model_summary;       // "dcgan (G 1.2M, D 0.3M parameters)"
};

class RunOutputs {
 public:
  // resumed_step < 0: a new run.
  RunOutputs(const Config& config, const std::filesystem::path& run_dir, int64_t resumed_step, const RunInfo& info);
  ~RunOutputs();

  void metrics(const StepMetrics& m);
  void samples(const std::string& name, int64_t step, const Image& image);
  void evaluation(int64_t step, bool ema, const EvalResult& result);

 private:
  void tensorboard(const std::function<void(EventWriter&)>& write);

  std::filesystem::path run_dir_;
  std::unique_ptr<MetricsLog> metrics_;
  std::ofstream eval_;
  std::unique_ptr<EventWriter> events_;
};

}  // namespace distgan
