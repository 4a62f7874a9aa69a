// Run on 2 ranks by ctest. Every piece of training state survives a checkpoint: a restored step
// continues exactly like the original, and rank 0's restored state reaches every rank.
#include <gtest/gtest.h>
#include <mpi.h>

#include "cluster/mpi_communicator.h"
#include "data/data_error.h"
#include "tests/test_util.h"
#include "tests/test_models.h"
#include "trainer/step/adversarial_step.h"
#include "trainer/state/checkpoint.h"
#include "trainer/model/optimizer_state.h"

namespace distgan {
namespace {

using testing::small_dcgan;

// Every parameter, buffer and Adam tensor of `step`, flattened, plus the Adam step counts.
std::vector<torch::Tensor> state_of(AdversarialStep& step) {
  std::vector<torch::Tensor> out;
  for (torch::nn::Module* m : {step.models().generator.ptr().get(), step.models().discriminator.ptr().get()}) {
    for (auto& p : m->parameters()) out.push_back(p.detach().clone());
    for (auto& b : m->buffers()) out.push_back(b.detach().clone());
  }
  for (auto* opt : {&step.optimizer_g(), &step.optimizer_d()}) {
    for (auto& p : opt->param_groups()[0].params()) {
      const auto* s = find_adam_state(*opt, p);
      if (s == nullptr) {
        out.push_back(torch::tensor({-1}, torch::kInt64));
        continue;
      }
      out.push_back(torch::tensor({s->step()}, torch::kInt64));
      out.push_back(s->exp_avg().clone());
      out.push_back(s->exp_avg_sq().clone());
    }
  }
  return out;
}

void expect_bitwise_equal(const std::vector<torch::Tensor>& a, const std::vector<torch::Tensor>& b,
                          const std::string& when) {
  ASSERT_EQ(a.size(), b.size()) << when;
  for (size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(torch::equal(a[i], b[i])) << when << ": state tensor " << i;
}

void train(AdversarialStep& step, int steps, uint64_t seed) {
  torch::manual_seed(seed);
  for (int i = 0; i < steps; ++i) {
    const torch::Tensor real = torch::rand({6, 1, 28, 28}) * 2 - 1;
    step.d_step(real, step.generate_for_step(torch::randn({6, 8}), false));
    step.g_step(step.generate_for_step(torch::randn({6, 8}), true));
  }
}

TEST(Checkpoint, ARestoredStepContinuesBitwiseLikeTheOriginal) {
  cluster::MpiCommunicator self(MPI_COMM_SELF);
  testing::TempDir dir;
  Config config;
  torch::manual_seed(1);
  AdversarialStep original(build_models(small_dcgan()), self, {});
  train(original, 3, 11);
  TrainingPosition position{3, 0, 18, 18};
  const torch::Tensor rng = torch::arange(20, torch::kUInt8).reshape({2, 10});
  write_tensor_file(dir.path("c.h5"), snapshot_checkpoint(config, small_dcgan(), original, position, rng, 100));

  torch::manual_seed(2);  // different initial weights: everything must come from the file
  AdversarialStep restored(build_models(small_dcgan()), self, {});
  TensorFileReader reader(dir.path("c.h5"));
  const CheckpointInfo info = read_checkpoint_info(reader);
  EXPECT_EQ(info.position.step, 3);
  EXPECT_EQ(info.position.epoch_position, 18);
  EXPECT_EQ(info.world_size, 2);
  EXPECT_EQ(info.dataset_size, 100);
  EXPECT_EQ(info.sample_shape, (std::vector<int64_t>{1, 28, 28}));
  EXPECT_TRUE(torch::equal(restore_checkpoint(reader, restored), rng));
  expect_bitwise_equal(state_of(original), state_of(restored), "after restore");

  train(original, 2, 12);
  train(restored, 2, 12);
  expect_bitwise_equal(state_of(original), state_of(restored), "two steps later");
}

TEST(Checkpoint, AModelOfAnotherWidthIsRefusedNamingTheTensor) {
  cluster::MpiCommunicator self(MPI_COMM_SELF);
  testing::TempDir dir;
  AdversarialStep original(build_models(small_dcgan()), self, {});
  write_tensor_file(dir.path("c.h5"), snapshot_checkpoint(Config{}, small_dcgan(), original, {},
                                                              torch::zeros({1, 4}, torch::kUInt8), 10));
  ModelSpec wider = small_dcgan();
  wider.ch = 8;
  AdversarialStep other(build_models(wider), self, {});
  TensorFileReader reader(dir.path("c.h5"));
  const std::string message =
      testing::error_message<data::DataError>([&] { restore_checkpoint(reader, other); });
  EXPECT_NE(message.find("generator/0.weight has shape"), std::string::npos) << message;
}

TEST(Checkpoint, RankZerosRestoredOptimizerStateReachesEveryRank) {
  cluster::MpiCommunicator world;
  ASSERT_EQ(world.size(), 2) << "run this test on 2 ranks";
  cluster::MpiCommunicator self(MPI_COMM_SELF);
  torch::manual_seed(1);
  AdversarialStep step(build_models(small_dcgan()), world, {});
  if (world.rank() == 0) {  // rank 0 alone has trained state, as after reading a checkpoint
    AdversarialStep donor(build_models(small_dcgan()), self, {});
    train(donor, 2, 5);
    // Copy the donor's state into `step` (on rank 0 only) through a checkpoint file.
    testing::TempDir dir;
    write_tensor_file(dir.path("c.h5"), snapshot_checkpoint(Config{}, small_dcgan(), donor, {},
                                                                torch::zeros({1, 4}, torch::kUInt8), 10));
    TensorFileReader reader(dir.path("c.h5"));
    restore_checkpoint(reader, step);
  }
  step.broadcast_from_root();
  // Every rank's state, summed in double, must be rank 0's.
  std::vector<double> sums;
  for (const auto& t : state_of(step)) sums.push_back(t.to(torch::kFloat64).sum().item<double>());
  const std::vector<double> all = world.allgather(sums);
  for (size_t i = 0; i < sums.size(); ++i) EXPECT_EQ(all[i], all[sums.size() + i]) << "state tensor " << i;
  EXPECT_GT(std::count_if(sums.begin(), sums.end(), [](double v) { return v == 2.0; }), 0)
      << "Adam step counts of 2 were broadcast";
}

}  // namespace
}  // namespace distgan
