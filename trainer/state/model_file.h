// The model file rank 0 writes at the end of a run (`final.h5` in the run directory) and that
// `distgan sample` and `distgan eval` read: a tensor file (trainer/state/tensor_file.h, format
// "distgan-model-2"), readable with h5py, holding
//   generator/<parameter or buffer name>, discriminator/<name>
//   generator_ema/<name>                      when the run kept an EMA of G (training.ema)
// and attributes config (the run's YAML), sample_shape ("1,28,28"), step. Written atomically.
// load_model_file also reads checkpoints (the same tensor names) and model files written before
// the tensor-file format ("distgan-model-1", trainer/state/legacy_module_file.h).
#pragma once

#include <torch/torch.h>

#include <string>

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

// Whether a tensor of a model may be absent from a file: training state that generating does not
// use (code re-seeding's counts), which files written before it existed lack.
bool model_tensor_may_be_missing(const std::string& name);

}  // namespace distgan
