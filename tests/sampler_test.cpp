// Properties of the distributed sampler (data/sampler.h) over several dataset sizes, world sizes
// and batch sizes.
#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "data/sampler.h"

namespace distgan::data {
namespace {

struct Case {
  int64_t n;
  int world;
  int64_t batch;
};

const Case kCases[] = {{10, 1, 1}, {10, 2, 1}, {10, 3, 2}, {97, 4, 5}, {1000, 2, 64}, {1000, 3, 7},
                       {60000, 2, 64}, {5, 5, 1}, {128, 8, 16}};

ShardSpec spec_for(const Case& c, int rank, Remainder r) {
  ShardSpec s;
  s.num_samples = c.n;
  s.world_size = c.world;
  s.rank = rank;
  s.batch_size = c.batch;
  s.seed = 42;
  s.remainder = r;
  return s;
}

TEST(Sampler, EpochOrderIsAPermutation) {
  for (int64_t n : {1, 2, 17, 1000}) {
    auto order = epoch_order(n, 7, 3, true);
    std::sort(order.begin(), order.end());
    for (int64_t i = 0; i < n; ++i) ASSERT_EQ(order[i], i) << "n=" << n;
  }
}

TEST(Sampler, ShardsAreDisjointEqualAndCoverTheKeptPartOfTheEpochWhenDropping) {
  for (const Case& c : kCases) {
    const int64_t per_rank = samples_per_rank(spec_for(c, 0, Remainder::kDrop));
    EXPECT_EQ(per_rank, c.n / (c.world * c.batch) * c.batch) << c.n;
    std::set<int64_t> seen;
    for (int r = 0; r < c.world; ++r) {
      const auto shard = shard_indices(spec_for(c, r, Remainder::kDrop), 5);
      ASSERT_EQ(static_cast<int64_t>(shard.size()), per_rank) << "n=" << c.n << " rank " << r;
      for (int64_t i : shard) {
        ASSERT_GE(i, 0);
        ASSERT_LT(i, c.n);
        ASSERT_TRUE(seen.insert(i).second) << "index " << i << " given twice, n=" << c.n << " world=" << c.world;
      }
    }
    // Together the shards are exactly the first W*per_rank positions of the epoch's order.
    const auto order = epoch_order(c.n, 42, 5, true);
    const std::set<int64_t> expected(order.begin(), order.begin() + per_rank * c.world);
    EXPECT_EQ(seen, expected) << "n=" << c.n << " world=" << c.world;
  }
}

TEST(Sampler, WrapCoversEveryIndexAndRepeatsOnlyTheWrappedPadding) {
  for (const Case& c : kCases) {
    const int64_t per_rank = samples_per_rank(spec_for(c, 0, Remainder::kWrap));
    const int64_t global = c.world * c.batch;
    EXPECT_EQ(per_rank * c.world, (c.n + global - 1) / global * global);
    std::multiset<int64_t> seen;
    for (int r = 0; r < c.world; ++r) {
      const auto shard = shard_indices(spec_for(c, r, Remainder::kWrap), 1);
      ASSERT_EQ(static_cast<int64_t>(shard.size()), per_rank);
      seen.insert(shard.begin(), shard.end());
    }
    for (int64_t i = 0; i < c.n; ++i) ASSERT_GE(seen.count(i), 1u) << "index " << i << " missing, n=" << c.n;
    EXPECT_EQ(static_cast<int64_t>(seen.size()) - c.n, per_rank * c.world - c.n);
  }
}

TEST(Sampler, SameEpochGivesTheSameShardAndEpochsDiffer) {
  const Case c{1000, 2, 10};
  const auto a = shard_indices(spec_for(c, 1, Remainder::kDrop), 3);
  const auto b = shard_indices(spec_for(c, 1, Remainder::kDrop), 3);
  const auto next = shard_indices(spec_for(c, 1, Remainder::kDrop), 4);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, next);
  ShardSpec other_seed = spec_for(c, 1, Remainder::kDrop);
  other_seed.seed = 43;
  EXPECT_NE(a, shard_indices(other_seed, 3));
}

TEST(Sampler, GlobalBatchCoversTheSamePositionsAtAnyWorldSize) {
  // Global batch k of W ranks with batch B is the order's positions [k*W*B, (k+1)*W*B), so a
  // position means the same with 1 rank of batch 8 as with 2 of 4 or 4 of 2.
  const int64_t n = 100, global = 8;
  const auto order = epoch_order(n, 42, 2, true);
  for (int world : {1, 2, 4}) {
    std::vector<std::set<int64_t>> batches(n / global);
    for (int r = 0; r < world; ++r) {
      const auto shard = shard_indices(spec_for({n, world, global / world}, r, Remainder::kDrop), 2);
      for (size_t i = 0; i < shard.size(); ++i) batches[i / (global / world)].insert(shard[i]);
    }
    for (size_t k = 0; k < batches.size(); ++k)
      EXPECT_EQ(batches[k], std::set<int64_t>(order.begin() + k * global, order.begin() + (k + 1) * global))
          << "world " << world << " batch " << k;
  }
}

TEST(Sampler, NoShuffleKeepsTheDatasetOrder) {
  ShardSpec s = spec_for({10, 2, 1}, 1, Remainder::kDrop);
  s.shuffle = false;
  EXPECT_EQ(shard_indices(s, 9), (std::vector<int64_t>{1, 3, 5, 7, 9}));
}

TEST(Sampler, OrderIsStableAcrossPlatforms) {
  // Pinned values: the order must not change with the compiler or standard library, or a resumed
  // run on another machine would read different samples.
  EXPECT_EQ(epoch_order(8, 0, 0, true), (std::vector<int64_t>{4, 1, 7, 6, 5, 2, 0, 3}));
}

TEST(Sampler, RejectsInconsistentSpecs) {
  ShardSpec s = spec_for({10, 2, 1}, 2, Remainder::kDrop);
  EXPECT_THROW(shard_indices(s, 0), std::invalid_argument);
  s.rank = 0;
  s.batch_size = 0;
  EXPECT_THROW(samples_per_rank(s), std::invalid_argument);
  EXPECT_THROW(parse_remainder("drop_last"), std::invalid_argument);
}

}  // namespace
}  // namespace distgan::data
