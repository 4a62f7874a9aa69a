#include "trainer/eval/evaluation.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/script.h>

#include <algorithm>
#include <cstdio>
#include <sstream>

#include "data/h5_handle.h"
#include "data/importers.h"
#include "trainer/eval/classifier.h"
#include "trainer/eval/feature_cache.h"
#include "trainer/eval/frechet.h"
#include "trainer/eval/mode_metrics.h"
#include "trainer/eval/precision_recall.h"
#include "trainer/eval/sliced_wasserstein.h"

namespace distgan {

namespace {

using data::DataError;
constexpr int64_t kMixtureSamples = 2500;  // the VEEGAN / PacGAN protocol's count
constexpr int64_t kChunk = 500;

// 2-D mixture datasets carry attributes source (ring | grid) and std (`distgan prep`).
bool mixture_layout(const std::string& path, torch::Tensor& centers, double& std) {
  data::h5_silence_errors();
  data::H5Handle file(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose);
  if (!file.valid() || H5Aexists(file.get(), "source") <= 0 || H5Aexists(file.get(), "std") <= 0) {
    data::h5_last_error();
    return false;
  }
  const std::string source = data::h5_read_string_attribute(file.get(), "source", path);
  if (source != "ring" && source != "grid") return false;
  const auto modes = data::mixture_modes(source == "ring" ? data::Mixture::kRing : data::Mixture::kGrid);
  centers = torch::empty({static_cast<int64_t>(modes.size()), 2}, torch::kFloat64);
  for (size_t i = 0; i < modes.size(); ++i) {
    centers[static_cast<int64_t>(i)][0] = modes[i].first;
    centers[static_cast<int64_t>(i)][1] = modes[i].second;
  }
  std = std::atof(data::h5_read_string_attribute(file.get(), "std", path).c_str());
  return std > 0;
}

// A fixed random subset of the real file (the same for every evaluation), ascending indices.
torch::Tensor read_reference(const data::ReaderOptions& o, int64_t count, uint64_t seed) {
  data::DatasetReader reader(o);
  const int64_t n = std::min(count, reader.size());
  at::Generator g = at::detail::createCPUGenerator(seed ^ 0x7265616cULL);
  torch::Tensor pick = std::get<0>(torch::randperm(reader.size(), g, torch::kInt64).narrow(0, 0, n).sort());
  std::vector<int64_t> indices(pick.data_ptr<int64_t>(), pick.data_ptr<int64_t>() + n);
  std::vector<int64_t> shape{n};
  shape.insert(shape.end(), reader.sample_shape().begin(), reader.sample_shape().end());
  torch::Tensor out = torch::empty(shape);
  reader.read(indices, out.data_ptr<float>(), nullptr);
  return out;
}

std::string format_number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.4g", v);
  return buf;
}

}  // namespace

// Image features in batches: a distgan classifier or a TorchScript module.
class FeatureExtractor {
 public:
  virtual ~FeatureExtractor() = default;
  virtual torch::Tensor features(const torch::Tensor& images) = 0;
  virtual torch::Tensor logits(const torch::Tensor& images) { return {}; }
  std::string path;

  torch::Tensor features_of(const torch::Tensor& images) {
    torch::NoGradGuard no_grad;
    std::vector<torch::Tensor> parts;
    for (int64_t i = 0; i < images.size(0); i += kChunk)
      parts.push_back(features(images.narrow(0, i, std::min(kChunk, images.size(0) - i))).to(torch::kFloat32));
    return torch::cat(parts);
  }
};

namespace {

class ClassifierFeatures : public FeatureExtractor {
 public:
  explicit ClassifierFeatures(const std::string& file) : c_(load_classifier(file)) { path = file; }
  torch::Tensor features(const torch::Tensor& images) override { return c_.model->features(images); }
  torch::Tensor logits(const torch::Tensor& images) override {
    torch::NoGradGuard no_grad;
    return c_.model->forward(images);
  }
  const TrainedClassifier& classifier() const { return c_; }

 private:
  TrainedClassifier c_;
};

class TorchScriptFeatures : public FeatureExtractor {
 public:
  explicit TorchScriptFeatures(const std::string& file) {
    path = file;
    try {
      module_ = torch::jit::load(file);
    } catch (const std::exception& e) {
      throw DataError(file + ": not a TorchScript module that this LibTorch loads: " +
                      std::string(e.what()).substr(0, 300));
    }
    module_.eval();
  }
  torch::Tensor features(const torch::Tensor& images) override {
    torch::Tensor f;
    try {
      f = module_.forward({images}).toTensor();
    } catch (const std::exception& e) {
      throw DataError(path + ": the TorchScript module failed on images " + shape_text(images) + ": " +
                      std::string(e.what()).substr(0, 300));
    }
    if (f.dim() != 2 || f.size(0) != images.size(0))
      throw DataError(path + ": the TorchScript module returned " + shape_text(f) + " for " + shape_text(images) +
                      "; expected features [N, F]");
    return f;
  }

 private:
  static std::string shape_text(const torch::Tensor& t) {
    std::ostringstream s;
    s << t.sizes();
    return s.str();
  }
  torch::jit::script::Module module_;
};

}  // namespace

Evaluator::~Evaluator() = default;

Evaluator::Evaluator(const EvalOptions& options, const std::vector<int64_t>& sample_shape, bool with_reference)
    : options_(options), shape_(sample_shape), images_(sample_shape.size() == 3) {
  if (images_) {
    if (!options.features.empty()) extractor_ = std::make_unique<TorchScriptFeatures>(options.features);
    if (!options.classifier.empty()) {
      auto c = std::make_unique<ClassifierFeatures>(options.classifier);
      if (c->classifier().sample_shape != sample_shape)
        throw DataError(options.classifier + ": the classifier is for images of another shape than these");
      label_classifier_ = std::move(c);
      if (!extractor_) extractor_ = std::make_unique<ClassifierFeatures>(options.classifier);
    }
    if (!extractor_)
      throw std::invalid_argument("image metrics need a feature extractor: a classifier (eval.classifier, --classifier; "
                                  "make one with `distgan eval train-classifier`) or a TorchScript module "
                                  "(eval.features, --features)");
    count_ = options.samples;
    if (!with_reference) return;
    // The reference features, cached beside the dataset: keyed by the dataset's and the extractor's bytes.
    const std::string key = eval::content_key({options.real.path, extractor_->path},
                                              options.real.dataset + " n=" + std::to_string(options.reference) +
                                                  " seed=" + std::to_string(options.seed));
    const std::string cache = eval::cache_path(options.real.path, key);
    if (auto cached = eval::load_cached_features(cache)) {
      reference_ = *cached;
    } else {
      reference_ = extractor_->features_of(read_reference(options.real, options.reference, options.seed));
      eval::save_cached_features(cache, reference_, "features of " + options.real.path + " by " + extractor_->path);
    }
  } else {
    const bool mixture = shape_ == std::vector<int64_t>{2} && mixture_layout(options.real.path, centers_, mixture_std_);
    count_ = mixture ? kMixtureSamples : options.samples;
    if (with_reference) reference_ = read_reference(options.real, options.reference, options.seed).to(torch::kFloat64);
  }
}

EvalResult Evaluator::evaluate(const torch::Tensor& samples, const torch::Tensor& labels) {
  return evaluate_summary(summarize(samples, labels.defined()), labels);
}

SampleSummary Evaluator::summarize(const torch::Tensor& samples_in, bool predict_classes) {
  torch::NoGradGuard no_grad;
  const torch::Tensor samples = samples_in.to(torch::kCPU, torch::kFloat32).contiguous();
  SampleSummary s;
  if (samples.size(0) == 0) return s;
  s.features = images_ ? extractor_->features_of(samples) : samples.clone();
  const torch::Tensor bad = ~torch::isfinite(samples).flatten(1).all(1);
  s.features.index_put_({bad}, std::nan(""));
  if (predict_classes && images_ && label_classifier_) {
    std::vector<torch::Tensor> parts;
    for (int64_t i = 0; i < samples.size(0); i += kChunk)
      parts.push_back(label_classifier_->logits(samples.narrow(0, i, std::min(kChunk, samples.size(0) - i))).argmax(1));
    s.predicted = torch::cat(parts).to(torch::kInt64);
  }
  return s;
}

EvalResult Evaluator::evaluate_summary(const SampleSummary& all, const torch::Tensor& labels) {
  torch::NoGradGuard no_grad;
  TORCH_CHECK(reference_.defined(), "evaluate_summary: this evaluator was made without the reference");
  EvalResult r;
  if (!all.features.defined() || !torch::isfinite(all.features).all().item<bool>()) {
    r.what = "the samples hold non-finite values (a diverged generator?): no metrics";
    return r;
  }
  const int64_t n = all.features.size(0);
  if (!images_) {
    const torch::Tensor samples = all.features.to(torch::kFloat64);
    if (centers_.defined()) {
      const eval::ModeReport m = eval::mode_metrics(samples, centers_, mixture_std_);
      r.metrics = {{"modes_captured", double(m.modes_captured)},
                   {"modes_total", double(centers_.size(0))},
                   {"high_quality", m.high_quality},
                   {"reverse_kl", m.reverse_kl},
                   {"mode_spread", m.spread}};
    }
    r.metrics.emplace_back("sliced_wasserstein", eval::sliced_wasserstein(samples, reference_, 256, options_.seed));
    r.what = std::to_string(n) + " samples" +
             (centers_.defined() ? " (2-D mixture protocol: 3-std high-quality radius)" : "") + " vs " +
             std::to_string(reference_.size(0)) + " real";
    return r;
  }
  const torch::Tensor& f = all.features;
  const torch::Tensor& real = reference_;
  const eval::KidResult kid = eval::kernel_inception_distance(real, f, 100, 1000, options_.seed);
  const eval::PrecisionRecall pr = eval::precision_recall(real, f, 3);
  r.metrics = {{"fid", eval::frechet_distance(eval::feature_stats(real), eval::feature_stats(f))},
               {"kid", kid.mean},
               {"precision", pr.precision},
               {"recall", pr.recall}};
  if (labels.defined() && all.predicted.defined()) {
    const torch::Tensor truth = labels.to(torch::kCPU);
    const int64_t classes = truth.max().item<int64_t>() + 1;
    const torch::Tensor hit = (all.predicted == truth).to(torch::kFloat64);
    r.metrics.emplace_back("class_accuracy", hit.mean().item<double>());
    for (int64_t k = 0; k < classes; ++k) {
      const torch::Tensor mask = truth == k;
      r.class_accuracy.push_back(mask.any().item<bool>() ? hit.index({mask}).mean().item<double>() : 0.0);
    }
  }
  r.what = std::to_string(n) + " samples vs " + std::to_string(real.size(0)) + " real, features of " +
           extractor_->path + " (" + std::to_string(real.size(1)) + "-d)";
  return r;
}

std::string EvalResult::text() const {
  std::string s;
  for (const auto& [name, value] : metrics) s += (s.empty() ? "" : "  ") + name + " " + format_number(value);
  return s.empty() ? what : s;
}

std::pair<torch::Tensor, torch::Tensor> generate_for_eval(torch::nn::Sequential& g, const ModelSpec& spec,
                                                          int64_t count, uint64_t seed, torch::Device device,
                                                          int64_t begin, int64_t end) {
  torch::NoGradGuard no_grad;
  if (end < 0) end = count;
  TORCH_CHECK(0 <= begin && begin <= end && end <= count, "generate_for_eval: the range is outside the samples");
  const bool was_training = g->is_training();
  g->eval();
  at::Generator noise = at::detail::createCPUGenerator(seed ^ 0x6576616cULL);
  std::vector<torch::Tensor> parts;
  torch::Tensor labels;
  if (spec.num_classes > 0) labels = torch::arange(count, torch::kInt64) % spec.num_classes;
  for (int64_t i = 0; i < end; i += kChunk) {  // every chunk's noise is drawn, in order: the same per sample
    const int64_t n = std::min(kChunk, count - i);
    const torch::Tensor z = torch::randn({n, spec.z_dim}, noise);
    const int64_t from = std::max(i, begin), to = std::min(i + n, end);
    if (from >= to) continue;
    parts.push_back(generate(g, z.narrow(0, from - i, to - from).to(device),
                             labels.defined() ? labels.narrow(0, from, to - from).to(device) : torch::Tensor())
                        .to(torch::kCPU, torch::kFloat32));
  }
  if (was_training) g->train();
  std::vector<int64_t> empty_shape{0};
  empty_shape.insert(empty_shape.end(), spec.sample_shape.begin(), spec.sample_shape.end());
  return {parts.empty() ? torch::empty(empty_shape) : torch::cat(parts),
          labels.defined() ? labels.narrow(0, begin, end - begin) : labels};
}

}  // namespace distgan
