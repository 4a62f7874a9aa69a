// Sample images (grids, scatter plots, PNG files), metrics lines, and the model file round trip.
#include <gtest/gtest.h>

#include <hdf5.h>
#include <nlohmann/json.hpp>

#include "data/data_error.h"
#include "tests/test_util.h"
#include "trainer/outputs/metrics_log.h"
#include "trainer/state/model_file.h"
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
    EXPECT_NE(std::string(e.what()).find("/generator/0.weight has shape [8, 100] but the model expects [256, 100]"),
              std::string::npos)
        << e.what();
  }
}

TEST(ModelFile, FilesFromBeforeTheCodeReseedCountsStillLoad) {
  TempDir tmp;
  Config config;
  apply_override(config, "model.name=mlp");
  apply_override(config, "model.z_dim=4");
  apply_override(config, "model.latent_categories=16");
  const ModelSpec spec = model_spec(config, {2});
  GanModels models = build_models(spec);
  save_model_file(tmp.path("m.h5"), config, spec, models, 1);
  auto remove = [&](const char* name) {
    const hid_t file = H5Fopen(tmp.path("m.h5").c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
    ASSERT_GE(file, 0);
    EXPECT_GE(H5Ldelete(file, name, H5P_DEFAULT), 0) << name;
    H5Fclose(file);
  };
  remove("/generator/0.off_data_checks");  // as written before the counts existed
  remove("/generator_ema/0.off_data_checks");
  LoadedModels loaded = load_model_file(tmp.path("m.h5"));
  EXPECT_TRUE(torch::equal(loaded.models.generator->named_parameters()["0.codes"],
                           models.generator->named_parameters()["0.codes"]));
  EXPECT_TRUE(
      torch::equal(loaded.models.generator->named_buffers()["0.off_data_checks"], torch::zeros({16}, torch::kInt64)));
  remove("/generator/0.codes");  // anything else missing is still refused
  try {
    load_model_file(tmp.path("m.h5"));
    FAIL() << "a file without the codes was accepted";
  } catch (const data::DataError& e) {
    EXPECT_NE(std::string(e.what()).find("/generator/0.codes is missing"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace distgan
