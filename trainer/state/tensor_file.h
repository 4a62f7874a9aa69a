// The one file format of distgan's tensors: checkpoints, model files (final.h5) and classifier
// files are all HDF5 files of named tensors plus string attributes, readable with h5py and
// independent of the LibTorch version (no pickles, no TorchScript archives).
//
//   every tensor      a dataset at its path ("generator/0.weight", "optimizer/generator/0.weight/exp_avg",
//                     "rng/noise", ...), in its own dtype (float32, float64, int64 or uint8), shape as is
//   root attributes   format (what kind of file: "distgan-checkpoint-1", "distgan-model-2",
//                     "distgan-classifier-2"), the caller's metadata (step, config, ...),
//                     manifest = one line per dataset: "<path> <dtype> <d0,d1,...> <crc32 hex>",
//                     checksum = crc32 (hex) of the manifest and every other attribute, in name order
//
// A reader checks the checksum before it trusts the manifest, checks each dataset's dtype and
// shape against the manifest before allocating, and each dataset's bytes against its crc32 after
// reading. So a truncated, bit-flipped or hand-edited file is refused with the path of what is wrong.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace distgan {

inline constexpr const char* kCheckpointFormat = "distgan-checkpoint-1";
inline constexpr const char* kModelFileFormat = "distgan-model-2";
inline constexpr const char* kClassifierFormat = "distgan-classifier-2";

// What a reader accepts: the kind's name for messages ("checkpoint") and its formats.
struct TensorFileKind {
  std::string name;
  std::vector<std::string> formats;
};
inline TensorFileKind checkpoint_kind() { return {"checkpoint", {kCheckpointFormat}}; }

// What a file holds, in memory, on the host: tensors in the order they are written.
struct TensorFileData {
  std::vector<std::pair<std::string, torch::Tensor>> tensors;  // CPU, contiguous
  std::map<std::string, std::string> attributes;  // metadata with "format"; manifest and checksum are added
};

// Writes `data` to `path` atomically (hidden temporary name, fsync, rename, fsync of the directory):
// a crash at any moment leaves either the old file or the complete new one under `path`.
// Overwrites an existing file of that name. Throws data::DataError naming the path. Without a
// "format" attribute the file is a checkpoint (kCheckpointFormat).
void write_tensor_file(const std::string& path, const TensorFileData& data);

// A sample or image shape as an attribute value ("1,28,28"), and back: [D] or [C, H, W] with every
// dimension in [1, 2^20]; DataError naming the file and the attribute otherwise.
std::string shape_attribute(const std::vector<int64_t>& shape);
std::vector<int64_t> parse_shape_attribute(const std::string& text, const std::string& path,
                                           const std::string& attribute = "sample_shape");

// An open tensor file whose checksum and manifest have been verified.
class TensorFileReader {
 public:
  // Throws data::DataError: missing, not HDF5, truncated, a format `kind` does not list, bad
  // checksum, malformed manifest. Messages name the kind ("not a distgan checkpoint").
  explicit TensorFileReader(const std::string& path, const TensorFileKind& kind = checkpoint_kind());
  ~TensorFileReader();
  TensorFileReader(const TensorFileReader&) = delete;
  TensorFileReader& operator=(const TensorFileReader&) = delete;

  const std::string& path() const { return path_; }
  const std::string& format() const { return attributes_.at("format"); }
  // A metadata attribute; throws DataError when missing.
  const std::string& attribute(const std::string& name) const;
  // A metadata attribute parsed as an integer in [min, max]; throws DataError otherwise.
  int64_t integer_attribute(const std::string& name, int64_t min, int64_t max) const;
  bool has_tensor(const std::string& name) const { return manifest_.count(name) != 0; }
  // Every tensor name under `prefix` (e.g. "generator/"), in manifest order.
  std::vector<std::string> tensor_names(const std::string& prefix = "") const;
  std::vector<int64_t> shape(const std::string& name) const;

  // Reads one tensor. With `expected_shape` the manifest's shape must equal it and the dtype must
  // be `dtype` (checked before anything is allocated); the message names the tensor, both shapes.
  torch::Tensor read(const std::string& name, torch::ScalarType dtype, const std::vector<int64_t>& expected_shape);
  // Reads every tensor once, checking its crc32; throws DataError naming the first damaged one.
  void verify_all();
  // Reads one tensor of any shape, refusing one of more than `max_elements` elements.
  torch::Tensor read_any_shape(const std::string& name, torch::ScalarType dtype, int64_t max_elements);

 private:
  struct Entry {
    torch::ScalarType dtype;
    std::vector<int64_t> shape;
    uint32_t crc;
    size_t order;
  };
  torch::Tensor read_checked(const std::string& name, const Entry& entry);
  void load_metadata();  // attributes, checksum, manifest

  std::string path_;
  TensorFileKind kind_;
  int64_t file_ = -1;  // hid_t
  std::map<std::string, std::string> attributes_;
  std::map<std::string, Entry> manifest_;
};

}  // namespace distgan
