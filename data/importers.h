// Importers that turn source data into DatasetContents for write_dataset_file:
// IDX files (MNIST, Fashion-MNIST; gzip-compressed or raw), NumPy .npy arrays, CIFAR-10's binary
// files, and synthetic 2-D Gaussian mixtures (image folders: data/image_folder.h). Each validates its input fully and throws DataError naming the file.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "data/data_error.h"
#include "data/dataset_writer.h"

namespace distgan::data {

// One IDX array: dims and its unsigned-byte payload (the only IDX type MNIST-style files use).
struct IdxArray {
  std::vector<int64_t> dims;
  std::vector<uint8_t> values;
};

// Reads an IDX file of unsigned bytes (.gz or raw; zlib reads both).
IdxArray read_idx(const std::string& path);

// images: IDX [N, H, W]; labels: IDX [N] or "" for none. Result: /images uint8 [N, 1, H, W].
DatasetContents import_idx(const std::string& images_path, const std::string& labels_path);

// A NumPy array as read from .npy: shape and values converted to the requested kind.
struct NpyArray {
  std::vector<int64_t> shape;
  std::string dtype;          // numpy descr, e.g. "|u1", "<f4", "<i8"
  std::vector<uint8_t> u8;    // filled when dtype is uint8
  std::vector<float> f32;     // filled when dtype is a float
  std::vector<int64_t> i64;   // filled when dtype is an integer other than uint8
};

NpyArray read_npy(const std::string& path);

// images: uint8 [N,H,W], [N,C,H,W] (or [N,H,W,C] with nhwc=true) -> /images uint8 NCHW;
//         float32/float64 [N, D] -> /samples float32 [N, D].
// labels: integer [N] .npy or "" for none.
DatasetContents import_npy(const std::string& data_path, const std::string& labels_path, bool nhwc);

// CIFAR-10's binary version in `dir` (or its cifar-10-batches-bin/ sub-folder): split "train"
// (data_batch_1..5.bin) or "test" (test_batch.bin) -> /images uint8 [N, 3, 32, 32], /labels, and
// the class names (batches.meta.txt, else the standard ten) as the attribute "class_names".
// Files that hold a whole number of records other than 10,000 add a line to `warnings`.
DatasetContents import_cifar10(const std::string& dir, const std::string& split, std::vector<std::string>& warnings);

// Synthetic 2-D mixtures with the VEEGAN/PacGAN protocol's geometry:
//   ring: 8 modes on a circle of radius 2, std 0.02;  grid: 5x5 modes at {-4,-2,0,2,4}^2, std 0.05.
// The label of a sample is its mode.
enum class Mixture { kRing, kGrid };
struct MixtureSpec {
  Mixture kind = Mixture::kRing;
  int64_t num_samples = 100000;
  uint64_t seed = 0;
  double std = -1;  // < 0: the protocol's default for the kind
};
std::vector<std::pair<double, double>> mixture_modes(Mixture kind);
double mixture_default_std(Mixture kind);
DatasetContents make_mixture(const MixtureSpec& spec);

}  // namespace distgan::data
