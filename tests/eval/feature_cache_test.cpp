// The real-feature cache: keys follow the bytes, files round-trip, and a bad cache or an
// unwritable place is a warning, never an error.
#include "trainer/eval/feature_cache.h"

#include <gtest/gtest.h>
#include <hdf5.h>
#include <torch/torch.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "tests/test_util.h"

namespace distgan::eval {
namespace {

using distgan::testing::TempDir;
using distgan::testing::write_text;

void write_bytes(const std::string& path, const std::string& bytes) { std::ofstream(path, std::ios::binary) << bytes; }

std::string file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

TEST(FeatureCache, KeyFollowsEveryByteAndTheExtraText) {
  TempDir dir;
  std::string content(1 << 20, '\0');
  for (size_t i = 0; i < content.size(); ++i) content[i] = static_cast<char>(i * 7 + 3);
  write_bytes(dir.path("a.h5"), content);
  const std::string key = content_key({dir.path("a.h5")}, "inception,n=10000,split=train");
  EXPECT_EQ(key.size(), 24u);
  EXPECT_EQ(key.find_first_not_of("0123456789abcdef"), std::string::npos);

  // Same bytes under another name: same key (the cache survives renames and copies).
  write_bytes(dir.path("copy.h5"), content);
  EXPECT_EQ(content_key({dir.path("copy.h5")}, "inception,n=10000,split=train"), key);
  // One byte changed, in the middle or at the very end.
  std::string changed = content;
  changed[content.size() / 2] ^= 1;
  write_bytes(dir.path("a.h5"), changed);
  EXPECT_NE(content_key({dir.path("a.h5")}, "inception,n=10000,split=train"), key);
  changed = content;
  changed.back() ^= 0x80;
  write_bytes(dir.path("a.h5"), changed);
  EXPECT_NE(content_key({dir.path("a.h5")}, "inception,n=10000,split=train"), key);
  // The extra text is part of the key; so is where one file ends and the next begins.
  EXPECT_NE(content_key({dir.path("copy.h5")}, "inception,n=5000,split=train"), key);
  write_text(dir.path("ab"), "ab");
  write_text(dir.path("c"), "c");
  write_text(dir.path("a"), "a");
  write_text(dir.path("bc"), "bc");
  EXPECT_NE(content_key({dir.path("ab"), dir.path("c")}, ""), content_key({dir.path("a"), dir.path("bc")}, ""));
  EXPECT_THROW(content_key({dir.path("missing.h5")}, ""), std::exception);
}

TEST(FeatureCache, PathSitsBesideTheDataset) {
  EXPECT_EQ(cache_path("/data/mnist.h5", "00ff"), "/data/mnist.h5.eval-cache/00ff.h5");
}

TEST(FeatureCache, RoundTripKeepsValuesAndCreatesTheDirectory) {
  TempDir dir;
  const std::string path = cache_path(dir.path("set.h5"), "k1");
  EXPECT_FALSE(load_cached_features(path).has_value());  // a plain miss
  const torch::Tensor features = torch::randn({37, 5}, torch::kFloat64);
  save_cached_features(path, features, "test features");
  const auto loaded = load_cached_features(path);
  ASSERT_TRUE(loaded.has_value());
  EXPECT_EQ(loaded->scalar_type(), torch::kFloat32);
  EXPECT_TRUE(torch::equal(*loaded, features.to(torch::kFloat32)));
  // Nothing but the final file is left behind (no temporary files).
  std::vector<std::string> names;
  for (const auto& entry : std::filesystem::directory_iterator(std::filesystem::path(path).parent_path()))
    names.push_back(entry.path().filename().string());
  EXPECT_EQ(names, std::vector<std::string>{"k1.h5"});
}

TEST(FeatureCache, DamagedOrForeignFilesAreMisses) {
  TempDir dir;
  const std::string path = dir.path("cache.h5");
  write_bytes(path, "not an HDF5 file at all");
  EXPECT_FALSE(load_cached_features(path).has_value());

  // A valid cache cut in half.
  save_cached_features(path, torch::randn({2000, 16}), "to be truncated");
  ASSERT_TRUE(load_cached_features(path).has_value());
  const std::string whole = file_bytes(path);
  write_bytes(path, whole.substr(0, whole.size() / 2));
  EXPECT_FALSE(load_cached_features(path).has_value());

  // An HDF5 file with a /features dataset that distgan did not write as a cache (no format).
  const float values[8] = {1, 2, 3, 4, 5, 6, 7, 8};
  distgan::testing::write_h5_array(dir.path("foreign.h5"), "features", H5T_NATIVE_FLOAT, {4, 2}, values);
  EXPECT_FALSE(load_cached_features(dir.path("foreign.h5")).has_value());
}

TEST(FeatureCache, UnwritablePlaceIsAWarningNotAnError) {
  TempDir dir;
  // The dataset's "directory" is a regular file, so the cache directory cannot be made.
  write_text(dir.path("plain-file"), "x");
  const std::string path = cache_path(dir.path("plain-file") + "/set.h5", "k");
  EXPECT_NO_THROW(save_cached_features(path, torch::ones({3, 2}), "d"));
  EXPECT_FALSE(load_cached_features(path).has_value());
  EXPECT_THROW(save_cached_features(path, torch::ones({3}), "d"), std::invalid_argument);
}

}  // namespace
}  // namespace distgan::eval
