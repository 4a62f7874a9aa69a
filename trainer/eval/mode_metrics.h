// Mode coverage of samples from a generator trained on a mixture of Gaussians with known centres
// and one isotropic standard deviation (the 2-D ring and grid of data/importers.h), following the
// protocol of VEEGAN (Srivastava et al. 2017, "VEEGAN: Reducing Mode Collapse in GANs using
// Implicit Variational Learning", synthetic-data experiments) and PacGAN (Lin et al. 2018,
// "PacGAN: The power of two samples in generative adversarial networks", synthetic-data
// experiments, Table 1). The rules are those of the PacGAN authors' released evaluation code
// (fjxmlzn/PacGAN, synthetic_data_experiments/PacGAN/pacgan/extensions.py, class MetricLogger):
//   - each sample is assigned to its nearest centre (the reference uses the Mahalanobis distance
//     with the mode's diagonal variance; with one isotropic std that is the Euclidean distance
//     divided by std, so the nearest centre is the Euclidean one);
//   - it is high quality when that distance is strictly below 3 std (`dis < dis_thre`, 3);
//   - counts[j] is the number of high-quality samples assigned to centre j ("detail of coverage");
//   - a mode is captured when counts[j] >= 1 (`len(nonzero(detail_of_coverage))`): there is no
//     minimum count beyond one high-quality sample;
//   - high_quality = (sum of counts) / N ("good points percentage", as a share in [0, 1]).
// Reverse KL (PacGAN Table 1): KL(p || u) = sum_j p_j log(p_j / u_j), where p = counts / sum(counts)
// is the distribution of the high-quality samples over the modes and u is uniform (1/M): the true
// mixtures have equal weights. The released code logs the Jensen-Shannon divergence of the same
// p instead, through a KL helper that skips terms with p_j = 0 (0 log 0 = 0); the same convention
// is used here, so no epsilon is needed (u_j > 0 always). 0 means every mode is hit equally often,
// log(M) that all high-quality samples sit on one mode. With no high-quality sample at all p is
// undefined and reverse_kl is NaN (the reference's 0/0 would be too).
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <vector>

namespace distgan::eval {

struct ModeReport {
  int64_t modes_captured = 0;   // modes with at least one high-quality sample
  double high_quality = 0;      // share of all samples within 3 std of their nearest centre
  double reverse_kl = 0;        // KL(high-quality histogram || uniform over modes), nats
  // The high-quality samples' RMS distance to their centre, over what the mixture's own Gaussian
  // samples within 3 std have (even D; NaN for odd D or no high-quality sample). 1: as spread
  // as the data; below 1: squeezed towards the centres, which the high-quality share rewards.
  double spread = 0;
  std::vector<int64_t> counts;  // high-quality samples per centre, in the order of `centers`
};

// samples: [N, D] (D = 2 for the VEEGAN/PacGAN mixtures), centers: [M, D], std > 0 the mixture's
// standard deviation. Throws std::invalid_argument on bad arguments.
ModeReport mode_metrics(const torch::Tensor& samples, const torch::Tensor& centers, double std);

}  // namespace distgan::eval
