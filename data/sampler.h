// The distributed sampler: which dataset indices each rank reads in each epoch.
//
// Every epoch has one global order, a permutation seeded by (seed, epoch) that every rank computes
// identically. Global positions are dealt to ranks round-robin (position p goes to rank p % W), so
// per-rank batch k of every rank together covers the contiguous global positions
// [k*W*B, (k+1)*W*B): a "global sample position" means the same thing at any world size W with the
// same global batch W*B. Each rank gets the same number of samples, a multiple of its batch size B:
// the remainder of the epoch is dropped, or filled by wrapping around to the start of the order.
// Pure functions: no MPI, no files.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace distgan::data {

// splitmix64 (Steele et al.): a 64-bit mixing function that turns nearby seeds (seed, epoch, step)
// into unrelated ones before they seed a generator. The trainer's noise streams use it too.
inline uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

enum class Remainder { kDrop, kWrap };

Remainder parse_remainder(const std::string& name);  // "drop" | "wrap"

struct ShardSpec {
  int64_t num_samples = 0;  // N, samples in the dataset
  int world_size = 1;       // W
  int rank = 0;             // this rank, in [0, W)
  int64_t batch_size = 1;   // B, per-rank batch: each rank's share is a multiple of it
  uint64_t seed = 0;
  bool shuffle = true;      // false: the global order is 0..N-1 every epoch
  Remainder remainder = Remainder::kDrop;
};

// Samples each rank reads per epoch (0 when N < W*B and the remainder is dropped).
int64_t samples_per_rank(const ShardSpec& spec);

// The epoch's global order: a permutation of 0..N-1, identical on every rank.
std::vector<int64_t> epoch_order(int64_t num_samples, uint64_t seed, int64_t epoch, bool shuffle);

// This rank's indices for the epoch, in the order they are consumed (batch after batch).
// Throws std::invalid_argument for an inconsistent spec.
std::vector<int64_t> shard_indices(const ShardSpec& spec, int64_t epoch);

}  // namespace distgan::data
