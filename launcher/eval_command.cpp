// `distgan eval`: quality metrics of a trained generator (or of any HDF5 samples file, such as real
// held-out data: the metric's floor), and `distgan eval train-classifier`, which trains the
// classifier whose features the image metrics use. See trainer/eval/evaluation.h for what is measured.
#include <nlohmann/json.hpp>

#include <cstdio>
#include <fstream>

#include "data/dataset_reader.h"
#include "data/h5_handle.h"
#include "launcher/commands.h"
#include "trainer/eval/classifier.h"
#include "trainer/eval/evaluation.h"
#include "trainer/state/model_file.h"
#include "trainer/config/run_options.h"

namespace distgan::launcher {

namespace {

struct EvalCommandOptions {
  std::string model, samples_file, real, dataset, classifier, features, json;
  int64_t samples = 10000, reference = 10000;
  uint64_t seed = 0;
  bool no_ema = false;
  ClassifierTraining training;
  std::string classifier_out;
};

// The samples dataset of a file: the one named, else /images, else /samples.
std::string dataset_in(const std::string& path, const std::string& named) {
  if (!named.empty()) return named;
  data::h5_silence_errors();
  data::H5Handle file(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose);
  if (!file.valid()) throw data::DataError(path + ": not an HDF5 file (or not readable)");
  for (const char* name : {"/images", "/samples"})
    if (H5Lexists(file.get(), name, H5P_DEFAULT) > 0) return name;
  data::h5_last_error();
  throw data::DataError(path + ": has neither /images nor /samples (name the dataset with --dataset)");
}

// Every sample (up to `limit`) of a samples file, in model space, with its labels if it has them.
std::pair<torch::Tensor, torch::Tensor> read_samples(const data::ReaderOptions& o, int64_t limit) {
  data::DatasetReader reader(o);
  const int64_t n = std::min(limit, reader.size());
  std::vector<int64_t> shape{n}, indices(static_cast<size_t>(n));
  shape.insert(shape.end(), reader.sample_shape().begin(), reader.sample_shape().end());
  for (int64_t i = 0; i < n; ++i) indices[static_cast<size_t>(i)] = i;
  torch::Tensor x = torch::empty(shape), labels;
  if (reader.has_labels()) labels = torch::empty({n}, torch::kInt64);
  reader.read(indices, x.data_ptr<float>(), labels.defined() ? labels.data_ptr<int64_t>() : nullptr);
  return {x, labels};
}

// Prints the metrics (and per-class accuracy) and writes them as JSON when asked.
int report(const EvalResult& r, const std::string& source, const EvalCommandOptions& o) {
  std::printf("evaluated %s: %s\n", source.c_str(), r.what.c_str());
  nlohmann::json metrics = nlohmann::json::object();
  for (const auto& [name, value] : r.metrics) {
    std::printf("  %-20s %.6g\n", name.c_str(), value);
    metrics[name] = value;
  }
  for (size_t k = 0; k < r.class_accuracy.size(); ++k)
    std::printf("  class %-3zu accuracy  %.4f\n", k, r.class_accuracy[k]);
  if (!o.json.empty()) {
    nlohmann::json j{{"source", source}, {"what", r.what}, {"metrics", metrics}};
    if (!r.class_accuracy.empty()) j["class_accuracy"] = r.class_accuracy;
    std::ofstream out(o.json);
    out << j.dump(1) << "\n";
    if (!out) throw std::runtime_error(o.json + ": cannot write the metrics");
    std::printf("wrote %s\n", o.json.c_str());
  }
  return r.metrics.empty() ? kExitError : kExitOk;
}

int run_eval(const EvalCommandOptions& o) {
  if (o.model.empty() == o.samples_file.empty())
    throw CLI::ValidationError("give --model FILE (a final.h5 or checkpoint) or --samples-file FILE.h5 (e.g. real "
                               "held-out data, for the metric's floor)");
  Config config;
  LoadedModels loaded;
  if (!o.model.empty()) {
    loaded = load_model_file(o.model);
    config = loaded.config;
  }
  EvalOptions e;
  e.real = loader_options(config, 0, 1).reader;
  if (!o.real.empty()) e.real.path = o.real;
  else if (o.model.empty()) throw CLI::ValidationError("--samples-file needs --real FILE: the reference data");
  e.real.dataset = dataset_in(e.real.path, o.model.empty() ? o.dataset : config.data.dataset);
  e.classifier = o.classifier.empty() ? config.eval.classifier : o.classifier;
  e.features = o.features.empty() ? config.eval.features : o.features;
  e.samples = o.samples;
  e.reference = o.reference;
  e.seed = o.seed;

  torch::Tensor samples, labels;
  std::string source;
  if (!o.model.empty()) {
    const bool ema = loaded.models.generator_ema && !o.no_ema;
    auto& g = ema ? loaded.models.generator_ema : loaded.models.generator;
    Evaluator evaluator(e, loaded.spec.sample_shape);
    std::tie(samples, labels) = generate_for_eval(g, loaded.spec, evaluator.sample_count(), o.seed, torch::kCPU);
    source = o.model + " (step " + std::to_string(loaded.step) + ", " + (ema ? "EMA" : "raw") + " generator)";
    const EvalResult r = evaluator.evaluate(samples, labels);
    return report(r, source, o);
  }
  data::ReaderOptions s = e.real;
  s.path = o.samples_file;
  s.dataset = dataset_in(o.samples_file, o.dataset);
  data::DatasetReader probe(s);
  Evaluator evaluator(e, probe.sample_shape());
  std::tie(samples, labels) = read_samples(s, evaluator.sample_count());
  return report(evaluator.evaluate(samples, labels), o.samples_file, o);
}

}  // namespace

Runner add_eval_command(CLI::App& app) {
  auto o = std::make_shared<EvalCommandOptions>();
  auto* cmd = app.add_subcommand(
      "eval", "quality metrics of a generator (or of an HDF5 samples file, e.g. real held-out data: the floor)");
  cmd->require_subcommand(0, 1);
  cmd->add_option("-k,--model", o->model, "model file: final.h5 of a run, or a checkpoint")->check(CLI::ExistingFile);
  cmd->add_option("--samples-file", o->samples_file,
                  "evaluate the samples of this HDF5 file instead (real held-out data gives the metric's floor)")
      ->check(CLI::ExistingFile);
  cmd->add_option("--real", o->real, "real reference data (default: the model's data.path)")->check(CLI::ExistingFile);
  cmd->add_option("--dataset", o->dataset, "dataset inside --samples-file and --real (default /images or /samples)");
  cmd->add_option("--classifier", o->classifier, "image features: a `distgan eval train-classifier` file")
      ->check(CLI::ExistingFile);
  cmd->add_option("--features", o->features, "image features: a TorchScript module mapping [N,C,H,W] in [-1,1] to [N,F]")
      ->check(CLI::ExistingFile);
  cmd->add_option("-n,--samples", o->samples, "samples to evaluate (2-D mixtures: 2,500)")
      ->check(CLI::Range(int64_t{10}, int64_t{1} << 22))->capture_default_str();
  cmd->add_option("--reference", o->reference, "real reference samples")
      ->check(CLI::Range(int64_t{10}, int64_t{1} << 22))->capture_default_str();
  cmd->add_option("--seed", o->seed, "noise and subset seed")->capture_default_str();
  cmd->add_flag("--no-ema", o->no_ema, "evaluate the raw generator, not its moving average");
  cmd->add_option("--json", o->json, "also write the metrics to this JSON file");

  auto* train = cmd->add_subcommand("train-classifier",
                                    "train the classifier whose features the image metrics use; prints its test accuracy");
  train->add_option("--train", o->training.train_path, "labelled training images (distgan prep ... --split train)")
      ->required()->check(CLI::ExistingFile);
  train->add_option("--test", o->training.test_path, "labelled test images (distgan prep ... --split test)")
      ->required()->check(CLI::ExistingFile);
  train->add_option("-o,--out", o->classifier_out, "classifier file to write")->required();
  train->add_option("--epochs", o->training.epochs, "passes over the training images")
      ->check(CLI::Range(1, 1000))->capture_default_str();
  train->add_option("--limit", o->training.limit, "use only the first N training images (0: all)")
      ->check(CLI::NonNegativeNumber)->capture_default_str();
  train->add_option("--seed", o->training.seed, "seed of the initialisation and the order")->capture_default_str();

  return [o, train]() -> int {
    if (train->parsed()) {
      TrainedClassifier c = train_classifier(o->training);
      save_classifier(o->classifier_out, c);
      std::printf("wrote %s: %lld classes, test accuracy %.4f on %s\n", o->classifier_out.c_str(),
                  static_cast<long long>(c.num_classes), c.test_accuracy, c.test_file.c_str());
      return kExitOk;
    }
    return run_eval(*o);
  };
}

}  // namespace distgan::launcher
