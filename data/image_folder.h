// Importing a folder of photos (`distgan prep images`): every .jpg/.jpeg/.png/.webp file under a
// directory, recursively, in sorted path order, decoded (data/image_decode.h) on several threads,
// centre-cropped to a square (or stretched) and resized to SxS with an anti-aliased bicubic filter
// (torch's, which follows Pillow's resampling), into /images uint8 [N, C, S, S]. With labels from
// folders, the first-level sub-folder names, sorted, are the classes (torchvision's ImageFolder
// convention); they are stored as the root attribute "class_names" (a JSON array).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "data/dataset_writer.h"
#include "data/image_decode.h"

namespace distgan::data {

enum class CropMode { kCenter, kNone };  // kNone stretches the whole image to SxS

struct ImportProgress {
  int64_t done = 0, failed = 0, total = 0;
  double seconds = 0;
};

struct ImageFolderOptions {
  std::string dir;
  int64_t size = 64;
  int channels = 3;
  CropMode crop = CropMode::kCenter;
  bool labels_from_folders = false;
  bool abort_on_error = false;  // false: skip bad files (each reported through on_skip)
  int threads = 0;              // 0: one per core
  int64_t max_pixels = DecodeOptions{}.max_pixels;
  double progress_every_s = 5;  // how often on_progress is called (and once at the end)
  // Called on the calling thread only, so they may print freely.
  std::function<void(const ImportProgress&)> on_progress;
  std::function<void(const std::string& path_and_reason)> on_skip;
};

struct ImageFolderResult {
  DatasetContents contents;
  int64_t skipped = 0;   // bad files left out
  int64_t enlarged = 0;  // images smaller than SxS (after the crop), scaled up
};

// The image files under `dir` (recursive), sorted by path. Throws DataError when `dir` is not a
// directory or holds no image file.
std::vector<std::string> list_image_files(const std::string& dir);

// Throws DataError for an empty folder, a file outside every class folder (with labels from
// folders), the first bad file (abort_on_error), or when no file at all could be imported.
ImageFolderResult import_image_folder(const ImageFolderOptions& options);

// One decoded image cropped and resized to [C, size, size] uint8 (exposed for tests).
std::vector<uint8_t> resize_to_square(const DecodedImage& image, int64_t size, CropMode crop);

}  // namespace distgan::data
