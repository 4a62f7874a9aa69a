// The Communicator: the few collectives distributed training needs, behind one small interface
// so that the MPI backend (CPU tensors) and the NCCL backend (GPU tensors) are interchangeable.
// Every collective of the run goes through it, so every one has the deadline
// (cluster.collective_timeout_s) and the same error text (cluster/collective.h). Collectives work in place on contiguous tensors. allreduce is asynchronous: it
// returns a Work handle, so a caller can start several (one per gradient bucket) and wait for all.
//
// Every rank must call the same collectives in the same order (MPI's rule).
#pragma once

#include <torch/torch.h>

#include <memory>
#include <string>
#include <vector>

namespace distgan::cluster {

enum class ReduceOp { kSum, kAverage, kMax };

struct AllreduceOptions {
  ReduceOp op = ReduceOp::kSum;
};

// A collective in flight.
class Work {
 public:
  virtual ~Work() = default;
  virtual bool is_completed() = 0;
  // Blocks until the collective is done; throws ClusterError (naming the operation) on failure or
  // when it takes longer than the communicator's timeout. A handle destroyed unwaited completes the
  // collective first (except while an exception unwinds: the job is being aborted then).
  virtual void wait() = 0;
};

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  virtual std::string name() const = 0;  // "mpi", "nccl"

  // In place on a contiguous tensor; kAverage divides the sum by size().
  [[nodiscard]] virtual std::unique_ptr<Work> allreduce(torch::Tensor& tensor, const AllreduceOptions& options = {}) = 0;
  // In place: every rank ends with root's values.
  virtual void broadcast(torch::Tensor& tensor, int root) = 0;
  virtual void barrier() = 0;
  // Every rank's `tensor` (the same shape and dtype on each), stacked in rank order: [size(), ...],
  // on the tensor's device.
  virtual torch::Tensor allgather(const torch::Tensor& tensor) = 0;
  // Every rank's `values` (the same count on each), concatenated in rank order.
  std::vector<double> allgather(const std::vector<double>& values);
  // Every tensor of `tensors` (any mix of dtypes and shapes, on this communicator's device) gets
  // root's values, in a few large messages: consecutive tensors of one dtype are packed into
  // buffers of up to `chunk_bytes` (one broadcast each) instead of one collective per tensor.
  void broadcast_coalesced(const std::vector<torch::Tensor>& tensors, int root,
                           int64_t chunk_bytes = int64_t{64} << 20);
  // Where the caller is ("step 120"): named in the error of a collective that fails or times out.
  virtual void set_label(const std::string& label) { (void)label; }
};

struct CommunicatorOptions {
  std::string backend = "auto";  // auto | mpi | nccl
  std::string device = "cpu";    // where the tensors live: cpu | cuda
  int device_index = 0;          // cuda:<device_index> (the local rank) for nccl
  double timeout_s = 600;        // a collective taking longer is an error (cluster.collective_timeout_s)
  bool watchdog = true;          // false: no deadline at all (DISTGAN_WATCHDOG=off, for bench/watchdog.sh)
};

// Every rank's host name, in rank order, on every rank (for run_info.json and straggler reports).
// A collective. Names are cut at 63 bytes.
std::vector<std::string> gather_host_names(Communicator& comm, const std::string& host);

// The backend that `options` asks for, on MPI_COMM_WORLD. `auto` is nccl for CUDA tensors when
// compiled in, mpi otherwise. Throws ClusterError naming the backend when it cannot be had.
std::unique_ptr<Communicator> make_communicator(const CommunicatorOptions& options);

// The backend make_communicator picks for `options` ("mpi" or "nccl"), or throws ClusterError: nccl
// asked for without NCCL compiled in, nccl for CPU tensors, an unknown name.
std::string choose_backend(const CommunicatorOptions& options);

// Whether this build has the NCCL backend.
bool nccl_compiled_in();

}  // namespace distgan::cluster
