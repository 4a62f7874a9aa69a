#include "cluster/preemption.h"

#include <atomic>
#include <csignal>

namespace distgan::cluster {

namespace {

std::atomic<int> received{0};
static_assert(std::atomic<int>::is_always_lock_free, "the signal handler needs a lock-free atomic");

extern "C" void record_signal(int signal) {
  int none = 0;
  received.compare_exchange_strong(none, signal);  // keep the first
}

}  // namespace

void install_preemption_handlers() {
  struct sigaction action {};
  action.sa_handler = record_signal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;  // blocking calls in other threads (HDF5 reads) carry on
  sigaction(SIGTERM, &action, nullptr);
  sigaction(SIGUSR1, &action, nullptr);
}

int preemption_signal() { return received.load(); }

void clear_preemption_signal() { received.store(0); }

}  // namespace distgan::cluster
