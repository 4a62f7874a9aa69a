// Small model specs shared by the GoogleTest suites that train real models (one or several ranks).
#pragma once

#include "trainer/model/models.h"

namespace distgan::testing {

// A DCGAN for 1x28x28 images, narrow enough (ch 4, z 8) that a step takes milliseconds.
inline ModelSpec small_dcgan() {
  ModelSpec s;
  s.name = "dcgan";
  s.sample_shape = {1, 28, 28};
  s.z_dim = 8;
  s.ch = 4;
  return s;
}

// The MLP on 2-D points (the mixtures), z 3, `depth` hidden layers of `width`.
inline ModelSpec small_mlp(int64_t width, int64_t depth) {
  ModelSpec s;
  s.name = "mlp";
  s.sample_shape = {2};
  s.z_dim = 3;
  s.mlp_width = width;
  s.mlp_depth = depth;
  return s;
}

// The resnet at 32 px, RGB, at width 2 with spectral norm in D: the whole architecture in a few
// milliseconds per step.
inline ModelSpec tiny_resnet32_spec() {
  ModelSpec spec;
  spec.name = "resnet";
  spec.sample_shape = {3, 32, 32};
  spec.z_dim = 8;
  spec.ch = 2;
  spec.d_spectral_norm = true;
  return spec;
}

}  // namespace distgan::testing
