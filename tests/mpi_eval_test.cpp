// Run on 2 ranks by ctest. The training loop's evaluation split across ranks gives the numbers of
// one rank evaluating every sample, and a failure on one rank alone stops every rank with its text.
#include <gtest/gtest.h>
#include <torch/script.h>

#include <functional>
#include <numeric>
#include <optional>
#include <utility>

#include "cluster/mpi_communicator.h"
#include "data/dataset_writer.h"
#include "data/importers.h"
#include "tests/test_models.h"
#include "tests/test_util.h"
#include "trainer/eval/classifier.h"
#include "trainer/run/agreed_failure.h"
#include "trainer/run/distributed_eval.h"

namespace distgan {
namespace {

using testing::TempDir;

// Images of `shape` as /images, byte i = pixel(i), overwriting `path`.
void write_images(const std::string& path, std::vector<int64_t> shape, uint8_t (*pixel)(size_t)) {
  data::DatasetContents images;
  images.name = "/images";
  images.shape = std::move(shape);
  images.u8.resize(static_cast<size_t>(
      std::accumulate(images.shape.begin(), images.shape.end(), int64_t{1}, std::multiplies<int64_t>())));
  for (size_t i = 0; i < images.u8.size(); ++i) images.u8[i] = pixel(i);
  data::WriteOptions w;
  w.overwrite = true;
  data::write_dataset_file(path, images, w);
}

// A TorchScript feature module with a fixed random projection `w` (`inputs` x 8) and `forward`.
void write_features(const std::string& path, int64_t inputs, const std::string& forward) {
  torch::jit::Module features("Features");
  torch::manual_seed(1);
  features.register_parameter("w", torch::randn({inputs, 8}) / 55.0, false);
  features.define("def forward(self, x):\n    return " + forward + "\n");
  features.save(path);
}

// Every metric of `split` (rank 0's result of the distributed evaluation) equals `whole`'s.
void expect_same_metrics(const EvalResult& split, const EvalResult& whole) {
  ASSERT_EQ(split.metrics.size(), whole.metrics.size()) << split.text() << " vs " << whole.text();
  ASSERT_FALSE(whole.metrics.empty()) << whole.what;
  for (size_t i = 0; i < whole.metrics.size(); ++i) {
    EXPECT_EQ(split.metrics[i].first, whole.metrics[i].first);
    EXPECT_NEAR(split.metrics[i].second, whole.metrics[i].second,
                1e-5 * std::max(1.0, std::abs(whole.metrics[i].second)))
        << whole.metrics[i].first;
  }
  EXPECT_EQ(split.what, whole.what);
}

// Rank 0 evaluates every sample itself, as a one-rank run does.
EvalResult evaluate_on_one_rank(const EvalOptions& o, torch::nn::Sequential& g, const ModelSpec& spec, uint64_t seed) {
  Evaluator whole(o, spec.sample_shape);
  auto [samples, labels] = generate_for_eval(g, spec, whole.sample_count(), seed, torch::kCPU);
  return whole.evaluate(samples, labels);
}

// `g` evaluated split across the ranks and, on rank 0, by rank 0 alone; rank 0 expects the same
// metrics and gets both results (split, whole) for further checks; other ranks get nothing.
std::optional<std::pair<EvalResult, EvalResult>> expect_split_equals_one_rank(const EvalOptions& o,
                                                                              torch::nn::Sequential& g,
                                                                              const ModelSpec& spec, uint64_t seed,
                                                                              cluster::Communicator& world) {
  Evaluator mine(o, spec.sample_shape, world.rank() == 0);
  const auto split = evaluate_across_ranks(mine, g, spec, seed, torch::kCPU, world);
  EXPECT_EQ(split.has_value(), world.rank() == 0);
  if (world.rank() != 0 || !split) return std::nullopt;
  EvalResult whole = evaluate_on_one_rank(o, g, spec, seed);
  expect_same_metrics(*split, whole);
  return std::make_pair(*split, std::move(whole));
}

TEST(DistributedEval, TwoRanksGiveTheMixtureNumbersOfOne) {
  cluster::MpiCommunicator world;
  ASSERT_EQ(world.size(), 2) << "run this test on 2 ranks";
  TempDir dir;  // each rank writes its own copy of the same file
  data::MixtureSpec mixture;
  mixture.kind = data::Mixture::kGrid;
  mixture.num_samples = 3000;
  data::write_dataset_file(dir.path("grid.h5"), data::make_mixture(mixture), {});
  EvalOptions o;
  o.real.path = dir.path("grid.h5");
  o.real.dataset = "/samples";
  const ModelSpec spec = testing::small_mlp(32, 2);
  torch::manual_seed(4);
  GanModels models = build_models(spec);
  expect_split_equals_one_rank(o, models.generator, spec, 7, world);
}

// RGB images at 32 px, a tiny resnet, features by a TorchScript projection; 1,101 samples: the
// ranks' shares (551 and 550) differ and cross the 500-sample generation chunks.
TEST(DistributedEval, TwoRanksGiveTheImageNumbersOfOne) {
  cluster::MpiCommunicator world;
  TempDir dir;
  write_images(dir.path("images.h5"), {400, 3, 32, 32},
               [](size_t i) { return static_cast<uint8_t>((i * 37 + i / 3072 * 11) % 256); });
  write_features(dir.path("features.pt"), 3072, "torch.flatten(x, 1).mm(self.w)");
  EvalOptions o;
  o.real.path = dir.path("images.h5");
  o.features = dir.path("features.pt");
  o.samples = 1101;
  o.reference = 400;
  const ModelSpec spec = testing::tiny_resnet32_spec();
  torch::manual_seed(5);
  GanModels models = build_models(spec);
  expect_split_equals_one_rank(o, models.generator, spec, 3, world);
}

// A conditional model scored by a dataset classifier: the classes each rank's samples are predicted as
// are gathered too (padded as the features are), so the class accuracy equals one rank's. The
// classifier is untrained (random weights): the test is about which sample gets which prediction.
TEST(DistributedEval, TwoRanksGiveTheConditionalNumbersOfOne) {
  cluster::MpiCommunicator world;
  TempDir dir;
  write_images(dir.path("grey.h5"), {300, 1, 28, 28},
               [](size_t i) { return static_cast<uint8_t>((i * 13 + i / 784 * 7) % 256); });
  ModelSpec spec = testing::small_dcgan();
  spec.num_classes = 10;
  torch::manual_seed(2);
  TrainedClassifier classifier;
  classifier.model = Classifier(spec.sample_shape, spec.num_classes);
  classifier.sample_shape = spec.sample_shape;
  classifier.num_classes = spec.num_classes;
  torch::manual_seed(6);
  GanModels models = build_models(spec);
  {  // logits of the features' deviation from their mean over G's samples, so the predicted class
     // changes from sample to sample (an untrained classifier gives every sample one class)
    torch::NoGradGuard no_grad;
    const torch::Tensor samples = generate_for_eval(models.generator, spec, 200, 9, torch::kCPU).first;
    const torch::Tensor mean = classifier.model->features(samples).mean(0);
    classifier.model->out->weight.mul_(1000);
    classifier.model->out->bias.copy_(-classifier.model->out->weight.mv(mean));
  }
  save_classifier(dir.path("classifier.h5"), classifier);
  EvalOptions o;
  o.real.path = dir.path("grey.h5");
  o.classifier = dir.path("classifier.h5");
  o.samples = 501;  // shares of 251 and 250
  o.reference = 300;
  ASSERT_TRUE(Evaluator(o, spec.sample_shape, false).predicts_classes());
  const auto results = expect_split_equals_one_rank(o, models.generator, spec, 9, world);
  if (!results) return;
  const auto& [split, whole] = *results;
  EXPECT_TRUE(std::any_of(whole.metrics.begin(), whole.metrics.end(), [](const auto& m) {
    return m.first == "class_accuracy";
  })) << whole.text();
  EXPECT_EQ(split.class_accuracy, whole.class_accuracy);
}

// A feature module that fails on rank 1 only (its own copy of the file is bad) stops both ranks
// with rank 1's error instead of leaving rank 0 waiting at the next gather.
TEST(DistributedEval, AFeatureModuleFailingOnOneRankStopsEveryRank) {
  cluster::MpiCommunicator world;
  TempDir dir;
  write_images(dir.path("images.h5"), {50, 1, 28, 28}, [](size_t) { return uint8_t{7}; });
  write_features(dir.path("features.pt"), 784, world.rank() == 1 ? "x" : "torch.flatten(x, 1).mm(self.w)");
  EvalOptions o;
  o.real.path = dir.path("images.h5");
  o.features = dir.path("features.pt");
  o.samples = 20;
  o.reference = 50;
  const ModelSpec spec = testing::small_dcgan();
  torch::manual_seed(5);
  GanModels models = build_models(spec);
  Evaluator mine(o, spec.sample_shape, world.rank() == 0);
  try {
    (void)evaluate_across_ranks(mine, models.generator, spec, 3, torch::kCPU, world);
    ADD_FAILURE() << "no AgreedFailure";
  } catch (const AgreedFailure& e) {
    EXPECT_NE(std::string(e.what()).find("rank 1: "), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("features.pt: the TorchScript module returned"), std::string::npos)
        << e.what();
  }
}

TEST(AgreedFailure, AFailureOnRankOneAloneStopsEveryRankWithItsText) {
  cluster::MpiCommunicator world;
  try {
    on_every_rank_agreed(world, [&] {
      if (world.rank() == 1) throw std::runtime_error("features.pt: not a TorchScript module");
    });
    ADD_FAILURE() << "no AgreedFailure";
  } catch (const AgreedFailure& e) {
    EXPECT_STREQ(e.what(), "rank 1: features.pt: not a TorchScript module");
    EXPECT_EQ(e.exit_code(), 1);
    EXPECT_EQ(e.should_print(), world.rank() == 1);
  }
  EXPECT_NO_THROW(on_every_rank_agreed(world, [] {}));
}

}  // namespace
}  // namespace distgan
