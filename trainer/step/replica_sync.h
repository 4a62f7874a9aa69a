// What keeps the replicas of every rank identical, apart from the step's math: the start from rank
// 0's parameters, buffers and optimizer state; the gradient all-reduce of each update (the
// bucketed reducers, cluster/gradient_buckets.h) and the decision, the same on every rank, whether
// the averaged update is finite enough to apply; BatchNorm running statistics averaged before they
// are used; a checksum comparison that finds a replica that drifted anyway.
#pragma once

#include <torch/torch.h>

#include <memory>
#include <string>

#include "cluster/communicator.h"
#include "cluster/gradient_buckets.h"
#include "trainer/model/models.h"

namespace distgan {

// One update after its backward pass: the averaged gradient's norm and whether it was applied.
struct AveragedUpdate {
  double grad_norm = 0;
  bool skipped = false;  // the averaged loss or gradient was not finite: not applied, on every rank alike
  std::vector<double> riders;  // this rank's logged values passed to begin_final_backward
};

class ReplicaSync {
 public:
  // overlap: each bucket's all-reduce starts during backward; wire_dtype: what the all-reduces move
  // (cluster/gradient_buckets.h).
  ReplicaSync(GanModels& models, cluster::Communicator& comm, int64_t bucket_bytes, bool overlap = true,
              torch::ScalarType wire_dtype = torch::kFloat32);

  cluster::GradientReducer& reducer_g() { return *reduce_g_; }
  cluster::GradientReducer& reducer_d() { return *reduce_d_; }

  // After the final backward of an update, which `reducer.begin_final_backward(loss)` preceded:
  // averages the gradients of `reducer`'s parameters across ranks (this rank's loss rides along)
  // and steps `optimizer` unless the averaged loss or gradient is not finite.
  AveragedUpdate apply_averaged_update(cluster::GradientReducer& reducer, torch::optim::Adam& optimizer);

  // Rank 0's parameters, buffers and both optimizers' state to every rank.
  void broadcast_from_root(torch::optim::Adam& optimizer_g, torch::optim::Adam& optimizer_d);
  // Averages BatchNorm running statistics across ranks (a collective: every rank calls it).
  void average_batchnorm_statistics();
  // "" when every parameter's crc32 is the same on every rank (one allgather), else which tensor
  // differs first and on which ranks. Every rank gets the same answer.
  std::string compare_replicas();
  // Seconds waited for gradient all-reduces since the last call (and resets the count).
  double take_communication_seconds();

 private:
  void broadcast_optimizer_state(torch::optim::Adam& optimizer, const std::vector<torch::Tensor>& params);

  GanModels& models_;
  cluster::Communicator& comm_;
  std::unique_ptr<cluster::GradientReducer> reduce_g_, reduce_d_;
  double comm_seconds_ = 0;
};

}  // namespace distgan
