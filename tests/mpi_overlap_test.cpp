// Run on 2 ranks by ctest. cluster.overlap: the gradient all-reduces start during backward and give
// the same numbers, bit for bit, as starting them all after backward.
#include <gtest/gtest.h>
#include <mpi.h>

#include <chrono>
#include <thread>

#include "cluster/gradient_buckets.h"
#include "cluster/mpi_communicator.h"
#include "tests/test_models.h"
#include "trainer/step/adversarial_step.h"

namespace distgan {
namespace {

// A 4-layer MLP, the same weights on every rank; 256-byte buckets make 4 buckets of it.
torch::nn::Sequential seeded_mlp() {
  torch::manual_seed(3);
  return torch::nn::Sequential(torch::nn::Linear(5, 32), torch::nn::Tanh(), torch::nn::Linear(32, 32),
                               torch::nn::Tanh(), torch::nn::Linear(32, 32), torch::nn::Tanh(),
                               torch::nn::Linear(32, 1));
}

struct Reduced {
  std::vector<torch::Tensor> grads;
  double mean_loss = 0;
  size_t buckets = 0, started_during_backward = 0;
};

Reduced reduce_one_backward(cluster::Communicator& comm, bool overlap, const torch::Tensor& x) {
  torch::nn::Sequential mlp = seeded_mlp();
  cluster::GradientReducer reducer(mlp->parameters(), comm, 256, overlap);
  Reduced out;
  for (int round = 0; round < 2; ++round) {  // the second round accumulates into the bucket views
    reducer.zero_grad();
    const torch::Tensor loss = mlp->forward(x).pow(2).mean();
    reducer.begin_final_backward(loss);
    loss.backward();
    out.mean_loss = reducer.finish_update().side_value;
  }
  for (auto& p : mlp->parameters()) out.grads.push_back(p.grad().clone());
  out.buckets = reducer.buckets().size();
  out.started_during_backward = reducer.last_started_during_backward();
  return out;
}

TEST(GradientReducer, OverlapStartsEveryBucketDuringBackwardWithTheSameBitsAsAfter) {
  cluster::MpiCommunicator world;
  ASSERT_EQ(world.size(), 2) << "run this test on 2 ranks";
  torch::manual_seed(40 + world.rank());  // each rank its own data
  const torch::Tensor x = torch::randn({16, 5});
  const Reduced overlapped = reduce_one_backward(world, true, x);
  const Reduced after = reduce_one_backward(world, false, x);
  ASSERT_GE(overlapped.buckets, 4u);
  EXPECT_EQ(overlapped.started_during_backward, overlapped.buckets);
  EXPECT_EQ(after.started_during_backward, 0u);
  EXPECT_EQ(overlapped.mean_loss, after.mean_loss);
  for (size_t i = 0; i < overlapped.grads.size(); ++i)
    EXPECT_TRUE(torch::equal(overlapped.grads[i], after.grads[i])) << "parameter " << i;

  // And it is the mean of the ranks' own gradients.
  torch::nn::Sequential mine = seeded_mlp();
  mine->forward(x).pow(2).mean().backward();
  for (size_t i = 0; i < overlapped.grads.size(); ++i) {
    const torch::Tensor all = world.allgather(mine->parameters()[i].grad().contiguous());
    EXPECT_TRUE(torch::allclose(overlapped.grads[i], all.mean(0), 1e-6, 1e-7)) << "parameter " << i;
  }
}

// MPI moves a non-blocking collective only inside MPI calls; the communicator's progress thread
// makes them, so an all-reduce completes while this thread computes or sleeps without any.
TEST(MpiCommunicator, AnAllreduceCompletesWhileTheCallerMakesNoMpiCall) {
  cluster::MpiCommunicator world;
  torch::Tensor t = torch::full({1 << 20}, float(world.rank() + 1));  // 4 MiB: many rounds of the ring
  auto work = world.allreduce(t, {cluster::ReduceOp::kSum});
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (world.allreduces_in_flight() > 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  EXPECT_EQ(world.allreduces_in_flight(), 0u) << "the all-reduce made no progress in 10 s without MPI calls";
  work->wait();
  EXPECT_TRUE(torch::equal(t, torch::full({1 << 20}, 3.0f)));
}

// A parameter no backward reaches (an unused layer): its bucket, and every later one, starts after
// backward; the gradient counts as zero.
TEST(GradientReducer, ABucketWhoseGradientNeverArrivesStartsAfterBackward) {
  cluster::MpiCommunicator world;
  torch::manual_seed(3);
  torch::nn::Linear unused(4, 64), used(4, 64);
  std::vector<torch::Tensor> params = unused->parameters();  // first: the last buckets in backward's order
  for (auto& p : used->parameters()) params.push_back(p);
  cluster::GradientReducer reducer(params, world, 256, true);
  const torch::Tensor loss = used->forward(torch::ones({2, 4}) * (world.rank() + 1)).sum();
  reducer.begin_final_backward(loss);
  loss.backward();
  reducer.finish_update();
  EXPECT_GT(reducer.last_started_during_backward(), 0u);
  EXPECT_LT(reducer.last_started_during_backward(), reducer.buckets().size());
  for (auto& p : unused->parameters()) EXPECT_EQ(p.grad().abs().sum().item<float>(), 0.0f);
  EXPECT_TRUE(torch::allclose(used->bias.grad(), torch::full({64}, 2.0f)));  // mean of 2 rows over ranks
}

std::vector<torch::Tensor> parameters_of(AdversarialStep& s) {
  auto p = s.models().generator->parameters();
  for (auto& d : s.models().discriminator->parameters()) p.push_back(d);
  return p;
}

void expect_equal_parameters(AdversarialStep& a, AdversarialStep& b, const std::string& when) {
  const auto x = parameters_of(a), y = parameters_of(b);
  for (size_t i = 0; i < x.size(); ++i) EXPECT_TRUE(torch::equal(x[i], y[i])) << when << ", parameter " << i;
}

// The whole step, D and G, with two micro-batches each: on the resnet (spectral norm) with R1 and
// on the MLP with WGAN-GP, overlap on and off end bitwise equal. With overlap on, as in the training
// loop, each G update stays in flight until the next D step has backpropagated its first reals,
// and is finished there, before that step's fakes are made.
void expect_overlap_changes_no_bit(const ModelSpec& spec, StepOptions options) {
  cluster::MpiCommunicator world;
  const int r = world.rank();
  options.overlap = true;
  torch::manual_seed(5);
  AdversarialStep on(build_models(spec), world, options);
  options.overlap = false;
  torch::manual_seed(5);
  AdversarialStep off(build_models(spec), world, options);
  std::vector<int64_t> shape{4};
  shape.insert(shape.end(), spec.sample_shape.begin(), spec.sample_shape.end());
  int finished_in_d_step = 0;
  for (int step = 0; step < 3; ++step) {
    torch::manual_seed(100 * step + r);
    const torch::Tensor real = torch::rand(shape) * 2 - 1, z = torch::randn({4, spec.z_dim});
    const torch::Tensor eps = torch::rand({2});
    std::vector<DStepInput> micro(2);
    for (int64_t j = 0; j < 2; ++j) {
      micro[j].real = real.narrow(0, 2 * j, 2);
      micro[j].apply_r1 = true;
      micro[j].gp_eps = eps;
    }
    const auto make_fakes = [&](AdversarialStep& s) {
      for (int64_t j = 0; j < 2; ++j) micro[j].fake = s.generate_for_step(z.narrow(0, 2 * j, 2), false);
    };
    make_fakes(off);
    off.d_step(micro);
    on.d_step(micro, [&] {
      EXPECT_EQ(on.g_step_in_flight(), step > 0);
      if (on.g_step_in_flight()) {
        on.finish_g_step();
        ++finished_in_d_step;
      }
      make_fakes(on);
    });
    expect_equal_parameters(on, off, "after D step " + std::to_string(step));
    const std::vector<GMicroBatch> g_micro{{z.narrow(0, 0, 2), {}, {}}, {z.narrow(0, 2, 2), {}, {}}};
    off.g_step(g_micro);
    on.begin_g_step(g_micro);
    EXPECT_TRUE(on.g_step_in_flight());
  }
  EXPECT_EQ(finished_in_d_step, 2);
  on.finish_g_step();
  expect_equal_parameters(on, off, "after the last G step");
  EXPECT_EQ(on.compare_replicas(), "");
}

TEST(DistributedStep, OverlapOnAndOffMakeBitwiseIdenticalResnetUpdatesWithR1AndAccumulation) {
  const ModelSpec spec = testing::tiny_resnet32_spec();
  StepOptions options;
  options.loss = LossKind::kHinge;
  options.lr_d = options.lr_g = 1e-3;
  options.r1_gamma = 1;
  options.r1_every = 1;
  options.bucket_bytes = 4096;  // several buckets per model
  expect_overlap_changes_no_bit(spec, options);
}

TEST(DistributedStep, OverlapOnAndOffMakeBitwiseIdenticalWganGpUpdates) {
  const ModelSpec spec = testing::small_mlp(64, 3);
  StepOptions options;
  options.loss = LossKind::kWganGp;
  options.lr_d = options.lr_g = 1e-3;
  options.bucket_bytes = 1024;
  expect_overlap_changes_no_bit(spec, options);
}

}  // namespace
}  // namespace distgan
