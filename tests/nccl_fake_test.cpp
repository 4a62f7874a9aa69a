// The NCCL backend's start-up and shutdown on a machine without a GPU, against a scripted NCCL
// (tests/fake_nccl): the non-blocking init is polled until ready, a stuck init ends in the watchdog
// error and an abort (never a hang), a failed init names NCCL's own last error, a clean shutdown
// finalizes before it destroys, and a stuck finalize is aborted instead of blocking.
#include <gtest/gtest.h>
#include <mpi.h>

#include <chrono>
#include <cstdlib>

#include "cluster/nccl_communicator.h"
#include "tests/fake_nccl/fake_nccl.h"
#include "tests/test_util.h"

namespace distgan {
namespace {

using Clock = std::chrono::steady_clock;
using testing::error_message;

double seconds_taken(const std::function<void()>& f) {
  const auto t0 = Clock::now();
  f();
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

TEST(NcclFake, NonBlockingInitIsPolledUntilReadyAndShutdownFinalizesThenDestroys) {
  fake_nccl::Script script;
  script.init_polls = 5;
  script.finalize_polls = 3;
  fake_nccl::reset(script);
  {
    cluster::NcclCommunicator comm(MPI_COMM_SELF, 0, 10);
    EXPECT_EQ(comm.size(), 1);
  }
  const auto& r = fake_nccl::record();
  EXPECT_EQ(r.count("init(blocking=0)"), 1);
  EXPECT_GE(r.count("poll"), 5 + 3);
  ASSERT_GE(r.first("finalize"), 0);
  EXPECT_LT(r.first("finalize"), r.first("destroy"));
  EXPECT_EQ(r.count("destroy"), 1);
  EXPECT_EQ(r.count("abort"), 0);
}

TEST(NcclFake, AStuckInitEndsInTheWatchdogErrorAndAnAbort) {
  fake_nccl::Script script;
  script.init_hangs = true;  // a peer that never joins
  fake_nccl::reset(script);
  std::string message;
  EXPECT_LT(seconds_taken([&] {
              message = error_message<cluster::ClusterError>(
                  [] { cluster::NcclCommunicator comm(MPI_COMM_SELF, 0, /*timeout_s=*/0.3); });
            }),
            5.0);
  EXPECT_NE(message.find("collective watchdog: rank 0: ncclCommInitRank (rank 0 of 1, cuda:0) did not complete "
                         "after"),
            std::string::npos)
      << message;
  const auto& r = fake_nccl::record();
  EXPECT_EQ(r.count("abort"), 1);
  EXPECT_EQ(r.count("destroy"), 0);
  EXPECT_EQ(r.count("finalize"), 0);
}

TEST(NcclFake, AFailedInitNamesNcclsLastError) {
  fake_nccl::Script script;
  script.init_returns = ncclSystemError;
  fake_nccl::reset(script);
  const std::string message =
      error_message<cluster::ClusterError>([] { cluster::NcclCommunicator comm(MPI_COMM_SELF, 0, 10); });
  EXPECT_EQ(message,
            "nccl backend: rank 0: ncclCommInitRank (rank 0 of 1, cuda:0) failed: unhandled system error "
            "(NCCL: fake: connection to rank 1 closed)");
  EXPECT_EQ(fake_nccl::record().count("destroy"), 0);
}

TEST(NcclFake, AStuckFinalizeIsAbortedInsteadOfBlocking) {
  fake_nccl::Script script;
  script.finalize_hangs = true;  // a peer gone before the end
  fake_nccl::reset(script);
  EXPECT_LT(seconds_taken([] { cluster::NcclCommunicator comm(MPI_COMM_SELF, 0, /*timeout_s=*/0.3); }), 5.0);
  const auto& r = fake_nccl::record();
  EXPECT_EQ(r.count("finalize"), 1);
  EXPECT_EQ(r.count("abort"), 1);
  EXPECT_EQ(r.count("destroy"), 0);
}

TEST(NcclFake, WithTheWatchdogOffTheCommunicatorIsBlockingAndNotPolled) {
  fake_nccl::Script script;
  script.init_returns = ncclSuccess;
  fake_nccl::reset(script);
  { cluster::NcclCommunicator comm(MPI_COMM_SELF, 0, 10, /*watchdog=*/false); }
  const auto& r = fake_nccl::record();
  EXPECT_EQ(r.count("init(blocking=1)"), 1);
  EXPECT_EQ(r.first("poll"), r.first("finalize") + 1);  // the only polls: the finalize's
  EXPECT_EQ(r.count("destroy"), 1);
}

TEST(NcclFake, NcclCommBlockingInTheEnvironmentIsWarnedAbout) {
  fake_nccl::reset({});
  setenv("NCCL_COMM_BLOCKING", "1", 1);
  ::testing::internal::CaptureStderr();
  { cluster::NcclCommunicator comm(MPI_COMM_SELF, 0, 10); }
  const std::string err = ::testing::internal::GetCapturedStderr();
  unsetenv("NCCL_COMM_BLOCKING");
  EXPECT_NE(err.find("distgan: warning: rank 0: NCCL_COMM_BLOCKING=1 makes NCCL's calls block"), std::string::npos)
      << err;
}

}  // namespace
}  // namespace distgan
