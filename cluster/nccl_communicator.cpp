#include "cluster/nccl_communicator.h"

#ifdef DISTGAN_HAVE_NCCL

#include <chrono>
#include <cstring>
#include <thread>

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

ncclDataType_t nccl_type(const torch::Tensor& t, const char* op) {
  switch (t.scalar_type()) {
    case torch::kFloat32: return ncclFloat32;
    case torch::kFloat64: return ncclFloat64;
    case torch::kFloat16: return ncclFloat16;
    case torch::kBFloat16: return ncclBfloat16;
    case torch::kInt64: return ncclInt64;
    case torch::kInt32: return ncclInt32;
    case torch::kUInt8: return ncclUint8;
    default:
      throw ClusterError(std::string("nccl backend: ") + op + " of a " + std::string(c10::toString(t.scalar_type())) +
                         " tensor is not supported");
  }
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

std::string describe(const char* op, const torch::Tensor& t) {
  return std::string(op) + " of " + std::to_string(t.numel()) + " " + std::string(c10::toString(t.scalar_type())) +
         " values";
}

}  // namespace

NcclCommunicator::NcclCommunicator(MPI_Comm base, int device, double timeout_s)
    : device_(device), timeout_s_(timeout_s) {
  MPI_CHECK(MPI_Comm_dup(base, &mpi_));
  MPI_CHECK(MPI_Comm_rank(mpi_, &rank_));
  MPI_CHECK(MPI_Comm_size(mpi_, &size_));
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

void NcclCommunicator::fail(const std::string& what, const std::string& why) {
  if (!aborted_) {
    aborted_ = true;
    ncclCommAbort(comm_);
    comm_ = nullptr;
  }
  throw ClusterError("nccl backend: rank " + std::to_string(rank_) + (label_.empty() ? "" : ", " + label_) + ": " +
                     what + " " + why);
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
  using Clock = std::chrono::steady_clock;
  const auto start = Clock::now();
  for (;;) {
    const cudaError_t state = cudaEventQuery(done);
    if (state == cudaSuccess) return;
    if (state != cudaErrorNotReady) fail(what, std::string("failed on the device: ") + cudaGetErrorString(state));
    ncclResult_t async = ncclSuccess;
    ncclCommGetAsyncError(comm_, &async);
    if (async != ncclSuccess) fail(what, std::string("failed: ") + ncclGetErrorString(async));
    const double waited = std::chrono::duration<double>(Clock::now() - start).count();
    if (waited > timeout_s_)
      fail(what, "did not complete within " + std::to_string(static_cast<int>(timeout_s_)) +
                     " s (cluster.collective_timeout_s): a rank is dead or stuck");
    std::this_thread::sleep_for(std::chrono::microseconds(20));
  }
}

std::unique_ptr<Work> NcclCommunicator::allreduce(torch::Tensor& tensor, const AllreduceOptions& options) {
  if (!tensor.is_contiguous()) throw ClusterError("nccl backend: allreduce needs a contiguous tensor");
  if (options.op == ReduceOp::kAverage && !tensor.is_floating_point())
    throw ClusterError("nccl backend: an average of integer values would be truncated; use a float tensor");
  const std::string what = describe("allreduce", tensor);
  torch::Tensor host = tensor.device().is_cpu() ? tensor : torch::Tensor();  // control values: staged
  torch::Tensor data = on_device(tensor);
  const ncclRedOp_t op = options.op == ReduceOp::kMax ? ncclMax : options.op == ReduceOp::kAverage ? ncclAvg : ncclSum;
  order_after_compute();
  nccl_check(ncclAllReduce(data.data_ptr(), data.data_ptr(), static_cast<size_t>(data.numel()),
                           nccl_type(data, "allreduce"), op, comm_, stream_),
             what);
  return std::make_unique<NcclWork>(*this, record_done(), what, host, data);
}

void NcclCommunicator::broadcast(torch::Tensor& tensor, int root) {
  if (!tensor.is_contiguous()) throw ClusterError("nccl backend: broadcast needs a contiguous tensor");
  const std::string what = describe("broadcast", tensor);
  torch::Tensor host = tensor.device().is_cpu() ? tensor : torch::Tensor();
  torch::Tensor data = on_device(tensor);
  order_after_compute();
  nccl_check(ncclBroadcast(data.data_ptr(), data.data_ptr(), static_cast<size_t>(data.numel()),
                           nccl_type(data, "broadcast"), root, comm_, stream_),
             what);
  NcclWork(*this, record_done(), what, host, data).wait();
}

void NcclCommunicator::barrier() {
  torch::Tensor token = torch::zeros({1}, torch::kInt32);
  allreduce(token, {ReduceOp::kSum})->wait();
}

std::vector<double> NcclCommunicator::allgather(const std::vector<double>& values) {
  std::vector<double> all(values.size() * static_cast<size_t>(size_));
  MPI_CHECK(MPI_Allgather(values.data(), static_cast<int>(values.size()), MPI_DOUBLE, all.data(),
                          static_cast<int>(values.size()), MPI_DOUBLE, mpi_));
  return all;
}

}  // namespace distgan::cluster

#endif  // DISTGAN_HAVE_NCCL
