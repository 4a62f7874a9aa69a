#include "trainer/eval/classifier.h"

#include <ATen/CPUGeneratorImpl.h>

#include <chrono>
#include <cstdio>
#include <sstream>

#include "data/dataset_reader.h"
#include "data/h5_handle.h"
#include "trainer/state/legacy_module_file.h"
#include "trainer/state/module_tensors.h"
#include "trainer/state/tensor_file.h"

namespace distgan {

namespace {

namespace nn = torch::nn;
using data::DataError;
using data::h5_check;
using data::H5Handle;

constexpr int64_t kFeatures = 128;

// Every sample and label of an HDF5 dataset, images scaled to [-1, 1] as training sees them.
struct LabelledData {
  torch::Tensor images, labels;
};

LabelledData read_all(const std::string& path, const std::string& dataset, const std::string& labels, int64_t limit) {
  data::ReaderOptions o;
  o.path = path;
  o.dataset = dataset;
  o.labels = labels;
  data::DatasetReader reader(o);
  if (!reader.is_image()) throw DataError(path + ": " + dataset + " holds vectors; the classifier is for images");
  if (!reader.has_labels()) throw DataError(path + ": no labels at '" + labels + "': the classifier needs them");
  const int64_t n = limit > 0 ? std::min(limit, reader.size()) : reader.size();
  std::vector<int64_t> shape{n};
  shape.insert(shape.end(), reader.sample_shape().begin(), reader.sample_shape().end());
  LabelledData d{torch::empty(shape), torch::empty({n}, torch::kInt64)};
  std::vector<int64_t> indices(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) indices[static_cast<size_t>(i)] = i;
  reader.read(indices, d.images.data_ptr<float>(), d.labels.data_ptr<int64_t>());
  return d;
}

double accuracy(Classifier& model, const LabelledData& d) {
  torch::NoGradGuard no_grad;
  model->eval();
  int64_t correct = 0;
  for (int64_t i = 0; i < d.images.size(0); i += 500) {
    const int64_t n = std::min<int64_t>(500, d.images.size(0) - i);
    correct += (model->forward(d.images.narrow(0, i, n)).argmax(1) == d.labels.narrow(0, i, n)).sum().item<int64_t>();
  }
  return d.images.size(0) > 0 ? double(correct) / double(d.images.size(0)) : 0.0;
}

}  // namespace

ClassifierImpl::ClassifierImpl(const std::vector<int64_t>& shape, int64_t num_classes) {
  if (shape.size() != 3 || shape[1] % 4 != 0 || shape[2] % 4 != 0)
    throw std::invalid_argument("the classifier takes images [C, H, W] with H and W multiples of 4");
  conv1 = register_module("conv1", nn::Conv2d(nn::Conv2dOptions(shape[0], 16, 3).padding(1)));
  conv2 = register_module("conv2", nn::Conv2d(nn::Conv2dOptions(16, 32, 3).padding(1)));
  hidden = register_module("hidden", nn::Linear(32 * (shape[1] / 4) * (shape[2] / 4), kFeatures));
  out = register_module("out", nn::Linear(kFeatures, num_classes));
}

torch::Tensor ClassifierImpl::features(const torch::Tensor& x) {
  torch::Tensor h = torch::max_pool2d(torch::relu(conv1->forward(x)), 2);
  h = torch::max_pool2d(torch::relu(conv2->forward(h)), 2);
  return torch::relu(hidden->forward(h.flatten(1)));
}

torch::Tensor ClassifierImpl::forward(const torch::Tensor& x) { return out->forward(features(x)); }

TrainedClassifier train_classifier(const ClassifierTraining& o) {
  const LabelledData train = read_all(o.train_path, o.dataset, o.labels, o.limit);
  const LabelledData test = read_all(o.test_path, o.dataset, o.labels, 0);
  if (train.images.sizes().slice(1) != test.images.sizes().slice(1))
    throw DataError(o.test_path + ": its images are not the shape of " + o.train_path + "'s");
  TrainedClassifier t;
  t.sample_shape = train.images.sizes().slice(1).vec();
  t.num_classes = std::max(train.labels.max().item<int64_t>(), test.labels.max().item<int64_t>()) + 1;
  t.train_file = o.train_path;
  t.test_file = o.test_path;
  torch::manual_seed(o.seed);
  t.model = Classifier(t.sample_shape, t.num_classes);
  torch::optim::Adam optimizer(t.model->parameters(), torch::optim::AdamOptions(o.lr));
  at::Generator order = at::detail::createCPUGenerator(o.seed);
  const int64_t n = train.images.size(0);
  for (int64_t epoch = 1; epoch <= o.epochs; ++epoch) {
    const auto start = std::chrono::steady_clock::now();
    t.model->train();
    const torch::Tensor perm = torch::randperm(n, order, torch::kInt64);
    double loss_sum = 0;
    int64_t batches = 0;
    for (int64_t i = 0; i + o.batch_size <= n || (i < n && batches == 0); i += o.batch_size) {
      const torch::Tensor idx = perm.narrow(0, i, std::min(o.batch_size, n - i));
      optimizer.zero_grad();
      const torch::Tensor loss =
          torch::nn::functional::cross_entropy(t.model->forward(train.images.index_select(0, idx)),
                                               train.labels.index_select(0, idx));
      loss.backward();
      optimizer.step();
      loss_sum += loss.item<double>();
      ++batches;
    }
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::printf("classifier epoch %lld/%lld: loss %.4f, test accuracy %.4f (%.1f s)\n", static_cast<long long>(epoch),
                static_cast<long long>(o.epochs), loss_sum / double(std::max<int64_t>(1, batches)),
                accuracy(t.model, test), seconds);
    std::fflush(stdout);
  }
  t.test_accuracy = accuracy(t.model, test);
  return t;
}

double classifier_accuracy(Classifier& model, const std::string& path, const std::string& dataset,
                           const std::string& labels) {
  return accuracy(model, read_all(path, dataset, labels, 0));
}

void save_classifier(const std::string& path, TrainedClassifier& c) {
  TensorFileData data;
  add_module_tensors("classifier/", *c.model, data);
  auto& a = data.attributes;
  a["format"] = kClassifierFormat;
  a["sample_shape"] = shape_attribute(c.sample_shape);
  a["num_classes"] = std::to_string(c.num_classes);
  char accuracy_text[32];
  std::snprintf(accuracy_text, sizeof(accuracy_text), "%.6f", c.test_accuracy);
  a["test_accuracy"] = accuracy_text;
  a["train_file"] = c.train_file;
  a["test_file"] = c.test_file;
  write_tensor_file(path, data);
}

TrainedClassifier load_classifier(const std::string& path) {
  const std::string format = hdf5_format_attribute(path, "classifier file");
  if (format != kClassifierFormat && format != kLegacyClassifierFormat)
    throw DataError(path + ": format '" + format + "' is not a distgan classifier (" + kClassifierFormat + " or " +
                    kLegacyClassifierFormat + "; make one with `distgan eval train-classifier`)");
  const bool legacy = format == kLegacyClassifierFormat;
  std::unique_ptr<TensorFileReader> reader;  // the current format
  H5Handle file;                             // the legacy one: module groups without a manifest
  if (legacy) {
    file = open_hdf5_file(path, "classifier file");
  } else {
    reader = std::make_unique<TensorFileReader>(path, TensorFileKind{"classifier file", {kClassifierFormat}});
  }
  auto attribute = [&](const char* name) {
    return legacy ? data::h5_read_string_attribute(file.get(), name, path) : reader->attribute(name);
  };
  TrainedClassifier c;
  c.sample_shape = parse_shape_attribute(attribute("sample_shape"), path);
  c.num_classes = std::atoll(attribute("num_classes").c_str());
  if (c.sample_shape.size() != 3 || c.num_classes <= 0 || c.num_classes > (1 << 20))
    throw DataError(path + ": attributes sample_shape / num_classes are not an image shape and a class count");
  c.test_accuracy = std::atof(attribute("test_accuracy").c_str());
  c.train_file = attribute("train_file");
  c.test_file = attribute("test_file");
  try {
    c.model = Classifier(c.sample_shape, c.num_classes);
  } catch (const std::invalid_argument& e) {
    throw DataError(path + ": " + e.what());
  }
  if (legacy) {
    read_module_group(file.get(), "/classifier", *c.model, path);
  } else {
    load_module_tensors(*reader, "classifier/", *c.model);
  }
  c.model->eval();
  return c;
}

}  // namespace distgan
