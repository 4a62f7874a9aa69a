// `distgan prep`: import a dataset into distgan's HDF5 layout.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "data/atomic_file.h"
#include "data/dataset_reader.h"
#include "data/dataset_writer.h"
#include "data/importers.h"
#include "launcher/commands.h"

namespace distgan::launcher {

namespace {

constexpr const char* kFashionMnistDir = "/usr/share/datasets/fashion-mnist";

struct PrepOptions {
  std::string out;
  bool force = false;
  std::string images, labels, dir = kFashionMnistDir, split = "train";
  bool nhwc = false;
  int64_t samples = 100000;
  uint64_t seed = 0;
  double std = -1;
};

int write_and_report(const data::DatasetContents& contents, const PrepOptions& o) {
  data::WriteOptions w;
  w.overwrite = o.force;
  data::write_dataset_file(o.out, contents, w);
  data::ReaderOptions r;
  r.path = o.out;
  r.dataset = contents.name;
  std::printf("wrote %s\n", data::DatasetReader(r).describe().c_str());
  return kExitOk;
}

// Checked before the (possibly long) import: refuse early rather than after the work.
void check_output(const PrepOptions& o) {
  if (!o.force && std::filesystem::exists(o.out))
    throw data::DataError(o.out + ": file exists; refusing to overwrite it (pass --force to replace it)");
}

CLI::App* add_common(CLI::App& parent, const char* name, const char* help, PrepOptions& o) {
  CLI::App* sub = parent.add_subcommand(name, help);
  sub->add_option("-o,--out", o.out, "HDF5 file to write")->required();
  sub->add_flag("-f,--force", o.force, "replace the output file if it exists");
  return sub;
}

}  // namespace

Runner add_prep_command(CLI::App& app) {
  auto o = std::make_shared<PrepOptions>();
  auto* prep = app.add_subcommand("prep", "import a dataset into distgan's HDF5 layout");
  prep->require_subcommand(1);

  auto* fashion = add_common(*prep, "fashion-mnist", "Fashion-MNIST from the dataset-fashion-mnist package", *o);
  fashion->add_option("--dir", o->dir, "directory with the IDX files")->capture_default_str();
  fashion->add_option("--split", o->split, "train (60,000 images) or test (10,000)")
      ->check(CLI::IsMember({"train", "test"}))->capture_default_str();
  auto* mnist = add_common(*prep, "mnist", "MNIST-style IDX files in a directory (train-images-idx3-ubyte[.gz], ...)", *o);
  mnist->add_option("--dir", o->dir, "directory with the IDX files")->required();
  mnist->add_option("--split", o->split, "train or test")->check(CLI::IsMember({"train", "test"}))->capture_default_str();
  auto* idx = add_common(*prep, "idx", "IDX image file [N,H,W] (+ optional IDX labels), .gz or raw", *o);
  idx->add_option("--images", o->images, "IDX images file")->required();
  idx->add_option("--labels", o->labels, "IDX labels file");
  auto* npy = add_common(*prep, "npy", "NumPy .npy: uint8 images or float32/float64 vectors [N, D]", *o);
  npy->add_option("--data", o->images, ".npy file with the samples")->required();
  npy->add_option("--labels", o->labels, ".npy file with integer labels [N]");
  npy->add_flag("--nhwc", o->nhwc, "4-D images are stored [N, H, W, C]");
  auto* ring = add_common(*prep, "ring", "synthetic: 8 Gaussian modes on a circle of radius 2 (std 0.02)", *o);
  auto* grid = add_common(*prep, "grid", "synthetic: 5x5 Gaussian modes on a grid of spacing 2 (std 0.05)", *o);
  for (auto* s : {ring, grid}) {
    s->add_option("-n,--samples", o->samples, "number of samples")->check(CLI::Range(int64_t{1}, int64_t{1} << 31))
        ->capture_default_str();
    s->add_option("--seed", o->seed, "random seed")->capture_default_str();
    s->add_option("--std", o->std, "standard deviation of each mode (default: the protocol's)")
        ->check(CLI::Validator(
            [](std::string& text) -> std::string {
              const double v = std::strtod(text.c_str(), nullptr);
              return std::isfinite(v) && v >= 0 ? "" : "the standard deviation must be a finite number >= 0";
            },
            "NUMBER >= 0"));
  }

  return [=]() -> int {
    check_output(*o);
    data::remove_temporary_on_signal();  // Ctrl-C or a scheduler's SIGTERM leaves no partial file
    const auto idx_pair = [&](const std::string& dir, const std::string& split) {
      const std::string prefix = split == "train" ? "train" : "t10k";
      auto find = [&](const std::string& stem) {
        for (const char* suffix : {".gz", ""}) {
          const std::string path = dir + "/" + stem + suffix;
          if (std::filesystem::exists(path)) return path;
        }
        throw data::DataError(dir + "/" + stem + "[.gz]: not found (is the dataset package installed?)");
      };
      auto c = data::import_idx(find(prefix + "-images-idx3-ubyte"), find(prefix + "-labels-idx1-ubyte"));
      c.attributes.emplace_back("split", split);
      return c;
    };
    if (fashion->parsed()) {
      auto c = idx_pair(o->dir, o->split);
      c.attributes.emplace_back("dataset", "fashion-mnist");
      return write_and_report(c, *o);
    }
    if (mnist->parsed()) return write_and_report(idx_pair(o->dir, o->split), *o);
    if (idx->parsed()) return write_and_report(data::import_idx(o->images, o->labels), *o);
    if (npy->parsed()) return write_and_report(data::import_npy(o->images, o->labels, o->nhwc), *o);
    data::MixtureSpec spec;
    spec.kind = ring->parsed() ? data::Mixture::kRing : data::Mixture::kGrid;
    spec.num_samples = o->samples;
    spec.seed = o->seed;
    spec.std = o->std;
    return write_and_report(data::make_mixture(spec), *o);
  };
}

}  // namespace distgan::launcher
