// The dataset classifier behind the image metrics (`distgan eval train-classifier`): a small CNN
// trained on the dataset's labels. Its penultimate layer (128 ReLU units) is the feature space of
// FID / KID / precision and recall, and its predictions score conditional samples (does G make the
// class it was asked for?). Inception features do not fit 28x28 grey images; a classifier trained
// on the data itself is the usual substitute (e.g. the MNIST "FID" of many papers).
//   conv 3x3 C->16, ReLU, max-pool 2; conv 3x3 16->32, ReLU, max-pool 2; linear -> 128, ReLU
//   [features]; linear 128 -> classes [logits]
// Saved as an HDF5 file: /classifier/<parameter>, attributes format, sample_shape, num_classes,
// test_accuracy, train_file, test_file.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <vector>

namespace distgan {

struct ClassifierImpl : torch::nn::Module {
  ClassifierImpl(const std::vector<int64_t>& sample_shape, int64_t num_classes);
  torch::Tensor features(const torch::Tensor& images);  // [N, 128]
  torch::Tensor forward(const torch::Tensor& images);   // logits [N, classes]
  torch::nn::Conv2d conv1{nullptr}, conv2{nullptr};
  torch::nn::Linear hidden{nullptr}, out{nullptr};
};
TORCH_MODULE(Classifier);

struct ClassifierTraining {
  std::string train_path, test_path;  // HDF5 datasets with /labels (distgan prep ... --split train|test)
  std::string dataset = "/images", labels = "/labels";
  int64_t epochs = 2, batch_size = 128, limit = 0;  // limit > 0: use only this many training samples
  double lr = 1e-3;
  uint64_t seed = 0;
};

struct TrainedClassifier {
  Classifier model{nullptr};
  std::vector<int64_t> sample_shape;
  int64_t num_classes = 0;
  double test_accuracy = 0;
  std::string train_file, test_file;
};

// Trains with Adam, printing a line per epoch; evaluates on the test file. Throws data::DataError
// for files without labels or with other image shapes.
TrainedClassifier train_classifier(const ClassifierTraining& options);
// Accuracy in [0, 1] of `model` on every sample of an HDF5 dataset.
double classifier_accuracy(Classifier& model, const std::string& path, const std::string& dataset,
                           const std::string& labels);

void save_classifier(const std::string& path, TrainedClassifier& classifier);
TrainedClassifier load_classifier(const std::string& path);

}  // namespace distgan
