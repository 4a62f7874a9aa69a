// Gradient buckets: a model's gradients packed into a few contiguous buffers, one all-reduce each,
// instead of one collective per parameter (LibTorch has no C++ DistributedDataParallel).
//
// assign_buckets is pure: parameters are taken in order and a bucket is closed once it holds at
// least `bucket_bytes` (so a parameter larger than the cap gets a bucket of its own, and no
// parameter is ever split). The reducer uses effective_bucket_bytes (several buckets even for a
// small model) and takes the parameters in reverse order, the order in which
// backward produces their gradients, keeps the buffers between steps and makes each gradient a view
// into its bucket, so after the first step backward() accumulates straight into the buffers and
// packing costs nothing.
//
// Overlap (cluster.overlap, on by default), as PyTorch DDP's reducer does: a hook on every
// parameter's gradient accumulator counts the gradients of the final backward of an update; once a
// bucket's are all in, its all-reduce starts while backward goes on with the layers before it.
// Buckets start strictly in index order (a ready bucket waits for the ones before it), so every
// rank issues the same collectives in the same order whatever its timing. Buckets whose gradients
// never arrive (parameters unused by this backward, or a backward on another thread, as on CUDA
// devices) start in finish_update(), after backward, as they do with overlap off.
//
// Compressed gradients (cluster.grad_dtype: bfloat16): each bucket travels as bfloat16, half the
// bytes, its sum computed pairwise in float32 and rounded to bf16; the gradients themselves, the
// division by the rank count and the optimizer stay float32. The loss riding in the last bucket is
// rounded too, which keeps what it is used for: whether any rank's was not finite.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "cluster/communicator.h"

namespace distgan::cluster {

// 4 MiB: large enough that per-collective latency is amortised, small enough for several buckets.
constexpr int64_t kDefaultBucketBytes = int64_t{4} << 20;

// Indices of the parameters in each bucket, given each parameter's size in bytes.
std::vector<std::vector<size_t>> assign_buckets(const std::vector<int64_t>& param_bytes, int64_t bucket_bytes);

// The bucket size a model of `total_bytes` of gradients gets under the cap `bucket_bytes`: at most
// an eighth of the model (but not under 256 KiB), so that a small model still has several buckets
// and its all-reduces can start during backward; large models get the cap.
int64_t effective_bucket_bytes(int64_t total_bytes, int64_t bucket_bytes);

// What one averaged update reads back to the host: a single small read per update.
struct AveragedGradients {
  double side_value = 0;  // the ranks' mean of the side value (non-finite when any rank's is)
  double grad_norm = 0;   // L2 norm of the averaged gradients (the same on every rank)
  std::vector<double> riders;  // this rank's own values passed to begin_final_backward, not averaged
};

class GradientReducer {
 public:
  // All parameters must be float32 on one device.
  // wire_dtype: what the all-reduces move, float32 or bfloat16 (gradients stay float32 either way).
  GradientReducer(std::vector<torch::Tensor> params, Communicator& comm, int64_t bucket_bytes = kDefaultBucketBytes,
                  bool overlap = true, torch::ScalarType wire_dtype = torch::kFloat32);
  ~GradientReducer();
  GradientReducer(const GradientReducer&) = delete;
  GradientReducer& operator=(const GradientReducer&) = delete;

  // Call right before the backward pass that completes the update's gradients (the last of K
  // accumulated micro-batches; the only one otherwise). `side_value` (this rank's loss, a 0-dim
  // tensor: no host read) rides in one extra slot of the last bucket, at no extra collective.
  // `riders` (optional, 1-D, on any device: values for the logs) come back to the host in
  // finish_update's one read, so logging costs no synchronisation of its own.
  void begin_final_backward(const torch::Tensor& side_value, const torch::Tensor& riders = {});
  // After that backward: starts the buckets the hooks did not, waits for all, and leaves every
  // gradient averaged across ranks, in place. A parameter without a gradient counts as zero.
  AveragedGradients finish_update();
  // After that backward: starts every bucket the hooks did not (all of them where backward ran on
  // another thread, as on CUDA), so the all-reduces travel while the caller does other work before
  // finish_update(). finish_update() calls it itself.
  void start_remaining_buckets();
  // Both at once, for gradients already computed: the ranks' mean of `side_value`.
  double average_gradients(double side_value = 0.0);
  // Sets every gradient to zero. Use this instead of Optimizer::zero_grad(): LibTorch 1.13's
  // detach_() refuses gradients that are views of a bucket (as PyTorch DDP's do).
  void zero_grad();

  // Parameter indices (into the constructor's list) of each bucket, in the order they start.
  const std::vector<std::vector<size_t>>& buckets() const { return buckets_; }
  // Seconds spent waiting for the collectives in the last finish_update().
  double last_wait_seconds() const { return last_wait_seconds_; }
  // Buckets of the last update that started during backward (the rest started after it).
  size_t last_started_during_backward() const { return last_started_during_backward_; }

 private:
  struct HookState;
  class ReadyHook;

  torch::Tensor slot_view(size_t bucket, size_t index);  // the bucket's slot of a parameter, shaped like it
  void pack(size_t bucket);
  void unpack(size_t bucket);
  void install_hooks();
  void on_gradient_ready(size_t param);
  void start_ready_buckets();
  void start_bucket(size_t bucket);

  std::vector<torch::Tensor> params_;
  Communicator& comm_;
  bool overlap_;
  std::vector<std::vector<size_t>> buckets_;
  std::vector<torch::Tensor> buffers_;             // one flat buffer per bucket; the last has one more slot
  std::vector<torch::Tensor> wire_;                // bfloat16 copies of the buffers that travel (grad_dtype bf16)
  std::vector<std::vector<int64_t>> offsets_;      // element offset of each parameter in its buffer
  std::vector<size_t> bucket_of_;                  // each parameter's bucket
  // The update in progress.
  bool armed_ = false;
  torch::Tensor side_source_, riders_;
  std::vector<size_t> pending_;                    // gradients each bucket still waits for
  std::vector<char> arrived_;                      // each parameter's gradient came in this update
  std::vector<std::unique_ptr<Work>> work_;        // started collectives, in bucket order
  size_t started_during_backward_ = 0;
  // The hooks outlive nothing: they reach the reducer through this, cleared in the destructor.
  std::shared_ptr<HookState> hook_state_;
  std::vector<std::shared_ptr<torch::autograd::Node>> accumulators_;  // kept alive: they hold the hooks
  double last_wait_seconds_ = 0;
  size_t last_started_during_backward_ = 0;
};

}  // namespace distgan::cluster
