#include "cluster/gradient_buckets.h"

#include <cmath>

#include <chrono>

#include "cluster/mpi_check.h"

namespace distgan::cluster {

std::vector<std::vector<size_t>> assign_buckets(const std::vector<int64_t>& param_bytes, int64_t bucket_bytes) {
  std::vector<std::vector<size_t>> buckets;
  int64_t filled = 0;
  for (size_t i = 0; i < param_bytes.size(); ++i) {
    if (buckets.empty() || filled >= bucket_bytes) {
      buckets.emplace_back();
      filled = 0;
    }
    buckets.back().push_back(i);
    filled += param_bytes[i];
  }
  return buckets;
}

GradientReducer::GradientReducer(std::vector<torch::Tensor> params, Communicator& comm, int64_t bucket_bytes)
    : params_(std::move(params)), comm_(comm) {
  if (bucket_bytes < 1) throw ClusterError("gradient buckets: the bucket size must be positive");
  std::vector<int64_t> bytes;
  for (const auto& p : params_) {
    if (p.scalar_type() != torch::kFloat32)
      throw ClusterError("gradient buckets: only float32 parameters are supported");
    bytes.push_back(p.numel() * 4);
  }
  buckets_ = assign_buckets(bytes, bucket_bytes);
  for (const auto& bucket : buckets_) {
    int64_t total = 0;
    std::vector<int64_t> offsets;
    for (size_t i : bucket) {
      offsets.push_back(total);
      total += params_[i].numel();
    }
    offsets_.push_back(offsets);
    const bool last = &bucket == &buckets_.back();
    buffers_.push_back(torch::zeros({total + (last ? 1 : 0)}, params_[bucket.front()].options()));
  }
}

torch::Tensor GradientReducer::slot_view(size_t b, size_t k) {
  const auto& p = params_[buckets_[b][k]];
  const torch::Tensor slot = buffers_[b].narrow(0, offsets_[b][k], p.numel());
  // With the parameter's own strides: a channels_last weight gets a channels_last gradient, which
  // backward writes and the optimizer reads without a layout change.
  if (p.is_non_overlapping_and_dense()) return slot.as_strided(p.sizes(), p.strides(), slot.storage_offset());
  return slot.view(p.sizes());
}

void GradientReducer::pack(size_t b) {
  const auto& bucket = buckets_[b];
  for (size_t k = 0; k < bucket.size(); ++k) {
    auto& p = params_[bucket[k]];
    auto slot = buffers_[b].narrow(0, offsets_[b][k], p.numel());
    const auto& grad = p.grad();
    if (grad.defined() && grad.data_ptr() == slot.data_ptr()) continue;  // already a view of the bucket
    if (grad.defined()) slot_view(b, k).copy_(grad);
    else slot.zero_();
  }
}

void GradientReducer::unpack(size_t b) {
  const auto& bucket = buckets_[b];
  for (size_t k = 0; k < bucket.size(); ++k) {
    auto& p = params_[bucket[k]];
    auto view = slot_view(b, k);
    if (p.grad().defined() && p.grad().data_ptr() == view.data_ptr()) continue;
    // From now on the gradient lives in the bucket: backward accumulates into it, no packing copy.
    p.mutable_grad() = view;
  }
}

void GradientReducer::zero_grad() {
  torch::NoGradGuard no_grad;
  for (auto& buffer : buffers_) buffer.zero_();
  // Gradients that are views of a bucket were just zeroed with it; zero only the others (before
  // the first reduction, or after LibTorch 2.x's zero_grad() replaced them).
  for (size_t b = 0; b < buckets_.size(); ++b)
    for (size_t k = 0; k < buckets_[b].size(); ++k) {
      auto& p = params_[buckets_[b][k]];
      if (!p.grad().defined()) continue;
      const auto* slot = buffers_[b].data_ptr<float>() + offsets_[b][k];
      if (p.grad().data_ptr<float>() != slot) p.mutable_grad().zero_();
    }
}

double GradientReducer::average_gradients(double side_value) {
  using Clock = std::chrono::steady_clock;
  std::vector<std::unique_ptr<Work>> work;
  work.reserve(buffers_.size());
  torch::NoGradGuard no_grad;
  if (buffers_.empty()) return side_value;  // nothing to reduce (a model without parameters)
  torch::Tensor side = buffers_.back().narrow(0, buffers_.back().numel() - 1, 1);
  side.fill_(side_value);
  for (size_t b = 0; b < buffers_.size(); ++b) {
    pack(b);
    work.push_back(comm_.allreduce(buffers_[b], {ReduceOp::kAverage}));  // starts while the next bucket packs
  }
  const auto t0 = Clock::now();
  for (auto& w : work) w->wait();
  last_wait_seconds_ = std::chrono::duration<double>(Clock::now() - t0).count();
  for (size_t b = 0; b < buffers_.size(); ++b) unpack(b);
  return side.item<double>();
}

double GradientReducer::gradient_norm() const {
  torch::NoGradGuard no_grad;
  double squares = 0;
  for (size_t b = 0; b < buffers_.size(); ++b) {
    const bool last = b + 1 == buffers_.size();
    const torch::Tensor grads = last ? buffers_[b].narrow(0, 0, buffers_[b].numel() - 1) : buffers_[b];
    squares += grads.dot(grads).item<double>();
  }
  return std::sqrt(squares);
}

}  // namespace distgan::cluster
