#include "cluster/nccl_communicator.h"

#ifdef DISTGAN_HAVE_NCCL

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "cluster/collective.h"
#include "cluster/mpi_check.h"
#include "cluster/mpi_progress.h"

namespace distgan::cluster {

namespace {

void cuda_check(cudaError_t rc, const std::string& what) {
  if (rc != cudaSuccess) throw ClusterError("nccl backend: " + what + ": " + cudaGetErrorString(rc));
}

// A collective queued on the NCCL stream: `done` is recorded after it. It keeps the collective's
// tensors until it has completed; for a CPU tensor staged through the device, the result is copied
// back then.
class NcclWork : public Work {
 public:
  NcclWork(NcclCommunicator& comm, cudaEvent_t done, std::string what, std::vector<torch::Tensor> tensors,
           torch::Tensor host, torch::Tensor staged)
      : comm_(comm),
        done_(done),
        what_(std::move(what)),
        tensors_(std::move(tensors)),
        host_(std::move(host)),
        staged_(std::move(staged)) {}
  ~NcclWork() override {
    if (!finished_ && std::uncaught_exceptions() == 0) {
      try {
        wait();
      } catch (...) {
      }
    }
    cudaEventDestroy(done_);
  }
  bool is_completed() override { return finished_ || cudaEventQuery(done_) == cudaSuccess; }
  void wait() override {
    if (finished_) return;
    finished_ = true;
    CudaDeviceScope on_device(comm_.device());
    // Work queued on the caller's stream from now on runs after the collective.
    cuda_check(cudaStreamWaitEvent(comm_.compute_stream(), done_, 0), what_ + ": ordering the compute stream");
    comm_.wait_for(done_, what_);
    if (host_.defined()) host_.copy_(staged_.cpu());
  }

 private:
  NcclCommunicator& comm_;
  cudaEvent_t done_;
  std::string what_;
  std::vector<torch::Tensor> tensors_;
  torch::Tensor host_, staged_;
  bool finished_ = false;
};

}  // namespace

NcclCommunicator::NcclCommunicator(MPI_Comm base, int device, double timeout_s, bool watchdog) : device_(device) {
  MPI_CHECK(MPI_Comm_dup(base, &mpi_));
  try {
    start(timeout_s, watchdog);
  } catch (...) {
    release();  // the destructor does not run after a constructor has thrown
    throw;
  }
}

void NcclCommunicator::start(double timeout_s, bool watchdog) {
  MPI_CHECK(MPI_Comm_rank(mpi_, &rank_));
  MPI_CHECK(MPI_Comm_size(mpi_, &size_));
  context_ = {"nccl", rank_, "", timeout_s, watchdog};
  check_loaded_nccl();
  const std::string warning = nccl_environment_warning(std::getenv("NCCL_COMM_BLOCKING"));
  if (watchdog && !warning.empty()) std::fprintf(stderr, "distgan: warning: rank %d: %s\n", rank_, warning.c_str());
  cuda_check(cudaSetDevice(device_), "cudaSetDevice(" + std::to_string(device_) + ")");
  const ncclUniqueId id = broadcast_unique_id();
  ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
  config.blocking = watchdog ? 0 : 1;  // non-blocking: every call returns, and is polled under the deadline
  const std::string what = "ncclCommInitRank (rank " + std::to_string(rank_) + " of " + std::to_string(size_) +
                           ", cuda:" + std::to_string(device_) + ")";
  complete_call(ncclCommInitRankConfig(&comm_, size_, id, rank_, &config), what);
  stream_ = make_collective_stream(device_);
  cuda_check(cudaEventCreateWithFlags(&compute_ready_, cudaEventDisableTiming), "cudaEventCreate");
}

ncclUniqueId NcclCommunicator::broadcast_unique_id() {
  ncclUniqueId id;
  std::memset(&id, 0, sizeof(id));
  if (rank_ == 0) {
    const ncclResult_t rc = ncclGetUniqueId(&id);
    if (rc != ncclSuccess)
      throw ClusterError(nccl_failure_message(
          context_, "ncclGetUniqueId", std::string("failed: ") + ncclGetErrorString(rc), ncclGetLastError(nullptr)));
  }
  MpiRequest request;
  {
    std::lock_guard<std::mutex> lock(mpi_call_mutex());  // one thread in MPI at a time (cluster/mpi_progress.h)
    MPI_CHECK(MPI_Ibcast(&id, sizeof(id), MPI_BYTE, 0, mpi_, &request.handle));
  }
  wait_for_mpi_request(request, "the broadcast of NCCL's unique id from rank 0", context_);
  return id;
}

// On success every queued collective is flushed (ncclCommFinalize, polled under the deadline) before
// the communicator is destroyed; a peer that is gone makes the finalize time out, and the
// communicator is aborted instead of blocking in ncclCommDestroy.
NcclCommunicator::~NcclCommunicator() {
  CudaDeviceScope on_device(device_);
  if (comm_ != nullptr && !aborted_ && std::uncaught_exceptions() == 0) {
    try {
      complete_call(ncclCommFinalize(comm_), "ncclCommFinalize");
      ncclCommDestroy(comm_);
      comm_ = nullptr;
    } catch (const std::exception&) {
      abort();  // (fail() has aborted already; abort() runs once)
    }
  }
  release();  // a broken job (a failure, an exception unwinding): ncclCommAbort, which never blocks
}

void NcclCommunicator::release() {
  if (comm_ != nullptr) ncclCommAbort(comm_);
  comm_ = nullptr;
  if (compute_ready_ != nullptr) cudaEventDestroy(compute_ready_);
  compute_ready_ = nullptr;
  release_collective_stream(stream_);
  stream_ = nullptr;
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized && mpi_ != MPI_COMM_NULL) MPI_Comm_free(&mpi_);
}

void NcclCommunicator::abort() {
  if (aborted_) return;
  aborted_ = true;
  if (comm_ != nullptr) ncclCommAbort(comm_);
  comm_ = nullptr;
}

void NcclCommunicator::fail(const std::string& what, const std::string& why) {
  const std::string last = ncclGetLastError(comm_);  // (the argument is unused: valid with no communicator)
  const std::string message = nccl_failure_message(context_, what, why, last);
  if (abort_reason_.empty()) abort_reason_ = message;
  abort();
  throw ClusterError(message);
}

void NcclCommunicator::check_not_aborted(const std::string& what) const {
  if (aborted_)
    throw ClusterError("nccl backend: rank " + std::to_string(rank_) + ": " + what +
                       ": the communicator was aborted after an earlier failure (" + abort_reason_ + ")");
}

void NcclCommunicator::complete_call(ncclResult_t rc, const std::string& what) {
  if (rc != ncclSuccess && rc != ncclInProgress) fail(what, std::string("failed: ") + ncclGetErrorString(rc));
  if (rc == ncclSuccess && !context_.watchdog) return;
  wait_until_not_in_progress(
      [&] {
        ncclResult_t state = ncclSuccess;
        const ncclResult_t query = ncclCommGetAsyncError(comm_, &state);
        return query != ncclSuccess ? query : state;
      },
      what, context_, [&](ncclResult_t result) { fail(what, std::string("failed: ") + ncclGetErrorString(result)); },
      [&] { timed_out(what); });
}

torch::Tensor NcclCommunicator::on_device(const torch::Tensor& tensor) const {
  if (!tensor.device().is_cpu()) return tensor;
  return tensor.to(torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(device_)));
}

std::unique_ptr<Work> NcclCommunicator::enqueue(const std::string& what, const std::function<ncclResult_t()>& call,
                                                const std::vector<torch::Tensor>& tensors, torch::Tensor host,
                                                torch::Tensor staged) {
  check_not_aborted(what);
  CudaDeviceScope on_device(device_);
  cuda_check(cudaEventRecord(compute_ready_, compute_stream()), what + ": cudaEventRecord");
  cuda_check(cudaStreamWaitEvent(stream_, compute_ready_, 0), what + ": cudaStreamWaitEvent");
  // Before the call: if it fails or times out, the tensors may be freed while an aborting kernel
  // still touches them; recorded, their memory is not handed out again before the stream moves on.
  for (const torch::Tensor& t : tensors) record_on_stream(t, stream_, device_);
  complete_call(call(), what);
  cudaEvent_t done = nullptr;
  cuda_check(cudaEventCreateWithFlags(&done, cudaEventDisableTiming), "cudaEventCreate");
  const cudaError_t recorded = cudaEventRecord(done, stream_);
  if (recorded != cudaSuccess) cudaEventDestroy(done);
  cuda_check(recorded, what + ": cudaEventRecord");
  return std::make_unique<NcclWork>(*this, done, what, tensors, std::move(host), std::move(staged));
}

void NcclCommunicator::wait_for(cudaEvent_t done, const std::string& what) {
  check_not_aborted(what);
  CudaDeviceScope on_device(device_);
  poll_until_done(
      [&] {
        const cudaError_t state = cudaEventQuery(done);
        if (state == cudaSuccess) return true;
        if (state != cudaErrorNotReady) fail(what, std::string("failed on the device: ") + cudaGetErrorString(state));
        ncclResult_t async = ncclSuccess;
        ncclCommGetAsyncError(comm_, &async);
        if (async != ncclSuccess && async != ncclInProgress)
          fail(what, std::string("failed: ") + ncclGetErrorString(async));
        return false;
      },
      what, context_, [&] { timed_out(what); });
}

void NcclCommunicator::timed_out(const std::string& what) {
  if (abort_reason_.empty()) abort_reason_ = what + " did not complete within cluster.collective_timeout_s";
  abort();
}

std::unique_ptr<Work> NcclCommunicator::allreduce(torch::Tensor& tensor, const AllreduceOptions& options) {
  const ncclDataType_t type = checked_nccl_type(tensor, device_, context_, "allreduce");
  if (options.op == ReduceOp::kAverage && !tensor.is_floating_point())
    throw ClusterError("nccl backend: an average of integer values would be truncated; use a float tensor");
  const std::string what = numbered_collective("allreduce", ++sequence_, tensor);
  torch::Tensor host = tensor.device().is_cpu() ? tensor : torch::Tensor();  // control values: staged
  torch::Tensor data = on_device(tensor);
  const ncclRedOp_t op = options.op == ReduceOp::kMax ? ncclMax : options.op == ReduceOp::kAverage ? ncclAvg : ncclSum;
  return enqueue(
      what,
      [&] {
        return ncclAllReduce(data.data_ptr(), data.data_ptr(), static_cast<size_t>(data.numel()), type, op, comm_,
                             stream_);
      },
      {data}, host, data);
}

void NcclCommunicator::broadcast(torch::Tensor& tensor, int root) {
  const ncclDataType_t type = checked_nccl_type(tensor, device_, context_, "broadcast");
  const std::string what = numbered_collective("broadcast", ++sequence_, tensor) + " from rank " + std::to_string(root);
  torch::Tensor host = tensor.device().is_cpu() ? tensor : torch::Tensor();
  torch::Tensor data = on_device(tensor);
  enqueue(
      what,
      [&] {
        return ncclBroadcast(data.data_ptr(), data.data_ptr(), static_cast<size_t>(data.numel()), type, root, comm_,
                             stream_);
      },
      {data}, host, data)
      ->wait();
}

void NcclCommunicator::barrier() {
  torch::Tensor token = torch::zeros({1}, torch::kInt32);
  allreduce(token, {ReduceOp::kSum})->wait();
}

// On the device, under the deadline like every other collective (the replica check and the
// straggler report use it; a blocking MPI call here would hang on a dead peer).
torch::Tensor NcclCommunicator::allgather(const torch::Tensor& tensor) {
  const ncclDataType_t type = checked_nccl_type(tensor, device_, context_, "allgather");
  const std::string what = numbered_collective("allgather", ++sequence_, tensor);
  const torch::Tensor data = on_device(tensor);
  std::vector<int64_t> shape{size_};
  shape.insert(shape.end(), data.sizes().begin(), data.sizes().end());
  torch::Tensor all = torch::empty(shape, data.options());
  torch::Tensor result = tensor.device().is_cpu() ? torch::empty(shape, tensor.options()) : torch::Tensor();
  enqueue(
      what,
      [&] {
        return ncclAllGather(data.data_ptr(), all.data_ptr(), static_cast<size_t>(data.numel()), type, comm_, stream_);
      },
      {data, all}, result, all)
      ->wait();
  return result.defined() ? result : all;
}

}  // namespace distgan::cluster

#endif  // DISTGAN_HAVE_NCCL
