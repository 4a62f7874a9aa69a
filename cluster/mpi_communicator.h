// The MPI backend of Communicator: non-blocking MPI collectives (float32, float64, int64, int32,
// uint8; bfloat16 for sums and averages) on a duplicate of MPI_COMM_WORLD, so our traffic never mixes with anyone else's. CPU
// tensors are used in place; GPU tensors are staged through host copies (so several ranks can
// share one GPU in tests, which NCCL refuses).
#pragma once

#include <mpi.h>

#include <memory>

#include "cluster/collective.h"
#include "cluster/communicator.h"

namespace distgan::cluster {

class MpiProgress;

class MpiCommunicator : public Communicator {
 public:
  // Works on a duplicate of `base` (MPI_COMM_SELF gives a one-rank communicator, for references).
  // timeout_s: how long any collective may take before it throws (cluster/collective.h);
  // watchdog false: no deadline, a blocking MPI_Wait (bench/watchdog.sh).
  explicit MpiCommunicator(MPI_Comm base = MPI_COMM_WORLD, double timeout_s = 600, bool watchdog = true);
  ~MpiCommunicator() override;

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string name() const override { return "mpi"; }

  std::unique_ptr<Work> allreduce(torch::Tensor& tensor, const AllreduceOptions& options) override;
  void broadcast(torch::Tensor& tensor, int root) override;
  void barrier() override;
  torch::Tensor allgather(const torch::Tensor& tensor) override;
  using Communicator::allgather;
  void set_label(const std::string& label) override { context_.label = label; }
  // All-reduces started and not yet seen complete by the progress thread (for tests).
  size_t allreduces_in_flight();

 private:
  std::shared_ptr<MpiProgress> progress_;  // moves allreduces in flight (cluster/mpi_progress.h)
  MPI_Comm comm_ = MPI_COMM_NULL;
  int rank_ = 0;
  int size_ = 1;
  CollectiveContext context_;
};

}  // namespace distgan::cluster
