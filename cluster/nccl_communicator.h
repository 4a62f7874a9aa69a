// The NCCL backend of Communicator: collectives on CUDA tensors, one rank per GPU.
//
// Nothing here may block without the deadline (cluster.collective_timeout_s), since a rank that
// blocks inside NCCL never reaches the watchdog:
//   - start-up: rank 0's ncclUniqueId is broadcast by a non-blocking MPI broadcast, and the
//     communicator is created non-blocking (ncclCommInitRankConfig, blocking = 0), then polled;
//   - every collective: the enqueue call may return ncclInProgress (NCCL connects peers lazily on
//     the first one), so it is polled too; completion is an event polled from the host, with
//     ncclCommGetAsyncError;
//   - shutdown: ncclCommFinalize polled under the deadline, then ncclCommDestroy; after any failure,
//     or while an exception unwinds, ncclCommAbort (which never waits for a peer).
// Collectives run on a dedicated stream, ordered after LibTorch's current stream by an event; the
// current stream waits for the result by another event (no device-wide synchronisation). Each
// collective's tensors are kept by its Work handle and recorded on the NCCL stream with LibTorch's
// caching allocator, so an early free on a failure path cannot hand their memory to new work.
// Errors name the rank, the caller's label (the step), the collective and its sequence number on
// this communicator, and NCCL's last error text. CPU tensors (small control values) are staged
// through the device. With the watchdog off (DISTGAN_WATCHDOG=off) the communicator is blocking.
//
// Compiled only with NCCL (DISTGAN_HAVE_NCCL); make_communicator refuses "nccl" otherwise.
#pragma once

#ifdef DISTGAN_HAVE_NCCL

#include <cuda_runtime_api.h>
#include <mpi.h>
#include <nccl.h>

#include <functional>
#include <vector>

#include "cluster/collective.h"
#include "cluster/communicator.h"
#include "cluster/nccl_support.h"

namespace distgan::cluster {

class NcclCommunicator : public Communicator {
 public:
  // Collective over the ranks of `base`; this rank's tensors live on cuda:<device>.
  NcclCommunicator(MPI_Comm base, int device, double timeout_s, bool watchdog = true);
  ~NcclCommunicator() override;
  NcclCommunicator(const NcclCommunicator&) = delete;
  NcclCommunicator& operator=(const NcclCommunicator&) = delete;

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string name() const override { return "nccl"; }

  std::unique_ptr<Work> allreduce(torch::Tensor& tensor, const AllreduceOptions& options) override;
  void broadcast(torch::Tensor& tensor, int root) override;
  void barrier() override;
  torch::Tensor allgather(const torch::Tensor& tensor) override;
  using Communicator::allgather;
  void set_label(const std::string& label) override { context_.label = label; }

  // Blocks until `done` has completed on the device, polling NCCL's asynchronous error and the
  // deadline; aborts the communicator and throws on either. Used by the Work handles.
  void wait_for(cudaEvent_t done, const std::string& what);
  // The stream the caller's work is on (LibTorch's current stream of this rank's device).
  cudaStream_t compute_stream() const { return torch_current_stream(device_); }
  int device() const { return device_; }

 private:
  // The constructor's work: the unique id, the communicator, the stream.
  void start(double timeout_s, bool watchdog);
  // Frees what the communicator holds (aborting an NCCL communicator still there) and the MPI
  // communicator; what the destructor and a failed constructor end with.
  void release();
  // The ncclUniqueId of rank 0, on every rank, under the deadline.
  ncclUniqueId broadcast_unique_id();
  // Aborts the communicator (once): a broken job must never block in NCCL again.
  void abort();
  [[noreturn]] void fail(const std::string& what, const std::string& why);
  // The deadline passed in `what`: aborts, remembering why.
  void timed_out(const std::string& what);
  // Throws (naming the first failure) once the communicator has been aborted.
  void check_not_aborted(const std::string& what) const;
  // Finishes an NCCL call on the non-blocking communicator: an error fails, ncclInProgress is
  // polled under the deadline until the call has been carried out.
  void complete_call(ncclResult_t rc, const std::string& what);
  // Queues one collective on the NCCL stream after the caller's queued work: `call` is the NCCL
  // call; returns its Work (which keeps `tensors` alive). `host`: a CPU tensor whose staged copy
  // `staged` the Work copies back.
  std::unique_ptr<Work> enqueue(const std::string& what, const std::function<ncclResult_t()>& call,
                                const std::vector<torch::Tensor>& tensors, torch::Tensor host = {},
                                torch::Tensor staged = {});
  // `tensor`, or for a CPU tensor (control values) a copy on this rank's GPU.
  torch::Tensor on_device(const torch::Tensor& tensor) const;

  MPI_Comm mpi_ = MPI_COMM_NULL;  // for the unique id
  ncclComm_t comm_ = nullptr;
  cudaStream_t stream_ = nullptr;
  cudaEvent_t compute_ready_ = nullptr;
  int device_ = 0;
  int rank_ = 0;
  int size_ = 1;
  int64_t sequence_ = 0;  // collectives queued so far
  CollectiveContext context_;
  bool aborted_ = false;
  std::string abort_reason_;  // the first failure, repeated by every later call
};

}  // namespace distgan::cluster

#endif  // DISTGAN_HAVE_NCCL
