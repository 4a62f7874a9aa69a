#include "cluster/nccl_support.h"

#ifdef DISTGAN_HAVE_NCCL

#include <link.h>

#include <algorithm>
#include <climits>
#include <cstdlib>

#ifdef DISTGAN_TORCH_CUDA
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAStream.h>
#endif

#if NCCL_VERSION_CODE < NCCL_VERSION(2, 14, 0)
#error "distgan needs NCCL 2.14 or newer (non-blocking communicators, ncclCommFinalize)"
#endif

namespace distgan::cluster {

std::string nccl_version_text(int code) {
  // NCCL before 2.9 numbered its versions major*1000 + minor*100 + patch.
  const int major = code < 10000 ? code / 1000 : code / 10000;
  const int minor = code < 10000 ? code % 1000 / 100 : code % 10000 / 100;
  return std::to_string(major) + "." + std::to_string(minor) + "." + std::to_string(code % 100);
}

std::string nccl_version_problem(int runtime, int compiled) {
  if (runtime < 10000 || runtime / 10000 != compiled / 10000)
    return "NCCL " + nccl_version_text(runtime) + " is loaded but distgan was compiled against NCCL " +
           nccl_version_text(compiled) + ", another major version (another ABI)";
  if (runtime < kMinNcclVersion)
    return "NCCL " + nccl_version_text(runtime) + " is loaded but distgan needs " + nccl_version_text(kMinNcclVersion) +
           " or newer (non-blocking communicators)";
  return "";
}

int loaded_nccl_version() {
  int version = 0;
  if (ncclGetVersion(&version) != ncclSuccess) return 0;
  return version;
}

namespace {

int add_matching_library(dl_phdr_info* info, size_t /*size*/, void* data) {
  auto* found = static_cast<std::pair<std::string, std::vector<std::string>>*>(data);
  if (info->dlpi_name == nullptr || info->dlpi_name[0] == '\0') return 0;
  const std::string path = info->dlpi_name;
  if (!is_library_file(path.substr(path.find_last_of('/') + 1), found->first)) return 0;
  // The same file reached through two links (libnccl.so and libnccl.so.2) is one copy.
  char resolved[PATH_MAX];
  const std::string real = realpath(path.c_str(), resolved) != nullptr ? resolved : path;
  if (std::find(found->second.begin(), found->second.end(), real) == found->second.end()) found->second.push_back(real);
  return 0;
}

}  // namespace

bool is_library_file(const std::string& base, const std::string& soname_stem) {
  return base == soname_stem || base.rfind(soname_stem + ".", 0) == 0;
}

std::vector<std::string> loaded_libraries(const std::string& soname_stem) {
  std::pair<std::string, std::vector<std::string>> found{soname_stem, {}};
  dl_iterate_phdr(&add_matching_library, &found);
  return found.second;
}

std::string nccl_environment_warning(const char* comm_blocking) {
  if (comm_blocking == nullptr || std::string(comm_blocking) != "1") return "";
  return "NCCL_COMM_BLOCKING=1 makes NCCL's calls block: a rank that hangs in NCCL's start-up or in a "
         "collective's enqueue is not seen by cluster.collective_timeout_s (unset it)";
}

void check_loaded_nccl() {
  const std::vector<std::string> copies = loaded_libraries("libnccl.so");
  if (copies.size() > 1) {
    std::string list;
    for (const std::string& path : copies) list += (list.empty() ? "" : ", ") + path;
    throw ClusterError("nccl backend: " + std::to_string(copies.size()) + " NCCL libraries are loaded (" + list +
                       "): build distgan against the NCCL its LibTorch uses (cmake -DNCCL_HOME=...), so that "
                       "one copy serves both");
  }
  const std::string problem = nccl_version_problem(loaded_nccl_version(), NCCL_VERSION_CODE);
  if (!problem.empty()) throw ClusterError("nccl backend: " + problem);
}

std::string nccl_failure_message(const CollectiveContext& context, const std::string& what, const std::string& why,
                                 const std::string& last_error) {
  return "nccl backend: rank " + std::to_string(context.rank) + (context.label.empty() ? "" : ", " + context.label) +
         ": " + what + " " + why + (last_error.empty() ? "" : " (NCCL: " + last_error + ")");
}

std::string numbered_collective(const char* op, int64_t seq, const torch::Tensor& tensor) {
  return std::string(op) + " #" + std::to_string(seq) + describe_collective("", tensor);
}

void wait_until_not_in_progress(const std::function<ncclResult_t()>& state, const std::string& what,
                                const CollectiveContext& context, const std::function<void(ncclResult_t)>& on_failure,
                                const std::function<void()>& on_timeout) {
  poll_until_done(
      [&] {
        const ncclResult_t now = state();
        if (now == ncclInProgress) return false;
        if (now != ncclSuccess) {
          on_failure(now);
          throw ClusterError(
              nccl_failure_message(context, what, std::string("failed: ") + ncclGetErrorString(now), ""));
        }
        return true;
      },
      what, context, on_timeout);
}

ncclDataType_t checked_nccl_type(const torch::Tensor& tensor, int device, const CollectiveContext& context,
                                 const char* op) {
  const torch::Device where = tensor.device();
  if (!(where.is_cpu() || (where.is_cuda() && where.index() == device)))
    throw ClusterError(context.backend + " backend: rank " + std::to_string(context.rank) + ": " + op +
                       " of a tensor on " + where.str() + ": expected cuda:" + std::to_string(device) +
                       " (this rank's GPU) or cpu");
  return backend_dtype<ncclDataType_t>(tensor, context, op,
                                       {{torch::kFloat32, ncclFloat32},
                                        {torch::kFloat64, ncclFloat64},
                                        {torch::kFloat16, ncclFloat16},
                                        {torch::kBFloat16, ncclBfloat16},
                                        {torch::kInt64, ncclInt64},
                                        {torch::kInt32, ncclInt32},
                                        {torch::kUInt8, ncclUint8}});
}

CudaDeviceScope::CudaDeviceScope(int device) {
  if (cudaGetDevice(&previous_) != cudaSuccess) previous_ = -1;
  if (previous_ != device) cudaSetDevice(device);
}

CudaDeviceScope::~CudaDeviceScope() {
  if (previous_ >= 0) cudaSetDevice(previous_);
}

#ifdef DISTGAN_TORCH_CUDA
cudaStream_t make_collective_stream(int device) {
  return c10::cuda::getStreamFromPool(/*isHighPriority=*/false, static_cast<c10::DeviceIndex>(device)).stream();
}

void release_collective_stream(cudaStream_t /*stream*/) {}

cudaStream_t torch_current_stream(int device) {
  return c10::cuda::getCurrentCUDAStream(static_cast<c10::DeviceIndex>(device)).stream();
}

void record_on_stream(const torch::Tensor& tensor, cudaStream_t stream, int device) {
  if (!tensor.defined() || !tensor.is_cuda()) return;
  c10::cuda::CUDACachingAllocator::recordStream(
      tensor.storage().data_ptr(), c10::cuda::getStreamFromExternal(stream, static_cast<c10::DeviceIndex>(device)));
}
#else
cudaStream_t make_collective_stream(int /*device*/) {
  cudaStream_t stream = nullptr;
  const cudaError_t rc = cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking);
  if (rc != cudaSuccess) throw ClusterError(std::string("nccl backend: cudaStreamCreate: ") + cudaGetErrorString(rc));
  return stream;
}

void release_collective_stream(cudaStream_t stream) {
  if (stream != nullptr) cudaStreamDestroy(stream);
}

cudaStream_t torch_current_stream(int /*device*/) { return nullptr; }
void record_on_stream(const torch::Tensor& /*tensor*/, cudaStream_t /*stream*/, int /*device*/) {}
#endif

}  // namespace distgan::cluster

#endif  // DISTGAN_HAVE_NCCL
