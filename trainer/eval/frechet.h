// Distances between two sets of feature vectors (rows): the Fréchet distance of Gaussians fitted
// to them (FID when the features are Inception pool3 activations) and the kernel distance (KID).
// Pure functions on CPU or GPU tensors; every statistic is computed in float64, because FID
// subtracts traces of 2048x2048 matrices of similar size and float32 loses the difference.
#pragma once

#include <torch/torch.h>

#include <cstdint>

namespace distgan::eval {

// Mean and unbiased (N-1) covariance of a feature set, float64. Kept separately so the real
// data's statistics can be computed once and compared with many generated sets.
struct FeatureStats {
  torch::Tensor mean;  // [F]
  torch::Tensor cov;   // [F, F]
  int64_t count = 0;   // N, the number of rows the statistics came from
};

// features: [N, F] with N >= 2. Throws std::invalid_argument otherwise.
FeatureStats feature_stats(const torch::Tensor& features);

// Fréchet distance between N(a.mean, a.cov) and N(b.mean, b.cov) (Heusel et al. 2017, "GANs
// Trained by a Two Time-Scale Update Rule Converge to a Local Nash Equilibrium", eq. for FID):
//   |mu_a - mu_b|^2 + tr(Ca) + tr(Cb) - 2 tr sqrt(Ca Cb).
// The reference code takes scipy's sqrtm of the non-symmetric Ca Cb, which goes complex on
// rank-deficient covariances (fewer samples than features) and needs a fudge term. Here
// tr sqrt(Ca Cb) is computed from symmetric eigendecompositions only: with S = Ca^(1/2),
// S Cb S is symmetric PSD and similar to Ca Cb, so tr sqrt(Ca Cb) = sum sqrt(eig(S Cb S)),
// negative round-off eigenvalues clamped to 0. The result is clamped to >= 0 (a squared distance).
// Throws std::invalid_argument when the shapes do not agree.
double frechet_distance(const FeatureStats& a, const FeatureStats& b);

// Kernel Inception Distance (Bińkowski et al. 2018, "Demystifying MMD GANs", and the
// authors' compute_scores.py polynomial_mmd_averages): the unbiased MMD^2 estimate with the cubic
// polynomial kernel k(x, y) = (x.y / d + 1)^3 (d = feature dimension),
//   MMD^2 = sum_{i!=j} k(x_i,x_j) / (m(m-1)) + sum_{i!=j} k(y_i,y_j) / (m(m-1)) - 2 sum_{i,j} k(x_i,y_j) / m^2,
// on `subsets` random subsets of m = min(subset_size, n_real, n_fake) rows of each set, drawn
// without replacement. `mean` is the average over subsets and `std` their population standard
// deviation (as torch-fidelity reports it). Unlike FID it is unbiased, so it can be near 0 or
// slightly negative for sets from one distribution.
struct KidResult {
  double mean = 0;
  double std = 0;
};

// Deterministic for a given seed (its own CPU generator; the global one is not touched).
// Throws std::invalid_argument for mismatched shapes, fewer than 2 rows, or subsets < 1.
KidResult kernel_inception_distance(const torch::Tensor& real, const torch::Tensor& fake, int64_t subsets = 100,
                                    int64_t subset_size = 1000, uint64_t seed = 0);

}  // namespace distgan::eval
