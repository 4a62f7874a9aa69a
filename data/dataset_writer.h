// Writes a dataset file in distgan's HDF5 layout (docs/datasets.md):
//   /images  uint8 [N, C, H, W]  or  /samples float32 [N, D]
//   /labels  int64 [N]            (optional)
// chunked in small groups of samples (random access decompresses little) and deflate-compressed,
// with string attributes on the root describing the source. Written atomically (AtomicOutput).
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace distgan::data {

struct DatasetContents {
  std::string name = "/images";     // dataset path inside the file
  std::vector<int64_t> shape;       // [N, ...]
  std::vector<uint8_t> u8;          // exactly one of u8 / f32 holds the N * prod(shape[1:]) values
  std::vector<float> f32;
  std::vector<int64_t> labels;      // empty or N entries
  std::vector<std::pair<std::string, std::string>> attributes;  // written on the root group
};

struct WriteOptions {
  bool overwrite = false;
  int64_t chunk_bytes = 16 * 1024;  // target chunk size: a random read decompresses one chunk
  int deflate_level = 4;
};

void write_dataset_file(const std::string& path, const DatasetContents& contents,
                        const WriteOptions& options = {});

}  // namespace distgan::data
