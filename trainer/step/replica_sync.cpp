#include "trainer/step/replica_sync.h"

#include <zlib.h>

#include <cmath>
#include <set>

#include "trainer/model/ema.h"
#include "trainer/model/optimizer_state.h"

namespace distgan {

namespace {

std::vector<torch::Tensor> batchnorm_running_stats(torch::nn::Module& module) {
  std::vector<torch::Tensor> stats;
  for (auto& b : module.named_buffers()) {
    const std::string& name = b.key();
    if (name.size() >= 12 && (name.compare(name.size() - 12, 12, "running_mean") == 0)) stats.push_back(b.value());
    if (name.size() >= 11 && (name.compare(name.size() - 11, 11, "running_var") == 0)) stats.push_back(b.value());
  }
  return stats;
}

// `module`'s parameters for a GradientReducer, which buckets them in reverse order, the order
// backward produces their gradients: registration order, except that the weights of transposed
// convolutions whose weight gradients run last (OnednnConvTranspose2dImpl::weight_gradient_runs_last)
// go first, into the last buckets. That depends on the config and the model only, so every rank
// buckets alike.
std::vector<torch::Tensor> in_gradient_order(torch::nn::Module& module) {
  std::set<const c10::TensorImpl*> late;
  for (const auto& child : module.modules(/*include_self=*/false))
    if (const auto conv = std::dynamic_pointer_cast<OnednnConvTranspose2dImpl>(child);
        conv && conv->weight_gradient_runs_last())
      for (const auto& p : conv->parameters(/*recurse=*/false)) late.insert(p.unsafeGetTensorImpl());
  std::vector<torch::Tensor> first, rest;
  for (const auto& p : module.parameters()) (late.count(p.unsafeGetTensorImpl()) ? first : rest).push_back(p);
  first.insert(first.end(), rest.begin(), rest.end());
  return first;
}

}  // namespace

ReplicaSync::ReplicaSync(GanModels& models, cluster::Communicator& comm, int64_t bucket_bytes, bool overlap,
                         torch::ScalarType wire_dtype)
    : models_(models), comm_(comm) {
  reduce_g_ = std::make_unique<cluster::GradientReducer>(in_gradient_order(*models_.generator), comm, bucket_bytes,
                                                         overlap, wire_dtype);
  reduce_d_ = std::make_unique<cluster::GradientReducer>(in_gradient_order(*models_.discriminator), comm,
                                                         bucket_bytes, overlap, wire_dtype);
}

// Every rank's loss rides with the gradients: a non-finite one anywhere makes the average so, and
// every rank then skips the same update.
AveragedUpdate ReplicaSync::apply_averaged_update(cluster::GradientReducer& reducer, torch::optim::Adam& optimizer) {
  const cluster::AveragedGradients averaged = reducer.finish_update();
  comm_seconds_ += reducer.last_wait_seconds();
  AveragedUpdate update;
  update.grad_norm = averaged.grad_norm;
  update.riders = averaged.riders;
  update.skipped = !std::isfinite(averaged.side_value) || !std::isfinite(update.grad_norm);
  if (!update.skipped) optimizer.step();
  return update;
}

void ReplicaSync::broadcast_from_root(torch::optim::Adam& optimizer_g, torch::optim::Adam& optimizer_d) {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> tensors;  // one coalesced broadcast per dtype run, not one per tensor
  for (torch::nn::Module* m : {models_.generator.ptr().get(), models_.discriminator.ptr().get(),
                               models_.generator_ema ? models_.generator_ema.ptr().get() : nullptr}) {
    if (m == nullptr) continue;
    for (auto& p : m->parameters()) tensors.push_back(p);
    for (auto& b : m->buffers()) tensors.push_back(b);
  }
  comm_.broadcast_coalesced(tensors, 0);
  broadcast_optimizer_state(optimizer_g, models_.generator->parameters());
  broadcast_optimizer_state(optimizer_d, models_.discriminator->parameters());
}

// Adam's state after a resume exists on rank 0 only: first the step counts (-1: no state yet), then
// the moments of every parameter that has state.
void ReplicaSync::broadcast_optimizer_state(torch::optim::Adam& optimizer, const std::vector<torch::Tensor>& params) {
  torch::NoGradGuard no_grad;
  torch::Tensor steps = torch::full({static_cast<int64_t>(params.size())}, -1, torch::kInt64);
  for (size_t i = 0; i < params.size(); ++i)
    if (const auto* state = find_adam_state(optimizer, params[i])) steps[static_cast<int64_t>(i)] = state->step();
  comm_.broadcast(steps, 0);
  const auto counts = steps.accessor<int64_t, 1>();
  std::vector<torch::Tensor> moments;
  for (size_t i = 0; i < params.size(); ++i) {
    if (counts[static_cast<int64_t>(i)] < 0) continue;
    auto& state = adam_state(optimizer, params[i]);
    state.step(counts[static_cast<int64_t>(i)]);
    moments.push_back(state.exp_avg());
    moments.push_back(state.exp_avg_sq());
  }
  comm_.broadcast_coalesced(moments, 0);
}

void ReplicaSync::average_batchnorm_statistics() {
  torch::NoGradGuard no_grad;
  for (torch::nn::Module* m : {models_.generator.ptr().get(), models_.discriminator.ptr().get()})
    for (auto& t : batchnorm_running_stats(*m)) comm_.allreduce(t, {cluster::ReduceOp::kAverage})->wait();
  if (models_.generator_ema) ema_copy_buffers(*models_.generator_ema, *models_.generator);
}

std::string ReplicaSync::compare_replicas() {
  std::vector<std::string> names;
  std::vector<double> sums;
  std::vector<std::pair<std::string, torch::nn::Module*>> modules{{"generator/", models_.generator.ptr().get()},
                                                                  {"discriminator/", models_.discriminator.ptr().get()}};
  if (models_.generator_ema) modules.emplace_back("generator_ema/", models_.generator_ema.ptr().get());
  for (const auto& [prefix, module] : modules) {
    auto add = [&](const std::string& name, const torch::Tensor& t) {
      const torch::Tensor host = t.detach().to(torch::kCPU).contiguous();
      names.push_back(prefix + name);
      sums.push_back(static_cast<double>(
          crc32(0, static_cast<const Bytef*>(host.data_ptr()), static_cast<uInt>(host.numel() * host.element_size()))));
    };
    // Parameters only: BatchNorm running statistics differ between ranks by design until averaged.
    for (const auto& p : module->named_parameters()) add(p.key(), p.value());
  }
  const std::vector<double> all = comm_.allgather(sums);
  const size_t n = sums.size();
  for (size_t i = 0; i < n; ++i) {
    std::string differing;
    for (int r = 1; r < comm_.size(); ++r)
      if (all[static_cast<size_t>(r) * n + i] != all[i]) differing += (differing.empty() ? "" : ", ") + std::to_string(r);
    if (!differing.empty()) return names[i] + " differs between rank 0 and rank(s) " + differing;
  }
  return "";
}

double ReplicaSync::take_communication_seconds() {
  const double s = comm_seconds_;
  comm_seconds_ = 0;
  return s;
}

}  // namespace distgan
