// Backend and device selection, and the error paths that need no GPU.
#include <gtest/gtest.h>

#include "cluster/communicator.h"
#include "cluster/mpi_check.h"
#include "cluster/world.h"
#include "tests/test_util.h"
#include "trainer/config/run_options.h"

namespace distgan {
namespace {

using testing::error_message;

cluster::CommunicatorOptions options(const std::string& backend, const std::string& device) {
  cluster::CommunicatorOptions o;
  o.backend = backend;
  o.device = device;
  return o;
}

TEST(BackendChoice, AutoIsMpiOnCpuAndNcclOnCudaWhenCompiledIn) {
  EXPECT_EQ(cluster::choose_backend(options("auto", "cpu")), "mpi");
  EXPECT_EQ(cluster::choose_backend(options("mpi", "cpu")), "mpi");
  EXPECT_EQ(cluster::choose_backend(options("mpi", "cuda")), "mpi");  // staged through host memory
  EXPECT_EQ(cluster::choose_backend(options("auto", "cuda")), cluster::nccl_compiled_in() ? "nccl" : "mpi");
}

TEST(BackendChoice, NcclForCpuTensorsOrWithoutNcclAndUnknownNamesAreRefused) {
  const std::string cpu = error_message<cluster::ClusterError>([] { cluster::choose_backend(options("nccl", "cpu")); });
  if (cluster::nccl_compiled_in()) {
    EXPECT_NE(cpu.find("nccl moves GPU tensors; with cluster.device: cpu use cluster.backend: mpi"), std::string::npos)
        << cpu;
    EXPECT_EQ(cluster::choose_backend(options("nccl", "cuda")), "nccl");
  } else {
    EXPECT_NE(cpu.find("this build has no NCCL backend"), std::string::npos) << cpu;
  }
  EXPECT_NE(error_message<cluster::ClusterError>([] { cluster::choose_backend(options("gloo", "cpu")); })
                .find("unknown backend 'gloo' (expected auto, mpi or nccl)"),
            std::string::npos);
}

TEST(DeviceChoice, CudaOnACpuOnlyLibTorchSaysSo) {
  EXPECT_EQ(cluster::select_device("cpu", 3), "cpu");
  EXPECT_NE(error_message<cluster::ClusterError>([] { cluster::select_device("tpu", 0); })
                .find("unknown device 'tpu' (expected cpu or cuda)"),
            std::string::npos);
  if (cluster::libtorch_has_cuda()) GTEST_SKIP() << "this LibTorch has CUDA";
  EXPECT_NE(error_message<cluster::ClusterError>([] { cluster::select_device("cuda", 0); })
                .find("this LibTorch build has no CUDA"),
            std::string::npos);
}

TEST(DeviceChoice, Bf16AutocastRunsOnTheCpuToo) {
  Config config;
  config.training.amp = "bf16";
  EXPECT_EQ(rank_device(config, 0), "cpu");
  config.training.amp = "none";
  EXPECT_EQ(rank_device(config, 0), "cpu");
  const auto o = communicator_options(config, 2);
  EXPECT_EQ(o.device_index, 2);
  EXPECT_EQ(o.timeout_s, 600.0);
}

TEST(DeviceChoice, AGpuPerLocalRankOrTheOneGpuATaskSees) {
  EXPECT_EQ(cluster::gpu_index_for_rank(0, 4, false), 0);
  EXPECT_EQ(cluster::gpu_index_for_rank(3, 4, false), 3);
  // Slurm --gpus-per-task=1 / --gpu-bind: local rank 3 sees one GPU, its own, as cuda:0.
  EXPECT_EQ(cluster::gpu_index_for_rank(3, 1, false), 0);
  EXPECT_EQ(cluster::gpu_index_for_rank(5, 4, /*share_gpus=*/true), 1);
  const std::string few = error_message<cluster::ClusterError>([] { cluster::gpu_index_for_rank(2, 2, false); });
  EXPECT_NE(few.find("local rank 2 needs cuda:2 but this rank sees 2 GPU(s); start one rank per GPU"),
            std::string::npos)
      << few;
  EXPECT_NE(error_message<cluster::ClusterError>([] { cluster::gpu_index_for_rank(0, 0, false); }).find("no GPU is visible"),
            std::string::npos);
}

TEST(DeviceChoice, OnThisMachinesGpus) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no GPU";
  const int gpus = static_cast<int>(torch::cuda::device_count());
  EXPECT_EQ(cluster::select_device("cuda", gpus, /*share_gpus=*/true), "cuda:0");
  EXPECT_EQ(cluster::select_device("cuda", 0), "cuda:0");
  if (gpus > 1) {
    EXPECT_NE(error_message<cluster::ClusterError>([&] { cluster::select_device("cuda", gpus); })
                  .find("start one rank per GPU"),
              std::string::npos);
  }
}

}  // namespace
}  // namespace distgan
