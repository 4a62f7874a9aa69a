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

// The distinct files of shared libraries this process has loaded whose name starts with `prefix`
// ("libnccl"): more than one NCCL would mean two copies with separate state in one process (one
// from LibTorch, one from the toolkit), which deadlocks or corrupts collectives.
std::vector<std::string> loaded_libraries(const std::string& prefix);

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
