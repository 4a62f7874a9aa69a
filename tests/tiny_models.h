// Small model specs that several distributed tests share.
#pragma once

#include "trainer/model/models.h"

namespace distgan::testing {

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
