// What the NCCL backend needs around the NCCL calls themselves, kept apart so that it can be unit-tested
// on a machine without a GPU (only nccl.h and libnccl are needed to compile and run these):
//   - waiting on a non-blocking communicator (ncclInProgress) under the collective deadline
//   - error text: the operation, its sequence number on the communicator, NCCL's own last error
//   - the checks every tensor gets before NCCL sees its pointer
//   - which NCCL is loaded at run time, against the one compiled against
//   - LibTorch's current CUDA stream and caching-allocator bookkeeping (CUDA LibTorch only)
#pragma once

#ifdef DISTGAN_HAVE_NCCL

#include <cuda_runtime_api.h>
#include <nccl.h>
#include <torch/torch.h>

#include <functional>
#include <string>
#include <vector>

#include "cluster/collective.h"

namespace distgan::cluster {

// The oldest NCCL the backend runs with: non-blocking communicators, ncclCommFinalize (2.14).
inline constexpr int kMinNcclVersion = NCCL_VERSION(2, 14, 0);

// "2.28.9" from an ncclGetVersion code (2.9 and later: major*10000 + minor*100 + patch).
std::string nccl_version_text(int code);

// Why the NCCL loaded at run time (`runtime`, from ncclGetVersion) cannot serve a build compiled
// against `compiled` (NCCL_VERSION_CODE), or "" when it can: another major version (another ABI),
// or older than kMinNcclVersion. A newer or older minor version of the same major one is fine: NCCL
// keeps its ABI within a major version, and the backend uses nothing newer than kMinNcclVersion.
std::string nccl_version_problem(int runtime, int compiled);

// The NCCL this process has loaded, as `ncclGetVersion` reports it.
int loaded_nccl_version();

// Whether a file named `base` is the library `soname_stem` ("libnccl.so"): the stem itself or a
// versioned name ("libnccl.so.2", "libnccl.so.2.28.9"), not another library that shares a prefix
// (NCCL's plugins: libnccl-net.so, libnccl-tuner-*.so, which NCCL loads itself).
bool is_library_file(const std::string& base, const std::string& soname_stem);

// The distinct files (links resolved) of the shared libraries this process has loaded that are
// `soname_stem` (is_library_file). More than one NCCL would be two copies with separate state in one
// process (one from LibTorch, one from the toolkit), which deadlocks or corrupts collectives. A
// LibTorch with NCCL linked statically is invisible here.
std::vector<std::string> loaded_libraries(const std::string& soname_stem);

// Why the backend should not start with NCCL's environment as it is, or "": NCCL_COMM_BLOCKING=1
// makes NCCL's calls block again, where the collective deadline cannot see a hang.
std::string nccl_environment_warning(const char* comm_blocking);

// Throws ClusterError naming what is wrong when this process's NCCL cannot be used: two NCCL
// libraries loaded, or nccl_version_problem. Called before the first communicator is created.
void check_loaded_nccl();

// "nccl backend: rank 1, step 120: allreduce #42 of 1024 float values failed: unhandled system
// error (NCCL: <last error>)": `what` names the operation (numbered_collective), `why` what
// happened, `last_error` is ncclGetLastError's text (left out when empty).
std::string nccl_failure_message(const CollectiveContext& context, const std::string& what, const std::string& why,
                                 const std::string& last_error);

// "allreduce #42 of 1024 float values": #42 is the collective's number on its communicator. Every
// rank numbers its collectives alike, so a rank that fell out of collective order shows another
// number for the same step in its error.
std::string numbered_collective(const char* op, int64_t seq, const torch::Tensor& tensor);

// Polls `state` (ncclCommGetAsyncError of a non-blocking communicator) until it is no longer
// ncclInProgress, under the deadline of `context`. ncclSuccess returns; any other result calls
// `on_failure(result)`, which must throw (the backend aborts and throws its message); after the
// timeout, `on_timeout` runs and the watchdog error is thrown (poll_until_done).
void wait_until_not_in_progress(const std::function<ncclResult_t()>& state, const std::string& what,
                                const CollectiveContext& context, const std::function<void(ncclResult_t)>& on_failure,
                                const std::function<void()>& on_timeout);

// Throws ClusterError unless NCCL may be given `tensor` for `op`: a dense tensor of a dtype NCCL
// has (backend_dtype), on this rank's GPU cuda:<device>, or on the CPU (small control values, which
// the backend stages through the GPU). Returns the NCCL type.
ncclDataType_t checked_nccl_type(const torch::Tensor& tensor, int device, const CollectiveContext& context,
                                 const char* op);

// A stream for this communicator's collectives on cuda:<device>, not synchronised with the legacy
// default stream. With a CUDA LibTorch, one of LibTorch's pooled streams: LibTorch's caching
// allocator keeps referring to the stream of a recorded tensor after the communicator is gone, so
// it must never be destroyed (ProcessGroupNCCL does the same). Otherwise a stream of our own.
cudaStream_t make_collective_stream(int device);
// Releases a stream of make_collective_stream (nothing for a pooled one).
void release_collective_stream(cudaStream_t stream);

// Makes cuda:<device> current for the scope (CUDA's current device is per thread, and events and
// streams must be used on their own device), and restores the previous one.
class CudaDeviceScope {
 public:
  explicit CudaDeviceScope(int device);
  ~CudaDeviceScope();
  CudaDeviceScope(const CudaDeviceScope&) = delete;
  CudaDeviceScope& operator=(const CudaDeviceScope&) = delete;

 private:
  int previous_ = -1;
};

// The CUDA stream LibTorch queues this device's work on (getCurrentCUDAStream). With a CPU-only
// LibTorch (the NCCL backend compiled but no CUDA tensors possible), the legacy default stream.
cudaStream_t torch_current_stream(int device);

// Tells LibTorch's caching allocator that `tensor`'s memory is in use on `stream` until the work
// queued there so far is done, so that freeing the tensor early (a failure path) cannot hand the
// memory to new work while NCCL still reads or writes it (PyTorch's recordStream). No-op without
// a CUDA LibTorch.
void record_on_stream(const torch::Tensor& tensor, cudaStream_t stream, int device);

}  // namespace distgan::cluster

#endif  // DISTGAN_HAVE_NCCL
