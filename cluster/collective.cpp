#include "cluster/collective.h"

#include <cstring>

#include <chrono>
#include <cstdio>
#include <thread>

#include "cluster/communicator.h"

namespace distgan::cluster {

void poll_until_done(const std::function<bool()>& poll, const std::string& what, const CollectiveContext& context,
                     const std::function<void()>& on_timeout) {
  using Clock = std::chrono::steady_clock;
  const auto start = Clock::now();
  for (;;) {
    if (poll()) return;
    const double waited = std::chrono::duration<double>(Clock::now() - start).count();
    if (context.watchdog && waited > context.timeout_s) {
      if (on_timeout) on_timeout();
      char text[64];
      std::snprintf(text, sizeof(text), "%.1f", waited);
      throw ClusterError("collective watchdog: rank " + std::to_string(context.rank) +
                         (context.label.empty() ? "" : ", " + context.label) + ": " + what +
                         " did not complete after " + text + " s (cluster.collective_timeout_s = " +
                         std::to_string(static_cast<int>(context.timeout_s)) + "): a rank is dead or stuck");
    }
    std::this_thread::sleep_for(std::chrono::microseconds(kPollMicroseconds));
  }
}

std::string describe_collective(const char* op, const torch::Tensor& tensor) {
  return std::string(op) + " of " + std::to_string(tensor.numel()) + " " +
         std::string(c10::toString(tensor.scalar_type())) + " values";
}

std::vector<double> Communicator::allgather(const std::vector<double>& values) {
  const torch::Tensor mine = torch::tensor(values, torch::kFloat64);
  const torch::Tensor all = allgather(mine).to(torch::kCPU).contiguous();
  const double* p = all.data_ptr<double>();
  return std::vector<double>(p, p + all.numel());
}

// Packs a run of tensors into one flat buffer (logical element order, whatever each tensor's memory
// format), broadcasts it and copies the values back.
void Communicator::broadcast_coalesced(const std::vector<torch::Tensor>& tensors, int root, int64_t chunk_bytes) {
  torch::NoGradGuard no_grad;
  size_t begin = 0;
  while (begin < tensors.size()) {
    const torch::ScalarType dtype = tensors[begin].scalar_type();
    size_t end = begin;
    int64_t bytes = 0;
    while (end < tensors.size() && tensors[end].scalar_type() == dtype && (end == begin || bytes < chunk_bytes)) {
      bytes += tensors[end].numel() * tensors[end].element_size();
      ++end;
    }
    std::vector<torch::Tensor> flat;
    for (size_t i = begin; i < end; ++i) flat.push_back(tensors[i].detach().reshape({-1}));
    torch::Tensor packed = torch::cat(flat);
    broadcast(packed, root);
    int64_t offset = 0;
    for (size_t i = begin; i < end; ++i) {
      const int64_t n = tensors[i].numel();
      tensors[i].detach().copy_(packed.slice(0, offset, offset + n).view(tensors[i].sizes()));
      offset += n;
    }
    begin = end;
  }
}

std::vector<std::string> gather_host_names(Communicator& comm, const std::string& host) {
  constexpr int64_t kHostBytes = 64;  // a fixed-size row per rank, gathered as bytes
  torch::Tensor mine = torch::zeros({kHostBytes}, torch::kUInt8);
  std::memcpy(mine.data_ptr(), host.data(), std::min<size_t>(host.size(), kHostBytes - 1));
  const torch::Tensor all = comm.allgather(mine).to(torch::kCPU).contiguous();
  std::vector<std::string> hosts;
  for (int64_t r = 0; r < all.size(0); ++r)
    hosts.emplace_back(reinterpret_cast<const char*>(all[r].data_ptr()));
  return hosts;
}

}  // namespace distgan::cluster
