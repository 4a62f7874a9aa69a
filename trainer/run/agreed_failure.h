// A failure that every rank knows about at the same point (rank 0 found it and told the others,
// or all ranks agreed through a collective): each rank exits with exit_code() and the job needs no
// MPI_Abort. Its message is printed once, by the rank where should_print() is true.
#pragma once

#include <functional>
#include <stdexcept>
#include <string>

#include "cluster/communicator.h"

namespace distgan {

class AgreedFailure : public std::runtime_error {
 public:
  AgreedFailure(const std::string& message, int exit_code, bool print)
      : std::runtime_error(message), exit_code_(exit_code), print_(print) {}
  int exit_code() const { return exit_code_; }
  bool should_print() const { return print_; }

 private:
  int exit_code_;
  bool print_;
};

// Runs `work` on rank 0 only and makes its failure every rank's: rank 0's message is broadcast, and
// every rank throws AgreedFailure (exit 2 for a ConfigError: a configuration that does not fit; 1
// otherwise). A collective: every rank calls it.
void on_root_agreed(cluster::Communicator& comm, const std::function<void()>& work);

// Runs `work` on every rank; when it fails on any, every rank throws AgreedFailure with the message
// of the lowest failing rank (prefixed "rank R: " when that is not rank 0), printed by that rank.
// A collective: every rank calls it.
void on_every_rank_agreed(cluster::Communicator& comm, const std::function<void()>& work);

}  // namespace distgan
