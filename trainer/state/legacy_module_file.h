// Reading files written before the tensor-file format (trainer/state/tensor_file.h): model files
// "distgan-model-1" and classifier files "distgan-classifier-1" hold one HDF5 group per module and a
// dataset per tensor (float32; int64 counters), without a manifest or checksums. distgan no longer
// writes them; it reads them so that models trained before still sample and evaluate.
#pragma once

#include <hdf5.h>
#include <torch/torch.h>

#include <functional>
#include <string>

#include "data/h5_handle.h"

namespace distgan {

inline constexpr const char* kLegacyModelFormat = "distgan-model-1";
inline constexpr const char* kLegacyClassifierFormat = "distgan-classifier-1";

// Opens an existing HDF5 file read-only; one clear DataError ("<path>: not an HDF5 <what> ...")
// for anything else.
data::H5Handle open_hdf5_file(const std::string& path, const std::string& what);

// The file's "format" attribute, or "" when it has none. Throws DataError when it is not HDF5.
std::string hdf5_format_attribute(const std::string& path, const std::string& what);

// Loads `module` from the datasets of `group` ("/generator"), names and shapes checked. A missing
// dataset is an error unless `may_be_missing(name)`. `path` names the file in errors.
void read_module_group(hid_t file, const std::string& group, torch::nn::Module& module, const std::string& path,
                       const std::function<bool(const std::string&)>& may_be_missing = {});

}  // namespace distgan
