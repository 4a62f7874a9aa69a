// The NCCL backend of Communicator: collectives on CUDA tensors, one rank per GPU.
//
// Rank 0 creates the ncclUniqueId, MPI broadcasts it, and every rank calls ncclCommInitRank on its
// device. Collectives run on a dedicated CUDA stream, ordered after the compute stream (the
// default stream, which LibTorch uses unless told otherwise) by an event, and the compute stream
// waits for the result by another event: no device-wide synchronisation. wait() also polls the
// event from the host, checking ncclCommGetAsyncError and the deadline; a failed or timed-out
// collective aborts the communicator (ncclCommAbort) and throws a ClusterError naming the rank,
// the operation and the label (the trainer's step). CPU tensors (small control values) are staged
// through the device.
//
// Compiled only with NCCL (DISTGAN_HAVE_NCCL); make_communicator refuses "nccl" otherwise.
#pragma once

#ifdef DISTGAN_HAVE_NCCL

#include <cuda_runtime_api.h>
#include <mpi.h>
#include <nccl.h>

#include "cluster/collective.h"
#include "cluster/communicator.h"

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

 private:
  // Aborts the communicator (once): a broken job must never block in NCCL again.
  void abort();
  [[noreturn]] void fail(const std::string& what, const std::string& why);
  // Makes the NCCL stream wait for the work queued so far on the compute stream.
  void order_after_compute();
  // `tensor`, or for a CPU tensor (control values) a copy on this rank's GPU.
  torch::Tensor on_device(const torch::Tensor& tensor) const;
  // A new event recorded on the NCCL stream after the collective just queued (the Work owns it).
  cudaEvent_t record_done();

  MPI_Comm mpi_ = MPI_COMM_NULL;  // for the unique id
  ncclComm_t comm_ = nullptr;
  cudaStream_t stream_ = nullptr;
  cudaEvent_t compute_ready_ = nullptr;
  int device_ = 0;
  int rank_ = 0;
  int size_ = 1;
  CollectiveContext context_;
  bool aborted_ = false;
};

}  // namespace distgan::cluster

#endif  // DISTGAN_HAVE_NCCL
