// Small model specs shared by the GoogleTest suites that train real models.
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

}  // namespace distgan::testing
