// The evaluation engine (trainer/eval/evaluation.h) on small files: the 2-D mixture protocol on real
// mixture points, image metrics through a TorchScript feature extractor this test builds itself,
// the real-feature cache beside the dataset, and clear errors for unusable extractors.
#include <gtest/gtest.h>
#include <torch/script.h>

#include <filesystem>

#include "data/dataset_writer.h"
#include "data/importers.h"
#include "tests/test_util.h"
#include "trainer/eval/feature_cache.h"
#include "trainer/eval/evaluation.h"

namespace distgan {
namespace {

using testing::TempDir;

// Images [n, 1, 28, 28] uint8 with a per-image brightness pattern, as /images.
void write_images(const std::string& path, int64_t n, int offset) {
  data::WriteOptions w;
  w.overwrite = true;
  data::DatasetContents c;
  c.name = "/images";
  c.shape = {n, 1, 28, 28};
  c.u8.resize(static_cast<size_t>(n * 784));
  for (int64_t i = 0; i < n; ++i)
    for (int64_t p = 0; p < 784; ++p)
      c.u8[static_cast<size_t>(i * 784 + p)] = static_cast<uint8_t>((i * 37 + p * (1 + i % 5) + offset) % 256);
  data::write_dataset_file(path, c, w);
}

// A TorchScript module mapping [N, 1, 28, 28] to 8 features: a fixed random projection.
void write_torchscript_extractor(const std::string& path, bool wrong_shape = false) {
  torch::jit::Module m("Features");
  torch::manual_seed(1);
  m.register_parameter("w", torch::randn({784, 8}) / 28.0, false);
  m.define(wrong_shape ? "def forward(self, x):\n    return x\n"
                       : "def forward(self, x):\n    return torch.flatten(x, 1).mm(self.w)\n");
  m.save(path);
}

// The reference subset as the evaluator reads it: all of a small file, scaled to [-1, 1].
torch::Tensor all_images(const std::string& path) {
  data::ReaderOptions o;
  o.path = path;
  data::DatasetReader reader(o);
  std::vector<int64_t> indices(static_cast<size_t>(reader.size()));
  for (size_t i = 0; i < indices.size(); ++i) indices[i] = static_cast<int64_t>(i);
  torch::Tensor out = torch::empty({reader.size(), 1, 28, 28});
  reader.read(indices, out.data_ptr<float>(), nullptr);
  return out;
}

double metric(const EvalResult& r, const std::string& name) {
  for (const auto& [key, value] : r.metrics)
    if (key == name) return value;
  ADD_FAILURE() << "no metric " << name << " in " << r.text();
  return -1;
}

TEST(Evaluation, MixtureProtocolOnRealPointsCapturesEveryMode) {
  TempDir dir;
  data::MixtureSpec spec;
  spec.kind = data::Mixture::kGrid;
  spec.num_samples = 5000;
  data::write_dataset_file(dir.path("grid.h5"), data::make_mixture(spec), {});
  EvalOptions o;
  o.real.path = dir.path("grid.h5");
  o.real.dataset = "/samples";
  Evaluator e(o, {2});
  EXPECT_EQ(e.sample_count(), 2500);
  spec.seed = 9;  // other points from the same mixture
  const data::DatasetContents other = data::make_mixture(spec);
  const torch::Tensor points = torch::from_blob(const_cast<float*>(other.f32.data()), {5000, 2}).narrow(0, 0, 2500).clone();
  const EvalResult r = e.evaluate(points, {});
  EXPECT_EQ(metric(r, "modes_captured"), 25);
  EXPECT_NEAR(metric(r, "high_quality"), 1 - std::exp(-4.5), 0.01);  // P(|x - mode| < 3 std) in 2-D
  EXPECT_LT(metric(r, "reverse_kl"), 0.02);
  EXPECT_LT(metric(r, "sliced_wasserstein"), 0.1);  // sampling noise of 2,500 vs 5,000 points
  // All points on one mode: 1 mode, KL = log 25.
  const EvalResult collapsed = e.evaluate(torch::zeros({2500, 2}), {});
  EXPECT_EQ(metric(collapsed, "modes_captured"), 1);
  EXPECT_NEAR(metric(collapsed, "reverse_kl"), std::log(25.0), 1e-9);
  EXPECT_GT(metric(collapsed, "sliced_wasserstein"), 1.0);
}

TEST(Evaluation, TorchScriptFeaturesScoreTheReferenceItselfAtZeroAndUseTheCache) {
  TempDir dir;
  write_images(dir.path("real.h5"), 300, 0);
  write_torchscript_extractor(dir.path("features.pt"));
  EvalOptions o;
  o.real.path = dir.path("real.h5");
  o.features = dir.path("features.pt");
  o.reference = 300;
  o.samples = 300;
  const torch::Tensor real = all_images(dir.path("real.h5"));
  {
    Evaluator e(o, {1, 28, 28});
    const EvalResult same = e.evaluate(real, {});
    EXPECT_LT(std::abs(metric(same, "fid")), 1e-6) << same.text();
    EXPECT_NEAR(metric(same, "precision"), 1.0, 1e-12);
    EXPECT_NEAR(metric(same, "recall"), 1.0, 1e-12);
    const EvalResult shifted = e.evaluate((real + 0.5).clamp(-1, 1), {});
    EXPECT_GT(metric(shifted, "fid"), 0.01) << shifted.text();
    EXPECT_GT(metric(shifted, "kid"), metric(same, "kid"));
  }
  // The real features were cached beside the dataset; a second evaluator reads them from there:
  // overwrite the cache with other features and the reference itself no longer scores 0.
  std::vector<std::string> cached;
  for (const auto& entry : std::filesystem::directory_iterator(dir.path("real.h5.eval-cache")))
    cached.push_back(entry.path().string());
  ASSERT_EQ(cached.size(), 1u);
  eval::save_cached_features(cached[0], torch::randn({300, 8}), "planted");
  Evaluator again(o, {1, 28, 28});
  EXPECT_GT(metric(again.evaluate(real, {}), "fid"), 0.1);
  // Another dataset (other bytes) gets its own cache entry, never the stale one.
  write_images(dir.path("real.h5"), 300, 1);
  Evaluator changed(o, {1, 28, 28});
  EXPECT_LT(std::abs(metric(changed.evaluate(all_images(dir.path("real.h5")), {}), "fid")), 1e-6);
}

TEST(Evaluation, UnusableExtractorsAreRefusedNamingTheFile) {
  TempDir dir;
  write_images(dir.path("real.h5"), 50, 0);
  EvalOptions o;
  o.real.path = dir.path("real.h5");
  o.reference = 50;
  const std::string none = testing::error_message<std::invalid_argument>([&] { Evaluator(o, {1, 28, 28}); });
  EXPECT_NE(none.find("image metrics need a feature extractor"), std::string::npos) << none;
  write_torchscript_extractor(dir.path("bad.pt"), /*wrong_shape=*/true);
  o.features = dir.path("bad.pt");
  const std::string shape = testing::error_message<data::DataError>([&] { Evaluator(o, {1, 28, 28}); });
  EXPECT_NE(shape.find("bad.pt: the TorchScript module returned [50, 1, 28, 28]"), std::string::npos) << shape;
  testing::write_text(dir.path("garbage.pt"), "not a module");
  o.features = dir.path("garbage.pt");
  const std::string garbage = testing::error_message<data::DataError>([&] { Evaluator(o, {1, 28, 28}); });
  EXPECT_NE(garbage.find("garbage.pt: not a TorchScript module"), std::string::npos) << garbage;
}

}  // namespace
}  // namespace distgan
