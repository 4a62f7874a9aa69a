// The prefetching loader: the values it delivers are the values written, in the sampler's order,
// epoch after epoch; it resumes from a position; errors in its thread reach the caller.
#include <gtest/gtest.h>

#include <filesystem>
#include <set>

#include "data/dataset_writer.h"
#include "data/prefetch_loader.h"
#include "tests/test_util.h"

namespace distgan::data {
namespace {

using testing::TempDir;

// N vector samples [N, 2] whose values encode the index: (i, -i); labels i % 7.
std::string write_indexed(const TempDir& tmp, int64_t n) {
  DatasetContents c;
  c.name = "/samples";
  c.shape = {n, 2};
  for (int64_t i = 0; i < n; ++i) {
    c.f32.push_back(static_cast<float>(i));
    c.f32.push_back(-static_cast<float>(i));
    c.labels.push_back(i % 7);
  }
  write_dataset_file(tmp.path("indexed.h5"), c);
  return tmp.path("indexed.h5");
}

LoaderOptions options(const std::string& path, int world, int rank, int64_t batch) {
  LoaderOptions o;
  o.reader.path = path;
  o.reader.dataset = "/samples";
  o.world_size = world;
  o.rank = rank;
  o.batch_size = batch;
  o.seed = 11;
  o.prefetch_batches = 2;
  return o;
}

TEST(PrefetchLoader, DeliversTheShardsValuesBatchByBatch) {
  TempDir tmp;
  const std::string path = write_indexed(tmp, 103);
  const LoaderOptions o = options(path, 2, 1, 10);
  PrefetchLoader loader(o);
  EXPECT_EQ(loader.batches_per_epoch(), 5);  // 103 / (2 * 10) whole global batches
  ShardSpec spec{103, 2, 1, 10, 11, true, Remainder::kDrop};
  for (int64_t epoch = 0; epoch < 2; ++epoch) {
    const auto shard = shard_indices(spec, epoch);
    for (int64_t b = 0; b < 5; ++b) {
      const Batch batch = loader.next();
      EXPECT_EQ(batch.epoch, epoch);
      EXPECT_EQ(batch.batch, b);
      const std::set<int64_t> expected(shard.begin() + b * 10, shard.begin() + (b + 1) * 10);
      EXPECT_EQ(std::set<int64_t>(batch.indices.begin(), batch.indices.end()), expected);
      ASSERT_EQ(batch.data.sizes(), (std::vector<int64_t>{10, 2}));
      for (int64_t i = 0; i < 10; ++i) {
        const int64_t index = batch.indices[static_cast<size_t>(i)];
        ASSERT_EQ(batch.data[i][0].item<float>(), static_cast<float>(index));
        ASSERT_EQ(batch.data[i][1].item<float>(), -static_cast<float>(index));
        ASSERT_EQ(batch.labels[i].item<int64_t>(), index % 7);
      }
    }
  }
}

TEST(PrefetchLoader, StartingMidEpochGivesTheSameBatchesAsRunningThrough) {
  TempDir tmp;
  const std::string path = write_indexed(tmp, 64);
  PrefetchLoader through(options(path, 1, 0, 8));
  std::vector<std::vector<int64_t>> seen;
  for (int i = 0; i < 12; ++i) seen.push_back(through.next().indices);  // epochs 0 and 1 (8 batches each)
  LoaderOptions resume = options(path, 1, 0, 8);
  resume.start_epoch = 1;
  resume.start_batch = 2;
  PrefetchLoader resumed(resume);
  for (int i = 10; i < 12; ++i) {
    const Batch b = resumed.next();
    EXPECT_EQ(b.epoch, 1);
    EXPECT_EQ(b.indices, seen[static_cast<size_t>(i)]) << "batch " << i;
  }
}

TEST(PrefetchLoader, TooFewSamplesForOneStepIsAClearError) {
  TempDir tmp;
  const std::string path = write_indexed(tmp, 30);
  try {
    PrefetchLoader loader(options(path, 4, 0, 8));
    FAIL() << "expected a DataError";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("holds 30 samples, fewer than one step needs: 4 ranks x batch size 8 = 32"),
              std::string::npos)
        << e.what();
  }
}

// A source that fails when asked for a given index.
class FailingSource : public SampleSource {
 public:
  explicit FailingSource(int64_t bad) : bad_(bad) {}
  int64_t size() const override { return 40; }
  std::vector<int64_t> sample_shape() const override { return {1}; }
  bool has_labels() const override { return false; }
  std::string name() const override { return "failing"; }
  void read(const std::vector<int64_t>& indices, float* out, int64_t*) override {
    for (size_t i = 0; i < indices.size(); ++i) {
      if (indices[i] == bad_) throw DataError("failing.h5: sample " + std::to_string(bad_) + " is unreadable");
      out[i] = static_cast<float>(indices[i]);
    }
  }

 private:
  int64_t bad_;
};

TEST(PrefetchLoader, AnErrorInTheThreadSurfacesInNextWithTheFileAndIndex) {
  LoaderOptions o;
  o.batch_size = 4;
  o.shuffle = false;  // batches are 0-3, 4-7, ...: index 9 is in the third batch
  PrefetchLoader loader(std::make_unique<FailingSource>(9), o);
  EXPECT_EQ(loader.next().indices, (std::vector<int64_t>{0, 1, 2, 3}));
  EXPECT_EQ(loader.next().indices, (std::vector<int64_t>{4, 5, 6, 7}));
  try {
    loader.next();
    FAIL() << "expected the thread's error";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("failing.h5: sample 9 is unreadable"), std::string::npos) << e.what();
  }
  EXPECT_THROW(loader.next(), DataError);  // and it stays failed
}

TEST(PrefetchLoader, AFileTruncatedWhileReadingGivesAnErrorNamingIt) {
  TempDir tmp;
  DatasetContents c;
  c.shape = {4000, 1, 28, 28};
  c.u8.resize(4000 * 784);
  for (size_t i = 0; i < c.u8.size(); ++i) c.u8[i] = static_cast<uint8_t>(i * 2654435761u >> 24);  // incompressible
  write_dataset_file(tmp.path("big.h5"), c);
  LoaderOptions o = options(tmp.path("big.h5"), 1, 0, 16);
  o.reader.dataset = "/images";
  o.reader.chunk_cache_bytes = 0;
  o.prefetch_batches = 1;
  PrefetchLoader loader(o);
  loader.next();
  std::filesystem::resize_file(tmp.path("big.h5"), std::filesystem::file_size(tmp.path("big.h5")) / 10);
  try {
    for (int i = 0; i < 50; ++i) loader.next();
    FAIL() << "reads past the end of a truncated file should fail";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find(tmp.path("big.h5") + ": reading samples ["), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace distgan::data
