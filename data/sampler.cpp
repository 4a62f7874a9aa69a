#include "data/sampler.h"

#include <random>
#include <stdexcept>

namespace distgan::data {

Remainder parse_remainder(const std::string& name) {
  if (name == "drop") return Remainder::kDrop;
  if (name == "wrap") return Remainder::kWrap;
  throw std::invalid_argument("unknown remainder policy '" + name + "' (expected drop or wrap)");
}

namespace {

void validate(const ShardSpec& s) {
  if (s.num_samples < 0) throw std::invalid_argument("sampler: negative number of samples");
  if (s.world_size < 1) throw std::invalid_argument("sampler: world size must be >= 1");
  if (s.rank < 0 || s.rank >= s.world_size)
    throw std::invalid_argument("sampler: rank " + std::to_string(s.rank) + " outside [0, " +
                                std::to_string(s.world_size) + ")");
  if (s.batch_size < 1) throw std::invalid_argument("sampler: batch size must be >= 1");
}

}  // namespace

int64_t samples_per_rank(const ShardSpec& s) {
  validate(s);
  const int64_t global_batch = s.world_size * s.batch_size;
  const int64_t batches = s.remainder == Remainder::kDrop
                              ? s.num_samples / global_batch
                              : (s.num_samples + global_batch - 1) / global_batch;
  return batches * s.batch_size;
}

std::vector<int64_t> epoch_order(int64_t num_samples, uint64_t seed, int64_t epoch, bool shuffle) {
  std::vector<int64_t> order(static_cast<size_t>(num_samples));
  for (int64_t i = 0; i < num_samples; ++i) order[static_cast<size_t>(i)] = i;
  if (!shuffle) return order;
  // Fisher-Yates with mt19937_64's raw output (fully specified by the standard, unlike
  // std::shuffle and the distributions), so every platform and compiler gives the same order.
  // splitmix64 decorrelates nearby (seed, epoch) pairs before they seed the generator.
  std::mt19937_64 rng(splitmix64(seed ^ splitmix64(static_cast<uint64_t>(epoch))));
  for (int64_t i = num_samples - 1; i > 0; --i) {
    const auto bound = static_cast<unsigned __int128>(i + 1);
    const auto j = static_cast<int64_t>((static_cast<unsigned __int128>(rng()) * bound) >> 64);
    std::swap(order[static_cast<size_t>(i)], order[static_cast<size_t>(j)]);
  }
  return order;
}

std::vector<int64_t> shard_indices(const ShardSpec& s, int64_t epoch) {
  const int64_t per_rank = samples_per_rank(s);
  std::vector<int64_t> mine;
  if (per_rank == 0) return mine;
  const std::vector<int64_t> order = epoch_order(s.num_samples, s.seed, epoch, s.shuffle);
  mine.reserve(static_cast<size_t>(per_rank));
  for (int64_t i = 0; i < per_rank; ++i) {
    const int64_t position = i * s.world_size + s.rank;  // wraps past N in kWrap mode
    mine.push_back(order[static_cast<size_t>(position % s.num_samples)]);
  }
  return mine;
}

}  // namespace distgan::data
