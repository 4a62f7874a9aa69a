// A module's parameters and buffers as named tensors of a tensor file (trainer/state/tensor_file.h),
// under a prefix ("generator/0.weight"), and back. Checkpoints, model files and classifier files
// all store their modules this way.
#pragma once

#include <torch/torch.h>

#include <functional>
#include <string>

#include "trainer/state/tensor_file.h"

namespace distgan {

// A detached, contiguous host copy of `t` that owns its memory (safe to write in the background).
torch::Tensor host_copy(const torch::Tensor& t);

// Host copies of every parameter and buffer of `module`, named prefix + its name.
void add_module_tensors(const std::string& prefix, torch::nn::Module& module, TensorFileData& out);

// Loads every parameter and buffer of `module` from the tensors under `prefix`, checking each name,
// dtype and shape against the model before anything is read; a tensor under `prefix` that the
// module does not have is refused too. A missing tensor is an error unless `may_be_missing(name)`
// says it is state that files written before it existed lack (its value is left as it is).
// Throws data::DataError naming the file and the tensor.
void load_module_tensors(TensorFileReader& reader, const std::string& prefix, torch::nn::Module& module,
                         const std::function<bool(const std::string& name)>& may_be_missing = {});

}  // namespace distgan
