#include "trainer/run/distributed_eval.h"

#include <algorithm>
#include <vector>

#include "trainer/run/agreed_failure.h"

namespace distgan {

namespace {

// `t` ([n, ...] with n <= rows) padded with zeros to `rows` rows, so every rank gathers one shape.
torch::Tensor padded(const torch::Tensor& t, int64_t rows) {
  if (t.size(0) == rows) return t.contiguous();
  std::vector<int64_t> shape = t.sizes().vec();
  shape[0] = rows;
  torch::Tensor out = torch::zeros(shape, t.options());
  out.narrow(0, 0, t.size(0)).copy_(t);
  return out;
}

// Rank r's rows of `gathered` ([ranks, share, ...]) in sample order: the first count - r x share.
torch::Tensor unpadded(const torch::Tensor& gathered, int64_t count, int64_t share) {
  std::vector<torch::Tensor> parts;
  for (int64_t r = 0; r < gathered.size(0); ++r) {
    const int64_t rows = std::clamp<int64_t>(count - r * share, 0, share);
    if (rows > 0) parts.push_back(gathered[r].narrow(0, 0, rows));
  }
  return torch::cat(parts);
}

}  // namespace

std::optional<EvalResult> evaluate_across_ranks(Evaluator& evaluator, torch::nn::Sequential& g, const ModelSpec& spec,
                                                uint64_t seed, torch::Device device, cluster::Communicator& comm) {
  const int64_t count = evaluator.sample_count(), ranks = comm.size();
  const int64_t share = (count + ranks - 1) / ranks;
  const int64_t begin = std::min(count, comm.rank() * share), end = std::min(count, begin + share);
  const bool conditional = spec.num_classes > 0;
  SampleSummary mine;
  // A failure here on one rank (a feature module that throws, memory) stops every rank alike.
  on_every_rank_agreed(comm, [&] {
    const torch::Tensor samples = generate_for_eval(g, spec, count, seed, device, begin, end).first;
    mine = evaluator.summarize(samples, conditional);
  });
  // A rank with no samples (more ranks than samples) does not know the feature width: agree on it.
  const std::vector<double> widths =
      comm.allgather(std::vector<double>{mine.features.defined() ? double(mine.features.size(1)) : -1.0});
  const int64_t width = static_cast<int64_t>(*std::max_element(widths.begin(), widths.end()));
  if (!mine.features.defined()) mine.features = torch::empty({0, width});
  const torch::Tensor features = comm.allgather(padded(mine.features.to(torch::kFloat32), share));
  torch::Tensor predicted;
  const bool predicting = conditional && evaluator.predicts_classes();  // the same on every rank
  if (predicting) {
    if (!mine.predicted.defined()) mine.predicted = torch::empty({0}, torch::kInt64);
    predicted = comm.allgather(padded(mine.predicted, share));
  }
  if (comm.rank() != 0) return std::nullopt;
  SampleSummary all{unpadded(features.cpu(), count, share), predicted.defined() ? unpadded(predicted.cpu(), count, share)
                                                                                 : torch::Tensor()};
  const torch::Tensor all_labels =
      conditional ? torch::arange(count, torch::kInt64) % spec.num_classes : torch::Tensor();
  return evaluator.evaluate_summary(all, all_labels);
}

}  // namespace distgan
