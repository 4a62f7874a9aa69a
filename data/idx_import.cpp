// IDX format (http://yann.lecun.com/exdb/mnist/): magic = 0x00 0x00 <type> <ndims>, then ndims
// big-endian uint32 sizes, then the values. MNIST and Fashion-MNIST use type 0x08 (unsigned byte).
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>

#include "data/importers.h"

namespace distgan::data {

namespace {

constexpr uint8_t kIdxUnsignedByte = 0x08;
constexpr int64_t kMaxIdxValues = int64_t{1} << 34;  // 16 GiB: refuse absurd headers before allocating

struct GzCloser {
  void operator()(gzFile f) const { gzclose(f); }
};
using GzFile = std::unique_ptr<std::remove_pointer_t<gzFile>, GzCloser>;

// Reads exactly n bytes; returns how many were available.
int64_t read_up_to(gzFile f, uint8_t* out, int64_t n, const std::string& path) {
  int64_t got = 0;
  while (got < n) {
    const unsigned want = static_cast<unsigned>(std::min<int64_t>(n - got, 1 << 30));
    const int r = gzread(f, out + got, want);
    if (r < 0) {
      int code = 0;
      const char* msg = gzerror(f, &code);
      throw DataError(path + ": cannot decompress: " + std::string(msg ? msg : "zlib error"));
    }
    if (r == 0) break;
    got += r;
  }
  return got;
}

}  // namespace

IdxArray read_idx(const std::string& path) {
  GzFile f(gzopen(path.c_str(), "rb"));
  if (!f) throw DataError(path + ": cannot open IDX file: " + std::strerror(errno));
  uint8_t magic[4];
  if (read_up_to(f.get(), magic, 4, path) != 4)
    throw DataError(path + ": truncated IDX file: shorter than its 4-byte header");
  if (magic[0] != 0 || magic[1] != 0)
    throw DataError(path + ": not an IDX file (the first two bytes must be zero)");
  if (magic[2] != kIdxUnsignedByte)
    throw DataError(path + ": IDX value type 0x" + std::to_string(magic[2]) +
                    " is not supported (expected 0x08, unsigned byte)");
  const int ndims = magic[3];
  if (ndims < 1 || ndims > 4) throw DataError(path + ": IDX file has " + std::to_string(ndims) + " dimensions (expected 1 to 4)");

  IdxArray a;
  int64_t total = 1;
  for (int i = 0; i < ndims; ++i) {
    uint8_t b[4];
    if (read_up_to(f.get(), b, 4, path) != 4)
      throw DataError(path + ": truncated IDX file: header ends inside dimension " + std::to_string(i));
    const int64_t d = (int64_t{b[0]} << 24) | (int64_t{b[1]} << 16) | (int64_t{b[2]} << 8) | b[3];
    if (d == 0) throw DataError(path + ": IDX dimension " + std::to_string(i) + " is zero");
    a.dims.push_back(d);
    if (total > kMaxIdxValues / d)
      throw DataError(path + ": IDX header declares more than " + std::to_string(kMaxIdxValues) +
                      " values; the file is corrupt");
    total *= d;
  }
  // Grow the buffer as data arrives (the header's claim is checked against the real content, and
  // a short file never makes us allocate what it only declares).
  constexpr int64_t kStep = int64_t{64} << 20;
  int64_t got = 0;
  while (got < total) {
    const int64_t want = std::min(kStep, total - got);
    a.values.resize(static_cast<size_t>(got + want));
    const int64_t n = read_up_to(f.get(), a.values.data() + got, want, path);
    got += n;
    if (n < want) break;
  }
  if (got != total)
    throw DataError(path + ": truncated IDX file: the header declares " + std::to_string(total) +
                    " values but only " + std::to_string(got) + " are present");
  uint8_t extra;
  if (read_up_to(f.get(), &extra, 1, path) != 0)
    throw DataError(path + ": IDX file has data past the " + std::to_string(total) +
                    " values its header declares");
  return a;
}

DatasetContents import_idx(const std::string& images_path, const std::string& labels_path) {
  IdxArray images = read_idx(images_path);
  if (images.dims.size() != 3)
    throw DataError(images_path + ": expected IDX images [N, H, W], found " +
                    std::to_string(images.dims.size()) + " dimensions");
  DatasetContents c;
  c.name = "/images";
  c.shape = {images.dims[0], 1, images.dims[1], images.dims[2]};
  c.u8 = std::move(images.values);
  c.attributes = {{"source", "idx"}, {"images_file", images_path}, {"layout", "NCHW"}};
  if (!labels_path.empty()) {
    IdxArray labels = read_idx(labels_path);
    if (labels.dims.size() != 1 || labels.dims[0] != c.shape[0])
      throw DataError(labels_path + ": expected IDX labels [" + std::to_string(c.shape[0]) +
                      "] to match the images file");
    c.labels.assign(labels.values.begin(), labels.values.end());
    c.attributes.emplace_back("labels_file", labels_path);
  }
  return c;
}

}  // namespace distgan::data
