// Sample images (grids, scatter plots, PNG files), metrics lines, and the model file round trip.
#include <gtest/gtest.h>

#include <filesystem>

#include <hdf5.h>
#include <nlohmann/json.hpp>

#include "data/data_error.h"
#include "tests/test_util.h"
#include "trainer/outputs/console_log.h"
#include "trainer/outputs/metrics_log.h"
#include "trainer/run/interval_metrics.h"
#include "trainer/state/tensor_file.h"
#include "trainer/eval/classifier.h"
#include "trainer/state/model_file.h"
#include "trainer/config/run_options.h"
#include "trainer/outputs/png_image.h"

namespace distgan {
namespace {

using testing::TempDir;

TEST(ImageGrid, TilesImagesWithGapsAndMapsMinusOneOneToBytes) {
  // 3 gray 2x2 images in a grid 2 wide: 2 rows; each cell 2 + 2 gap, plus the outer gap.
  torch::Tensor x = torch::full({3, 1, 2, 2}, -1.0f);
  x[1].fill_(1.0f);
  x[2].fill_(0.0f);
  const Image img = image_grid(x, 2);
  EXPECT_EQ(img.width, 2 * 4 + 2);
  EXPECT_EQ(img.height, 2 * 4 + 2);
  EXPECT_EQ(img.channels, 1);
  auto at = [&](int64_t px, int64_t py) { return img.pixels[static_cast<size_t>(py * img.width + px)]; };
  EXPECT_EQ(at(2, 2), 0);    // image 0: -1 -> 0
  EXPECT_EQ(at(6, 2), 255);  // image 1: 1 -> 255
  EXPECT_EQ(at(2, 6), 128);  // image 2: 0 -> 127.5 rounds to 128
  EXPECT_EQ(at(0, 0), 40);   // gap
}

TEST(Png, WrittenFilesReadBackWithTheirSize) {
  TempDir tmp;
  const Image img = scatter_plot(torch::randn({100, 2}), torch::randn({50, 2}), 64);
  EXPECT_EQ(img.channels, 3);
  write_png(tmp.path("s.png"), img);
  const Image back = read_png(tmp.path("s.png"));
  EXPECT_EQ(back.width, 64);
  EXPECT_EQ(back.height, 64);
  EXPECT_EQ(back.channels, 3);
  EXPECT_EQ(tmp.entries(), std::vector<std::string>{"s.png"});
  EXPECT_THROW(write_png(tmp.path("no/dir/x.png"), img), std::exception);
}

TEST(MetricsLog, JsonLineHoldsEveryField) {
  StepMetrics m;
  m.step = 7;
  m.loss_d = 1.5;
  m.share_data = 0.25;
  const auto j = nlohmann::json::parse(MetricsLog::json_line(m));
  EXPECT_EQ(j["step"], 7);
  EXPECT_DOUBLE_EQ(j["loss_d"].get<double>(), 1.5);
  EXPECT_DOUBLE_EQ(j["time_share"]["data"].get<double>(), 0.25);
  EXPECT_NE(MetricsLog::console_line(m).find("step 7/0"), std::string::npos);
  // The penalty only in intervals that ran one (R1 or WGAN-GP).
  EXPECT_FALSE(j.contains("penalty"));
  EXPECT_EQ(MetricsLog::console_line(m).find("penalty"), std::string::npos);
  m.has_penalty = true;
  m.penalty = 0.125;
  EXPECT_DOUBLE_EQ(nlohmann::json::parse(MetricsLog::json_line(m))["penalty"].get<double>(), 0.125);
  EXPECT_NE(MetricsLog::console_line(m).find("  penalty 0.125"), std::string::npos) << MetricsLog::console_line(m);
  EXPECT_FALSE(j.contains("ranks"));  // one rank: no straggler report
}

TEST(MetricsLog, StragglersNameTheSlowestRankAndItsHost) {
  StepMetrics m;
  m.has_ranks = true;
  m.ranks = summarize_ranks({0.100, 0.125, 0.110, 0.100}, {0.001, 0.002, 0.030, 0.0}, {"a", "b", "c", "d"});
  EXPECT_EQ(m.ranks.slowest_rank, 1);
  EXPECT_EQ(m.ranks.slowest_host, "b");
  EXPECT_DOUBLE_EQ(m.ranks.busy_ms_min, 100);
  EXPECT_DOUBLE_EQ(m.ranks.busy_ms_median, 105);
  EXPECT_DOUBLE_EQ(m.ranks.busy_ms_max, 125);
  EXPECT_NEAR(m.ranks.spread, 0.25, 1e-12);
  EXPECT_EQ(m.ranks.data_rank, 2);
  EXPECT_DOUBLE_EQ(m.ranks.data_ms_max, 30);
  const auto j = nlohmann::json::parse(MetricsLog::json_line(m));
  EXPECT_EQ(j["ranks"]["slowest"], 1);
  EXPECT_EQ(j["ranks"]["slowest_host"], "b");
  EXPECT_DOUBLE_EQ(j["ranks"]["spread"].get<double>(), m.ranks.spread);
  EXPECT_NE(MetricsLog::console_line(m).find("slowest rank 1 (b) 125 ms/step, +25% over the fastest"), std::string::npos)
      << MetricsLog::console_line(m);
  // Ties go to the lowest rank; a missing host name is "?".
  const RankSpread tie = summarize_ranks({0.2, 0.2}, {0, 0}, {});
  EXPECT_EQ(tie.slowest_rank, 0);
  EXPECT_EQ(tie.slowest_host, "?");
  EXPECT_DOUBLE_EQ(tie.spread, 0);
}

TEST(ModelFile, SavedModelsLoadBackIdentically) {
  TempDir tmp;
  Config config;
  apply_override(config, "model.name=mlp");
  apply_override(config, "model.mlp_batchnorm=true");
  apply_override(config, "model.z_dim=5");
  const ModelSpec spec = model_spec(config, {3});
  GanModels models = build_models(spec);
  models.generator->forward(torch::randn({8, 5}));  // changes BatchNorm running statistics
  save_model_file(tmp.path("m.h5"), config, spec, models, 42);
  LoadedModels loaded = load_model_file(tmp.path("m.h5"));
  EXPECT_EQ(loaded.step, 42);
  EXPECT_EQ(loaded.spec.sample_shape, std::vector<int64_t>{3});
  EXPECT_EQ(loaded.config.model.z_dim, 5);
  auto a = models.generator->named_buffers(), b = loaded.models.generator->named_buffers();
  for (const auto& item : a) EXPECT_TRUE(torch::equal(item.value(), b[item.key()])) << item.key();
  auto pa = models.discriminator->named_parameters(), pb = loaded.models.discriminator->named_parameters();
  for (const auto& item : pa) EXPECT_TRUE(torch::equal(item.value(), pb[item.key()])) << item.key();
}

TEST(ModelFile, AFileForAnotherModelIsRefusedNamingTheTensor) {
  TempDir tmp;
  Config config;
  apply_override(config, "model.name=mlp");
  const ModelSpec spec = model_spec(config, {2});
  GanModels models = build_models(spec);
  save_model_file(tmp.path("m.h5"), config, spec, models, 1);
  // Same file, but pretend the generator was narrower: rewrite it from a config with another width.
  Config narrow = config;
  apply_override(narrow, "model.mlp_width=8");
  GanModels small = build_models(model_spec(narrow, {2}));
  save_model_file(tmp.path("n.h5"), config, spec, small, 1);  // config says 256 wide, tensors are 8 wide
  try {
    load_model_file(tmp.path("n.h5"));
    FAIL() << "expected a shape mismatch";
  } catch (const data::DataError& e) {
    EXPECT_NE(std::string(e.what()).find("generator/0.weight has shape [8,100] but this run expects [256,100]"),
              std::string::npos)
        << e.what();
  }
}

TEST(ConsoleLog, TheLevelFiltersInfoAndWarningLines) {
  EXPECT_EQ(parse_log_level("warn"), LogLevel::kWarn);
  EXPECT_THROW(parse_log_level("verbose"), std::invalid_argument);
  set_log_level(LogLevel::kWarn);
  EXPECT_FALSE(log_enabled(LogLevel::kInfo));
  EXPECT_TRUE(log_enabled(LogLevel::kWarn));
  ::testing::internal::CaptureStdout();
  log_info("distgan: hidden %d\n", 1);
  EXPECT_EQ(::testing::internal::GetCapturedStdout(), "");
  set_log_level(LogLevel::kInfo);
  ::testing::internal::CaptureStdout();
  log_info("distgan: shown %d\n", 2);
  EXPECT_EQ(::testing::internal::GetCapturedStdout(), "distgan: shown 2\n");
  set_log_level(LogLevel::kError);
  ::testing::internal::CaptureStderr();
  log_warning("distgan: warning: hidden\n");
  EXPECT_EQ(::testing::internal::GetCapturedStderr(), "");
  set_log_level(LogLevel::kInfo);
}

// tests/data/model-v1-mlp.h5 was written by distgan before the tensor-file format (format
// distgan-model-1: module groups, no manifest): an MLP on 2-D data with 4 latent codes and an EMA,
// 2 steps. The sums were read from the file with h5py when it was made.
std::string legacy_model_copy(TempDir& tmp) {
  const std::string copy = tmp.path("legacy.h5");
  std::filesystem::copy_file(std::string(DISTGAN_TEST_DATA_DIR) + "/model-v1-mlp.h5", copy);
  return copy;
}

double sum_of(const torch::Tensor& t) { return t.to(torch::kFloat64).sum().item<double>(); }

TEST(ModelFile, AModelFileWrittenBeforeTheTensorFileFormatStillLoads) {
  TempDir tmp;
  const LoadedModels loaded = load_model_file(legacy_model_copy(tmp));
  EXPECT_EQ(loaded.step, 2);
  EXPECT_EQ(loaded.spec.sample_shape, (std::vector<int64_t>{2}));
  EXPECT_EQ(loaded.spec.latent_categories, 4);
  ASSERT_TRUE(loaded.models.generator_ema);
  EXPECT_NEAR(sum_of(loaded.models.generator->named_parameters()["1.weight"]), -0.1236165638838429, 1e-6);
  EXPECT_NEAR(sum_of(loaded.models.generator_ema->named_parameters()["0.codes"]), 0.22046726942062378, 1e-6);
  EXPECT_NEAR(sum_of(loaded.models.discriminator->named_parameters()["2.bias"]), 7.284095045179129e-05, 1e-9);
}

TEST(ModelFile, ANewModelFileIsATensorFileWithChecksums) {
  TempDir tmp;
  Config config;
  apply_override(config, "model.name=mlp");
  const ModelSpec spec = model_spec(config, {2});
  GanModels models = build_models(spec);
  save_model_file(tmp.path("m.h5"), config, spec, models, 7);
  TensorFileReader reader(tmp.path("m.h5"), {"model file", {kModelFileFormat}});
  EXPECT_EQ(reader.format(), "distgan-model-2");
  EXPECT_EQ(reader.attribute("sample_shape"), "2");
  EXPECT_EQ(reader.integer_attribute("step", 0, 100), 7);
  EXPECT_FALSE(reader.tensor_names("generator/").empty());
  EXPECT_NO_THROW(reader.verify_all());
  const LoadedModels loaded = load_model_file(tmp.path("m.h5"));
  EXPECT_TRUE(torch::equal(loaded.models.generator->parameters().front(), models.generator->parameters().front()));
}

TEST(ModelFile, FilesFromBeforeTheCodeReseedCountsStillLoad) {
  TempDir tmp;
  const std::string path = legacy_model_copy(tmp);
  auto remove = [&](const char* name) {
    const hid_t file = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
    ASSERT_GE(file, 0);
    EXPECT_GE(H5Ldelete(file, name, H5P_DEFAULT), 0) << name;
    H5Fclose(file);
  };
  remove("/generator/0.off_data_checks");  // as written before the counts existed
  remove("/generator_ema/0.off_data_checks");
  LoadedModels loaded = load_model_file(path);
  EXPECT_NEAR(sum_of(loaded.models.generator_ema->named_parameters()["0.codes"]), 0.22046726942062378, 1e-6);
  EXPECT_TRUE(
      torch::equal(loaded.models.generator->named_buffers()["0.off_data_checks"], torch::zeros({4}, torch::kInt64)));
  remove("/generator/0.codes");  // anything else missing is still refused
  try {
    load_model_file(path);
    FAIL() << "a file without the codes was accepted";
  } catch (const data::DataError& e) {
    EXPECT_NE(std::string(e.what()).find("/generator/0.codes is missing"), std::string::npos) << e.what();
  }
}

TEST(ClassifierFile, AClassifierWrittenBeforeTheTensorFileFormatStillLoadsAndANewOneRoundTrips) {
  TempDir tmp;
  // tests/data/classifier-v1.h5: format distgan-classifier-1, 8x8 grey images, 3 classes.
  TrainedClassifier old = load_classifier(std::string(DISTGAN_TEST_DATA_DIR) + "/classifier-v1.h5");
  EXPECT_EQ(old.sample_shape, (std::vector<int64_t>{1, 8, 8}));
  EXPECT_EQ(old.num_classes, 3);
  EXPECT_DOUBLE_EQ(old.test_accuracy, 0.375);
  EXPECT_EQ(old.test_file, "te.h5");
  EXPECT_NEAR(sum_of(old.model->out->weight), -1.6386454146995675, 1e-5);
  save_classifier(tmp.path("c.h5"), old);
  EXPECT_EQ(TensorFileReader(tmp.path("c.h5"), {"classifier file", {kClassifierFormat}}).format(),
            "distgan-classifier-2");
  TrainedClassifier again = load_classifier(tmp.path("c.h5"));
  EXPECT_EQ(again.sample_shape, old.sample_shape);
  EXPECT_EQ(again.train_file, "tr.h5");
  EXPECT_TRUE(torch::equal(again.model->out->weight, old.model->out->weight));
  EXPECT_TRUE(torch::equal(again.model->conv1->weight, old.model->conv1->weight));
}

}  // namespace
}  // namespace distgan
