// What `distgan eval` and the training loop's `eval.every` measure, by kind of data:
//   2-D mixtures (datasets from `distgan prep ring|grid`): modes captured, share of high-quality
//     samples and reverse KL over 2,500 samples (VEEGAN / PacGAN protocol; trainer/eval/mode_metrics.h),
//     plus the sliced Wasserstein distance to real samples;
//   other vectors: the sliced Wasserstein distance to real samples;
//   images: FID, KID, improved precision and recall in the feature space of a classifier trained on
//     the dataset (trainer/eval/classifier.h) or of a user's TorchScript module; for conditional models
//     also how often the classifier assigns a sample to the class it was generated for.
// The real reference (up to `reference` samples of the real file, a fixed random subset) is read
// once; for images its features are cached beside the dataset, keyed by the content of the dataset
// and the extractor files (trainer/eval/feature_cache.h).
#pragma once

#include <torch/torch.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "data/dataset_reader.h"
#include "trainer/model/models.h"

namespace distgan {

struct EvalOptions {
  data::ReaderOptions real;    // the reference data (path, dataset, labels, layout, scale)
  std::string classifier;      // `distgan eval train-classifier` file (features and class accuracy)
  std::string features;        // TorchScript module: features [N, F] of images in [-1, 1]
  int64_t samples = 10000;     // samples to evaluate (2-D mixtures: 2,500)
  int64_t reference = 10000;   // real reference samples
  uint64_t seed = 0;
};

struct EvalResult {
  std::vector<std::pair<std::string, double>> metrics;  // in a fixed order, e.g. fid, kid, precision, recall
  std::vector<double> class_accuracy;                   // conditional: per class
  std::string what;                                     // one line: which metrics, which features
  std::string text() const;                             // "fid 23.1  kid 0.0123 ..."
};

// What one rank computes of its share of the samples (the expensive part: a network's forward over
// every sample), so that an evaluation splits across ranks: image features, and the classifier's
// predicted class when asked for; for vectors the samples themselves. The rows of samples that are
// not finite get non-finite features.
struct SampleSummary {
  torch::Tensor features;   // [n, F] float32
  torch::Tensor predicted;  // [n] int64, or undefined
};

class FeatureExtractor;

class Evaluator {
 public:
  // Reads the reference (or its cached features). `sample_shape` is what will be evaluated.
  // with_reference false: summarize() only (the other ranks of a distributed evaluation).
  Evaluator(const EvalOptions& options, const std::vector<int64_t>& sample_shape, bool with_reference = true);
  ~Evaluator();
  int64_t sample_count() const { return count_; }
  // The count another evaluator of the same run decided (rank 0's, for the ranks that share an
  // evaluation: they must not each decide from files they may not see alike).
  void use_sample_count(int64_t count) { count_ = count; }
  // Whether summarize() predicts classes (images with a classifier) when asked to.
  bool predicts_classes() const { return images_ && label_classifier_ != nullptr; }
  // samples in model space ([-1, 1] images or vectors); labels: the class each was generated for
  // (conditional models) or undefined.
  EvalResult evaluate(const torch::Tensor& samples, const torch::Tensor& labels);
  // The two halves of evaluate(): summaries of any share of the samples (on any rank), then the
  // metrics from every share's summary concatenated in sample order (needs the reference).
  SampleSummary summarize(const torch::Tensor& samples, bool predict_classes);
  EvalResult evaluate_summary(const SampleSummary& all, const torch::Tensor& labels);

 private:
  EvalOptions options_;
  std::vector<int64_t> shape_;
  int64_t count_ = 0;
  bool images_ = false;
  torch::Tensor centers_;  // 2-D mixtures
  double mixture_std_ = 0;
  torch::Tensor reference_;  // real vectors, or real image features
  std::unique_ptr<FeatureExtractor> extractor_;
  std::unique_ptr<FeatureExtractor> label_classifier_;
};

// `count` samples of G in eval mode (chunks of 500) with the noise of `seed`; conditional models
// get the classes in turn (sample i has class i mod classes). Returns (samples on the CPU, labels).
// With a range [begin, end), only those samples (and labels): sample i has the same noise and class
// whatever the range, so ranks can each generate a share of one evaluation.
std::pair<torch::Tensor, torch::Tensor> generate_for_eval(torch::nn::Sequential& g, const ModelSpec& spec,
                                                          int64_t count, uint64_t seed, torch::Device device,
                                                          int64_t begin = 0, int64_t end = -1);

}  // namespace distgan
