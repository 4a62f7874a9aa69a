// GPU paths, run on 2 ranks by ctest; each test skips (with the reason) where this LibTorch has no
// CUDA or no GPU is visible. With one GPU the two ranks share it: the MPI backend stages through
// host memory; NCCL gets a one-rank communicator per rank (NCCL refuses two ranks on one GPU).
#include <gtest/gtest.h>
#include <mpi.h>

#include "cluster/mpi_communicator.h"
#include "cluster/nccl_communicator.h"
#include "cluster/world.h"
#include "tests/test_models.h"
#include "trainer/step/adversarial_step.h"

#ifdef DISTGAN_TORCH_CUDA
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#endif

namespace distgan {
namespace {

#define SKIP_WITHOUT_GPU()          \
  if (!torch::cuda::is_available()) \
  GTEST_SKIP() << (cluster::libtorch_has_cuda() ? "no GPU visible" : "this LibTorch has no CUDA")

using testing::small_dcgan;

std::vector<torch::Tensor> parameters(GanModels& m) {
  auto p = m.generator->parameters();
  for (auto& d : m.discriminator->parameters()) p.push_back(d);
  return p;
}

// Three D+G steps of `step` on fixed data; returns the losses.
std::vector<double> train(AdversarialStep& step, const torch::Device& device) {
  torch::manual_seed(3);
  std::vector<double> losses;
  for (int i = 0; i < 3; ++i) {
    const torch::Tensor real = (torch::rand({8, 1, 28, 28}) * 2 - 1).to(device);
    const torch::Tensor z1 = torch::randn({8, 8}).to(device), z2 = torch::randn({8, 8}).to(device);
    losses.push_back(step.d_step(real, step.generate_for_step(z1, false)).loss_d);
    losses.push_back(step.g_step(step.generate_for_step(z2, true)).loss_g);
  }
  return losses;
}

GanModels models_on(const torch::Device& device) {
  torch::manual_seed(1);
  GanModels m = build_models(small_dcgan());
  m.generator->to(device);
  m.discriminator->to(device);
  return m;
}

// CPU reference and GPU run of the same steps; losses and parameters agree within float tolerance
// (cuDNN and the CPU kernels sum in different orders). TF32 convolutions, on by default in LibTorch,
// are switched off: their 10-bit mantissa is not what this test is about.
void expect_close_to_cpu(cluster::Communicator& comm, const torch::Device& device) {
  at::globalContext().setAllowTF32CuDNN(false);
  cluster::MpiCommunicator self(MPI_COMM_SELF);
  AdversarialStep cpu(models_on(torch::kCPU), self, {});
  AdversarialStep gpu(models_on(device), comm, {});
  gpu.broadcast_from_root();
  const auto a = train(cpu, torch::kCPU), b = train(gpu, device);
  for (size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(a[i], b[i], 5e-3 * std::max(1.0, std::abs(a[i]))) << "loss " << i;
  auto pa = parameters(cpu.models()), pb = parameters(gpu.models());
  for (size_t i = 0; i < pa.size(); ++i) {
    const double rel = ((pa[i] - pb[i].cpu()).norm() / pa[i].norm().clamp_min(1e-12)).item<double>();
    EXPECT_LT(rel, 1e-2) << "parameter " << i;
  }
}

TEST(Gpu, MpiBackendStagesGpuTensorsAndTwoRanksShareOneGpu) {
  SKIP_WITHOUT_GPU();
  cluster::MpiCommunicator world;
  torch::Tensor t = torch::full({5}, static_cast<double>(world.rank() + 1), torch::kFloat32).to(torch::kCUDA);
  world.allreduce(t, {cluster::ReduceOp::kSum})->wait();
  EXPECT_TRUE(torch::equal(t.cpu(), torch::full({5}, 3.0f)));
  torch::Tensor b = torch::full({3}, static_cast<double>(world.rank()), torch::kFloat32).to(torch::kCUDA);
  world.broadcast(b, 1);
  EXPECT_TRUE(torch::equal(b.cpu(), torch::full({3}, 1.0f)));
}

TEST(Gpu, MpiBackendTrainingOnOneSharedGpuMatchesCpu) {
  SKIP_WITHOUT_GPU();
  cluster::MpiCommunicator world;
  // Both ranks hold the same data here, so the average equals one rank's gradient: the CPU reference.
  expect_close_to_cpu(world, torch::Device(torch::kCUDA, 0));
}

#ifdef DISTGAN_HAVE_NCCL
// Where this rank's NCCL tests run. One GPU per rank: a communicator across the world, rank r on
// cuda:r. Fewer GPUs than ranks: a one-rank communicator per rank on cuda:0 (NCCL refuses two ranks
// on one GPU).
struct NcclPlace {
  MPI_Comm base = MPI_COMM_SELF;
  int device = 0;
};

NcclPlace nccl_place() {
  int rank = 0, size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  if (static_cast<int>(torch::cuda::device_count()) < size) return {};
  return {MPI_COMM_WORLD, rank};
}

TEST(Gpu, NcclAllreduceAndBroadcastGiveKnownValues) {
  SKIP_WITHOUT_GPU();
  const NcclPlace place = nccl_place();
  cluster::NcclCommunicator nccl(place.base, place.device, 30);
  const int n = nccl.size(), r = nccl.rank();
  const torch::Device dev(torch::kCUDA, place.device);
  torch::Tensor t = torch::arange(4, torch::kFloat32).add(r).to(dev);
  nccl.allreduce(t, {cluster::ReduceOp::kSum})->wait();
  const torch::Tensor want = torch::arange(4, torch::kFloat32) * n + n * (n - 1) / 2.0;
  EXPECT_TRUE(torch::allclose(t.cpu(), want)) << t;
  torch::Tensor avg = torch::full({2}, static_cast<double>(r), torch::kFloat64).to(dev);
  nccl.allreduce(avg, {cluster::ReduceOp::kAverage})->wait();
  EXPECT_NEAR(avg[0].item<double>(), (n - 1) / 2.0, 1e-12);
  torch::Tensor mx = torch::tensor({static_cast<int64_t>(r)});  // a CPU tensor: staged
  nccl.allreduce(mx, {cluster::ReduceOp::kMax})->wait();
  EXPECT_EQ(mx.item<int64_t>(), n - 1);
  torch::Tensor b = torch::full({3}, static_cast<double>(r), torch::kFloat32).to(dev);
  nccl.broadcast(b, n - 1);
  EXPECT_TRUE(torch::equal(b.cpu(), torch::full({3}, static_cast<float>(n - 1))));
  nccl.barrier();
}

#ifdef DISTGAN_TORCH_CUDA
// The collectives follow LibTorch's current stream, not the legacy default one: values written on a
// side stream just before an all-reduce are the ones reduced, and the result is ready on that
// stream. Also allgather, the coalesced broadcast, and a tensor on another GPU refused by name.
TEST(Gpu, NcclFollowsTheCurrentStreamAndChecksDevices) {
  SKIP_WITHOUT_GPU();
  const int gpus = static_cast<int>(torch::cuda::device_count());
  const int device = nccl_place().device;
  cluster::NcclCommunicator nccl(nccl_place().base, device, 30);
  const int n = nccl.size(), r = nccl.rank();
  const torch::Device dev(torch::kCUDA, device);
  c10::cuda::CUDAStream side = c10::cuda::getStreamFromPool(false, static_cast<c10::DeviceIndex>(device));
  {
    c10::cuda::CUDAStreamGuard on_side(side);
    torch::Tensor t = torch::zeros({1 << 20}, torch::TensorOptions().device(dev));
    t.fill_(static_cast<double>(r + 1));  // queued on the side stream, maybe not yet run
    nccl.allreduce(t, {cluster::ReduceOp::kSum})->wait();
    EXPECT_EQ(t.min().item<double>(), n * (n + 1) / 2.0);
    EXPECT_EQ(t.max().item<double>(), n * (n + 1) / 2.0);
    const torch::Tensor all =
        nccl.allgather(torch::full({2}, static_cast<double>(r), torch::TensorOptions().device(dev)));
    EXPECT_TRUE(torch::equal(all.cpu().select(1, 0), torch::arange(n, torch::kFloat32)));
  }
  std::vector<torch::Tensor> state{
      torch::full({3}, static_cast<double>(r), torch::TensorOptions().device(dev)),
      torch::full({2}, static_cast<int64_t>(r), torch::TensorOptions().device(dev).dtype(torch::kInt64))};
  nccl.broadcast_coalesced(state, n - 1);
  EXPECT_TRUE(torch::equal(state[0].cpu(), torch::full({3}, static_cast<float>(n - 1))));
  EXPECT_TRUE(torch::equal(state[1].cpu(), torch::full({2}, static_cast<int64_t>(n - 1))));
  if (gpus > 1) {
    torch::Tensor elsewhere = torch::zeros({4}, torch::TensorOptions().device(torch::kCUDA, (device + 1) % gpus));
    try {
      nccl.allreduce(elsewhere, {cluster::ReduceOp::kSum})->wait();
      ADD_FAILURE() << "a tensor on another GPU was accepted";
    } catch (const cluster::ClusterError& e) {
      EXPECT_NE(std::string(e.what()).find("expected cuda:" + std::to_string(device)), std::string::npos) << e.what();
    }
  }
}
#endif

TEST(Gpu, NcclTrainingStepMatchesCpu) {
  SKIP_WITHOUT_GPU();
  cluster::NcclCommunicator nccl(MPI_COMM_SELF, 0, 30);
  expect_close_to_cpu(nccl, torch::Device(torch::kCUDA, 0));
}
#endif

}  // namespace
}  // namespace distgan
