// The cache of real-data features for the evaluation metrics: extracting features from a real
// dataset (tens of thousands of images through a network) costs minutes, and the same features
// serve every evaluation of every run on that dataset. They are computed once and stored beside
// the dataset, in <dataset>.eval-cache/<key>.h5, where the key hashes the dataset's bytes and
// whatever else decides the features (extractor, sample count, split). A renamed or copied dataset
// keeps its cache key; a changed one gets a new key, so a stale cache is never read.
//
// The cache is an optimisation only: a missing, damaged or foreign cache file is a miss (with a
// one-line warning for the latter two), and a cache that cannot be written is a warning; neither
// ever stops an evaluation.
//
// File layout: one float32 dataset /features [N, F]; string attributes `format`
// (kFeatureCacheFormat) and `description` (free text: what the features are).
#pragma once

#include <torch/torch.h>

#include <optional>
#include <string>
#include <vector>

namespace distgan::eval {

// Written into every cache file and required when reading one.
inline constexpr const char* kFeatureCacheFormat = "distgan-eval-features-1";

// 24 hex digits: FNV-1a 64 and CRC-32 of, in order, each file's size and full contents, then
// `extra`. Two independent hashes make an accidental collision practically impossible; neither
// is meant to resist a deliberate one. Reads each file once, sequentially (~0.1 s for 60 MB here).
// Throws data::DataError naming a file that cannot be read.
std::string content_key(const std::vector<std::string>& files, const std::string& extra);

// <dataset_path>.eval-cache/<key>.h5
std::string cache_path(const std::string& dataset_path, const std::string& key);

// The cached features as float32 [N, F], or nullopt when there is no usable cache file: missing
// (silently), or unreadable, truncated, or not a feature cache (one warning line on stderr naming
// the file). Never throws for a bad file.
std::optional<torch::Tensor> load_cached_features(const std::string& path);

// Writes features ([N, F], any floating type and device; stored as float32) atomically: a
// temporary file in the same directory, flushed and renamed over `path`, so readers never see a
// half-written cache. Creates the directory when missing. When the directory cannot be created
// or written, or the disk is full, prints one warning line and returns. Throws
// std::invalid_argument only for a tensor that is not a [N, F] floating-point matrix.
void save_cached_features(const std::string& path, const torch::Tensor& features, const std::string& description);

}  // namespace distgan::eval
