// Run on 2 ranks by ctest: each rank reads its shard of the same file through the loader; the
// union of what the ranks read is exactly the epoch, with no sample read twice.
#include <gtest/gtest.h>
#include <mpi.h>

#include <numeric>
#include <set>

#include "data/dataset_writer.h"
#include "data/prefetch_loader.h"
#include "tests/test_util.h"

namespace distgan::data {
namespace {

int rank() {
  int r = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &r);
  return r;
}

int world_size() {
  int s = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &s);
  return s;
}

TEST(MpiShards, UnionOfTheRanksReadsIsTheEpoch) {
  // Rank 0 writes the file; the name travels to the others.
  constexpr int64_t kSamples = 1000, kBatch = 25;
  std::unique_ptr<testing::TempDir> tmp;
  char path[4096] = {0};
  if (rank() == 0) {
    tmp = std::make_unique<testing::TempDir>();
    DatasetContents c;
    c.name = "/samples";
    c.shape = {kSamples, 3};
    for (int64_t i = 0; i < kSamples; ++i)
      for (int k = 0; k < 3; ++k) c.f32.push_back(static_cast<float>(i * 3 + k));
    write_dataset_file(tmp->path("shared.h5"), c);
    std::snprintf(path, sizeof(path), "%s", tmp->path("shared.h5").c_str());
  }
  MPI_Bcast(path, sizeof(path), MPI_CHAR, 0, MPI_COMM_WORLD);

  LoaderOptions o;
  o.reader.path = path;
  o.reader.dataset = "/samples";
  o.world_size = world_size();
  o.rank = rank();
  o.batch_size = kBatch;
  o.seed = 5;
  std::vector<int64_t> mine;
  {
    PrefetchLoader loader(o);
    for (int64_t b = 0; b < loader.batches_per_epoch(); ++b) {
      const Batch batch = loader.next();
      ASSERT_EQ(batch.epoch, 0);
      for (int64_t i = 0; i < kBatch; ++i) {
        const int64_t index = batch.indices[static_cast<size_t>(i)];
        ASSERT_EQ(batch.data[i][2].item<float>(), static_cast<float>(index * 3 + 2)) << "rank " << rank();
        mine.push_back(index);
      }
    }
  }
  const int count = static_cast<int>(mine.size());
  std::vector<int> counts(static_cast<size_t>(world_size()));
  MPI_Allgather(&count, 1, MPI_INT, counts.data(), 1, MPI_INT, MPI_COMM_WORLD);
  for (int c : counts) EXPECT_EQ(c, count) << "every rank reads the same number of samples";
  std::vector<int> offsets(counts.size(), 0);
  std::partial_sum(counts.begin(), counts.end() - 1, offsets.begin() + 1);
  std::vector<int64_t> all(static_cast<size_t>(offsets.back() + counts.back()));
  MPI_Allgatherv(mine.data(), count, MPI_INT64_T, all.data(), counts.data(), offsets.data(), MPI_INT64_T,
                 MPI_COMM_WORLD);
  const std::set<int64_t> unique(all.begin(), all.end());
  EXPECT_EQ(unique.size(), all.size()) << "a sample was read by two ranks";
  const auto order = epoch_order(kSamples, 5, 0, true);
  const int64_t kept = kSamples / (kBatch * world_size()) * kBatch * world_size();
  EXPECT_EQ(unique, std::set<int64_t>(order.begin(), order.begin() + kept));
  MPI_Barrier(MPI_COMM_WORLD);  // rank 0 removes the file only after everyone has read it
}

}  // namespace
}  // namespace distgan::data
