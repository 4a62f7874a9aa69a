// The model file rank 0 writes at the end of a run (`final.h5` in the run directory) and that
// `distgan sample` reads: an HDF5 file, readable with h5py, holding
//   /generator/<parameter or buffer name>      float32 (int64 for BatchNorm counters)
//   /discriminator/<name>
//   /generator_ema/<name>                      when the run kept an EMA of G (training.ema)
// and root attributes: config (the run's YAML), sample_shape ("1,28,28"), step, format.
// Written atomically. load_model_file also reads checkpoints (trainer/state/checkpoint.h): same groups.
#pragma once

#include <hdf5.h>
#include <torch/torch.h>

#include <functional>
#include <string>

#include "data/h5_handle.h"
#include "trainer/config/config.h"
#include "trainer/model/models.h"

namespace distgan {

void save_model_file(const std::string& path, const Config& config, const ModelSpec& spec, GanModels& models,
                     int64_t step);

struct LoadedModels {
  Config config;
  ModelSpec spec;
  GanModels models;
  int64_t step = 0;
};

// Rebuilds the models from the file's config and loads every tensor, checking names and shapes.
// Throws data::DataError (file problems) or std::invalid_argument (a model that does not fit).
LoadedModels load_model_file(const std::string& path);

// Writes an HDF5 file atomically (hidden temporary, flushed, renamed over `path`); `fill` writes its
// contents into the open file. Throws data::DataError naming the file.
void write_hdf5_file(const std::string& path, const std::function<void(hid_t file)>& fill);

// Opens an existing HDF5 file read-only; one clear DataError ("<path>: not an HDF5 <what> ...")
// for anything else.
data::H5Handle open_hdf5_file(const std::string& path, const std::string& what);

// One module's parameters and buffers as the datasets of an HDF5 group (float32; int64 counters),
// and back into a module of the same layout (names and shapes checked). `path` names the file in errors.
void write_module_group(hid_t file, const std::string& group, torch::nn::Module& module, const std::string& path);
void read_module_group(hid_t file, const std::string& group, torch::nn::Module& module, const std::string& path);

// The ModelSpec of `config` for samples of `sample_shape`.
ModelSpec model_spec(const Config& config, const std::vector<int64_t>& sample_shape);

}  // namespace distgan
