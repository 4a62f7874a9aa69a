#include "data/image_folder.h"

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <map>
#include <mutex>
#include <thread>

#include "data/data_error.h"

namespace distgan::data {

namespace fs = std::filesystem;

namespace {

bool has_image_extension(const fs::path& path) {
  std::string ext = path.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return ext == ".jpg" || ext == ".jpeg" || ext == ".png" || ext == ".webp";
}

// Class index of each file: its first-level sub-folder's rank among the sorted folder names.
std::vector<int64_t> folder_labels(const std::string& dir, const std::vector<std::string>& files,
                                   std::vector<std::string>& class_names) {
  std::map<std::string, int64_t> classes;
  std::vector<std::string> first_level(files.size());
  for (size_t i = 0; i < files.size(); ++i) {
    const fs::path relative = fs::path(files[i]).lexically_relative(dir);
    if (std::distance(relative.begin(), relative.end()) < 2)
      throw DataError(files[i] + ": with --labels folders every image must be inside a class sub-folder of " + dir +
                      " (DIR/CLASS/...); this one is directly in it");
    first_level[i] = relative.begin()->string();
    classes.emplace(first_level[i], 0);
  }
  for (auto& [name, index] : classes) {
    index = static_cast<int64_t>(class_names.size());
    class_names.push_back(name);
  }
  std::vector<int64_t> labels(files.size());
  for (size_t i = 0; i < files.size(); ++i) labels[i] = classes[first_level[i]];
  return labels;
}

struct DecodedFolder {
  std::vector<uint8_t> pixels;  // [N, C, S, S]; the slots of failed files are left as they were
  std::vector<char> ok;         // per file: imported
  int64_t failed = 0, enlarged = 0;
};

// Failures reported by the workers, drained by the calling thread.
struct SkipQueue {
  std::mutex mutex;
  std::vector<std::string> pending;
  void push(std::string message) {
    std::lock_guard<std::mutex> lock(mutex);
    pending.push_back(std::move(message));
  }
  std::vector<std::string> take() {
    std::lock_guard<std::mutex> lock(mutex);
    return std::exchange(pending, {});
  }
};

// Every file decoded and resized on o.threads threads into its slot of one buffer; progress and
// skipped files reported on the calling thread. Throws the first failure with abort_on_error.
DecodedFolder decode_in_parallel(const std::vector<std::string>& files, const ImageFolderOptions& o) {
  const auto n = static_cast<int64_t>(files.size());
  const int64_t sample = o.channels * o.size * o.size;
  DecodedFolder out;
  out.pixels.resize(static_cast<size_t>(n * sample));
  out.ok.assign(static_cast<size_t>(n), 0);
  std::vector<uint8_t>& pixels = out.pixels;
  std::vector<char>& ok = out.ok;
  std::atomic<int64_t> next{0}, done{0}, failed{0}, enlarged{0};
  std::atomic<bool> stop{false};
  SkipQueue skips;
  DecodeOptions decode;
  decode.channels = o.channels;
  decode.max_pixels = o.max_pixels;
  // Only scale down on load while the crop keeps at least twice the target: the resize filter
  // then still sees enough pixels for a clean result.
  decode.min_side = 2 * o.size;

  auto work = [&]() {
    torch::NoGradGuard no_grad;
    for (int64_t i; !stop && (i = next++) < n;) {
      try {
        const DecodedImage image = decode_image(files[static_cast<size_t>(i)], decode);
        if (std::min(image.width, image.height) < o.size) ++enlarged;
        const std::vector<uint8_t> square = resize_to_square(image, o.size, o.crop);
        std::copy(square.begin(), square.end(), pixels.begin() + i * sample);
        ok[static_cast<size_t>(i)] = 1;
      } catch (const std::exception& e) {
        ++failed;
        skips.push(e.what());
        if (o.abort_on_error) stop = true;
      }
      ++done;
    }
  };
  const int threads = o.threads > 0 ? o.threads : std::max(1u, std::thread::hardware_concurrency());
  std::vector<std::thread> workers;
  for (int t = 0; t < std::min<int64_t>(threads, n); ++t) workers.emplace_back(work);

  const auto start = std::chrono::steady_clock::now();
  auto seconds = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(); };
  auto report = [&] {
    for (const std::string& message : skips.take())
      if (o.on_skip && !o.abort_on_error) o.on_skip(message);
    if (o.on_progress) o.on_progress({done.load(), failed.load(), n, seconds()});
  };
  double last_report = 0;
  while (done < n && !stop) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    if (seconds() - last_report >= o.progress_every_s) report(), last_report = seconds();
  }
  for (auto& t : workers) t.join();
  if (o.abort_on_error && failed > 0) {
    const std::vector<std::string> first = skips.take();
    throw DataError(first.front() + " (stopped: --on-error abort)");
  }
  report();
  out.failed = failed;
  out.enlarged = enlarged;
  return out;
}

}  // namespace

std::vector<std::string> list_image_files(const std::string& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) throw DataError(dir + ": not a directory");
  std::vector<std::string> files;
  // Entries that are not directories: a dangling link or an unreadable file named *.jpg is listed
  // and then reported as bad, not silently dropped.
  for (auto it = fs::recursive_directory_iterator(dir, fs::directory_options::skip_permission_denied, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (!it->is_directory(ec) && has_image_extension(it->path())) files.push_back(it->path().string());
  }
  if (ec) throw DataError(dir + ": cannot list: " + ec.message());
  if (files.empty()) throw DataError(dir + ": no image files (.jpg, .jpeg, .png, .webp) in it or its sub-folders");
  std::sort(files.begin(), files.end());
  return files;
}

std::vector<uint8_t> resize_to_square(const DecodedImage& image, int64_t size, CropMode crop) {
  const int64_t w = image.width, h = image.height, c = image.channels;
  torch::Tensor t = torch::from_blob(const_cast<uint8_t*>(image.pixels.data()), {h, w, c}, torch::kUInt8).permute({2, 0, 1});
  if (crop == CropMode::kCenter) {
    const int64_t side = std::min(w, h);
    t = t.narrow(1, (h - side) / 2, side).narrow(2, (w - side) / 2, side);
  }
  if (t.size(1) != size || t.size(2) != size) {
    namespace F = torch::nn::functional;
    t = F::interpolate(t.unsqueeze(0).to(torch::kFloat32), F::InterpolateFuncOptions()
                                                                .size(std::vector<int64_t>{size, size})
                                                                .mode(torch::kBicubic)
                                                                .align_corners(false)
                                                                .antialias(true))
            .squeeze(0)
            .round_()
            .clamp_(0, 255)
            .to(torch::kUInt8);
  }
  t = t.contiguous();
  return std::vector<uint8_t>(t.data_ptr<uint8_t>(), t.data_ptr<uint8_t>() + t.numel());
}

ImageFolderResult import_image_folder(const ImageFolderOptions& o) {
  if (o.size < 1 || o.size > 4096) throw DataError("--size: " + std::to_string(o.size) + " is not in [1, 4096]");
  if (o.channels != 1 && o.channels != 3) throw DataError("--channels: must be 1 or 3");
  const std::vector<std::string> files = list_image_files(o.dir);
  ImageFolderResult result;
  std::vector<std::string> class_names;
  std::vector<int64_t> labels;
  if (o.labels_from_folders) labels = folder_labels(o.dir, files, class_names);

  const auto n = static_cast<int64_t>(files.size());
  const int64_t sample = o.channels * o.size * o.size;
  DecodedFolder decoded = decode_in_parallel(files, o);
  std::vector<uint8_t>& pixels = decoded.pixels;
  const std::vector<char>& ok = decoded.ok;
  const int64_t failed = decoded.failed;
  result.enlarged = decoded.enlarged;
  // Keep the files that imported, in their sorted order.
  DatasetContents& c = result.contents;
  result.skipped = failed;
  const int64_t kept = n - failed;
  if (kept == 0) throw DataError(o.dir + ": none of its " + std::to_string(n) + " image files could be imported");
  int64_t write = 0;  // compacted in place: the pixels are held once
  for (int64_t i = 0; i < n; ++i) {
    if (!ok[static_cast<size_t>(i)]) continue;
    if (write != i) std::copy(pixels.begin() + i * sample, pixels.begin() + (i + 1) * sample, pixels.begin() + write * sample);
    if (o.labels_from_folders) c.labels.push_back(labels[static_cast<size_t>(i)]);
    ++write;
  }
  pixels.resize(static_cast<size_t>(kept * sample));
  c.u8 = std::move(pixels);
  c.shape = {kept, o.channels, o.size, o.size};
  c.attributes.emplace_back("dataset", "images");
  c.attributes.emplace_back("source_dir", fs::absolute(o.dir).lexically_normal().string());
  c.attributes.emplace_back("crop", o.crop == CropMode::kCenter ? "center" : "none");
  if (o.labels_from_folders) c.attributes.emplace_back("class_names", nlohmann::json(class_names).dump());
  return result;
}

}  // namespace distgan::data
