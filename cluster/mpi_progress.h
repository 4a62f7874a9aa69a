// Background progress for the MPI backend's non-blocking collectives.
//
// Open MPI moves a non-blocking collective's data only while the process is inside an MPI call. A
// gradient all-reduce started before the compute it should hide behind therefore made no headway
// until the step waited for it: on the 1 Gbit/s test link a 3.6 MB all-reduce started before 20 ms
// of compute still took 30 ms after it, as if started there; with this thread testing it every
// 200-500 us, 14 ms (the rest of the transfer). PyTorch's gloo and NCCL backends have threads of
// their own for this; MPI leaves it to the caller.
//
// MpiProgress is that thread. It tests the requests it tracks every `interval` until each is
// complete, and sleeps on a condition variable while it tracks none. distgan runs MPI at
// MPI_THREAD_SERIALIZED (one thread in MPI at a time), so every MPI call of every MpiCommunicator
// holds mpi_call_mutex(), one lock for the process, as this thread does.
#pragma once

#include <mpi.h>

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "cluster/collective.h"

namespace distgan::cluster {

// The lock every MPI call made through the cluster/ code holds.
std::mutex& mpi_call_mutex();

// DISTGAN_MPI_PROGRESS_US: microseconds between the progress thread's tests (default 50;
// 0 turns the thread off). Throws ClusterError for a value that is not a whole number 0-100000.
std::chrono::microseconds mpi_progress_interval_from_env();

// One tracked request. Its fields are guarded by mpi_call_mutex().
struct MpiRequest {
  MPI_Request handle = MPI_REQUEST_NULL;
  bool done = false;        // completed (by the owner's test or by the progress thread)
  int error = MPI_SUCCESS;  // what MPI_Test returned on the progress thread, for the owner to throw
};

// Waits for a non-blocking MPI operation's `request` under the deadline (poll_until_done, testing
// it under mpi_call_mutex()); with the watchdog off, a plain blocking MPI_Wait (only to measure what
// the watchdog costs). For requests no MpiProgress tracks (start-up, blocking collectives).
void wait_for_mpi_request(MpiRequest& request, const std::string& what, const CollectiveContext& context);

class MpiProgress {
 public:
  // interval 0: no thread; requests then move only while their owner tests or waits.
  explicit MpiProgress(std::chrono::microseconds interval);
  ~MpiProgress();  // stops and joins the thread; requests still tracked are left alone
  MpiProgress(const MpiProgress&) = delete;
  MpiProgress& operator=(const MpiProgress&) = delete;

  // Hands `request` (just started, with mpi_call_mutex() held by the caller) to the thread.
  std::shared_ptr<MpiRequest> track(MPI_Request request);
  // Whether it is complete, testing it if it is not known to be; throws ClusterError naming
  // `what` on an MPI error. Takes mpi_call_mutex().
  static bool test(MpiRequest& request, const std::string& what);
  // wait_for_mpi_request(); on a timeout the thread stops testing the request (the job is being
  // abandoned).
  void wait(MpiRequest& request, const std::string& what, const CollectiveContext& context);
  // The thread stops testing `request` (its owner gives it up unfinished).
  void forget(const MpiRequest& request);
  // Requests tracked and not yet complete (for tests: it changes without any call on this thread).
  size_t in_flight();

 private:
  void run();

  std::chrono::microseconds interval_;
  std::condition_variable wake_;  // with mpi_call_mutex()
  std::vector<std::shared_ptr<MpiRequest>> tracked_;
  bool stop_ = false;
  std::thread thread_;  // started on the first track()
};

}  // namespace distgan::cluster
