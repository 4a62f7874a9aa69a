// World: this process's place in the MPI job. Starts MPI (asking for the thread level the loader
// and communicator need), finds rank and size, the local rank and local size from a shared-memory
// split (so it works under mpirun, srun or any MPI launcher, without launcher variables), the host
// name, and how many cores the rank's affinity mask allows (mpirun --bind-to core gives one).
#pragma once

#include <mpi.h>

#include <string>
#include <vector>

namespace distgan::cluster {

struct WorldInfo {
  int rank = 0;
  int size = 1;
  int local_rank = 0;
  int local_size = 1;
  int affinity_cores = 1;  // cores this process may run on
  std::string host;
};

class World {
 public:
  // Initialises MPI unless it already is (then only reads the info). Finalises in the destructor
  // only if it initialised.
  World(int* argc, char*** argv);
  World(const World&) = delete;
  World& operator=(const World&) = delete;
  ~World();

  const WorldInfo& info() const { return info_; }
  int rank() const { return info_.rank; }
  int size() const { return info_.size; }
  MPI_Comm comm() const { return MPI_COMM_WORLD; }

  // Prints `message` prefixed with the rank and host on stderr and aborts every rank of the job
  // with `code`. Used when one rank fails alone, so the others never wait forever.
  [[noreturn]] void abort(int code, const std::string& message) const;

 private:
  WorldInfo info_;
  bool owns_mpi_ = false;
};

// Cores in this process's affinity mask (sched_getaffinity); at least 1.
int affinity_core_count();

// Sets LibTorch's compute threads: `requested` if > 0, else the cores in the affinity mask (so
// `mpirun --bind-to core` gives one thread per rank, and ranks do not fight over cores).
// Returns the number set.
int configure_compute_threads(int requested);

// Keeps freed host memory in the process instead of returning it to the OS after every free.
// glibc serves large blocks (a step's activations, im2col buffers) with mmap and unmaps them when
// freed, so every step page-faults them in again: measured +6% DCGAN-28 throughput without that.
// A training process's working set is the same every step, so holding it costs nothing extra.
void keep_freed_host_memory();

// Makes `device` ("cpu" or "cuda:N") the calling thread's current CUDA device, so that the CUDA
// context, pinned host memory and raw CUDA calls of this thread belong to this rank's GPU, not GPU 0.
void make_current_device(const std::string& device);

// Whether this LibTorch build has CUDA (Debian's has not). A GPU may still be absent.
bool libtorch_has_cuda();

// Which of the `visible_gpus` GPUs this rank sees local rank `local_rank` uses:
//   - one visible GPU: cuda:0, whatever the local rank. Each task then sees only its own GPU (Slurm
//     --gpus-per-task or --gpu-bind, a cgroup, CUDA_VISIBLE_DEVICES set per rank by a wrapper);
//   - several: cuda:<local rank>, each rank seeing all the node's GPUs (mpirun, srun's default);
//   - `share_gpus` (the MPI backend, for tests): cuda:<local rank mod GPUs>.
// Throws ClusterError when several are visible but fewer than the local ranks need.
int gpu_index_for_rank(int local_rank, int visible_gpus, bool share_gpus);

// The device for this rank: "cpu", or "cuda:<gpu_index_for_rank>" for "cuda". Throws ClusterError
// when CUDA is asked for and this LibTorch has none or no GPU is visible, or as gpu_index_for_rank.
std::string select_device(const std::string& kind, int local_rank, bool share_gpus = false);

}  // namespace distgan::cluster
