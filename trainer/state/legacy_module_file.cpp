#include "trainer/state/legacy_module_file.h"

#include <sstream>

#include "data/data_error.h"

namespace distgan {

using data::DataError;
using data::h5_check;
using data::H5Handle;

void read_module_group(hid_t file, const std::string& group, torch::nn::Module& module, const std::string& path,
                       const std::function<bool(const std::string&)>& may_be_missing) {
  torch::NoGradGuard no_grad;
  auto read = [&](const std::string& name, torch::Tensor& target) {
    const std::string where = path + ": " + group + "/" + name;
    const std::string full = group + "/" + name;
    if (H5Lexists(file, group.c_str(), H5P_DEFAULT) <= 0 || H5Lexists(file, full.c_str(), H5P_DEFAULT) <= 0) {
      data::h5_last_error();
      if (may_be_missing && may_be_missing(name)) return;
      throw DataError(where + " is missing: the file does not match this model");
    }
    H5Handle d(h5_check(H5Dopen2(file, full.c_str(), H5P_DEFAULT), where), H5Dclose);
    H5Handle space(h5_check(H5Dget_space(d.get()), where), H5Sclose);
    const int rank = h5_check(H5Sget_simple_extent_ndims(space.get()), where);
    std::vector<hsize_t> dims(static_cast<size_t>(rank));
    if (rank > 0) h5_check(H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr), where);
    const std::vector<int64_t> shape(dims.begin(), dims.end());
    if (shape != target.sizes().vec()) {
      std::ostringstream msg;
      msg << where << " has shape " << c10::IntArrayRef(shape) << " but the model expects " << target.sizes();
      throw DataError(msg.str());
    }
    if (H5Sget_simple_extent_type(space.get()) == H5S_NULL ||
        H5Sget_simple_extent_npoints(space.get()) != static_cast<hssize_t>(target.numel()))
      throw DataError(where + " holds " + std::to_string(H5Sget_simple_extent_npoints(space.get())) +
                      " values; the model expects " + std::to_string(target.numel()));
    const bool integer = target.scalar_type() == torch::kInt64;
    torch::Tensor buffer = torch::empty(target.sizes(), integer ? torch::kInt64 : torch::kFloat32);
    h5_check(H5Dread(d.get(), integer ? H5T_NATIVE_INT64 : H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT,
                     buffer.data_ptr()),
             where);
    target.copy_(buffer);
  };
  for (auto& p : module.named_parameters()) read(p.key(), p.value());
  for (auto& b : module.named_buffers()) read(b.key(), b.value());
}

data::H5Handle open_hdf5_file(const std::string& path, const std::string& what) {
  data::h5_silence_errors();
  if (H5Fis_hdf5(path.c_str()) <= 0) {
    data::h5_last_error();
    throw DataError(path + ": not an HDF5 " + what + " (or not readable)");
  }
  return H5Handle(h5_check(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), path + ": cannot open"), H5Fclose);
}

std::string hdf5_format_attribute(const std::string& path, const std::string& what) {
  H5Handle file = open_hdf5_file(path, what);
  if (H5Aexists(file.get(), "format") <= 0) {
    data::h5_last_error();
    return "";
  }
  return data::h5_read_string_attribute(file.get(), "format", path);
}

}  // namespace distgan
