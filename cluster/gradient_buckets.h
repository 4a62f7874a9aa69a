// Gradient buckets: a model's gradients packed into a few contiguous buffers, one all-reduce each,
// instead of one collective per parameter (LibTorch has no C++ DistributedDataParallel).
//
// assign_buckets is pure: parameters are taken in order and a bucket is closed once it holds at
// least `bucket_bytes` (so a parameter larger than the cap gets a bucket of its own, and no
// parameter is ever split). The reducer keeps the buffers between steps and makes each gradient a
// view into its bucket, so after the first step backward() accumulates straight into the buffers
// and packing costs nothing.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <vector>

#include "cluster/communicator.h"

namespace distgan::cluster {

// 4 MiB: large enough that per-collective latency is amortised, small enough for several buckets.
constexpr int64_t kDefaultBucketBytes = int64_t{4} << 20;

// Indices of the parameters in each bucket, given each parameter's size in bytes.
std::vector<std::vector<size_t>> assign_buckets(const std::vector<int64_t>& param_bytes, int64_t bucket_bytes);

class GradientReducer {
 public:
  // All parameters must be float32 on one device.
  GradientReducer(std::vector<torch::Tensor> params, Communicator& comm, int64_t bucket_bytes = kDefaultBucketBytes);

  // Averages the gradients across ranks, in place. A parameter without a gradient counts as zero.
  // `side_value` (this rank's loss, say) rides in one extra slot of the last bucket: the return value
  // is its average over the ranks, at no extra collective (non-finite when any rank's is).
  double average_gradients(double side_value = 0.0);
  // The L2 norm of the averaged gradients (the same on every rank); non-finite if any element is.
  double gradient_norm() const;
  // Sets every gradient to zero. Use this instead of Optimizer::zero_grad(): LibTorch 1.13's
  // detach_() refuses gradients that are views of a bucket (as PyTorch DDP's do).
  void zero_grad();

  const std::vector<std::vector<size_t>>& buckets() const { return buckets_; }
  // Seconds spent waiting for the collectives in the last call.
  double last_wait_seconds() const { return last_wait_seconds_; }

 private:
  torch::Tensor slot_view(size_t bucket, size_t index);  // the bucket's slot of a parameter, shaped like it
  void pack(size_t bucket);
  void unpack(size_t bucket);

  std::vector<torch::Tensor> params_;
  Communicator& comm_;
  std::vector<std::vector<size_t>> buckets_;
  std::vector<torch::Tensor> buffers_;             // one flat buffer per bucket; the last has one more slot
  std::vector<std::vector<int64_t>> offsets_;      // element offset of each parameter in its buffer
  double last_wait_seconds_ = 0;
};

}  // namespace distgan::cluster
