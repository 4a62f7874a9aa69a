// MPI_CHECK: turns a failed MPI call into a ClusterError naming the rank, host, source location
// and MPI's own message.
#pragma once

#include <mpi.h>

#include <stdexcept>
#include <string>

namespace distgan::cluster {

class ClusterError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

[[noreturn]] void throw_mpi_error(int code, const char* call, const char* file, int line);

}  // namespace distgan::cluster

#define MPI_CHECK(call)                                                                   \
  do {                                                                                    \
    const int distgan_mpi_rc_ = (call);                                                   \
    if (distgan_mpi_rc_ != MPI_SUCCESS)                                                   \
      ::distgan::cluster::throw_mpi_error(distgan_mpi_rc_, #call, __FILE__, __LINE__);    \
  } while (0)
