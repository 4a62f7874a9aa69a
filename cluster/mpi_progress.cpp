#include "cluster/mpi_progress.h"

#include <algorithm>
#include <cstdlib>

namespace distgan::cluster {

namespace {
// 50 us (the kernel adds its timer slack, about 50 us more): on the 1 Gbit/s test link 11-14% of a
// DCGAN-28 step waited against 17-19% at 250 us, with no cost measured on faster links
// (docs/benchmarks.md).
constexpr int kDefaultProgressMicroseconds = 50;
constexpr int kMaxProgressMicroseconds = 100000;
}  // namespace

std::mutex& mpi_call_mutex() {
  static std::mutex mutex;
  return mutex;
}

std::chrono::microseconds mpi_progress_interval_from_env() {
  const char* value = std::getenv("DISTGAN_MPI_PROGRESS_US");
  if (value == nullptr || *value == '\0') return std::chrono::microseconds(kDefaultProgressMicroseconds);
  char* end = nullptr;
  const long us = std::strtol(value, &end, 10);
  if (*end != '\0' || us < 0 || us > kMaxProgressMicroseconds)
    throw ClusterError(std::string("DISTGAN_MPI_PROGRESS_US: '") + value +
                       "' is not a whole number of microseconds from 0 (no progress thread) to " +
                       std::to_string(kMaxProgressMicroseconds));
  return std::chrono::microseconds(us);
}

MpiProgress::MpiProgress(std::chrono::microseconds interval) : interval_(interval) {}

MpiProgress::~MpiProgress() {
  {
    std::lock_guard<std::mutex> lock(mpi_call_mutex());
    stop_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

std::shared_ptr<MpiRequest> MpiProgress::track(MPI_Request request) {
  auto tracked = std::make_shared<MpiRequest>();
  tracked->handle = request;
  tracked_.erase(
      std::remove_if(tracked_.begin(), tracked_.end(), [](const std::shared_ptr<MpiRequest>& r) { return r->done; }),
      tracked_.end());
  tracked_.push_back(tracked);  // counted by in_flight() with or without the thread
  if (interval_.count() == 0) return tracked;
  if (!thread_.joinable()) thread_ = std::thread([this] { run(); });
  wake_.notify_one();
  return tracked;
}

bool MpiProgress::test(MpiRequest& request, const std::string& what) {
  std::lock_guard<std::mutex> lock(mpi_call_mutex());
  int rc = request.error;
  if (!request.done && rc == MPI_SUCCESS) {
    int flag = 0;
    rc = MPI_Test(&request.handle, &flag, MPI_STATUS_IGNORE);
    request.done = flag != 0;
  }
  if (rc != MPI_SUCCESS) {
    request.done = true;  // never tested again; a later wait() reports the same error
    request.error = rc;
    throw_mpi_error(rc, ("MPI_Test(" + what + ")").c_str(), __FILE__, __LINE__);
  }
  return request.done;
}

void wait_for_mpi_request(MpiRequest& request, const std::string& what, const CollectiveContext& context) {
  if (!context.watchdog) {
    std::lock_guard<std::mutex> lock(mpi_call_mutex());
    const int rc = request.done ? request.error : MPI_Wait(&request.handle, MPI_STATUS_IGNORE);
    request.done = true;
    if (rc != MPI_SUCCESS) throw_mpi_error(rc, ("MPI_Wait(" + what + ")").c_str(), __FILE__, __LINE__);
    return;
  }
  poll_until_done([&] { return MpiProgress::test(request, what); }, what, context);
}

void MpiProgress::wait(MpiRequest& request, const std::string& what, const CollectiveContext& context) {
  try {
    wait_for_mpi_request(request, what, context);
  } catch (...) {
    forget(request);
    throw;
  }
}

void MpiProgress::forget(const MpiRequest& request) {
  std::lock_guard<std::mutex> lock(mpi_call_mutex());
  tracked_.erase(std::remove_if(tracked_.begin(), tracked_.end(),
                                [&](const std::shared_ptr<MpiRequest>& r) { return r.get() == &request; }),
                 tracked_.end());
}

size_t MpiProgress::in_flight() {
  std::lock_guard<std::mutex> lock(mpi_call_mutex());
  return static_cast<size_t>(
      std::count_if(tracked_.begin(), tracked_.end(), [](const std::shared_ptr<MpiRequest>& r) { return !r->done; }));
}

void MpiProgress::run() {
  std::unique_lock<std::mutex> lock(mpi_call_mutex());
  while (!stop_) {
    tracked_.erase(
        std::remove_if(tracked_.begin(), tracked_.end(), [](const std::shared_ptr<MpiRequest>& r) { return r->done; }),
        tracked_.end());
    if (tracked_.empty()) {
      wake_.wait(lock, [this] { return stop_ || !tracked_.empty(); });
      continue;
    }
    // Testing one request runs MPI's whole progress engine, which moves the others too; testing
    // each marks every finished one.
    for (const auto& r : tracked_) {
      int flag = 0;
      r->error = MPI_Test(&r->handle, &flag, MPI_STATUS_IGNORE);
      r->done = flag != 0 || r->error != MPI_SUCCESS;
    }
    lock.unlock();
    std::this_thread::sleep_for(interval_);
    lock.lock();
  }
}

}  // namespace distgan::cluster
