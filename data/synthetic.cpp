#include <cmath>
#include <random>

#include "data/importers.h"

namespace distgan::data {

std::vector<std::pair<double, double>> mixture_modes(Mixture kind) {
  std::vector<std::pair<double, double>> modes;
  if (kind == Mixture::kRing) {
    constexpr int kRingModes = 8;
    constexpr double kRingRadius = 2.0;
    for (int i = 0; i < kRingModes; ++i) {
      const double angle = 2.0 * M_PI * i / kRingModes;
      modes.emplace_back(kRingRadius * std::cos(angle), kRingRadius * std::sin(angle));
    }
  } else {
    for (int x = -2; x <= 2; ++x)
      for (int y = -2; y <= 2; ++y) modes.emplace_back(2.0 * x, 2.0 * y);
  }
  return modes;
}

double mixture_default_std(Mixture kind) { return kind == Mixture::kRing ? 0.02 : 0.05; }

DatasetContents make_mixture(const MixtureSpec& spec) {
  if (spec.num_samples < 1) throw DataError("mixture: the number of samples must be at least 1");
  const auto modes = mixture_modes(spec.kind);
  const double std = spec.std >= 0 ? spec.std : mixture_default_std(spec.kind);
  // Box-Muller on mt19937_64's raw bits: the same file on every platform for a given seed.
  std::mt19937_64 rng(spec.seed);
  auto uniform = [&rng] { return (static_cast<double>(rng() >> 11) + 0.5) * 0x1.0p-53; };
  DatasetContents c;
  c.name = "/samples";
  c.shape = {spec.num_samples, 2};
  c.f32.resize(static_cast<size_t>(spec.num_samples) * 2);
  c.labels.resize(static_cast<size_t>(spec.num_samples));
  for (int64_t i = 0; i < spec.num_samples; ++i) {
    const auto mode = static_cast<int64_t>(rng() % modes.size());
    const double r = std::sqrt(-2.0 * std::log(uniform())), t = 2.0 * M_PI * uniform();
    c.f32[2 * i] = static_cast<float>(modes[mode].first + std * r * std::cos(t));
    c.f32[2 * i + 1] = static_cast<float>(modes[mode].second + std * r * std::sin(t));
    c.labels[i] = mode;
  }
  c.attributes = {{"source", spec.kind == Mixture::kRing ? "ring" : "grid"},
                  {"modes", std::to_string(modes.size())},
                  {"std", std::to_string(std)},
                  {"seed", std::to_string(spec.seed)}};
  return c;
}

}  // namespace distgan::data
