// Reads samples from an HDF5 dataset file (written by `distgan prep`, h5py or anything else):
// opens and validates the dataset once, then reads any set of sample indices as float values,
// in NCHW order for images, scaled as configured. Reads go through HDF5's chunk cache a few
// samples at a time: the whole dataset is never loaded.
//
// Not thread-safe: one reader belongs to one thread (the loader's).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "data/h5_handle.h"

namespace distgan::data {

enum class Layout { kNCHW, kNHWC };
enum class Scale {
  kAuto,   // uint8 data: as kUint8; float data: as kNone
  kUint8,  // values in [0, 255] -> [-1, 1]
  kUnit,   // values in [0, 1]   -> [-1, 1]
  kNone,   // values as stored
};
Layout parse_layout(const std::string& name);  // "NCHW" | "NHWC"
Scale parse_scale(const std::string& name);    // "auto" | "uint8" | "unit" | "none"

struct ReaderOptions {
  std::string path;
  std::string dataset = "/images";
  std::string labels = "/labels";  // read when present; "" to ignore labels
  Layout layout = Layout::kNCHW;   // storage order of rank-4 image datasets
  Scale scale = Scale::kAuto;
  size_t chunk_cache_bytes = 4u << 20;
};

class DatasetReader {
 public:
  explicit DatasetReader(const ReaderOptions& options);

  int64_t size() const { return num_samples_; }
  // Shape of one sample as delivered: [C, H, W] for images, [D] for vectors.
  const std::vector<int64_t>& sample_shape() const { return sample_shape_; }
  int64_t sample_elements() const { return sample_elements_; }
  bool is_image() const { return sample_shape_.size() == 3; }
  bool has_labels() const { return labels_.valid(); }
  const std::string& dtype_name() const { return dtype_name_; }
  const ReaderOptions& options() const { return options_; }
  // One line: path, dataset, dtype, shape, labels.
  std::string describe() const;

  // Reads the samples at `indices` (ascending, each in [0, size())) into `out`
  // (indices.size() * sample_elements() floats) and, when labels_out is non-null and the file has
  // labels, their labels. Throws DataError naming the file and the index range on failure.
  void read(const std::vector<int64_t>& indices, float* out, int64_t* labels_out);
  // Reads the labels of samples [first, first + count) into out.
  void read_labels(int64_t first, int64_t count, int64_t* out);

 private:
  void open_labels();
  void read_run(int64_t first, int64_t count, float* out, int64_t* labels_out);

  ReaderOptions options_;
  H5Handle file_;
  H5Handle dataset_;
  H5Handle labels_;
  bool is_float_ = false;
  std::string dtype_name_;
  int64_t num_samples_ = 0;
  std::vector<hsize_t> file_dims_;       // as stored
  std::vector<int64_t> sample_shape_;    // as delivered
  int64_t sample_elements_ = 0;
  float scale_mul_ = 1.0f, scale_add_ = 0.0f;
  std::vector<unsigned char> raw_;       // reused staging buffer for one run of samples
};

// Human-readable name of an HDF5 datatype ("uint8", "float64", "string", ...).
std::string h5_type_name(hid_t type);

}  // namespace distgan::data
