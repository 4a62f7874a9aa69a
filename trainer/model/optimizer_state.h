// Adam's per-parameter state (moments and step count), reached by parameter. LibTorch keys its
// state map by the parameter's TensorImpl, as a string in 1.x and as a pointer in 2.x; these
// helpers hide that difference so checkpoints work with both.
#pragma once

#include <torch/torch.h>

namespace distgan {

// The state of `param` in `optimizer`, or nullptr before its first step.
torch::optim::AdamParamState* find_adam_state(torch::optim::Adam& optimizer, const torch::Tensor& param);

// The state of `param`, created (zero moments, step 0) when it has none yet.
torch::optim::AdamParamState& adam_state(torch::optim::Adam& optimizer, const torch::Tensor& param);

}  // namespace distgan
