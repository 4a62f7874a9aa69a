// The MPI backend of Communicator: non-blocking MPI collectives (float32, float64, int64, int32,
// uint8) on a duplicate of MPI_COMM_WORLD, so our traffic never mixes with anyone else's. CPU
// tensors are used in place; GPU tensors are staged through host copies (so several ranks can
// share one GPU in tests, which NCCL refuses).
#pragma once

#include <mpi.h>

#include "cluster/communicator.h"

namespace distgan::cluster {

class MpiCommunicator : public Communicator {
 public:
  // Works on a duplicate of `base` (MPI_COMM_SELF gives a one-rank communicator, for references).
  // timeout_s: how long wait() on an allreduce may take before it throws (see Work::wait).
  explicit MpiCommunicator(MPI_Comm base = MPI_COMM_WORLD, double timeout_s = 600);
  ~MpiCommunicator() override;

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string name() const override { return "mpi"; }

  std::unique_ptr<Work> allreduce(torch::Tensor& tensor, const AllreduceOptions& options) override;
  void broadcast(torch::Tensor& tensor, int root) override;
  void barrier() override;
  std::vector<double> allgather(const std::vector<double>& values) override;
  void set_label(const std::string& label) override { label_ = label; }

 private:
  MPI_Comm comm_ = MPI_COMM_NULL;
  int rank_ = 0;
  int size_ = 1;
  double timeout_s_ = 600;
  std::string label_;
};

}  // namespace distgan::cluster
