#include "trainer/config/run_options.h"

#include <fstream>
#include <sstream>

#include "cluster/world.h"
#include "data/dataset_reader.h"
#include "trainer/model/onednn_conv_transpose.h"

namespace distgan {

int64_t per_rank_batch(const Config& config, int world_size) {
  const int64_t global = config.training.batch_size;
  if (global % world_size != 0)
    throw ConfigError("training.batch_size: the global batch " + std::to_string(global) +
                      " does not divide evenly across " + std::to_string(world_size) +
                      " ranks; use a multiple of " + std::to_string(world_size));
  const int64_t per_rank = global / world_size;
  if (per_rank % config.training.accumulate != 0)
    throw ConfigError("training.accumulate: the per-rank batch " + std::to_string(per_rank) + " (training.batch_size " +
                      std::to_string(global) + " over " + std::to_string(world_size) + " ranks) does not split into " +
                      std::to_string(config.training.accumulate) + " equal micro-batches");
  return per_rank;
}

data::LoaderOptions loader_options(const Config& config, int rank, int world_size) {
  data::LoaderOptions o;
  o.reader.path = config.data.path;
  o.reader.dataset = config.data.dataset;
  o.reader.labels = config.data.labels;
  o.reader.layout = data::parse_layout(config.data.layout);
  o.reader.scale = data::parse_scale(config.data.scale);
  o.reader.chunk_cache_bytes = static_cast<size_t>(config.data.chunk_cache_mb) << 20;
  o.world_size = world_size;
  o.rank = rank;
  o.batch_size = per_rank_batch(config, world_size);
  o.seed = static_cast<uint64_t>(config.training.seed);
  o.shuffle = config.data.shuffle;
  o.remainder = data::parse_remainder(config.data.remainder);
  o.prefetch_batches = static_cast<int>(config.data.prefetch_batches);
  return o;
}

std::vector<int64_t> class_counts(const data::ReaderOptions& reader_options) {
  data::DatasetReader reader(reader_options);
  if (!reader.has_labels()) return {};
  std::vector<int64_t> labels(static_cast<size_t>(reader.size()));
  reader.read_labels(0, reader.size(), labels.data());
  std::vector<int64_t> counts;
  for (size_t i = 0; i < labels.size(); ++i) {
    if (labels[i] < 0 || labels[i] >= (int64_t{1} << 20))
      throw data::DataError(reader_options.path + ": label " + std::to_string(labels[i]) + " of sample " +
                            std::to_string(i) + " is not a class index in [0, 2^20)");
    if (static_cast<size_t>(labels[i]) >= counts.size()) counts.resize(static_cast<size_t>(labels[i]) + 1, 0);
    ++counts[static_cast<size_t>(labels[i])];
  }
  return counts;
}

void resolve_classes(Config& config) {
  if (!config.model.conditional) return;
  const data::ReaderOptions reader = loader_options(config, 0, 1).reader;
  if (config.data.labels.empty())
    throw ConfigError("model.conditional: true needs class labels, but data.labels is \"\"");
  const std::vector<int64_t> counts = class_counts(reader);
  if (counts.empty())
    throw ConfigError("model.conditional: true needs class labels: " + config.data.path + " has no dataset '" +
                      config.data.labels + "' (data.labels)");
  const auto found = static_cast<int64_t>(counts.size());
  if (config.model.num_classes == 0) {
    config.model.num_classes = found;
  } else if (found > config.model.num_classes) {
    throw ConfigError("model.num_classes: " + std::to_string(config.model.num_classes) + ", but " +
                      config.data.path + " has label " + std::to_string(found - 1));
  }
}

EvalOptions eval_options(const Config& config) {
  EvalOptions e;
  e.real = loader_options(config, 0, 1).reader;
  if (!config.eval.real.empty()) e.real.path = config.eval.real;
  e.classifier = config.eval.classifier;
  e.features = config.eval.features;
  e.samples = config.eval.samples;
  e.seed = static_cast<uint64_t>(config.training.seed);
  return e;
}

cluster::CommunicatorOptions communicator_options(const Config& config, int local_rank) {
  cluster::CommunicatorOptions o;
  o.backend = config.cluster.backend;
  o.device = config.cluster.device;
  o.device_index = local_rank;
  o.timeout_s = static_cast<double>(config.cluster.collective_timeout_s);
  return o;
}

bool cpu_has_native_bf16() {
  std::ifstream cpuinfo("/proc/cpuinfo");
  std::string line;
  while (std::getline(cpuinfo, line)) {
    if (line.rfind("flags", 0) != 0 && line.rfind("Features", 0) != 0) continue;  // x86, aarch64
    std::istringstream flags(line.substr(line.find(':') + 1));
    std::string flag;
    while (flags >> flag)
      if (flag == "avx512_bf16" || flag == "amx_bf16" || flag == "bf16") return true;  // x86; aarch64's "bf16"
    return false;
  }
  return false;
}

std::string rank_device(const Config& config, int local_rank) {
  const cluster::CommunicatorOptions o = communicator_options(config, local_rank);
  // The MPI backend stages through host memory, so ranks may share a GPU; NCCL needs one GPU each.
  return cluster::select_device(config.cluster.device, local_rank, cluster::choose_backend(o) == "mpi");
}

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
  s.d_spectral_norm = config.model.d_spectral_norm == "auto" ? s.name == "resnet" : config.model.d_spectral_norm == "true";
  s.ema = config.training.ema_half_life_kimg > 0;
  s.onednn_conv_transpose = config.cluster.conv_transpose != "libtorch";
  if (config.cluster.conv_transpose == "onednn") {
    if (config.cluster.device != "cpu")
      throw std::invalid_argument("cluster.conv_transpose: onednn runs on the CPU; with cluster.device: " +
                                  config.cluster.device + " use auto (LibTorch's kernels)");
    if (!onednn_compiled_in())
      throw std::invalid_argument("cluster.conv_transpose: onednn, but this build has no oneDNN (install libdnnl-dev "
                                  "and rebuild; `distgan --version` says what is compiled in), or use auto");
  }
  return s;
}

bool uses_channels_last(const Config& config, const ModelSpec& spec) {
  if (spec.sample_shape.size() != 3) return false;  // vectors: nothing to lay out
  if (config.cluster.memory_format != "auto") return config.cluster.memory_format == "channels_last";
  // Measured on CPU (docs/benchmarks.md): the resnet-64 step is 1.33x faster in channels_last;
  // DCGAN-28 is the same either way (within 1%), so it keeps the layout it always had.
  return spec.name == "resnet";
}

AugmentPolicy augment_policy(const Config& config, const ModelSpec& spec) {
  const AugmentPolicy policy = parse_augment_policy(config.training.augment);
  if (policy.any() && spec.sample_shape.size() != 3)
    throw std::invalid_argument("training.augment: transforms images; this dataset holds vectors (use none)");
  return policy;
}

StepOptions step_options(const Config& config) {
  StepOptions so;
  so.loss = parse_loss(config.training.loss);
  so.lr_g = config.training.lr_g;
  so.lr_d = config.training.lr_d;
  so.betas_g = config.training.betas_g;
  so.betas_d = config.training.betas_d;
  so.bucket_bytes = static_cast<int64_t>(config.cluster.bucket_mb * 1024 * 1024);
  so.overlap = config.cluster.overlap;
  so.bf16_gradients = config.cluster.grad_dtype == "bfloat16";
  so.amp_bf16 = config.training.amp == "bf16";
  so.r1_gamma = config.training.r1_gamma;
  so.r1_every = config.training.r1_every;
  so.gp_lambda = config.training.gp_lambda;
  return so;
}

}  // namespace distgan
