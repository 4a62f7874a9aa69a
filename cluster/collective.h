// What both Communicator backends share, so that every collective of either one has the same
// deadline, the same checks and the same error text (as every NCCL op of PyTorch's
// ProcessGroupNCCL goes through one collective<Fn>() wrapper):
//   - the deadline: poll a collective until it is done; a dead or stuck peer becomes a ClusterError
//     naming this rank, the caller's label (the step) and the operation, after the timeout
//   - the dtype table: a backend's type for a tensor's dtype, or one error naming the dtype
//   - the checks every tensor gets before it is handed to a library
#pragma once

#include <torch/torch.h>

#include <functional>
#include <initializer_list>
#include <string>
#include <utility>

#include "cluster/mpi_check.h"

namespace distgan::cluster {

// Where a collective runs, for its deadline and its error messages.
struct CollectiveContext {
  std::string backend;  // "mpi", "nccl": prefixes errors
  int rank = 0;
  std::string label;     // the caller's label ("step 120"); may be empty
  double timeout_s = 600;
  bool watchdog = true;  // false: no deadline (DISTGAN_WATCHDOG=off, to measure what it costs)
};

// How long to sleep between polls: keeps a waiting rank off its neighbour's core, and adds at most
// this much latency to a collective.
inline constexpr int kPollMicroseconds = 20;

// Calls `poll` until it returns true (it may throw: a failed collective). After context.timeout_s
// seconds, `on_timeout` runs first (the NCCL backend aborts its communicator there) and then a
// ClusterError is thrown: "collective watchdog: rank R, <label>: <what> did not complete after
// X s (cluster.collective_timeout_s = T): a rank is dead or stuck".
void poll_until_done(const std::function<bool()>& poll, const std::string& what, const CollectiveContext& context,
                     const std::function<void()>& on_timeout = {});

// "allreduce of 1024 float32 values" (for errors and the watchdog).
std::string describe_collective(const char* op, const torch::Tensor& tensor);

// Throws ClusterError ("<backend> backend: <op> needs a dense tensor", ...) for a tensor that no
// backend can hand to its library: sparse, with gaps or overlaps in memory, or of a dtype not in
// `supported`. In-place collectives take any dense layout (a channels_last weight is one block of
// memory, laid out alike on every rank); allgather stacks its inputs, so it needs the contiguous one.
template <typename T>
T backend_dtype(const torch::Tensor& tensor, const CollectiveContext& context, const char* op,
                std::initializer_list<std::pair<torch::ScalarType, T>> supported) {
  if (tensor.layout() != torch::kStrided)
    throw ClusterError(context.backend + " backend: " + op + " needs a dense (strided) tensor");
  if (std::string(op) == "allgather" ? !tensor.is_contiguous() : !tensor.is_non_overlapping_and_dense())
    throw ClusterError(context.backend + " backend: " + op +
                       (std::string(op) == "allgather" ? " needs a contiguous tensor"
                                                       : " needs a dense tensor (contiguous, or another layout without gaps)"));
  for (const auto& [type, value] : supported)
    if (type == tensor.scalar_type()) return value;
  throw ClusterError(context.backend + " backend: " + op + " of a " + std::string(c10::toString(tensor.scalar_type())) +
                     " tensor is not supported");
}

}  // namespace distgan::cluster
