// The run configuration: typed sections, each key with a default. The key table with descriptions
// and valid ranges is in config_schema.cpp; loading YAML, --set overrides and printing are in
// config_yaml.cpp. data/ and cluster/ never see these structs: the launcher turns them into the
// plain option structs those libraries take.
#pragma once

#include <array>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace distgan {

struct DataConfig {
  std::string path = "datasets/fashion-mnist.h5";
  std::string dataset = "/images";
  std::string labels = "/labels";
  std::string layout = "NCHW";
  std::string scale = "auto";
  bool shuffle = true;
  std::string remainder = "drop";
  int64_t prefetch_batches = 4;
  int64_t chunk_cache_mb = 4;
};

struct ModelConfig {
  std::string name = "dcgan";
  int64_t z_dim = 100;
  int64_t ch = 64;
  int64_t mlp_width = 256;
  int64_t mlp_depth = 3;
  bool mlp_batchnorm = false;
  int64_t latent_categories = 0;  // mlp: a K-way categorical part of G's latent (0: off)
  double latent_noise_scale = 1;  // with latent_categories: the scale of z's continuous part
  bool conditional = false;      // G(z, class) and a projection D; needs labels in the dataset
  int64_t num_classes = 0;       // with conditional: 0 = max label + 1 (resolved at the start of a run)
  std::string d_spectral_norm = "auto";  // true | false | auto (on for resnet only): SN of D's layers, no BN in D
};

struct TrainingConfig {
  int64_t steps = 2000;
  int64_t batch_size = 128;  // global: split evenly across ranks
  std::string loss = "nonsaturating";
  double lr_g = 2e-4;
  double lr_d = 2e-4;
  std::string lr_schedule = "constant";  // constant | linear (to 0 at training.steps)
  double lr_decay_start = 0;             // linear: the share of training.steps before the decay begins
  std::array<double, 2> betas_g{0.5, 0.999};
  std::array<double, 2> betas_d{0.5, 0.999};
  int64_t n_critic = 1;
  int64_t seed = 0;
  std::string amp = "none";  // none | bf16 (autocast of the forward passes on CUDA)
  std::string on_nonfinite = "skip";  // skip | abort: a non-finite averaged loss or gradient
  int64_t max_consecutive_skips = 20;
  double ema_half_life_kimg = 10;  // training.ema.half_life_kimg: G's EMA (0: no EMA)
  double ema_rampup = 0.05;        // training.ema.rampup: half-life at most this x images seen (0: none)
  double r1_gamma = 0;             // training.r1.gamma: R1 penalty weight on real data (0: off)
  int64_t r1_every = 16;           // training.r1.every: lazy R1 every this many D steps
  int64_t accumulate = 1;          // training.accumulate: micro-batches per step, one all-reduce each update
  std::string augment = "none";    // training.augment: none, or translation,color,cutout (any of them)
  double gp_lambda = 10;           // training.gp.lambda: gradient penalty weight of the wgan-gp loss
  double top_k_keep = 1;           // training.top_k.keep: least share of fakes G learns from (1: all)
  double top_k_decay = 0.99;       // training.top_k.decay: the share is max(keep, decay^epoch)
  int64_t code_reseed_every = 0;   // training.code_reseed.every: re-seed dead latent codes (0: never)
  double code_reseed_until = 1;    // training.code_reseed.until: ... up to this share of training.steps
};

struct CheckpointConfig {
  int64_t every = 500;
  int64_t keep = 3;
  std::string on_error = "continue";  // continue | abort: a checkpoint that cannot be written
};

struct LoggingConfig {
  std::string run_dir = "runs/fashion-mnist";
  int64_t every = 50;
  int64_t sample_every = 500;
  std::string level = "info";
};

struct ClusterConfig {
  std::string backend = "auto";
  std::string device = "cpu";
  int64_t threads = 0;
  std::string memory_format = "auto";  // auto (channels_last for resnet) | channels_last | contiguous
  std::string conv_transpose = "auto";  // auto (oneDNN where compiled in) | onednn | libtorch
  double bucket_mb = 4.0;
  bool overlap = true;  // each gradient bucket's all-reduce starts during backward
  std::string grad_dtype = "float32";  // float32 | bfloat16: what the gradient all-reduces move
  int64_t collective_timeout_s = 600;
  int64_t check_replicas_every = 500;  // steps between replica checksum comparisons (0: never)
};

struct EvalConfig {
  int64_t every = 0;           // evaluate every this many steps during training (0: never)
  int64_t samples = 10000;     // generated samples per evaluation (2-D mixtures: 2,500)
  std::string classifier;      // feature extractor for images: a `distgan eval train-classifier` file
  std::string features;        // or a TorchScript module (features = its forward output)
  std::string real;            // reference real data for vectors/images ("" = data.path)
  bool ema = true;             // evaluate the EMA generator when there is one
};

struct Config {
  DataConfig data;
  ModelConfig model;
  TrainingConfig training;
  CheckpointConfig checkpoint;
  LoggingConfig logging;
  ClusterConfig cluster;
  EvalConfig eval;

  std::string source_path;  // the YAML file it was loaded from ("" for defaults)
  std::string source_text;  // that file's text, kept for checkpoints
};

// A configuration error: the message names the file and line (or --set) and the key.
class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Loads a YAML file over the defaults. Throws ConfigError.
Config load_config(const std::string& path);
// Parses YAML text over the defaults; `origin` names it in errors.
Config parse_config(const std::string& text, const std::string& origin);
// Applies one "section.key=value" override, validated like the file. Throws ConfigError.
void apply_override(Config& config, const std::string& assignment);
// The effective configuration as YAML, each key with its description as a comment.
std::string print_config(const Config& config);

// Every valid key as "section.key", in schema order.
std::vector<std::string> config_keys();
// The valid key nearest to `key` (edit distance), or "" if none is close.
std::string nearest_key(const std::string& key);

}  // namespace distgan
