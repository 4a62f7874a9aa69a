#include "trainer/eval/knn.h"

#include <algorithm>

namespace distgan::eval::detail {

namespace {

constexpr int64_t kBlockElements = int64_t{8} << 20;  // 8 Mi doubles = 64 MiB

// Entry `index` (0-based) of each row of d2 sorted ascending, written to out[begin, begin + rows).
void kth_smallest_into(const torch::Tensor& d2, int64_t index, torch::Tensor& out, int64_t begin) {
  const torch::Tensor smallest = std::get<0>(d2.topk(index + 1, /*dim=*/1, /*largest=*/false, /*sorted=*/true));
  out.narrow(0, begin, d2.size(0)).copy_(smallest.select(1, index));
}

}  // namespace

int64_t block_rows(int64_t columns) { return std::max<int64_t>(1, kBlockElements / std::max<int64_t>(1, columns)); }

// |a|^2 + |b|^2 - 2 a.b: one matrix product; float64 keeps the cancellation harmless. In place: one
// block-sized buffer instead of three temporaries.
torch::Tensor squared_distances(const torch::Tensor& a, const torch::Tensor& b, const torch::Tensor& b_norms) {
  const torch::Tensor a_norms = a.pow(2).sum(1, /*keepdim=*/true);
  return a.mm(b.t()).mul_(-2.0).add_(a_norms).add_(b_norms).clamp_min_(0);
}

// The smallest entry of a row is the point itself (0), so the k-th other neighbour is entry k.
torch::Tensor knn_squared_radii(const torch::Tensor& x, int64_t k) { return kth_nearest_squared(x, x, k + 1); }

torch::Tensor kth_nearest_squared(const torch::Tensor& query, const torch::Tensor& ref, int64_t k) {
  const torch::Tensor norms = ref.pow(2).sum(1).unsqueeze(0);
  torch::Tensor out = torch::empty({query.size(0)}, query.options());
  const int64_t step = block_rows(ref.size(0));
  for (int64_t begin = 0; begin < query.size(0); begin += step) {
    const int64_t rows = std::min(step, query.size(0) - begin);
    kth_smallest_into(squared_distances(query.narrow(0, begin, rows), ref, norms), k - 1, out, begin);
  }
  return out;
}

}  // namespace distgan::eval::detail
