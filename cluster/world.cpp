#include "cluster/world.h"

#include <malloc.h>
#include <sched.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include <ATen/detail/CUDAHooksInterface.h>
#include <c10/core/impl/DeviceGuardImplInterface.h>
#include <torch/torch.h>

#include "cluster/mpi_check.h"

namespace distgan::cluster {

void throw_mpi_error(int code, const char* call, const char* file, int line) {
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  MPI_Error_string(code, text, &length);
  int rank = -1, initialized = 0;
  MPI_Initialized(&initialized);
  if (initialized) MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  char host[256] = "?";
  gethostname(host, sizeof(host) - 1);
  throw ClusterError("rank " + std::to_string(rank) + " on " + host + ": " + call + " failed at " + file + ":" +
                     std::to_string(line) + ": " + std::string(text, static_cast<size_t>(length)));
}

int affinity_core_count() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) != 0) return 1;
  const int n = CPU_COUNT(&set);
  return n > 0 ? n : 1;
}

int configure_compute_threads(int requested) {
  const int threads = requested > 0 ? requested : affinity_core_count();
  torch::set_num_threads(threads);
  try {
    torch::set_num_interop_threads(1);  // the step runs one op at a time; extra pools only compete
  } catch (const std::exception&) {
    // Already set (it may be set only once per process): keep the first setting.
  }
  return threads;
}

void keep_freed_host_memory() {
  constexpr int kMaxMmapThreshold = 32 << 20;  // glibc's upper limit on 64-bit
  mallopt(M_MMAP_THRESHOLD, kMaxMmapThreshold);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
}

void make_current_device(const std::string& device) {
  const torch::Device d(device);
  if (d.is_cuda()) c10::impl::getDeviceGuardImpl(c10::DeviceType::CUDA)->setDevice(d);
}

// Whether this LibTorch has its CUDA library: without it, the CUDA hooks are the stubs that throw.
bool libtorch_has_cuda() {
  try {
    at::detail::getCUDAHooks().versionCUDART();
    return true;
  } catch (const std::exception&) {
    return false;
  }
}

std::string select_device(const std::string& kind, int local_rank, bool share_gpus) {
  if (kind == "cpu") return "cpu";
  if (kind != "cuda") throw ClusterError("cluster.device: unknown device '" + kind + "' (expected cpu or cuda)");
  if (!torch::cuda::is_available()) {
    if (!libtorch_has_cuda())
      throw ClusterError("cluster.device: cuda was asked for, but this LibTorch build has no CUDA (a CPU-only "
                         "LibTorch such as Debian's); use cluster.device: cpu or build against a CUDA LibTorch");
    const char* visible = std::getenv("CUDA_VISIBLE_DEVICES");
    throw ClusterError("cluster.device: cuda was asked for, but no GPU is visible to this rank (CUDA_VISIBLE_DEVICES=" +
                       std::string(visible ? visible : "unset") + "); use cluster.device: cpu");
  }
  return "cuda:" + std::to_string(gpu_index_for_rank(local_rank, static_cast<int>(torch::cuda::device_count()),
                                                      share_gpus));
}

int gpu_index_for_rank(int local_rank, int visible_gpus, bool share_gpus) {
  if (visible_gpus < 1) throw ClusterError("cluster.device: cuda was asked for, but no GPU is visible to this rank");
  if (share_gpus) return local_rank % visible_gpus;
  if (visible_gpus == 1) return 0;
  if (local_rank >= visible_gpus)
    throw ClusterError("cluster.device: local rank " + std::to_string(local_rank) + " needs cuda:" +
                       std::to_string(local_rank) + " but this rank sees " + std::to_string(visible_gpus) +
                       " GPU(s); start one rank per GPU (or give each rank one GPU: Slurm --gpus-per-task=1, "
                       "or cluster.backend: mpi to share GPUs)");
  return local_rank;
}

World::World(int* argc, char*** argv) {
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (!initialized) {
    // Open MPI's non-blocking all-reduce (libnbc) picks a binomial tree by default: 3.3 ms for the
    // 7 MiB of DCGAN-28 gradients on 2 ranks here, against 1.0 ms with the ring algorithm (also
    // faster than the blocking MPI_Allreduce, 1.2 ms). A value the user set wins.
    setenv("OMPI_MCA_coll_libnbc_iallreduce_algorithm", "1", /*overwrite=*/0);
    // The loader thread never calls MPI; the MPI backend's progress thread (cluster/mpi_progress.h)
    // does, holding the same lock as every other MPI call of cluster/: one thread in MPI at a time.
    int provided = 0;
    MPI_CHECK(MPI_Init_thread(argc, argv, MPI_THREAD_SERIALIZED, &provided));
    owns_mpi_ = true;
    if (provided < MPI_THREAD_SERIALIZED) {
      MPI_Finalize();
      throw ClusterError("this MPI library provides thread level " + std::to_string(provided) +
                         "; distgan needs MPI_THREAD_SERIALIZED (its loader runs in a second thread)");
    }
  }
  MPI_CHECK(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN));
  MPI_CHECK(MPI_Comm_rank(MPI_COMM_WORLD, &info_.rank));
  MPI_CHECK(MPI_Comm_size(MPI_COMM_WORLD, &info_.size));
  MPI_Comm local;
  MPI_CHECK(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, info_.rank, MPI_INFO_NULL, &local));
  MPI_CHECK(MPI_Comm_rank(local, &info_.local_rank));
  MPI_CHECK(MPI_Comm_size(local, &info_.local_size));
  MPI_Comm_free(&local);
  char host[256] = {0};
  gethostname(host, sizeof(host) - 1);
  info_.host = host;
  info_.affinity_cores = affinity_core_count();
}

World::~World() {
  if (owns_mpi_) {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (!finalized) MPI_Finalize();
  }
}

void World::abort(int code, const std::string& message) const {
  std::fprintf(stderr, "[rank %d on %s] error: %s\n", info_.rank, info_.host.c_str(), message.c_str());
  std::fflush(stderr);
  MPI_Abort(MPI_COMM_WORLD, code);
  std::_Exit(code);
}

}  // namespace distgan::cluster
