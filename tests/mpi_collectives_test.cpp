// Run on 2 ranks by ctest. What a cluster with slow links and slow nodes needs: bfloat16
// all-reduces (compressed gradients, cluster.grad_dtype), the coalesced broadcast of a model's
// tensors at start, and the log's straggler report.
#include <gtest/gtest.h>

#include "cluster/gradient_buckets.h"
#include "cluster/mpi_communicator.h"
#include "tests/test_models.h"
#include "trainer/step/adversarial_step.h"
#include "trainer/run/interval_metrics.h"

namespace distgan {
namespace {

TEST(MpiCollectives, SumsBfloat16ValuesInPlace) {
  cluster::MpiCommunicator world;
  ASSERT_EQ(world.size(), 2) << "run this test on 2 ranks";
  const float r = static_cast<float>(world.rank());
  // Each value exact in bf16: 1.5 + 2r and -0.25 (r + 1) sum exactly; 1 + 3 x 2^-8 (rank 0's 1,
  // rank 1's 3 x 2^-8) lies halfway between bf16's 1 + 2^-7 and 1 + 2^-6 and rounds to the even
  // one, 1 + 2^-6 (truncating would give 1 + 2^-7).
  torch::Tensor t = torch::tensor({1.5f + 2 * r, -0.25f * (r + 1), r == 0 ? 1.0f : 3.0f / 256}).to(torch::kBFloat16);
  world.allreduce(t, {cluster::ReduceOp::kSum})->wait();
  ASSERT_EQ(t.scalar_type(), torch::kBFloat16);
  EXPECT_TRUE(torch::equal(t.to(torch::kFloat32), torch::tensor({5.0f, -0.75f, 1.015625f}))) << t;
  torch::Tensor avg = torch::full({4}, 3.0f + 2 * r).to(torch::kBFloat16);
  world.allreduce(avg, {cluster::ReduceOp::kAverage})->wait();
  EXPECT_TRUE(torch::equal(avg.to(torch::kFloat32), torch::full({4}, 4.0f)));
  torch::Tensor inf = torch::full({1}, world.rank() == 1 ? INFINITY : 1.0f).to(torch::kBFloat16);
  world.allreduce(inf, {cluster::ReduceOp::kSum})->wait();
  EXPECT_TRUE(std::isinf(inf.item<float>()));
  torch::Tensor max = torch::ones({1}, torch::kBFloat16);
  EXPECT_THROW((void)world.allreduce(max, {cluster::ReduceOp::kMax}), cluster::ClusterError);
}

// Mixed dtypes, a channels_last weight and chunks smaller than one tensor: every rank ends with
// rank 0's values, each tensor keeping its own shape and memory layout.
TEST(MpiCollectives, CoalescedBroadcastGivesEveryTensorRootsValues) {
  cluster::MpiCommunicator world;
  torch::manual_seed(70 + world.rank());
  std::vector<torch::Tensor> tensors{
      torch::randn({3, 4, 5, 6}).contiguous(torch::MemoryFormat::ChannelsLast), torch::randn({7}),
      torch::randint(0, 1000, {5}, torch::kInt64), torch::randn({2, 3}), torch::randn({1000})};
  std::vector<torch::Tensor> roots;
  for (auto& t : tensors) roots.push_back(world.allgather(t.contiguous())[0]);  // rank 0's, in logical order
  world.broadcast_coalesced(tensors, 0, /*chunk_bytes=*/512);
  EXPECT_TRUE(tensors[0].is_contiguous(torch::MemoryFormat::ChannelsLast));
  for (size_t i = 0; i < tensors.size(); ++i) EXPECT_TRUE(torch::equal(tensors[i], roots[i])) << "tensor " << i;
}

// grad_dtype bfloat16: the averaged gradients are the float32 average up to bf16 rounding (each
// rank's value and their sum rounded once, unit roundoff 2^-8: at most 2^-7 of the ranks' mean
// magnitude), not the float32 average itself, and every rank gets the same bits.
TEST(GradientReducer, Bfloat16GradientsAreTheAverageWithinBf16Rounding) {
  cluster::MpiCommunicator world;
  torch::manual_seed(3);
  torch::nn::Linear layer(16, 64);
  torch::manual_seed(3);
  torch::nn::Linear reference(16, 64);
  torch::manual_seed(90 + world.rank());
  const torch::Tensor x = torch::randn({8, 16});
  cluster::GradientReducer reducer(layer->parameters(), world, 1024, true, torch::kBFloat16);
  const torch::Tensor loss = layer->forward(x).pow(2).mean();
  reducer.begin_final_backward(loss);
  loss.backward();
  const double mean_loss = reducer.finish_update().side_value;
  const std::vector<double> losses = world.allgather(std::vector<double>{loss.item<double>()});
  EXPECT_NEAR(mean_loss, (losses[0] + losses[1]) / 2, (losses[0] + losses[1]) / 100);

  reference->forward(x).pow(2).mean().backward();
  for (size_t i = 0; i < 2; ++i) {
    const torch::Tensor ranks = world.allgather(reference->parameters()[i].grad().contiguous());
    const torch::Tensor exact = ranks.mean(0), magnitude = ranks.abs().mean(0);
    const torch::Tensor got = layer->parameters()[i].grad();
    EXPECT_FALSE(torch::equal(got, exact)) << "parameter " << i << ": no rounding happened";
    EXPECT_TRUE(((got - exact).abs() <= magnitude / 128 + 1e-30).all().item<bool>()) << "parameter " << i;
    const torch::Tensor all = world.allgather(got.contiguous());
    EXPECT_TRUE(torch::equal(all[0], all[1])) << "parameter " << i;
  }
}

// cluster.grad_dtype: bfloat16 through the whole step (D and G, tiny resnet): the replicas stay
// bitwise identical, and the updates differ from float32's only by the rounding.
TEST(DistributedStep, Bfloat16GradientsKeepReplicasIdenticalAndCloseToFloat32) {
  cluster::MpiCommunicator world;
  const ModelSpec spec = testing::tiny_resnet32_spec();
  StepOptions options;
  options.loss = LossKind::kHinge;
  options.lr_d = options.lr_g = 1e-3;
  options.bucket_bytes = 4096;
  torch::manual_seed(5);
  AdversarialStep fp32(build_models(spec), world, options);
  options.bf16_gradients = true;
  torch::manual_seed(5);
  AdversarialStep bf16(build_models(spec), world, options);
  for (int step = 0; step < 2; ++step) {
    torch::manual_seed(100 * step + world.rank());
    const torch::Tensor real = torch::rand({4, 3, 32, 32}) * 2 - 1, z = torch::randn({4, spec.z_dim});
    for (AdversarialStep* s : {&fp32, &bf16}) {
      s->d_step(real, s->generate_for_step(z, false));
      s->g_step(s->generate_for_step(z, true));
    }
  }
  EXPECT_EQ(bf16.compare_replicas(), "");
  const auto a = fp32.models().generator->parameters(), b = bf16.models().generator->parameters();
  bool any_differs = false;
  for (size_t i = 0; i < a.size(); ++i) {
    any_differs = any_differs || !torch::equal(a[i], b[i]);
    // Adam moves each weight by about lr per step whatever the gradient's scale: at most a few lr apart.
    EXPECT_TRUE(torch::allclose(a[i], b[i], 0, 1e-2)) << "generator parameter " << i;
  }
  EXPECT_TRUE(any_differs) << "bf16 gradients changed nothing: were they used?";
}

// The logged values ride along: this rank's own (not averaged), back in the update's one read.
TEST(GradientReducer, RidersComeBackUnaveragedWithTheUpdate) {
  cluster::MpiCommunicator world;
  torch::manual_seed(3);
  torch::nn::Linear layer(4, 8);
  cluster::GradientReducer reducer(layer->parameters(), world);
  const torch::Tensor loss = layer->forward(torch::ones({2, 4}) * (world.rank() + 1)).pow(2).mean();
  const torch::Tensor riders = torch::stack({loss.detach(), torch::full({}, 10.0f * world.rank())});
  reducer.begin_final_backward(loss, riders);
  loss.backward();
  const cluster::AveragedGradients out = reducer.finish_update();
  ASSERT_EQ(out.riders.size(), 2u);
  EXPECT_FLOAT_EQ(out.riders[0], loss.item<float>());
  EXPECT_EQ(out.riders[1], 10.0 * world.rank());
  EXPECT_GT(out.grad_norm, 0);
  reducer.begin_final_backward(loss.detach());  // none: an empty list
  EXPECT_TRUE(reducer.finish_update().riders.empty());
}

// Rank 1 is the straggler: it computed for the whole interval while rank 0 waited for it in the
// collectives half of the time. Every rank gets the same report, naming rank 1 and its host.
TEST(IntervalMetrics, TheSlowestRankIsNamedWithItsHost) {
  cluster::MpiCommunicator world;
  Interval in;
  in.start = std::chrono::steady_clock::now() - std::chrono::seconds(2);
  in.d_steps = in.g_steps = in.d_applied = in.g_applied = 10;
  in.comm_s = world.rank() == 0 ? 1.0 : 0.0;
  in.data_s = world.rank() == 0 ? 0.0 : 0.2;
  const StepMetrics m = average_interval(in, world, 10, 0, 100, 128, 2.0, {"hosta", "hostb"});
  ASSERT_TRUE(m.has_ranks);
  EXPECT_EQ(m.ranks.slowest_rank, 1);
  EXPECT_EQ(m.ranks.slowest_host, "hostb");
  EXPECT_NEAR(m.ranks.busy_ms_max, 200, 5);  // 2 s over 10 steps
  EXPECT_NEAR(m.ranks.busy_ms_min, 100, 5);
  EXPECT_NEAR(m.ranks.spread, 1.0, 0.1);
  EXPECT_EQ(m.ranks.data_rank, 1);
  EXPECT_NEAR(m.ranks.data_ms_max, 20, 1);
  EXPECT_NEAR(m.share_comm, 0.25, 0.01);  // the mean over ranks, as before
  // Time in periodic tasks (rank 0's checkpoint, say) is not busy time: rank 0 stays the fastest.
  Interval with_task = in;
  with_task.task_s = world.rank() == 0 ? 0.9 : 0.0;
  const StepMetrics t = average_interval(with_task, world, 10, 0, 100, 128, 2.0, {"hosta", "hostb"});
  EXPECT_EQ(t.ranks.slowest_rank, 1);
  EXPECT_NEAR(t.ranks.busy_ms_min, 10, 5);  // rank 0: 2 s - 1 s waiting - 0.9 s in tasks, over 10 steps
}

}  // namespace
}  // namespace distgan
