#include "cluster/mpi_communicator.h"

#include <c10/util/BFloat16.h>

#include <exception>

#include "cluster/collective.h"
#include "cluster/mpi_check.h"
#include "cluster/mpi_progress.h"
#include "cluster/nccl_communicator.h"

namespace distgan::cluster {

namespace {

MPI_Datatype mpi_type(const torch::Tensor& t, const CollectiveContext& context, const char* op) {
  return backend_dtype<MPI_Datatype>(t, context, op,
                                     {{torch::kFloat32, MPI_FLOAT},
                                      {torch::kFloat64, MPI_DOUBLE},
                                      {torch::kInt64, MPI_INT64_T},
                                      {torch::kInt32, MPI_INT32_T},
                                      {torch::kUInt8, MPI_UINT8_T},
                                      {torch::kBFloat16, MPI_UINT16_T}});  // summed by bf16_sum_op()
}

// MPI has no bfloat16 type: bf16 values travel as 16-bit words and are summed by this operation,
// each pair added in float32 and rounded to the nearest bf16 (compressed gradients: half the bytes
// of float32; cluster.grad_dtype).
void bf16_sum(void* in, void* inout, int* len, MPI_Datatype* /*type*/) {
  const auto* a = static_cast<const c10::BFloat16*>(in);
  auto* b = static_cast<c10::BFloat16*>(inout);
  for (int i = 0; i < *len; ++i) b[i] = c10::BFloat16(static_cast<float>(a[i]) + static_cast<float>(b[i]));
}

MPI_Op bf16_sum_op() {
  static const MPI_Op op = [] {
    MPI_Op created;
    MPI_CHECK(MPI_Op_create(&bf16_sum, /*commute=*/1, &created));
    return created;
  }();
  return op;
}

// MPI moves host memory: a tensor on a GPU is staged through a host copy (for tests of several ranks
// sharing one GPU, where NCCL refuses to run; use nccl for speed).
torch::Tensor host_side(const torch::Tensor& t) { return t.device().is_cpu() ? t : t.cpu(); }

class MpiWork : public Work {
 public:
  // `tensor` is what MPI works on; `target`, when defined, is the device tensor it is copied back to.
  MpiWork(std::shared_ptr<MpiProgress> progress, std::shared_ptr<MpiRequest> request, torch::Tensor tensor,
          torch::Tensor target, bool average, int size, CollectiveContext context)
      : progress_(std::move(progress)), request_(std::move(request)), tensor_(std::move(tensor)),
        target_(std::move(target)), average_(average), size_(size), context_(std::move(context)) {}
  ~MpiWork() override {
    if (done_) return;
    // While an exception unwinds (the job is about to be aborted) or after MPI is gone, waiting could
    // block forever on a broken job: leave the request. Otherwise finish it, so that a dropped handle
    // still leaves the tensor complete (and averaged).
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (finalized || std::uncaught_exceptions() > 0) {
      if (!finalized) progress_->forget(*request_);
      return;
    }
    try {
      wait();
    } catch (...) {
    }
  }
  bool is_completed() override {
    if (done_) return true;
    try {
      if (MpiProgress::test(*request_, describe_collective("allreduce", tensor_))) finish();
    } catch (...) {
      done_ = true;
      throw;
    }
    return done_;
  }
  void wait() override {
    if (done_) return;
    done_ = true;  // never waited on twice, also after a timeout
    progress_->wait(*request_, describe_collective("allreduce", tensor_), context_);
    finish();
  }

 private:
  void finish() {
    done_ = true;
    if (average_) tensor_.div_(size_);
    if (target_.defined()) target_.copy_(tensor_);
  }
  std::shared_ptr<MpiProgress> progress_;
  std::shared_ptr<MpiRequest> request_;
  torch::Tensor tensor_, target_;
  bool average_;
  int size_;
  CollectiveContext context_;
  bool done_ = false;
};

}  // namespace

MpiCommunicator::MpiCommunicator(MPI_Comm base, double timeout_s, bool watchdog)
    : progress_(std::make_shared<MpiProgress>(mpi_progress_interval_from_env())) {
  std::lock_guard<std::mutex> lock(mpi_call_mutex());
  MPI_CHECK(MPI_Comm_dup(base, &comm_));
  MPI_CHECK(MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN));
  MPI_CHECK(MPI_Comm_rank(comm_, &rank_));
  MPI_CHECK(MPI_Comm_size(comm_, &size_));
  context_ = {"mpi", rank_, "", timeout_s, watchdog};
}

MpiCommunicator::~MpiCommunicator() {
  progress_.reset();  // its thread joined first (unless a Work handle still holds it)
  std::lock_guard<std::mutex> lock(mpi_call_mutex());
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized && comm_ != MPI_COMM_NULL) MPI_Comm_free(&comm_);
}

std::unique_ptr<Work> MpiCommunicator::allreduce(torch::Tensor& tensor, const AllreduceOptions& options) {
  const MPI_Datatype type = mpi_type(tensor, context_, "allreduce");
  if (options.op == ReduceOp::kAverage && !tensor.is_floating_point())
    throw ClusterError("mpi backend: an average of integer values would be truncated; use a float tensor");
  const bool bf16 = tensor.scalar_type() == torch::kBFloat16;
  if (bf16 && options.op == ReduceOp::kMax)
    throw ClusterError("mpi backend: a maximum of bfloat16 values is not supported (sum or average)");
  torch::Tensor host = host_side(tensor);
  std::shared_ptr<MpiRequest> tracked;
  {
    std::lock_guard<std::mutex> lock(mpi_call_mutex());  // bf16_sum_op() may create the op: an MPI call
    const MPI_Op op = bf16 ? bf16_sum_op() : options.op == ReduceOp::kMax ? MPI_MAX : MPI_SUM;
    MPI_Request request;
    MPI_CHECK(MPI_Iallreduce(MPI_IN_PLACE, host.data_ptr(), static_cast<int>(host.numel()), type, op, comm_, &request));
    tracked = progress_->track(request);
  }
  return std::make_unique<MpiWork>(progress_, std::move(tracked), host, host.is_same(tensor) ? torch::Tensor() : tensor,
                                   options.op == ReduceOp::kAverage, size_, context_);
}

size_t MpiCommunicator::allreduces_in_flight() { return progress_->in_flight(); }

void MpiCommunicator::broadcast(torch::Tensor& tensor, int root) {
  const MPI_Datatype type = mpi_type(tensor, context_, "broadcast");
  torch::Tensor host = host_side(tensor);
  MpiRequest request;
  {
    std::lock_guard<std::mutex> lock(mpi_call_mutex());
    MPI_CHECK(MPI_Ibcast(host.data_ptr(), static_cast<int>(host.numel()), type, root, comm_, &request.handle));
  }
  wait_for_mpi_request(request, describe_collective("broadcast", host) + " from rank " + std::to_string(root), context_);
  if (!host.is_same(tensor)) tensor.copy_(host);
}

void MpiCommunicator::barrier() {
  MpiRequest request;
  {
    std::lock_guard<std::mutex> lock(mpi_call_mutex());
    MPI_CHECK(MPI_Ibarrier(comm_, &request.handle));
  }
  wait_for_mpi_request(request, "barrier", context_);
}

torch::Tensor MpiCommunicator::allgather(const torch::Tensor& tensor) {
  const MPI_Datatype type = mpi_type(tensor, context_, "allgather");
  const torch::Tensor host = host_side(tensor);
  std::vector<int64_t> shape{size_};
  shape.insert(shape.end(), host.sizes().begin(), host.sizes().end());
  torch::Tensor all = torch::empty(shape, host.options());
  MpiRequest request;
  {
    std::lock_guard<std::mutex> lock(mpi_call_mutex());
    MPI_CHECK(MPI_Iallgather(host.data_ptr(), static_cast<int>(host.numel()), type, all.data_ptr(),
                             static_cast<int>(host.numel()), type, comm_, &request.handle));
  }
  wait_for_mpi_request(request, describe_collective("allgather", host), context_);
  return all.to(tensor.device());
}

bool nccl_compiled_in() {
#ifdef DISTGAN_HAVE_NCCL
  return true;
#else
  return false;
#endif
}
std::string choose_backend(const CommunicatorOptions& options) {
  const bool cuda = options.device == "cuda";
  if (options.backend == "nccl" || (options.backend == "auto" && cuda && nccl_compiled_in())) {
    if (!nccl_compiled_in())
      throw ClusterError("cluster.backend: nccl was asked for, but this build has no NCCL backend "
                         "(rebuild with the CUDA toolkit and -DDISTGAN_WITH_NCCL=ON)");
    if (!cuda)
      throw ClusterError("cluster.backend: nccl moves GPU tensors; with cluster.device: cpu use cluster.backend: "
                         "mpi (or auto)");
    return "nccl";
  }
  if (options.backend != "mpi" && options.backend != "auto")
    throw ClusterError("cluster.backend: unknown backend '" + options.backend + "' (expected auto, mpi or nccl)");
  return "mpi";
}

std::unique_ptr<Communicator> make_communicator(const CommunicatorOptions& options) {
  if (choose_backend(options) == "nccl") {
#ifdef DISTGAN_HAVE_NCCL
    return std::make_unique<NcclCommunicator>(MPI_COMM_WORLD, options.device_index, options.timeout_s, options.watchdog);
#endif
  }
  return std::make_unique<MpiCommunicator>(MPI_COMM_WORLD, options.timeout_s, options.watchdog);
}

}  // namespace distgan::cluster
