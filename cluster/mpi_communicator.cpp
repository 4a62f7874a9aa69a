#include "cluster/mpi_communicator.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <thread>

#include "cluster/mpi_check.h"
#include "cluster/nccl_communicator.h"

namespace distgan::cluster {

namespace {

MPI_Datatype mpi_type(const torch::Tensor& t, const char* op) {
  switch (t.scalar_type()) {
    case torch::kFloat32: return MPI_FLOAT;
    case torch::kFloat64: return MPI_DOUBLE;
    case torch::kInt64: return MPI_INT64_T;
    case torch::kInt32: return MPI_INT32_T;
    case torch::kUInt8: return MPI_UINT8_T;
    default:
      throw ClusterError(std::string("mpi backend: ") + op + " of a " + std::string(c10::toString(t.scalar_type())) +
                         " tensor is not supported");
  }
}

void check_tensor(const torch::Tensor& t, const char* op) {
  if (!t.is_contiguous()) throw ClusterError(std::string("mpi backend: ") + op + " needs a contiguous tensor");
}

// MPI moves host memory: a tensor on a GPU is staged through a host copy (for tests of several ranks
// sharing one GPU, where NCCL refuses to run; use nccl for speed).
torch::Tensor host_side(const torch::Tensor& t) { return t.device().is_cpu() ? t : t.cpu(); }

// The collective watchdog: polls `request` until it completes or `timeout_s` passes. Polling (with a
// 20 us sleep that keeps it off the other rank's core) instead of blocking turns a dead or stuck peer
// into an error naming the collective, this rank, the caller's label (the step) and the wait.
void wait_with_deadline(MPI_Request& request, const std::string& what, int rank, const std::string& label,
                        double timeout_s) {
  // DISTGAN_WATCHDOG=off: a plain blocking MPI_Wait, only to measure what the watchdog costs
  // (bench/watchdog.sh); a dead peer then hangs the job.
  static const bool watchdog = [] {
    const char* v = std::getenv("DISTGAN_WATCHDOG");
    return v == nullptr || std::string(v) != "off";
  }();
  if (!watchdog) {
    const int rc = MPI_Wait(&request, MPI_STATUS_IGNORE);
    if (rc != MPI_SUCCESS) throw_mpi_error(rc, ("MPI_Wait(" + what + ")").c_str(), __FILE__, __LINE__);
    return;
  }
  using Clock = std::chrono::steady_clock;
  const auto start = Clock::now();
  for (;;) {
    int done = 0;
    const int rc = MPI_Test(&request, &done, MPI_STATUS_IGNORE);
    if (rc != MPI_SUCCESS) throw_mpi_error(rc, ("MPI_Test(" + what + ")").c_str(), __FILE__, __LINE__);
    if (done) return;
    const double waited = std::chrono::duration<double>(Clock::now() - start).count();
    if (waited > timeout_s) {
      char text[64];
      std::snprintf(text, sizeof(text), "%.1f", waited);
      throw ClusterError("collective watchdog: rank " + std::to_string(rank) + (label.empty() ? "" : ", " + label) +
                         ": " + what + " did not complete after " + text +
                         " s (cluster.collective_timeout_s = " + std::to_string(static_cast<int>(timeout_s)) +
                         "): a rank is dead or stuck");
    }
    std::this_thread::sleep_for(std::chrono::microseconds(20));
  }
}

std::string describe(const char* op, const torch::Tensor& t) {
  return std::string(op) + " of " + std::to_string(t.numel()) + " " + std::string(c10::toString(t.scalar_type())) +
         " values";
}

class MpiWork : public Work {
 public:
  // `tensor` is what MPI works on; `target`, when defined, is the device tensor it is copied back to.
  MpiWork(MPI_Request request, torch::Tensor tensor, torch::Tensor target, bool average, int size, int rank,
          double timeout_s, std::string label)
      : request_(request), tensor_(std::move(tensor)), target_(std::move(target)), average_(average), size_(size),
        rank_(rank), timeout_s_(timeout_s), label_(std::move(label)) {}
  ~MpiWork() override {
    if (done_) return;
    // While an exception unwinds (the job is about to be aborted) or after MPI is gone, waiting could
    // block forever on a broken job: leave the request. Otherwise finish it, so that a dropped handle
    // still leaves the tensor complete (and averaged).
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (finalized || std::uncaught_exceptions() > 0) return;
    try {
      wait();
    } catch (...) {
    }
  }
  bool is_completed() override {
    if (done_) return true;
    int flag = 0;
    const int rc = MPI_Test(&request_, &flag, MPI_STATUS_IGNORE);
    if (rc != MPI_SUCCESS) {
      done_ = true;
      throw_mpi_error(rc, "MPI_Test(allreduce)", __FILE__, __LINE__);
    }
    if (flag) finish();
    return done_;
  }
  void wait() override {
    if (done_) return;
    done_ = true;  // never waited on twice, also after a timeout
    wait_with_deadline(request_, describe("allreduce", tensor_), rank_, label_, timeout_s_);
    finish();
  }

 private:
  void finish() {
    done_ = true;
    if (average_) tensor_.div_(size_);
    if (target_.defined()) target_.copy_(tensor_);
  }
  MPI_Request request_;
  torch::Tensor tensor_, target_;
  bool average_;
  int size_, rank_;
  double timeout_s_;
  std::string label_;
  bool done_ = false;
};

}  // namespace

MpiCommunicator::MpiCommunicator(MPI_Comm base, double timeout_s) : timeout_s_(timeout_s) {
  MPI_CHECK(MPI_Comm_dup(base, &comm_));
  MPI_CHECK(MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN));
  MPI_CHECK(MPI_Comm_rank(comm_, &rank_));
  MPI_CHECK(MPI_Comm_size(comm_, &size_));
}

MpiCommunicator::~MpiCommunicator() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized && comm_ != MPI_COMM_NULL) MPI_Comm_free(&comm_);
}

std::unique_ptr<Work> MpiCommunicator::allreduce(torch::Tensor& tensor, const AllreduceOptions& options) {
  check_tensor(tensor, "allreduce");
  const MPI_Datatype type = mpi_type(tensor, "allreduce");
  if (options.op == ReduceOp::kAverage && !tensor.is_floating_point())
    throw ClusterError("mpi backend: an average of integer values would be truncated; use a float tensor");
  const MPI_Op op = options.op == ReduceOp::kMax ? MPI_MAX : MPI_SUM;
  torch::Tensor host = host_side(tensor);
  MPI_Request request;
  MPI_CHECK(MPI_Iallreduce(MPI_IN_PLACE, host.data_ptr(), static_cast<int>(host.numel()), type, op, comm_, &request));
  return std::make_unique<MpiWork>(request, host, host.is_same(tensor) ? torch::Tensor() : tensor,
                                   options.op == ReduceOp::kAverage, size_, rank_, timeout_s_, label_);
}

void MpiCommunicator::broadcast(torch::Tensor& tensor, int root) {
  check_tensor(tensor, "broadcast");
  torch::Tensor host = host_side(tensor);
  MPI_Request request;
  MPI_CHECK(MPI_Ibcast(host.data_ptr(), static_cast<int>(host.numel()), mpi_type(host, "broadcast"), root, comm_,
                       &request));
  wait_with_deadline(request, describe("broadcast", host) + " from rank " + std::to_string(root), rank_, label_,
                     timeout_s_);
  if (!host.is_same(tensor)) tensor.copy_(host);
}

void MpiCommunicator::barrier() {
  MPI_Request request;
  MPI_CHECK(MPI_Ibarrier(comm_, &request));
  wait_with_deadline(request, "barrier", rank_, label_, timeout_s_);
}

std::vector<double> MpiCommunicator::allgather(const std::vector<double>& values) {
  std::vector<double> all(values.size() * static_cast<size_t>(size_));
  MPI_Request request;
  MPI_CHECK(MPI_Iallgather(values.data(), static_cast<int>(values.size()), MPI_DOUBLE, all.data(),
                           static_cast<int>(values.size()), MPI_DOUBLE, comm_, &request));
  wait_with_deadline(request, "allgather of " + std::to_string(values.size()) + " values", rank_, label_, timeout_s_);
  return all;
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
    return std::make_unique<NcclCommunicator>(MPI_COMM_WORLD, options.device_index, options.timeout_s);
#endif
  }
  return std::make_unique<MpiCommunicator>(MPI_COMM_WORLD, options.timeout_s);
}

}  // namespace distgan::cluster
