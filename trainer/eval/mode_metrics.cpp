#include "trainer/eval/mode_metrics.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>

#include "trainer/eval/tensor_checks.h"

namespace distgan::eval {

namespace {

// The protocol's quality threshold, in standard deviations.
constexpr double kHighQualityStds = 3.0;
// Samples per chunk: bounds the [chunk, M, D] difference tensor for large sample sets.
constexpr int64_t kChunkRows = 65536;

// E[X | X < 9] for X ~ chi-square with D degrees of freedom: D P(chi2_{D+2} < 9) / P(chi2_D < 9),
// with P(chi2_{2k} < t) = 1 - e^{-t/2} sum_{i<k} (t/2)^i / i! (even D only; NaN otherwise).
double truncated_chi_square_mean(int64_t d) {
  if (d % 2 != 0) return std::numeric_limits<double>::quiet_NaN();
  const double h = kHighQualityStds * kHighQualityStds / 2;
  auto cdf = [h](int64_t k) {
    double term = 1, sum = 0;
    for (int64_t i = 0; i < k; ++i) {
      sum += term;
      term *= h / double(i + 1);
    }
    return 1 - std::exp(-h) * sum;
  };
  return double(d) * cdf(d / 2 + 1) / cdf(d / 2);
}

}  // namespace

ModeReport mode_metrics(const torch::Tensor& samples, const torch::Tensor& centers, double std) {
  torch::NoGradGuard no_grad;
  const char* metric = "mode_metrics";
  const torch::Tensor x = detail::float64_rows(samples, metric, "samples", 1);
  const torch::Tensor c = detail::float64_rows(centers, metric, "centers", 1).to(x.device());
  detail::require_same_width(x, c, metric);
  if (!(std > 0) || !std::isfinite(std))
    throw std::invalid_argument(std::string(metric) + ": std must be a positive number, got " + std::to_string(std));

  const int64_t n = x.size(0);
  const int64_t m = c.size(0);
  torch::Tensor counts = torch::zeros({m}, torch::TensorOptions().dtype(torch::kLong).device(x.device()));
  double high_d2 = 0;  // sum of (distance / std)^2 over the high-quality samples
  for (int64_t begin = 0; begin < n; begin += kChunkRows) {
    const torch::Tensor chunk = x.narrow(0, begin, std::min(kChunkRows, n - begin));
    // Differences rather than the |a|^2+|b|^2-2ab trick: exact for samples sitting on a centre, and
    // M is small (8 or 25), so the [chunk, M, D] tensor is cheap.
    const torch::Tensor d2 = (chunk.unsqueeze(1) - c.unsqueeze(0)).pow(2).sum(2);
    const auto nearest = d2.min(1);
    // (distance / std)^2 < 3^2, the reference's `sqrt(sum(d^2 / var)) < 3` without the sqrt.
    const torch::Tensor high = std::get<0>(nearest) / (std * std) < kHighQualityStds * kHighQualityStds;
    counts += torch::bincount(std::get<1>(nearest).masked_select(high), {}, m);
    high_d2 += (std::get<0>(nearest) / (std * std)).masked_select(high).sum().item<double>();
  }

  ModeReport report;
  const torch::Tensor cpu_counts = counts.cpu();
  report.counts.assign(cpu_counts.data_ptr<int64_t>(), cpu_counts.data_ptr<int64_t>() + m);
  int64_t high_total = 0;
  for (int64_t v : report.counts) {
    high_total += v;
    if (v > 0) ++report.modes_captured;
  }
  report.high_quality = static_cast<double>(high_total) / static_cast<double>(n);
  if (high_total == 0) {
    report.reverse_kl = report.spread = std::numeric_limits<double>::quiet_NaN();
    return report;
  }
  report.spread = std::sqrt(high_d2 / double(high_total) / truncated_chi_square_mean(x.size(1)));
  double kl = 0;
  for (int64_t v : report.counts) {
    if (v == 0) continue;  // 0 log 0 = 0
    const double p = static_cast<double>(v) / static_cast<double>(high_total);
    kl += p * std::log(p * static_cast<double>(m));
  }
  report.reverse_kl = kl;
  return report;
}

}  // namespace distgan::eval
