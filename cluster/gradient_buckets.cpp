#include "cluster/gradient_buckets.h"

#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/function_hook.h>
#include <torch/csrc/autograd/variable.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <exception>
#include <numeric>
#include <thread>

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

int64_t effective_bucket_bytes(int64_t total_bytes, int64_t bucket_bytes) {
  constexpr int64_t kFloor = int64_t{256} << 10;
  return std::min(bucket_bytes, std::max(total_bytes / 8, kFloor));
}

// What the hooks share with the reducer; `reducer` is cleared when it goes, so a graph that outlives
// it (and still holds the accumulators) calls nothing.
struct GradientReducer::HookState {
  GradientReducer* reducer = nullptr;
  std::thread::id armed_thread;       // hooks on another thread (CUDA's device threads) leave the work to finish_update
  std::exception_ptr failure;         // a collective that failed to start inside backward, rethrown after it
};

class GradientReducer::ReadyHook : public torch::autograd::FunctionPostHook {
 public:
  ReadyHook(std::shared_ptr<HookState> state, size_t param) : state_(std::move(state)), param_(param) {}
  torch::autograd::variable_list operator()(const torch::autograd::variable_list& outputs,
                                            const torch::autograd::variable_list& /*inputs*/) override {
    HookState& s = *state_;
    if (s.reducer == nullptr || s.failure || std::this_thread::get_id() != s.armed_thread) return outputs;
    try {
      s.reducer->on_gradient_ready(param_);
    } catch (...) {  // thrown through autograd it would lose its type: keep it for finish_update
      s.failure = std::current_exception();
    }
    return outputs;
  }

 private:
  std::shared_ptr<HookState> state_;
  size_t param_;
};

GradientReducer::GradientReducer(std::vector<torch::Tensor> params, Communicator& comm, int64_t bucket_bytes,
                                 bool overlap, torch::ScalarType wire_dtype)
    : params_(std::move(params)), comm_(comm), overlap_(overlap), hook_state_(std::make_shared<HookState>()) {
  if (bucket_bytes < 1) throw ClusterError("gradient buckets: the bucket size must be positive");
  if (wire_dtype != torch::kFloat32 && wire_dtype != torch::kBFloat16)
    throw ClusterError("gradient buckets: gradients travel as float32 or bfloat16");
  // Reverse parameter order: the order backward produces the gradients in.
  std::vector<size_t> order(params_.size());
  std::iota(order.rbegin(), order.rend(), size_t{0});
  std::vector<int64_t> bytes;
  for (size_t i : order) {
    if (params_[i].scalar_type() != torch::kFloat32)
      throw ClusterError("gradient buckets: only float32 parameters are supported");
    bytes.push_back(params_[i].numel() * 4);
  }
  buckets_ = assign_buckets(bytes, effective_bucket_bytes(std::accumulate(bytes.begin(), bytes.end(), int64_t{0}),
                                                         bucket_bytes));
  bucket_of_.resize(params_.size());
  for (size_t b = 0; b < buckets_.size(); ++b) {
    int64_t total = 0;
    std::vector<int64_t> offsets;
    for (size_t& position : buckets_[b]) {
      position = order[position];
      bucket_of_[position] = b;
      offsets.push_back(total);
      total += params_[position].numel();
    }
    offsets_.push_back(offsets);
    const bool last = b + 1 == buckets_.size();
    buffers_.push_back(torch::zeros({total + (last ? 1 : 0)}, params_[buckets_[b].front()].options()));
    if (wire_dtype == torch::kBFloat16) wire_.push_back(torch::empty_like(buffers_.back(), torch::kBFloat16));
  }
  hook_state_->reducer = this;
  if (overlap_) install_hooks();
}

GradientReducer::~GradientReducer() { hook_state_->reducer = nullptr; }

void GradientReducer::install_hooks() {
  for (size_t i = 0; i < params_.size(); ++i) {
    if (!params_[i].requires_grad()) continue;  // never gets a gradient: its bucket starts in finish_update
    auto accumulator = torch::autograd::impl::grad_accumulator(params_[i]);
    if (!accumulator) continue;
    accumulator->add_post_hook(std::make_unique<ReadyHook>(hook_state_, i));
    accumulators_.push_back(std::move(accumulator));
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
  if (b + 1 == buffers_.size()) buffers_[b].narrow(0, buffers_[b].numel() - 1, 1).copy_(side_source_.reshape({1}));
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

void GradientReducer::begin_final_backward(const torch::Tensor& side_value, const torch::Tensor& riders) {
  TORCH_CHECK(side_value.numel() == 1, "gradient buckets: the side value must be one number");
  side_source_ = side_value.detach();
  riders_ = riders.defined() ? riders.detach().reshape({-1}) : torch::Tensor();
  pending_.assign(buckets_.size(), 0);
  for (size_t b = 0; b < buckets_.size(); ++b) pending_[b] = buckets_[b].size();
  arrived_.assign(params_.size(), 0);
  work_.clear();
  started_during_backward_ = 0;
  hook_state_->armed_thread = std::this_thread::get_id();
  hook_state_->failure = nullptr;
  armed_ = overlap_;
}

// A hook: parameter `param`'s gradient of the final backward is in p.grad().
void GradientReducer::on_gradient_ready(size_t param) {
  if (!armed_ || arrived_[param]) return;
  arrived_[param] = 1;
  if (--pending_[bucket_of_[param]] > 0) {
    if (!work_.empty()) work_.back()->is_completed();  // lets MPI progress the collectives in flight
    return;
  }
  const size_t before = work_.size();
  start_ready_buckets();
  started_during_backward_ += work_.size() - before;
}

void GradientReducer::start_ready_buckets() {
  while (work_.size() < buckets_.size() && pending_[work_.size()] == 0) start_bucket(work_.size());
}

void GradientReducer::start_bucket(size_t b) {
  torch::NoGradGuard no_grad;
  pack(b);
  if (wire_.empty()) {
    work_.push_back(comm_.allreduce(buffers_[b], {ReduceOp::kAverage}));
    return;
  }
  wire_[b].copy_(buffers_[b]);  // rounds to bf16; summed on the wire, averaged in float32 below
  work_.push_back(comm_.allreduce(wire_[b], {ReduceOp::kSum}));
}

void GradientReducer::start_remaining_buckets() {
  TORCH_CHECK(side_source_.defined(), "gradient buckets: no update after begin_final_backward");
  armed_ = false;
  if (hook_state_->failure) std::rethrow_exception(std::exchange(hook_state_->failure, nullptr));
  torch::NoGradGuard no_grad;
  last_started_during_backward_ = started_during_backward_;
  while (work_.size() < buckets_.size()) start_bucket(work_.size());  // starts while the next bucket packs
}

AveragedGradients GradientReducer::finish_update() {
  using Clock = std::chrono::steady_clock;
  TORCH_CHECK(side_source_.defined(), "gradient buckets: finish_update without begin_final_backward");
  start_remaining_buckets();
  torch::NoGradGuard no_grad;
  const auto t0 = Clock::now();
  for (auto& w : work_) w->wait();
  last_wait_seconds_ = std::chrono::duration<double>(Clock::now() - t0).count();
  work_.clear();
  for (size_t b = 0; b < wire_.size(); ++b) buffers_[b].copy_(wire_[b]).div_(comm_.size());
  AveragedGradients out;
  // [side, riders..., squares of each bucket]: one read to the host.
  std::vector<torch::Tensor> read;
  const torch::Tensor side = buffers_.empty() ? side_source_ : buffers_.back().narrow(0, buffers_.back().numel() - 1, 1);
  read.push_back(side.reshape({1}).to(torch::kFloat64));
  const int64_t n_riders = riders_.defined() ? riders_.numel() : 0;
  if (n_riders > 0) read.push_back(riders_.to(side.device(), torch::kFloat64));
  for (size_t b = 0; b < buffers_.size(); ++b) {
    unpack(b);
    const bool last = b + 1 == buffers_.size();
    const torch::Tensor grads = last ? buffers_[b].narrow(0, 0, buffers_[b].numel() - 1) : buffers_[b];
    read.push_back(grads.dot(grads).to(torch::kFloat64).reshape({1}));
  }
  const torch::Tensor host = torch::cat(read).cpu().contiguous();
  const double* values = host.data_ptr<double>();
  out.side_value = values[0];
  out.riders.assign(values + 1, values + 1 + n_riders);
  double squares = 0;
  for (int64_t i = 1 + n_riders; i < host.numel(); ++i) squares += values[i];
  out.grad_norm = std::sqrt(squares);
  side_source_ = riders_ = torch::Tensor();
  return out;
}

double GradientReducer::average_gradients(double side_value) {
  begin_final_backward(torch::full({1}, side_value, buffers_.empty() ? torch::TensorOptions(torch::kFloat32)
                                                                     : buffers_.back().options()));
  return finish_update().side_value;
}

}  // namespace distgan::cluster
