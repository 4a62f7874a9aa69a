// The NCCL backend's parts that run without a GPU: waiting on a non-blocking communicator under the
// deadline, its error text, the tensor checks, and the NCCL version and copies loaded at run time.
#include <gtest/gtest.h>

#ifdef DISTGAN_HAVE_NCCL

#include "cluster/nccl_support.h"
#include "tests/test_util.h"

namespace distgan {
namespace {

using cluster::ClusterError;
using testing::error_message;

cluster::CollectiveContext context(double timeout_s = 5) { return {"nccl", 1, "step 120", timeout_s, true}; }

TEST(NcclVersion, TextAndWhichRuntimeVersionsAreRefused) {
  EXPECT_EQ(cluster::nccl_version_text(22809), "2.28.9");
  EXPECT_EQ(cluster::nccl_version_text(2804), "2.8.4");  // the numbering before 2.9
  EXPECT_EQ(cluster::nccl_version_problem(22809, 22809), "");
  EXPECT_EQ(cluster::nccl_version_problem(22105, 22809), "");  // older minor: same ABI, all we call is there
  EXPECT_EQ(cluster::nccl_version_problem(22903, 22809), "");
  EXPECT_EQ(cluster::nccl_version_problem(30001, 22809),
            "NCCL 3.0.1 is loaded but distgan was compiled against NCCL 2.28.9, another major version (another ABI)");
  EXPECT_NE(cluster::nccl_version_problem(2804, 22809).find("NCCL 2.8.4 is loaded"), std::string::npos);
  EXPECT_EQ(cluster::nccl_version_problem(21305, 22809),
            "NCCL 2.13.5 is loaded but distgan needs 2.14.0 or newer (non-blocking communicators)");
}

TEST(NcclVersion, ThisProcessLoadsOneNcclOfTheCompiledMajorVersion) {
  const std::vector<std::string> copies = cluster::loaded_libraries("libnccl.so");
  ASSERT_EQ(copies.size(), 1u);  // the unit tests link the backend
  EXPECT_NE(copies[0].find("libnccl.so"), std::string::npos) << copies[0];
  EXPECT_EQ(cluster::loaded_nccl_version() / 10000, NCCL_VERSION_CODE / 10000);
  EXPECT_NO_THROW(cluster::check_loaded_nccl());
  EXPECT_EQ(cluster::loaded_libraries("libc.so").size(), 1u);
  EXPECT_TRUE(cluster::loaded_libraries("libno-such-library").empty());
}

// NCCL's plugins (libnccl-net.so and the like, loaded by NCCL itself) are not a second NCCL.
TEST(NcclVersion, OnlyTheLibraryItselfCountsAsACopy) {
  EXPECT_TRUE(cluster::is_library_file("libnccl.so", "libnccl.so"));
  EXPECT_TRUE(cluster::is_library_file("libnccl.so.2", "libnccl.so"));
  EXPECT_TRUE(cluster::is_library_file("libnccl.so.2.28.9", "libnccl.so"));
  EXPECT_FALSE(cluster::is_library_file("libnccl-net.so", "libnccl.so"));
  EXPECT_FALSE(cluster::is_library_file("libnccl-tuner-example.so", "libnccl.so"));
  EXPECT_FALSE(cluster::is_library_file("libnccl.sox", "libnccl.so"));
}

TEST(NcclVersion, ABlockingCommunicatorFromTheEnvironmentIsWarnedAbout) {
  EXPECT_EQ(cluster::nccl_environment_warning(nullptr), "");
  EXPECT_EQ(cluster::nccl_environment_warning("0"), "");
  EXPECT_NE(cluster::nccl_environment_warning("1").find("NCCL_COMM_BLOCKING=1 makes NCCL's calls block"),
            std::string::npos);
}

TEST(NcclErrors, NameTheRankStepCollectiveNumberAndNcclsOwnText) {
  const torch::Tensor t = torch::zeros({1024});
  const std::string what = cluster::numbered_collective("allreduce", 42, t);
  EXPECT_EQ(what, "allreduce #42" + cluster::describe_collective("", t));
  EXPECT_EQ(cluster::nccl_failure_message(context(), what, "failed: unhandled system error", "peer 0 closed"),
            "nccl backend: rank 1, step 120: " + what + " failed: unhandled system error (NCCL: peer 0 closed)");
  cluster::CollectiveContext no_label = context();
  no_label.label.clear();
  EXPECT_EQ(cluster::nccl_failure_message(no_label, "ncclCommInitRank", "failed: x", ""),
            "nccl backend: rank 1: ncclCommInitRank failed: x");
}

TEST(NcclNonBlocking, InProgressIsPolledUntilDone) {
  int polls = 0;
  cluster::wait_until_not_in_progress([&] { return ++polls < 4 ? ncclInProgress : ncclSuccess; }, "ncclCommInitRank",
                                      context(), [](ncclResult_t) { FAIL() << "no failure expected"; },
                                      [] { FAIL() << "no timeout expected"; });
  EXPECT_EQ(polls, 4);
}

TEST(NcclNonBlocking, AnErrorStateReachesTheFailureHandler) {
  ncclResult_t seen = ncclSuccess;
  int polls = 0;
  const std::string message = error_message<ClusterError>([&] {
    cluster::wait_until_not_in_progress([&] { return ++polls < 2 ? ncclInProgress : ncclRemoteError; }, "allreduce #7",
                                        context(),
                                        [&](ncclResult_t result) {
                                          seen = result;
                                          throw ClusterError("aborted: " + std::string(ncclGetErrorString(result)));
                                        },
                                        [] {});
  });
  EXPECT_EQ(seen, ncclRemoteError);
  EXPECT_EQ(message, std::string("aborted: ") + ncclGetErrorString(ncclRemoteError));
}

TEST(NcclNonBlocking, AStuckCallAbortsAndGivesTheWatchdogError) {
  int aborts = 0;
  const std::string message = error_message<ClusterError>([&] {
    cluster::wait_until_not_in_progress([] { return ncclInProgress; }, "ncclCommInitRank (rank 1 of 2, cuda:0)",
                                        context(0.05), [](ncclResult_t) {}, [&] { ++aborts; });
  });
  EXPECT_EQ(aborts, 1);
  EXPECT_NE(message.find("collective watchdog: rank 1, step 120: ncclCommInitRank (rank 1 of 2, cuda:0) did not "
                         "complete after"),
            std::string::npos)
      << message;
}

TEST(NcclTensorChecks, OnlyThisRanksGpuOrTheCpuAndNcclsDtypes) {
  EXPECT_EQ(cluster::checked_nccl_type(torch::zeros({4}), 0, context(), "allreduce"), ncclFloat32);
  EXPECT_EQ(cluster::checked_nccl_type(torch::zeros({4}, torch::kBFloat16), 0, context(), "allreduce"), ncclBfloat16);
  const std::string meta = error_message<ClusterError>(
      [] { cluster::checked_nccl_type(torch::empty({4}, torch::Device("meta")), 2, context(), "broadcast"); });
  EXPECT_EQ(meta, "nccl backend: rank 1: broadcast of a tensor on meta: expected cuda:2 (this rank's GPU) or cpu");
  EXPECT_NE(error_message<ClusterError>([] {
              cluster::checked_nccl_type(torch::zeros({4}, torch::kBool), 0, context(), "allreduce");
            }).find("allreduce of a Bool tensor is not supported"),
            std::string::npos);
  EXPECT_NE(error_message<ClusterError>([] {
              cluster::checked_nccl_type(torch::zeros({4, 4}).t(), 0, context(), "allgather");
            }).find("allgather needs a contiguous tensor"),
            std::string::npos);
}

}  // namespace
}  // namespace distgan

#endif  // DISTGAN_HAVE_NCCL
