#include "trainer/state/model_file.h"

#include "data/data_error.h"
#include "trainer/config/run_options.h"
#include "trainer/state/legacy_module_file.h"
#include "trainer/state/module_tensors.h"
#include "trainer/state/tensor_file.h"

namespace distgan {

namespace {

constexpr int64_t kMaxStep = int64_t{1} << 53;

// The models of `config` for `sample_shape`, as the file's config describes them.
LoadedModels build_loaded(const std::string& config_text, const std::vector<int64_t>& shape, int64_t step,
                          const std::string& path) {
  LoadedModels loaded;
  loaded.config = parse_config(config_text, path + " (config)");
  loaded.step = step;
  loaded.spec = model_spec(loaded.config, shape);
  loaded.models = build_models(loaded.spec);
  return loaded;
}

// A "distgan-model-1" file: one HDF5 group per module, no manifest.
LoadedModels load_legacy_model_file(const std::string& path) {
  data::H5Handle file = open_hdf5_file(path, "model file");
  auto attribute = [&](const char* name) { return data::h5_read_string_attribute(file.get(), name, path); };
  const std::string step_text = attribute("step");
  int64_t step = -1;
  try {
    size_t used = 0;
    step = std::stoll(step_text, &used);
    if (used != step_text.size()) step = -1;
  } catch (const std::exception&) {
  }
  if (step < 0 || step > kMaxStep)
    throw data::DataError(path + ": attribute value '" + step_text + "' is not an integer in [0, " +
                          std::to_string(kMaxStep) + "]");
  LoadedModels loaded = build_loaded(attribute("config"), parse_shape_attribute(attribute("sample_shape"), path),
                                     step, path);
  read_module_group(file.get(), "/generator", *loaded.models.generator, path, model_tensor_may_be_missing);
  read_module_group(file.get(), "/discriminator", *loaded.models.discriminator, path, model_tensor_may_be_missing);
  if (loaded.models.generator_ema) {
    if (H5Lexists(file.get(), "/generator_ema", H5P_DEFAULT) > 0) {
      read_module_group(file.get(), "/generator_ema", *loaded.models.generator_ema, path, model_tensor_may_be_missing);
    } else {
      data::h5_last_error();
      loaded.models.generator_ema = torch::nn::Sequential(nullptr);  // a file from before EMAs
    }
  }
  return loaded;
}

}  // namespace

bool model_tensor_may_be_missing(const std::string& name) {
  const std::string suffix = ".off_data_checks";
  return name.size() >= suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
}

void save_model_file(const std::string& path, const Config& config, const ModelSpec& spec, GanModels& models,
                     int64_t step) {
  TensorFileData data;
  add_module_tensors("generator/", *models.generator, data);
  add_module_tensors("discriminator/", *models.discriminator, data);
  if (models.generator_ema) add_module_tensors("generator_ema/", *models.generator_ema, data);
  data.attributes["format"] = kModelFileFormat;
  data.attributes["config"] = print_config(config);
  data.attributes["sample_shape"] = shape_attribute(spec.sample_shape);
  data.attributes["step"] = std::to_string(step);
  write_tensor_file(path, data);
}

LoadedModels load_model_file(const std::string& path) {
  if (hdf5_format_attribute(path, "model file") == kLegacyModelFormat) return load_legacy_model_file(path);
  TensorFileReader reader(path, {"model file", {kModelFileFormat, kCheckpointFormat, kLegacyModelFormat}});
  LoadedModels loaded = build_loaded(reader.attribute("config"),
                                     parse_shape_attribute(reader.attribute("sample_shape"), path),
                                     reader.integer_attribute("step", 0, kMaxStep), path);
  load_module_tensors(reader, "generator/", *loaded.models.generator, model_tensor_may_be_missing);
  load_module_tensors(reader, "discriminator/", *loaded.models.discriminator, model_tensor_may_be_missing);
  if (loaded.models.generator_ema) {
    if (reader.tensor_names("generator_ema/").empty()) {
      loaded.models.generator_ema = torch::nn::Sequential(nullptr);  // a run without an EMA
    } else {
      load_module_tensors(reader, "generator_ema/", *loaded.models.generator_ema, model_tensor_may_be_missing);
    }
  }
  return loaded;
}

}  // namespace distgan
