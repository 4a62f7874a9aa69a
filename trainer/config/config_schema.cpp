#include "trainer/config/config_schema.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cmath>
#include <limits>

namespace distgan {

namespace {

// ---- value formatting (round-trips through the YAML parser) ----
std::string format(int64_t v) { return std::to_string(v); }
std::string format(bool v) { return v ? "true" : "false"; }
std::string format(double v) {
  // The shortest %g text that reads back to the same double (0.0002 rather than 2e-04).
  char buf[64];
  for (int precision = 1; precision <= 17; ++precision) {
    std::snprintf(buf, sizeof(buf), "%.*g", precision, v);
    if (std::strtod(buf, nullptr) == v) break;
  }
  std::string s(buf);
  if (s.find_first_of(".eEn") == std::string::npos) s += ".0";  // stays a float when read back
  return s;
}
std::string format(const std::string& v) {
  YAML::Emitter out;
  out << YAML::DoubleQuoted << v;
  return out.c_str();
}
std::string format(const std::array<double, 2>& v) { return "[" + format(v[0]) + ", " + format(v[1]) + "]"; }

std::string range_text(double lo, double hi, bool lo_open) {
  auto plain = [](double x) {  // 0 and 1 rather than 0.0 and 1.0
    std::string t = format(x);
    if (t.size() > 2 && t.compare(t.size() - 2, 2, ".0") == 0) t.resize(t.size() - 2);
    return t;
  };
  return std::string(lo_open ? "(" : "[") + plain(lo) + ", " + plain(hi) + "]";
}

std::string int_range_text(int64_t lo, int64_t hi) {
  return "[" + std::to_string(lo) + ", " + std::to_string(hi) + "]";
}

bool is_scalar(const YAML::Node& n) { return n.IsScalar(); }

// ---- key builders: one per value type ----
template <typename S>
using Section = S Config::*;

template <typename S>
ConfigKey int_key(const char* section, Section<S> sec, const char* name, int64_t S::*field, int64_t lo,
                  int64_t hi, const char* description) {
  return {section, name, description,
          [=](Config& c, const YAML::Node& n) -> std::string {
            const std::string want = "an integer in " + int_range_text(lo, hi);
            if (!is_scalar(n)) return want;
            int64_t v;
            if (!YAML::convert<int64_t>::decode(n, v) || v < lo || v > hi) return want;
            (c.*sec).*field = v;
            return "";
          },
          [=](const Config& c) { return format((c.*sec).*field); }};
}

template <typename S>
ConfigKey float_key(const char* section, Section<S> sec, const char* name, double S::*field, double lo,
                    double hi, bool lo_open, const char* description) {
  return {section, name, description,
          [=](Config& c, const YAML::Node& n) -> std::string {
            const std::string want = "a number in " + range_text(lo, hi, lo_open);
            double v;
            if (!is_scalar(n) || !YAML::convert<double>::decode(n, v) || !std::isfinite(v)) return want;
            if ((lo_open ? v <= lo : v < lo) || v > hi) return want;
            (c.*sec).*field = v;
            return "";
          },
          [=](const Config& c) { return format((c.*sec).*field); }};
}

template <typename S>
ConfigKey pair_key(const char* section, Section<S> sec, const char* name, std::array<double, 2> S::*field,
                   const char* description) {
  return {section, name, description,
          [=](Config& c, const YAML::Node& n) -> std::string {
            const std::string want = "a list of two numbers in [0, 1), like [0.5, 0.999]";
            if (!n.IsSequence() || n.size() != 2) return want;
            std::array<double, 2> v;
            for (size_t i = 0; i < 2; ++i)
              if (!n[i].IsScalar() || !YAML::convert<double>::decode(n[i], v[i]) || !(v[i] >= 0 && v[i] < 1))
                return want;
            (c.*sec).*field = v;
            return "";
          },
          [=](const Config& c) { return format((c.*sec).*field); }};
}

template <typename S>
ConfigKey bool_key(const char* section, Section<S> sec, const char* name, bool S::*field,
                   const char* description) {
  return {section, name, description,
          [=](Config& c, const YAML::Node& n) -> std::string {
            bool v;
            if (!is_scalar(n) || !YAML::convert<bool>::decode(n, v)) return "true or false";
            (c.*sec).*field = v;
            return "";
          },
          [=](const Config& c) { return format((c.*sec).*field); }};
}

// choices empty: any string; otherwise one of them.
template <typename S>
ConfigKey string_key(const char* section, Section<S> sec, const char* name, std::string S::*field,
                     std::vector<std::string> choices, const char* description) {
  return {section, name, description,
          [=](Config& c, const YAML::Node& n) -> std::string {
            std::string want = "a string";
            if (!choices.empty()) {
              want = "one of";
              for (size_t i = 0; i < choices.size(); ++i) want += (i ? ", " : " ") + choices[i];
            }
            if (n.IsNull() && choices.empty()) {
              (c.*sec).*field = "";
              return "";
            }
            if (!is_scalar(n)) return want;
            const std::string v = n.Scalar();
            if (!choices.empty() && std::find(choices.begin(), choices.end(), v) == choices.end()) return want;
            (c.*sec).*field = v;
            return "";
          },
          [=](const Config& c) { return format((c.*sec).*field); },
          choices.empty()};
}

constexpr int64_t kBig = int64_t{1} << 53;

// The resume column: a key wrapped in this may differ between a checkpoint's config and the
// resumed run's (rates, schedules, logging, checkpointing, cluster and evaluation settings, the
// dataset's location); every other key must match, or the resume is refused.
ConfigKey may_change_on_resume(ConfigKey key) {
  key.may_change_on_resume = true;
  return key;
}

std::vector<ConfigKey> build_schema() {
  using C = Config;
  using D = DataConfig;
  using M = ModelConfig;
  using T = TrainingConfig;
  using K = CheckpointConfig;
  using L = LoggingConfig;
  using U = ClusterConfig;
  using E = EvalConfig;
  return {
      may_change_on_resume(string_key("data", &C::data, "path", &D::path, {}, "HDF5 dataset file (written by `distgan prep` or h5py)")),
      string_key("data", &C::data, "dataset", &D::dataset, {}, "path of the samples inside the file"),
      string_key("data", &C::data, "labels", &D::labels, {},
                 "path of the integer labels inside the file, used when present (\"\" to ignore)"),
      string_key("data", &C::data, "layout", &D::layout, {"NCHW", "NHWC"}, "storage order of 4-D image datasets"),
      string_key("data", &C::data, "scale", &D::scale, {"auto", "uint8", "unit", "none"},
                 "map values to [-1, 1]: uint8 from [0, 255], unit from [0, 1]; auto: uint8 for uint8 data"),
      bool_key("data", &C::data, "shuffle", &D::shuffle, "shuffle the global order every epoch"),
      string_key("data", &C::data, "remainder", &D::remainder, {"drop", "wrap"},
                 "samples past the last whole global batch: drop them, or wrap to the epoch's start"),
      may_change_on_resume(int_key("data", &C::data, "prefetch_batches", &D::prefetch_batches, 1, 1024,
                "batches the loader thread prepares ahead of the trainer")),
      may_change_on_resume(int_key("data", &C::data, "chunk_cache_mb", &D::chunk_cache_mb, 0, 65536,
                "HDF5 chunk cache per rank, in MiB")),

      string_key("model", &C::model, "name", &M::name, {"dcgan", "resnet", "mlp"},
                 "architecture: dcgan (28, 32 or 64 px images), resnet (SNGAN/BigGAN-style, 28 to 256 px) "
                 "or mlp (vectors)"),
      int_key("model", &C::model, "z_dim", &M::z_dim, 1, 65536, "latent size"),
      int_key("model", &C::model, "ch", &M::ch, 1, 4096, "image models' width: dcgan's D first layer, resnet's unit (docs/models.md)"),
      int_key("model", &C::model, "mlp_width", &M::mlp_width, 1, 65536, "MLP hidden width"),
      int_key("model", &C::model, "mlp_depth", &M::mlp_depth, 1, 64, "MLP hidden layers"),
      bool_key("model", &C::model, "mlp_batchnorm", &M::mlp_batchnorm, "batch norm in the MLP generator"),
      int_key("model", &C::model, "latent_categories", &M::latent_categories, 0, 1 << 20,
              "mlp: K equally likely learned codes picked by z's first coordinate, so G can draw "
              "disconnected modes without bridges between them (0: a Gaussian latent only)"),
      float_key("model", &C::model, "latent_noise_scale", &M::latent_noise_scale, 0, 100, true,
                "with latent_categories: G sees z's continuous part times this, so each code draws a small "
                "cluster and cannot straddle two modes (1: unscaled)"),
      bool_key("model", &C::model, "conditional", &M::conditional,
               "class-conditional G (label embedding) and D (projection head); needs data.labels"),
      int_key("model", &C::model, "num_classes", &M::num_classes, 0, 1 << 20,
              "classes of a conditional model (0: the largest label + 1)"),
      string_key("model", &C::model, "d_spectral_norm", &M::d_spectral_norm, {"auto", "true", "false"},
                 "spectral normalisation of D's layers (D then has no batch norm); auto: on for resnet, off "
                 "for dcgan and mlp"),

      may_change_on_resume(int_key("training", &C::training, "steps", &T::steps, 0, kBig, "generator steps to train for")),
      int_key("training", &C::training, "batch_size", &T::batch_size, 1, kBig,
              "global batch: split evenly across the ranks"),
      string_key("training", &C::training, "loss", &T::loss, {"nonsaturating", "hinge", "wgan-gp"},
                 "adversarial loss (wgan-gp: Wasserstein loss with a gradient penalty; use n_critic 5)"),
      may_change_on_resume(float_key("training", &C::training, "lr_g", &T::lr_g, 0, 1, true, "generator Adam learning rate")),
      may_change_on_resume(float_key("training", &C::training, "lr_d", &T::lr_d, 0, 1, true, "discriminator Adam learning rate")),
      may_change_on_resume(string_key("training", &C::training, "lr_schedule", &T::lr_schedule, {"constant", "linear"},
                   "learning rates: constant, or linear decay of both to 0 at training.steps")),
      may_change_on_resume(float_key("training", &C::training, "lr_decay_start", &T::lr_decay_start, 0, 0.99, false,
                  "linear schedule: the share of training.steps trained at the full rates before the decay")),
      may_change_on_resume(pair_key("training", &C::training, "betas_g", &T::betas_g, "generator Adam betas")),
      may_change_on_resume(pair_key("training", &C::training, "betas_d", &T::betas_d, "discriminator Adam betas")),
      int_key("training", &C::training, "n_critic", &T::n_critic, 1, 100, "discriminator steps per generator step"),
      int_key("training", &C::training, "seed", &T::seed, 0, kBig, "seed of the data order, init and noise"),
      may_change_on_resume(string_key("training", &C::training, "amp", &T::amp, {"none", "bf16"},
                   "bf16: autocast the forward passes to bfloat16 (CUDA, or CPUs with native bf16 such as AVX512-BF16)")),
      may_change_on_resume(string_key("training", &C::training, "on_nonfinite", &T::on_nonfinite, {"skip", "abort"},
                   "a non-finite loss or gradient: skip the update on every rank, or stop (exit 1)")),
      may_change_on_resume(int_key("training", &C::training, "max_consecutive_skips", &T::max_consecutive_skips, 1, 1000000,
                "with on_nonfinite skip: stop after this many steps in a row with a skipped update")),
      may_change_on_resume(float_key("training", &C::training, "ema.half_life_kimg", &T::ema_half_life_kimg, 0, 1e9, false,
                  "half-life of G's exponential moving average, in thousands of images (0: no EMA)")),
      may_change_on_resume(float_key("training", &C::training, "ema.rampup", &T::ema_rampup, 0, 1e6, false,
                  "EMA ramp-up: the half-life is at most this x the images seen so far (0: no ramp-up)")),
      may_change_on_resume(float_key("training", &C::training, "r1.gamma", &T::r1_gamma, 0, 1e9, false,
                  "R1 gradient penalty on real data: weight gamma (0: off)")),
      may_change_on_resume(int_key("training", &C::training, "r1.every", &T::r1_every, 1, 1000000,
                "apply R1 every this many D steps, scaled by it (lazy regularisation)")),
      may_change_on_resume(float_key("training", &C::training, "top_k.keep", &T::top_k_keep, 0, 1, true,
                  "top-k training: G learns from the share max(keep, decay^epoch) of its fakes that D scores "
                  "highest (1: all)")),
      may_change_on_resume(float_key("training", &C::training, "top_k.decay", &T::top_k_decay, 0, 1, true,
                  "top-k training: the share kept shrinks by this factor per epoch, down to top_k.keep")),
      may_change_on_resume(int_key("training", &C::training, "code_reseed.every", &T::code_reseed_every, 0, kBig,
                "with model.latent_categories: every this many steps, each latent code whose samples fall off the "
                "real data becomes a copy of a random live code (0: never)")),
      may_change_on_resume(float_key("training", &C::training, "code_reseed.until", &T::code_reseed_until, 0, 1, false,
                  "code_reseed: check only up to this share of training.steps (1: to the end)")),
      may_change_on_resume(float_key("training", &C::training, "gp.lambda", &T::gp_lambda, 0, 1e9, false,
                  "gradient penalty weight of the wgan-gp loss")),
      may_change_on_resume(int_key("training", &C::training, "accumulate", &T::accumulate, 1, 4096,
              "micro-batches per step: each rank's batch is split into this many, forward and backward one "
              "at a time, with one gradient all-reduce per update (saves memory; BatchNorm sees micro-batches)")),
      string_key("training", &C::training, "augment", &T::augment, {},
                 "differentiable augmentation of every image D sees (DiffAugment): none, or a comma-separated "
                 "list of translation, color, cutout"),

      may_change_on_resume(int_key("checkpoint", &C::checkpoint, "every", &K::every, 0, kBig,
                "write a checkpoint every this many steps (0: only at the end)")),
      may_change_on_resume(int_key("checkpoint", &C::checkpoint, "keep", &K::keep, 1, 1000000, "checkpoints to keep")),
      may_change_on_resume(string_key("checkpoint", &C::checkpoint, "on_error", &K::on_error, {"continue", "abort"},
                   "a checkpoint that cannot be written (disk full, read-only): log it and retry at the next "
                   "interval, or stop the job (exit 1); the previous checkpoint stays either way")),

      may_change_on_resume(string_key("logging", &C::logging, "run_dir", &L::run_dir, {},
                   "directory for metrics, sample grids and checkpoints")),
      may_change_on_resume(int_key("logging", &C::logging, "every", &L::every, 1, kBig, "log metrics every this many steps")),
      may_change_on_resume(int_key("logging", &C::logging, "sample_every", &L::sample_every, 0, kBig,
                "write a sample grid every this many steps (0: never)")),
      may_change_on_resume(string_key("logging", &C::logging, "level", &L::level, {"debug", "info", "warn", "error"},
                 "console lines: info shows progress, metrics lines and checkpoints; warn only warnings; "
                 "errors always")),

      may_change_on_resume(string_key("cluster", &C::cluster, "backend", &U::backend, {"auto", "mpi", "nccl"},
                   "collectives: auto is nccl on CUDA devices when compiled in, mpi otherwise")),
      may_change_on_resume(string_key("cluster", &C::cluster, "device", &U::device, {"cpu", "cuda"},
                   "compute device; cuda uses cuda:<local rank>")),
      may_change_on_resume(int_key("cluster", &C::cluster, "threads", &U::threads, 0, 1024,
                "compute threads per rank (0: the cores in the rank's affinity mask)")),
      may_change_on_resume(string_key("cluster", &C::cluster, "memory_format", &U::memory_format,
                {"auto", "channels_last", "contiguous"},
                "layout of conv weights and image activations; auto: channels_last for resnet (1.33x faster "
                "on CPU), contiguous for dcgan (no difference measured)")),
      may_change_on_resume(string_key("cluster", &C::cluster, "conv_transpose", &U::conv_transpose,
                {"auto", "onednn", "libtorch"},
                "kernel of G's transposed convolutions on the CPU in float32: auto is onednn when compiled in "
                "(1.5x faster DCGAN steps than LibTorch 1.13's own kernel), libtorch otherwise; on GPUs "
                "LibTorch's")),
      may_change_on_resume(float_key("cluster", &C::cluster, "bucket_mb", &U::bucket_mb, 0.001, 1024, false,
                  "gradient bucket size for the all-reduce, in MiB (at most: a model gets buckets of an "
                  "eighth of its gradients when that is smaller, but not under 0.25 MiB)")),
      may_change_on_resume(bool_key("cluster", &C::cluster, "overlap", &U::overlap,
                "start each gradient bucket's all-reduce during backward, as soon as its gradients are in "
                "(false: all after backward; the same numbers either way)")),
      may_change_on_resume(string_key("cluster", &C::cluster, "grad_dtype", &U::grad_dtype, {"float32", "bfloat16"},
                   "what the gradient all-reduces move: bfloat16 halves the bytes on slow links (summed in "
                   "float32 per pair, rounded to bf16; gradients and optimizer stay float32)")),
      may_change_on_resume(int_key("cluster", &C::cluster, "collective_timeout_s", &U::collective_timeout_s, 1, 86400 * 7,
                "seconds a collective may take before the job is aborted")),
      may_change_on_resume(int_key("cluster", &C::cluster, "check_replicas_every", &U::check_replicas_every, 0, kBig,
                "compare a checksum of every parameter across ranks every this many steps (0: never)")),

      may_change_on_resume(int_key("eval", &C::eval, "every", &E::every, 0, kBig,
                "evaluate (distgan eval's metrics) every this many steps during training (0: never)")),
      may_change_on_resume(int_key("eval", &C::eval, "samples", &E::samples, 100, 1000000,
                "generated samples per evaluation (2-D mixtures use 2,500)")),
      may_change_on_resume(string_key("eval", &C::eval, "classifier", &E::classifier, {},
                   "image features: a classifier file from `distgan eval train-classifier`")),
      may_change_on_resume(string_key("eval", &C::eval, "features", &E::features, {},
                   "image features: a TorchScript module (its forward maps [N,C,H,W] in [-1,1] to [N,F])")),
      may_change_on_resume(string_key("eval", &C::eval, "real", &E::real, {},
                   "real reference data for the metrics (\"\": data.path)")),
      may_change_on_resume(bool_key("eval", &C::eval, "ema", &E::ema, "evaluate G's EMA when the run has one")),
  };
}

}  // namespace

const std::vector<ConfigKey>& config_schema() {
  static const std::vector<ConfigKey> schema = build_schema();
  return schema;
}

const ConfigKey* find_config_key(const std::string& path) {
  for (const auto& key : config_schema())
    if (key.path() == path) return &key;
  return nullptr;
}

const std::vector<std::string>& config_sections() {
  static const std::vector<std::string> sections{"data", "model", "training", "checkpoint", "logging", "cluster", "eval"};
  return sections;
}

}  // namespace distgan
