#include "cluster/nccl_communicator.h"

#ifdef DISTGAN_HAVE_NCCL

#include <cstring>

#include "cluster/collective.h"
#include "cluster/mpi_check.h"

#if NCCL_VERSION_CODE < NCCL_VERSION(2, 10, 0)
#error "distgan needs NCCL 2.10 or newer (ncclAvg, ncclBfloat16)"
#endif

namespace distgan::cluster {

namespace {

void cuda_check(cudaError_t rc, const std::string& what) {
  if (rc != cudaSuccess) throw ClusterError("nccl backend: " + what + ": " + cudaGetErrorString(rc));
}

void nccl_check(ncclResult_t rc, const std::string& what) {
  if (rc != ncclSuccess) throw ClusterError("nccl backend: " + what + ": " + ncclGetErrorString(rc));
}

ncclDataType_t nccl_type(const torch::Tensor& t, const CollectiveContext& context, const char* op) {
  return backend_dtype<ncclDataType_t>(t, context, op,
                                       {{torch::kFloat32, ncclFloat32},
                                        {torch::kFloat64, ncclFloat64},
                                        {torch::kFloat16, ncclFloat16},
                                        {torch::kBFloat16, ncclBfloat16},
                                        {torch::kInt64, ncclInt64},
                                        {torch::kInt32, ncclInt32},
                                        {torch::kUInt8, ncclUint8}});
}

// A collective queued on the NCCL stream: `done` is recorded after it. For a CPU tensor staged
// through the device, the result is copied back once the collective has completed.
class NcclWork : public Work {
 public:
  NcclWork(NcclCommunicator& comm, cudaEvent_t done, std::string what, torch::Tensor host, torch::Tensor staged)
      : comm_(comm), done_(done), what_(std::move(what)), host_(std::move(host)), staged_(std::move(staged)) {}
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
    // The compute stream (legacy default stream) continues only after the collective.
    cuda_check(cudaStreamWaitEvent(nullptr, done_, 0), what_ + ": ordering the compute stream");
    if (host_.defined()) {
      comm_.wait_for(done_, what_);
      host_.copy_(staged_.cpu());
    } else {
      comm_.wait_for(done_, what_);
    }
  }

 private:
  NcclCommunicator& comm_;
  cudaEvent_t done_;
  std::string what_;
  torch::Tensor host_, staged_;
  bool finished_ = false;
};

}  // namespace

NcclCommunicator::NcclCommunicator(MPI_Comm base, int device, double timeout_s, bool watchdog) : device_(device) {
  MPI_CHECK(MPI_Comm_dup(base, &mpi_));
  MPI_CHECK(MPI_Comm_rank(mpi_, &rank_));
  MPI_CHECK(MPI_Comm_size(mpi_, &size_));
  context_ = {"nccl", rank_, "", timeout_s, watchdog};
  cuda_check(cudaSetDevice(device_), "cudaSetDevice(" + std::to_string(device_) + ")");
  ncclUniqueId id;
  std::memset(&id, 0, sizeof(id));
  if (rank_ == 0) nccl_check(ncclGetUniqueId(&id), "ncclGetUniqueId");
  MPI_CHECK(MPI_Bcast(&id, sizeof(id), MPI_BYTE, 0, mpi_));
  nccl_check(ncclCommInitRank(&comm_, size_, id, rank_),
             "ncclCommInitRank (rank " + std::to_string(rank_) + " of " + std::to_string(size_) + ", cuda:" +
                 std::to_string(device_) + ")");
  cuda_check(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "cudaStreamCreate");
  cuda_check(cudaEventCreateWithFlags(&compute_ready_, cudaEventDisableTiming), "cudaEventCreate");
}

NcclCommunicator::~NcclCommunicator() {
  if (comm_ != nullptr) {
    if (aborted_ || std::uncaught_exceptions() > 0) {
      ncclCommAbort(comm_);  // a broken job: never block at exit
    } else {
      cudaStreamSynchronize(stream_);
      ncclCommDestroy(comm_);
    }
  }
  if (compute_ready_ != nullptr) cudaEventDestroy(compute_ready_);
  if (stream_ != nullptr) cudaStreamDestroy(stream_);
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized && mpi_ != MPI_COMM_NULL) MPI_Comm_free(&mpi_);
}

void NcclCommunicator::abort() {
  if (aborted_) return;
  aborted_ = true;
  ncclCommAbort(comm_);
  comm_ = nullptr;
}

void NcclCommunicator::fail(const std::string& what, const std::string& why) {
  abort();
  throw ClusterError("nccl backend: rank " + std::to_string(rank_) +
                     (context_.label.empty() ? "" : ", " + context_.label) + ": " + what + " " + why);
}

void NcclCommunicator::order_after_compute() {
  if (aborted_) throw ClusterError("nccl backend: the communicator was aborted after an earlier failure");
  cuda_check(cudaEventRecord(compute_ready_, nullptr), "cudaEventRecord");
  cuda_check(cudaStreamWaitEvent(stream_, compute_ready_, 0), "cudaStreamWaitEvent");
}

torch::Tensor NcclCommunicator::on_device(const torch::Tensor& tensor) const {
  if (!tensor.device().is_cpu()) return tensor;
  return tensor.to(torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(device_)));
}

cudaEvent_t NcclCommunicator::record_done() {
  cudaEvent_t done = nullptr;
  cuda_check(cudaEventCreateWithFlags(&done, cudaEventDisableTiming), "cudaEventCreate");
  cuda_check(cudaEventRecord(done, stream_), "cudaEventRecord");
  return done;
}

void NcclCommunicator::wait_for(cudaEvent_t done, const std::string& what) {
  if (aborted_) throw ClusterError("nccl backend: " + what + ": the communicator was aborted after an earlier failure");
  poll_until_done(
      [&] {
        const cudaError_t state = cudaEventQuery(done);
        if (state == cudaSuccess) return true;
        if (state != cudaErrorNotReady) fail(what, std::string("failed on the device: ") + cudaGetErrorString(state));
        ncclResult_t async = ncclSuccess;
        ncclCommGetAsyncError(comm_, &async);
        if (async != ncclSuccess) fail(what, std::string("failed: ") + ncclGetErrorString(async));
        return false;
      },
      what, context_, [&] { abort(); });
}

std::unique_ptr<Work> NcclCommunicator::allreduce(torch::Tensor& tensor, const AllreduceOptions& options) {
  const ncclDataType_t type = nccl_type(tensor, context_, "allreduce");
  if (options.op == ReduceOp::kAverage && !tensor.is_floating_point())
    throw ClusterError("nccl backend: an average of integer values would be truncated; use a float tensor");
  const std::string what = describe_collective("allreduce", tensor);
  torch::Tensor host = tensor.device().is_cpu() ? tensor : torch::Tensor();  // control values: staged
  torch::Tensor data = on_device(tensor);
  const ncclRedOp_t op = options.op == ReduceOp::kMax ? ncclMax : options.op == ReduceOp::kAverage ? ncclAvg : ncclSum;
  order_after_compute();
  nccl_check(ncclAllReduce(data.data_ptr(), data.data_ptr(), static_cast<size_t>(data.numel()),
                           type, op, comm_, stream_),
             what);
  return std::make_unique<NcclWork>(*this, record_done(), what, host, data);
}

void NcclCommunicator::broadcast(torch::Tensor& tensor, int root) {
  const ncclDataType_t type = nccl_type(tensor, context_, "broadcast");
  const std::string what = describe_collective("broadcast", tensor);
  torch::Tensor host = tensor.device().is_cpu() ? tensor : torch::Tensor();
  torch::Tensor data = on_device(tensor);
  order_after_compute();
  nccl_check(ncclBroadcast(data.data_ptr(), data.data_ptr(), static_cast<size_t>(data.numel()),
                           type, root, comm_, stream_),
             what);
  NcclWork(*this, record_done(), what, host, data).wait();
}

void NcclCommunicator::barrier() {
  torch::Tensor token = torch::zeros({1}, torch::kInt32);
  allreduce(token, {ReduceOp::kSum})->wait();
}

// On the device, under the deadline like every other collective (the replica check and the
// straggler report use it; a blocking MPI call here would hang on a dead peer).
torch::Tensor NcclCommunicator::allgather(const torch::Tensor& tensor) {
  const ncclDataType_t type = nccl_type(tensor, context_, "allgather");
  const std::string what = describe_collective("allgather", tensor);
  const torch::Tensor data = on_device(tensor);
  std::vector<int64_t> shape{size_};
  shape.insert(shape.end(), data.sizes().begin(), data.sizes().end());
  torch::Tensor all = torch::empty(shape, data.options());
  order_after_compute();
  nccl_check(ncclAllGather(data.data_ptr(), all.data_ptr(), static_cast<size_t>(data.numel()), type, comm_, stream_),
             what);
  torch::Tensor result = tensor.device().is_cpu() ? torch::empty(shape, tensor.options()) : torch::Tensor();
  NcclWork(*this, record_done(), what, result, all).wait();
  return result.defined() ? result : all;
}

}  // namespace distgan::cluster

#endif  // DISTGAN_HAVE_NCCL
