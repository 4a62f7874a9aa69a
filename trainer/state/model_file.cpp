#include "trainer/state/model_file.h"

#include <charconv>
#include <functional>
#include <sstream>

#include "data/atomic_file.h"
#include "data/h5_handle.h"
#include "trainer/state/checkpoint_file.h"

namespace distgan {

namespace {

using data::DataError;
using data::h5_check;
using data::H5Handle;

constexpr const char* kFormat = "distgan-model-1";

}  // namespace

void write_module_group(hid_t file, const std::string& group, torch::nn::Module& module, const std::string& path) {
  H5Handle g(h5_check(H5Gcreate2(file, group.c_str(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), path + ": " + group),
             H5Gclose);
  auto write = [&](const std::string& name, const torch::Tensor& value) {
    const bool integer = value.scalar_type() == torch::kInt64;
    const torch::Tensor t = value.detach().to(torch::kCPU, integer ? torch::kInt64 : torch::kFloat32).contiguous();
    std::vector<hsize_t> dims(t.sizes().begin(), t.sizes().end());
    H5Handle space(h5_check(dims.empty() ? H5Screate(H5S_SCALAR)
                                         : H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr),
                            path),
                   H5Sclose);
    const std::string where = path + ": " + group + "/" + name;
    H5Handle d(h5_check(H5Dcreate2(g.get(), name.c_str(), integer ? H5T_STD_I64LE : H5T_IEEE_F32LE, space.get(),
                                   H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
                        where),
               H5Dclose);
    h5_check(H5Dwrite(d.get(), integer ? H5T_NATIVE_INT64 : H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT,
                      t.data_ptr()),
             where);
  };
  for (const auto& p : module.named_parameters()) write(p.key(), p.value());
  for (const auto& b : module.named_buffers()) write(b.key(), b.value());
}

void read_module_group(hid_t file, const std::string& group, torch::nn::Module& module, const std::string& path) {
  torch::NoGradGuard no_grad;
  auto read = [&](const std::string& name, torch::Tensor& target) {
    const std::string where = path + ": " + group + "/" + name;
    const std::string full = group + "/" + name;
    if (H5Lexists(file, group.c_str(), H5P_DEFAULT) <= 0 || H5Lexists(file, full.c_str(), H5P_DEFAULT) <= 0) {
      data::h5_last_error();
      // Training state that generating does not use, absent from files written before it existed.
      if (name.size() >= 16 && name.compare(name.size() - 16, 16, ".off_data_checks") == 0) return;
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

namespace {

// A non-negative integer attribute value no larger than `max`.
int64_t parse_count(const std::string& text, int64_t max, const std::string& path) {
  int64_t value = -1;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || value < 0 || value > max)
    throw DataError(path + ": attribute value '" + text + "' is not an integer in [0, " + std::to_string(max) + "]");
  return value;
}

std::string join(const std::vector<int64_t>& v) {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) s += (i ? "," : "") + std::to_string(v[i]);
  return s;
}

}  // namespace

ModelSpec model_spec(const Config& config, const std::vector<int64_t>& sample_shape) {
  ModelSpec s;
  s.name = config.model.name;
  s.sample_shape = sample_shape;
  s.z_dim = config.model.z_dim;
  s.ch = config.model.ch;
  s.mlp_width = config.model.mlp_width;
  s.mlp_depth = config.model.mlp_depth;
  s.mlp_batchnorm = config.model.mlp_batchnorm;
  s.latent_categories = config.model.latent_categories;
  if (s.latent_categories > 0 && (s.name != "mlp" || config.model.conditional))
    throw std::invalid_argument("model.latent_categories: only for unconditional mlp models (this one is " +
                                std::string(config.model.conditional ? "conditional " : "") + s.name + ")");
  s.latent_noise_scale = config.model.latent_noise_scale;
  if (s.latent_noise_scale != 1.0 && s.latent_categories == 0)
    throw std::invalid_argument("model.latent_noise_scale: scales the continuous part of a categorical latent; "
                                "set model.latent_categories too");
  if (config.training.code_reseed_every > 0 && s.latent_categories == 0)
    throw std::invalid_argument("training.code_reseed.every: re-seeds the codes of a categorical latent; set "
                                "model.latent_categories too");
  s.num_classes = config.model.conditional ? config.model.num_classes : 0;
  if (config.model.conditional && s.num_classes <= 0)
    throw std::invalid_argument("model.num_classes: a conditional model needs the number of classes (it is taken "
                                "from the dataset's labels at the start of a run)");
  s.d_spectral_norm = config.model.d_spectral_norm;
  s.ema = config.training.ema_half_life_kimg > 0;
  return s;
}

void write_hdf5_file(const std::string& path, const std::function<void(hid_t file)>& fill) {
  data::h5_silence_errors();
  data::AtomicOutput out(path, /*overwrite=*/true);
  {
    H5Handle file(h5_check(H5Fcreate(out.temp_path().c_str(), H5F_ACC_EXCL, H5P_DEFAULT, H5P_DEFAULT),
                           out.temp_path() + ": cannot create"),
                  H5Fclose);
    fill(file.get());
    h5_check(H5Fflush(file.get(), H5F_SCOPE_GLOBAL), path + ": flush");
    const hid_t id = file.release();
    h5_check(H5Fclose(id), path + ": closing the file");
  }
  out.commit();
}

void save_model_file(const std::string& path, const Config& config, const ModelSpec& spec, GanModels& models,
                     int64_t step) {
  write_hdf5_file(path, [&](hid_t file) {
    write_module_group(file, "/generator", *models.generator, path);
    write_module_group(file, "/discriminator", *models.discriminator, path);
    if (models.generator_ema) write_module_group(file, "/generator_ema", *models.generator_ema, path);
    data::h5_write_string_attribute(file, "format", kFormat, path);
    data::h5_write_string_attribute(file, "config", print_config(config), path);
    data::h5_write_string_attribute(file, "sample_shape", join(spec.sample_shape), path);
    data::h5_write_string_attribute(file, "step", std::to_string(step), path);
  });
}

data::H5Handle open_hdf5_file(const std::string& path, const std::string& what) {
  data::h5_silence_errors();
  if (H5Fis_hdf5(path.c_str()) <= 0) {
    data::h5_last_error();
    throw DataError(path + ": not an HDF5 " + what + " (or not readable)");
  }
  return H5Handle(h5_check(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), path + ": cannot open"), H5Fclose);
}

LoadedModels load_model_file(const std::string& path) {
  H5Handle file = open_hdf5_file(path, "model file");
  const std::string format = data::h5_read_string_attribute(file.get(), "format", path);
  if (format == kCheckpointFormat) {
    CheckpointReader verified(path);  // checks the checksum; tensors are checked against the model below
  } else if (format != kFormat) {
    throw DataError(path + ": format '" + format + "' is not one this distgan reads (" + kFormat + " or " +
                    kCheckpointFormat + ")");
  }
  LoadedModels loaded;
  loaded.config = parse_config(data::h5_read_string_attribute(file.get(), "config", path), path + " (config)");
  std::vector<int64_t> shape;
  const std::string shape_text = data::h5_read_string_attribute(file.get(), "sample_shape", path);
  std::stringstream dims(shape_text);
  for (std::string item; std::getline(dims, item, ',');) shape.push_back(parse_count(item, 1 << 20, path));
  if (shape.empty() || shape.size() > 3)
    throw DataError(path + ": attribute sample_shape '" + shape_text + "' is not [D] or [C, H, W]");
  loaded.step = parse_count(data::h5_read_string_attribute(file.get(), "step", path), int64_t{1} << 53, path);
  loaded.spec = model_spec(loaded.config, shape);
  loaded.models = build_models(loaded.spec);
  read_module_group(file.get(), "/generator", *loaded.models.generator, path);
  read_module_group(file.get(), "/discriminator", *loaded.models.discriminator, path);
  if (loaded.models.generator_ema) {
    if (H5Lexists(file.get(), "/generator_ema", H5P_DEFAULT) > 0) {
      read_module_group(file.get(), "/generator_ema", *loaded.models.generator_ema, path);
    } else {
      data::h5_last_error();
      loaded.models.generator_ema = torch::nn::Sequential(nullptr);  // a file from before EMAs
    }
  }
  return loaded;
}

}  // namespace distgan
