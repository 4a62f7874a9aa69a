// `distgan prep`: import a dataset into distgan's HDF5 layout.
#include <torch/torch.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <chrono>
#include <filesystem>

#include "data/atomic_file.h"
#include "data/dataset_reader.h"
#include "data/dataset_writer.h"
#include "data/image_folder.h"
#include "data/importers.h"
#include "launcher/commands.h"

namespace distgan::launcher {

namespace {

constexpr const char* kFashionMnistDir = "/usr/share/datasets/fashion-mnist";

struct PrepOptions {
  std::string out;
  bool force = false;
  int deflate = data::WriteOptions{}.deflate_level;
  std::string images, labels, dir = kFashionMnistDir, split = "train";
  bool nhwc = false;
  int64_t samples = 100000;
  uint64_t seed = 0;
  double std = -1;
  data::ImageFolderOptions images_dir;
  std::string crop = "center", label_mode = "none", on_error = "skip";
};

int write_and_report(const data::DatasetContents& contents, const PrepOptions& o) {
  data::WriteOptions w;
  w.overwrite = o.force;
  w.deflate_level = o.deflate;
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

std::string clock_text(double seconds) {
  const auto s = static_cast<int64_t>(seconds + 0.5);
  char text[32];
  std::snprintf(text, sizeof text, "%lld:%02lld:%02lld", static_cast<long long>(s / 3600),
                static_cast<long long>(s / 60 % 60), static_cast<long long>(s % 60));
  return text;
}

// `prep images`: progress on a terminal as one line rewritten twice a second, otherwise a line
// every 5 s; each skipped file as one warning line.
int prep_images(PrepOptions& o) {
  const bool terminal = isatty(STDERR_FILENO) != 0;
  data::ImageFolderOptions& io = o.images_dir;
  io.crop = o.crop == "none" ? data::CropMode::kNone : data::CropMode::kCenter;
  io.labels_from_folders = o.label_mode == "folders";
  io.abort_on_error = o.on_error == "abort";
  io.progress_every_s = terminal ? 0.5 : 5;
  io.on_progress = [terminal](const data::ImportProgress& p) {
    const double rate = p.seconds > 0 ? p.done / p.seconds : 0;
    const std::string eta = rate > 0 ? clock_text((p.total - p.done) / rate) : "?";
    std::fprintf(stderr, "%sprep images: %lld/%lld files, %.0f files/s, ETA %s%s", terminal ? "\r\033[K" : "",
                 static_cast<long long>(p.done), static_cast<long long>(p.total), rate, eta.c_str(), terminal ? "" : "\n");
  };
  io.on_skip = [terminal](const std::string& message) {
    std::fprintf(stderr, "%swarning: skipped %s\n", terminal ? "\r\033[K" : "", message.c_str());
  };
  torch::set_num_threads(1);  // the import's own threads each resize one image at a time
  const auto start = std::chrono::steady_clock::now();
  data::ImageFolderResult r = data::import_image_folder(io);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (terminal) std::fprintf(stderr, "\n");
  const int64_t kept = r.contents.shape[0];
  std::printf("imported %lld of %lld image files in %.1f s (%.0f files/s)", static_cast<long long>(kept),
              static_cast<long long>(kept + r.skipped), seconds, (kept + r.skipped) / seconds);
  if (r.skipped > 0) std::printf("; skipped %lld bad files (warnings above)", static_cast<long long>(r.skipped));
  if (r.enlarged > 0)
    std::printf("; enlarged (smaller than %lldx%lld after the crop): %lld", static_cast<long long>(io.size),
                static_cast<long long>(io.size), static_cast<long long>(r.enlarged));
  std::printf("\n");
  return write_and_report(r.contents, o);
}

CLI::App* add_common(CLI::App& parent, const char* name, const char* help, PrepOptions& o) {
  CLI::App* sub = parent.add_subcommand(name, help);
  sub->add_option("-o,--out", o.out, "HDF5 file to write")->required();
  sub->add_flag("-f,--force", o.force, "replace the output file if it exists");
  return sub;
}

CLI::App* add_images_command(CLI::App& prep, PrepOptions& o) {
  CLI::App* images = add_common(prep, "images", "a folder of JPEG, PNG and WebP images (recursive), resized to SxS", o);
  images->add_option("--dir", o.images_dir.dir, "folder with the images (searched recursively, sorted by path)")->required();
  images->add_option("--size", o.images_dir.size, "side S of the square output images")->required()
      ->check(CLI::Range(int64_t{4}, int64_t{4096}));
  images->add_option("--channels", o.images_dir.channels, "3: RGB; 1: grey (ITU-R 601 luma)")
      ->check(CLI::IsMember({1, 3}))->capture_default_str();
  images->add_option("--crop", o.crop, "center: the largest centred square, then resize; none: stretch the "
                     "whole image to SxS")->check(CLI::IsMember({"center", "none"}))->capture_default_str();
  images->add_option("--labels", o.label_mode, "none, or folders: the first-level sub-folder names are the "
                     "classes (sorted; torchvision's ImageFolder convention)")
      ->check(CLI::IsMember({"none", "folders"}))->capture_default_str();
  images->add_option("--on-error", o.on_error, "skip: leave out each bad file with a warning; abort: stop at the first")
      ->check(CLI::IsMember({"skip", "abort"}))->capture_default_str();
  images->add_option("--deflate", o.deflate, "HDF5 deflate level of the output, 0 (none) to 9; compression "
                     "runs on one thread, and level 1 writes photos about twice as fast as 4 for a few % more size")
      ->check(CLI::Range(0, 9))->capture_default_str();
  images->add_option("--threads", o.images_dir.threads, "decoding threads (0: one per core)")
      ->check(CLI::Range(0, 1024))->capture_default_str();
  images->add_option("--max-pixels", o.images_dir.max_pixels, "refuse, before decoding, images whose header "
                     "declares more pixels than this (decompression bombs)")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 40))->capture_default_str();
  return images;
}

CLI::App* add_cifar10_command(CLI::App& prep, PrepOptions& o) {
  CLI::App* cifar = add_common(prep, "cifar10", "CIFAR-10, binary version (data_batch_1..5.bin, test_batch.bin)", o);
  cifar->add_option("--dir", o.dir, "folder with the .bin files (or its parent)")->required();
  cifar->add_option("--split", o.split, "train (50,000 images) or test (10,000)")
      ->check(CLI::IsMember({"train", "test"}))->capture_default_str();
  return cifar;
}

// MNIST-style IDX pair of a split in `dir` (.gz or raw).
data::DatasetContents import_idx_split(const std::string& dir, const std::string& split) {
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
  auto* images = add_images_command(*prep, *o);
  auto* cifar = add_cifar10_command(*prep, *o);
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
    if (fashion->parsed()) {
      auto c = import_idx_split(o->dir, o->split);
      c.attributes.emplace_back("dataset", "fashion-mnist");
      return write_and_report(c, *o);
    }
    if (mnist->parsed()) return write_and_report(import_idx_split(o->dir, o->split), *o);
    if (idx->parsed()) return write_and_report(data::import_idx(o->images, o->labels), *o);
    if (npy->parsed()) return write_and_report(data::import_npy(o->images, o->labels, o->nhwc), *o);
    if (images->parsed()) return prep_images(*o);
    if (cifar->parsed()) {
      std::vector<std::string> warnings;
      data::DatasetContents c = data::import_cifar10(o->dir, o->split, warnings);
      for (const std::string& w : warnings) std::fprintf(stderr, "warning: %s\n", w.c_str());
      return write_and_report(c, *o);
    }
    data::MixtureSpec spec;
    spec.kind = ring->parsed() ? data::Mixture::kRing : data::Mixture::kGrid;
    spec.num_samples = o->samples;
    spec.seed = o->seed;
    spec.std = o->std;
    return write_and_report(data::make_mixture(spec), *o);
  };
}

}  // namespace distgan::launcher
