// Run on 2 ranks by ctest. The distributed step computes the same update as one rank with the
// whole global batch, and replicas stay bitwise identical.
#include <gtest/gtest.h>

#include <cmath>
#include <mpi.h>

#include "cluster/mpi_check.h"
#include "cluster/mpi_communicator.h"
#include "tests/test_util.h"
#include "tests/test_models.h"
#include "trainer/step/adversarial_step.h"

namespace distgan {
namespace {

constexpr int64_t kPerRank = 8;

ModelSpec mlp_spec(bool batchnorm) {
  ModelSpec s = testing::small_mlp(16, 2);
  s.mlp_batchnorm = batchnorm;
  return s;
}

std::vector<torch::Tensor> all_parameters(GanModels& m) {
  auto p = m.generator->parameters();
  auto d = m.discriminator->parameters();
  p.insert(p.end(), d.begin(), d.end());
  return p;
}

// Weights drawn wider than DCGAN's N(0, 0.02): at that init every logit is ~0, so the real and
// fake halves of a bias gradient cancel to rounding noise (~1e-9), which Adam's first step (about
// lr * sign(g)) turns into differences that say nothing about the reduction being right.
GanModels seeded_models(bool batchnorm) {
  torch::manual_seed(123);
  GanModels m = build_models(mlp_spec(batchnorm));
  torch::NoGradGuard no_grad;
  for (auto& p : all_parameters(m)) p.normal_(0.0, 0.5);
  return m;
}

// Every parameter of two steps' models within a relative error of 1e-5. Except, with
// `skip_noise_gradients`, the ones whose gradient in `x` is below 1e-6: a bias followed by
// BatchNorm has a gradient of exactly zero in exact arithmetic, so what it gets is rounding noise
// (~1e-9), which Adam (about lr x sign(g) per step) turns into differences that say nothing about
// the reduction being right.
void expect_same_parameters(AdversarialStep& x, AdversarialStep& y, const char* after, int step,
                            bool skip_noise_gradients = false) {
  for (auto [a, b] : {std::pair{x.models().generator.ptr(), y.models().generator.ptr()},
                      std::pair{x.models().discriminator.ptr(), y.models().discriminator.ptr()}}) {
    const auto pa = a->named_parameters(), pb = b->named_parameters();
    for (const auto& p : pa) {
      const torch::Tensor& other = pb[p.key()];
      if (skip_noise_gradients && p.value().grad().defined() && p.value().grad().norm().item<double>() < 1e-6) continue;
      const double rel = ((p.value() - other).norm() / p.value().norm().clamp_min(1e-12)).item<double>();
      EXPECT_LT(rel, 1e-5) << "after " << after << " step " << step << ", " << a->name() << " " << p.key();
    }
  }
}

TEST(DistributedStep, TwoRanksWithBatchBEqualOneRankWithBatch2B) {
  cluster::MpiCommunicator world;
  ASSERT_EQ(world.size(), 2) << "run this test on 2 ranks";
  cluster::MpiCommunicator self(MPI_COMM_SELF);
  const int r = world.rank();

  // The same global data and noise on every rank (seeded), split by rank for the distributed run.
  torch::manual_seed(7);
  const torch::Tensor real = torch::randn({2 * kPerRank, 2});
  const torch::Tensor z = torch::randn({2 * kPerRank, 3});
  const torch::Tensor my_real = real.narrow(0, r * kPerRank, kPerRank);
  const torch::Tensor my_z = z.narrow(0, r * kPerRank, kPerRank);

  StepOptions options;
  options.lr_d = options.lr_g = 1e-2;  // large steps: differences would show
  AdversarialStep single(seeded_models(false), self, options);
  AdversarialStep distributed(seeded_models(false), world, options);
  distributed.broadcast_from_root();

  for (int step = 0; step < 3; ++step) {
    single.d_step(real, single.generate_for_step(z, false));
    distributed.d_step(my_real, distributed.generate_for_step(my_z, false));
    auto a = all_parameters(single.models()), b = all_parameters(distributed.models());
    for (size_t i = 0; i < a.size(); ++i) {
      const double rel = ((a[i] - b[i]).norm() / a[i].norm().clamp_min(1e-12)).item<double>();
      EXPECT_LT(rel, 1e-5) << "after D step " << step << ", parameter " << i;
    }
    single.g_step(single.generate_for_step(z, true));
    distributed.g_step(distributed.generate_for_step(my_z, true));
    a = all_parameters(single.models());
    b = all_parameters(distributed.models());
    for (size_t i = 0; i < a.size(); ++i) {
      const double rel = ((a[i] - b[i]).norm() / a[i].norm().clamp_min(1e-12)).item<double>();
      EXPECT_LT(rel, 1e-5) << "after G step " << step << ", parameter " << i;
    }
  }
}

// training.accumulate: on 2 ranks, K = 2 micro-batches of B make the same D and G updates as one
// batch of 2B per rank (no BatchNorm: it would see different batches), which is the same as one
// rank with the global batch of 4B (the test above).
TEST(DistributedStep, TwoMicroBatchesOfBEqualOneBatchOf2B) {
  cluster::MpiCommunicator world;
  const int r = world.rank();
  torch::manual_seed(17 + r);  // each rank its own data and noise
  const torch::Tensor real = torch::randn({2 * kPerRank, 2});
  const torch::Tensor z = torch::randn({2 * kPerRank, 3});
  const torch::Tensor z_g = torch::randn({2 * kPerRank, 3});
  StepOptions options;
  options.lr_d = options.lr_g = 1e-2;
  options.r1_gamma = 1;  // the penalty's weight must split across micro-batches alike
  options.r1_every = 1;
  AdversarialStep whole(seeded_models(false), world, options);
  AdversarialStep accumulated(seeded_models(false), world, options);
  auto expect_same = [&](const char* after, int step) { expect_same_parameters(whole, accumulated, after, step); };
  for (int step = 0; step < 3; ++step) {
    DStepInput in;
    in.real = real;
    in.fake = whole.generate_for_step(z, false);
    in.apply_r1 = true;
    const DStepStats d_whole = whole.d_step(in);
    std::vector<DStepInput> micro(2);
    for (int64_t j = 0; j < 2; ++j) {
      micro[j].real = real.narrow(0, j * kPerRank, kPerRank);
      micro[j].fake = accumulated.generate_for_step(z.narrow(0, j * kPerRank, kPerRank), false);
      micro[j].apply_r1 = true;
    }
    const DStepStats d_acc = accumulated.d_step(micro);
    EXPECT_NEAR(d_whole.loss_d, d_acc.loss_d, 1e-5 * std::abs(d_whole.loss_d));
    EXPECT_NEAR(d_whole.grad_norm, d_acc.grad_norm, 1e-5 * d_whole.grad_norm);
    expect_same("D", step);
    whole.g_step(whole.generate_for_step(z_g, true));
    accumulated.g_step(std::vector<GMicroBatch>{{z_g.narrow(0, 0, kPerRank), {}, {}},
                                                {z_g.narrow(0, kPerRank, kPerRank), {}, {}}});
    expect_same("G", step);
  }
  EXPECT_EQ(accumulated.compare_replicas(), "");
}

// The resnet on 2 ranks with B each makes the same updates as 1 rank with the global batch 2B in
// 2 micro-batches of B (training.accumulate: 2): G's batch norm then normalises over the same B
// samples in both runs (as PyTorch DDP without SyncBatchNorm), and D (spectral norm, no batch
// norm) and the averaged gradients are the same.
TEST(DistributedStep, ResnetTwoRanksEqualOneRankAccumulatingTheGlobalBatch) {
  cluster::MpiCommunicator world;
  cluster::MpiCommunicator self(MPI_COMM_SELF);
  const int r = world.rank();
  const ModelSpec spec = testing::tiny_resnet32_spec();
  constexpr int64_t b = 4;
  torch::manual_seed(21);  // the same global data and noise on every rank
  const torch::Tensor real = torch::rand({2 * b, 3, 32, 32}) * 2 - 1;
  const torch::Tensor z = torch::randn({2 * b, 8}), z_g = torch::randn({2 * b, 8});
  StepOptions options;
  options.loss = LossKind::kHinge;
  options.lr_d = options.lr_g = 1e-3;
  torch::manual_seed(5);
  AdversarialStep single(build_models(spec), self, options);
  torch::manual_seed(5);
  AdversarialStep distributed(build_models(spec), world, options);
  // ResNet G's convolution biases all feed BatchNorm: their gradients are rounding noise.
  auto expect_same = [&](const char* after, int step) {
    expect_same_parameters(single, distributed, after, step, /*skip_noise_gradients=*/true);
  };
  for (int step = 0; step < 2; ++step) {
    std::vector<DStepInput> micro(2);
    for (int64_t j = 0; j < 2; ++j) {
      micro[j].real = real.narrow(0, j * b, b);
      micro[j].fake = single.generate_for_step(z.narrow(0, j * b, b), false);
    }
    single.d_step(micro);
    distributed.d_step(real.narrow(0, r * b, b), distributed.generate_for_step(z.narrow(0, r * b, b), false));
    expect_same("D", step);
    single.g_step(std::vector<GMicroBatch>{{z_g.narrow(0, 0, b), {}, {}}, {z_g.narrow(0, b, b), {}, {}}});
    distributed.g_step(distributed.generate_for_step(z_g.narrow(0, r * b, b), true));
    expect_same("G", step);
  }
}

TEST(MpiCommunicator, CollectivesGiveKnownValues) {
  cluster::MpiCommunicator world;
  const int r = world.rank(), n = world.size();
  torch::Tensor sum = torch::full({5}, static_cast<float>(r + 1));
  world.allreduce(sum, {cluster::ReduceOp::kSum})->wait();
  EXPECT_TRUE(torch::equal(sum, torch::full({5}, n * (n + 1) / 2.0f)));
  torch::Tensor avg = torch::full({3}, static_cast<double>(r), torch::kFloat64);
  auto work = world.allreduce(avg, {cluster::ReduceOp::kAverage});
  work->wait();
  EXPECT_TRUE(work->is_completed());
  EXPECT_DOUBLE_EQ(avg[0].item<double>(), (n - 1) / 2.0);
  torch::Tensor mx = torch::tensor({static_cast<int64_t>(r * 10)});
  world.allreduce(mx, {cluster::ReduceOp::kMax})->wait();
  EXPECT_EQ(mx.item<int64_t>(), (n - 1) * 10);
  torch::Tensor b = torch::full({4}, static_cast<float>(r == 1 ? 42 : -1));
  world.broadcast(b, 1);
  EXPECT_TRUE(torch::equal(b, torch::full({4}, 42.0f)));
  const auto all = world.allgather({static_cast<double>(r), 0.5});
  ASSERT_EQ(all.size(), static_cast<size_t>(2 * n));
  for (int k = 0; k < n; ++k) EXPECT_EQ(all[2 * k], k);
  world.barrier();
  torch::Tensor strided = torch::zeros({4, 4}).narrow(1, 0, 2);  // every other pair: gaps in memory
  EXPECT_THROW((void)world.allreduce(strided, {}), cluster::ClusterError);
  // A dense tensor in another layout (a channels_last weight) reduces in place, element by element.
  torch::Tensor nhwc = torch::arange(24, torch::kFloat32).view({1, 2, 3, 4}).contiguous(torch::MemoryFormat::ChannelsLast);
  world.allreduce(nhwc, {cluster::ReduceOp::kAverage})->wait();
  EXPECT_TRUE(torch::equal(nhwc, torch::arange(24, torch::kFloat32).view({1, 2, 3, 4})));
  EXPECT_TRUE(nhwc.is_contiguous(torch::MemoryFormat::ChannelsLast));
  EXPECT_THROW((void)world.allgather(nhwc), cluster::ClusterError);
  torch::Tensor counts = torch::tensor({int64_t{1}});
  EXPECT_THROW((void)world.allreduce(counts, {cluster::ReduceOp::kAverage}), cluster::ClusterError);
}

TEST(MpiCommunicator, ACollectiveAPeerNeverJoinsTimesOutWithAClearError) {
  // Its own communicator with a 1 s deadline: only rank 0 enters the allreduce.
  cluster::MpiCommunicator lonely(MPI_COMM_WORLD, /*timeout_s=*/1.0);
  lonely.set_label("step 7");
  if (lonely.rank() == 0) {
    torch::Tensor t = torch::ones({8});
    auto work = lonely.allreduce(t, {});
    const std::string message = testing::error_message<cluster::ClusterError>([&] { work->wait(); });
    EXPECT_NE(message.find("collective watchdog: rank 0, step 7: allreduce of 8 Float values did not complete after "),
              std::string::npos)
        << message;
    EXPECT_NE(message.find(" s (cluster.collective_timeout_s = 1): a rank is dead or stuck"), std::string::npos)
        << message;
  }
  MPI_Barrier(MPI_COMM_WORLD);
}

// Every collective has the deadline, not only the gradient all-reduce: broadcast and barrier too.
TEST(MpiCommunicator, BroadcastAndBarrierAPeerNeverJoinsTimeOut) {
  cluster::MpiCommunicator lonely_bcast(MPI_COMM_WORLD, 1.0), lonely_barrier(MPI_COMM_WORLD, 1.0);
  if (lonely_bcast.rank() == 1) {
    torch::Tensor t = torch::zeros({3}, torch::kInt64);
    EXPECT_NE(testing::error_message<cluster::ClusterError>([&] { lonely_bcast.broadcast(t, 0); })
                  .find("rank 1: broadcast of 3 Long values from rank 0 did not complete after"),
              std::string::npos);
    EXPECT_NE(testing::error_message<cluster::ClusterError>([&] { lonely_barrier.barrier(); })
                  .find("rank 1: barrier did not complete after"),
              std::string::npos);
  }
  MPI_Barrier(MPI_COMM_WORLD);
}

TEST(GradientReducer, AveragesMixedSizeGradientsAcrossBucketBoundaries) {
  cluster::MpiCommunicator world;
  const int r = world.rank();
  // Sizes 3, 100, 1, 7x5 floats with a 64-byte cap, taken in reverse order (backward's): buckets
  // {3}, {2, 1}, {0}.
  std::vector<torch::Tensor> params{torch::zeros({3}), torch::zeros({100}), torch::zeros({1}), torch::zeros({7, 5})};
  cluster::GradientReducer reducer(params, world, 64);
  EXPECT_EQ(reducer.buckets(), (std::vector<std::vector<size_t>>{{3}, {2, 1}, {0}}));
  for (int round = 0; round < 2; ++round) {  // the second round runs on bucket views
    for (size_t i = 0; i < params.size(); ++i) {
      auto g = torch::arange(params[i].numel(), torch::kFloat32).view(params[i].sizes()) * (r + 1) + 10.0 * i;
      if (round == 0) params[i].mutable_grad() = g;
      else params[i].mutable_grad().copy_(g);
    }
    reducer.average_gradients();
    const double mean_factor = (world.size() + 1) / 2.0;  // mean of (r + 1) over ranks
    for (size_t i = 0; i < params.size(); ++i) {
      auto expected = torch::arange(params[i].numel(), torch::kFloat32).view(params[i].sizes()) * mean_factor + 10.0 * i;
      EXPECT_TRUE(torch::allclose(params[i].grad(), expected)) << "parameter " << i << " round " << round;
    }
    reducer.zero_grad();
    for (auto& p : params) EXPECT_EQ(p.grad().abs().sum().item<float>(), 0.0f);
  }
}

TEST(DistributedStep, ReplicasStayBitwiseIdenticalOver20Steps) {
  cluster::MpiCommunicator world;
  const int r = world.rank();
  // Different initial weights per rank: the broadcast must make them equal.
  torch::manual_seed(1000 + r);
  StepOptions options;
  AdversarialStep step(build_models(mlp_spec(true)), world, options);
  step.broadcast_from_root();
  torch::manual_seed(55 + r);  // every rank its own data and noise
  for (int i = 0; i < 20; ++i) {
    const torch::Tensor real = torch::randn({kPerRank, 2});
    step.d_step(real, step.generate_for_step(torch::randn({kPerRank, 3}), false));
    step.g_step(step.generate_for_step(torch::randn({kPerRank, 3}), true));
  }
  step.average_batchnorm_statistics();
  auto mine = all_parameters(step.models());
  for (auto& b : step.models().generator->buffers()) mine.push_back(b);
  for (size_t i = 0; i < mine.size(); ++i) {
    torch::Tensor root = mine[i].clone();
    world.broadcast(root, 0);
    EXPECT_TRUE(torch::equal(root, mine[i])) << "tensor " << i << " differs between rank 0 and rank " << r;
  }
}

// The EMA generator moves on every rank alike without communication (the replicas' G is the same);
// a learning-rate schedule scales both optimizers from the configured rates.
TEST(DistributedStep, EmaIsIdenticalOnEveryRankAndSchedulesScaleBothOptimizers) {
  cluster::MpiCommunicator world;
  const int r = world.rank();
  torch::manual_seed(1000 + r);
  ModelSpec spec = mlp_spec(true);
  spec.ema = true;
  StepOptions options;
  options.lr_g = 4e-4;
  options.lr_d = 1e-3;
  AdversarialStep step(build_models(spec), world, options);
  step.broadcast_from_root();
  torch::manual_seed(77 + r);
  for (int i = 0; i < 5; ++i) {
    step.d_step(torch::randn({kPerRank, 2}), step.generate_for_step(torch::randn({kPerRank, 3}), false));
    step.g_step(step.generate_for_step(torch::randn({kPerRank, 3}), true));
    step.update_ema(0.5);
  }
  EXPECT_EQ(step.compare_replicas(), "");  // includes generator_ema/
  auto ema = step.models().generator_ema->parameters();
  auto g = step.models().generator->parameters();
  EXPECT_FALSE(torch::equal(ema[0], g[0]));  // an average, not a copy
  step.scale_learning_rates(0.25);
  EXPECT_DOUBLE_EQ(static_cast<torch::optim::AdamOptions&>(step.optimizer_g().param_groups()[0].options()).lr(), 1e-4);
  EXPECT_DOUBLE_EQ(static_cast<torch::optim::AdamOptions&>(step.optimizer_d().param_groups()[0].options()).lr(), 2.5e-4);
}

// Top-k training: a G step keeping a share of the fakes equals a plain G step on the fakes D scores
// highest (chosen by hand here), on every rank; keeping them all is a different update.
TEST(DistributedStep, TopKGStepLearnsFromTheFakesDScoresHighest) {
  cluster::MpiCommunicator world;
  const int r = world.rank();
  AdversarialStep top_k(seeded_models(false), world, StepOptions{});
  AdversarialStep by_hand(seeded_models(false), world, StepOptions{});
  AdversarialStep all(seeded_models(false), world, StepOptions{});
  torch::manual_seed(500 + r);
  const torch::Tensor z = torch::randn({kPerRank, 3});
  top_k.g_step(top_k.generate_for_step(z, true), {}, 0.3);  // ceil(0.3 x 8) = 3 fakes
  torch::Tensor fake = by_hand.generate_for_step(z, true), best;
  {
    torch::NoGradGuard no_grad;
    best = std::get<1>(discriminate(by_hand.models().discriminator, fake, {}).topk(3));
  }
  by_hand.g_step(fake.index_select(0, best), {});
  all.g_step(all.generate_for_step(z, true), {}, 1.0);
  auto a = top_k.models().generator->parameters(), b = by_hand.models().generator->parameters(),
       c = all.models().generator->parameters();
  bool differs_from_all = false;
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_TRUE(torch::allclose(a[i], b[i], 1e-6, 1e-7)) << "G tensor " << i;
    differs_from_all |= !torch::allclose(a[i], c[i], 1e-6, 1e-7);
  }
  EXPECT_TRUE(differs_from_all);
  EXPECT_DOUBLE_EQ(top_k_share(0.5, 0.99, 0), 1.0);
  EXPECT_NEAR(top_k_share(0.5, 0.9, 2), 0.81, 1e-12);
  EXPECT_DOUBLE_EQ(top_k_share(0.5, 0.9, 10), 0.5);
  EXPECT_DOUBLE_EQ(top_k_share(1.0, 0.9, 10), 1.0);
}

}  // namespace
}  // namespace distgan

namespace distgan {
namespace {

// A NaN in one rank's batch makes the averaged D gradient non-finite on every rank alike: every rank
// skips that D update (parameters unchanged), and the G update goes on.
TEST(NonFinite, ANanOnOneRankSkipsTheUpdateOnEveryRank) {
  cluster::MpiCommunicator world;
  AdversarialStep step(seeded_models(false), world, {});
  step.broadcast_from_root();
  torch::manual_seed(11);
  torch::Tensor real = torch::randn({kPerRank, 2});
  if (world.rank() == 1) real[0][0] = NAN;
  const auto before = all_parameters(step.models());
  std::vector<torch::Tensor> saved;
  for (const auto& p : before) saved.push_back(p.detach().clone());
  const DStepStats d = step.d_step(real, step.generate_for_step(torch::randn({kPerRank, 3}), false));
  EXPECT_TRUE(d.skipped);
  EXPECT_FALSE(std::isfinite(d.grad_norm));
  const auto after = all_parameters(step.models());
  for (size_t i = 0; i < after.size(); ++i) EXPECT_TRUE(torch::equal(after[i], saved[i])) << "parameter " << i;
  const GStepStats g = step.g_step(step.generate_for_step(torch::randn({kPerRank, 3}), true));
  EXPECT_FALSE(g.skipped);
  const std::vector<double> norms = world.allgather({g.grad_norm});
  EXPECT_EQ(norms[0], norms[1]) << "the averaged gradient's norm is the same on every rank";
  EXPECT_GT(norms[0], 0);
}

}  // namespace
}  // namespace distgan
