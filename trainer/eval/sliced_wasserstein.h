// Sliced Wasserstein distance between two point sets (Rabin et al. 2011, "Wasserstein Barycenter
// and its Application to Texture Mixing"; as a GAN metric: Karras et al. 2018, "Progressive Growing
// of GANs", and Deshpande et al. 2018, "Generative Modeling using the Sliced Wasserstein
// Distance"): the sets are projected on random unit directions, where optimal transport in 1-D is
// matching sorted values, and the 1-D distances are averaged over the directions.
//
// This is the sliced W1: per direction, the exact W1 between the two empirical distributions of
// projections, W1 = integral over u in (0, 1) of |Qa(u) - Qb(u)| with Q the empirical quantile
// functions; then the plain mean over directions (no root taken). With equal sizes that is the
// mean absolute difference of the sorted projections; with unequal sizes the integral runs over
// the merged steps of both quantile functions (at most Na + Nb pieces), so neither set is
// subsampled and the result does not depend on which set is passed first. Directions are uniform
// on the unit sphere (normalised Gaussian vectors).
// For b = a + v (a shift) every direction gives |<v, theta>| exactly, so the expectation over
// directions is |v| E|theta_1|, which is |v| 2/pi in 2-D and |v| / 2 in 3-D.
#pragma once

#include <torch/torch.h>

#include <cstdint>

namespace distgan::eval {

// a: [Na, D], b: [Nb, D] with Na, Nb >= 1; projections >= 1. Deterministic for a given seed
// (directions are drawn from a private CPU generator). Throws std::invalid_argument on bad arguments.
double sliced_wasserstein(const torch::Tensor& a, const torch::Tensor& b, int64_t projections = 256, uint64_t seed = 0);

}  // namespace distgan::eval
