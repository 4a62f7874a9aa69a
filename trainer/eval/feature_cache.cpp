#include "trainer/eval/feature_cache.h"

#include <sys/statvfs.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <vector>

#include "data/atomic_file.h"
#include "data/h5_handle.h"
#include "trainer/eval/tensor_checks.h"

namespace distgan::eval {

namespace fs = std::filesystem;

namespace {

using data::DataError;
using data::h5_check;
using data::H5Handle;

// Two hashes fed the same byte stream. FNV-1a 64 is simple and well spread; zlib's CRC-32 is
// table-driven and independent of it, so together they give 96 bits of key.
class KeyHash {
 public:
  void update(const void* bytes, size_t size) {
    const auto* p = static_cast<const unsigned char*>(bytes);
    for (size_t i = 0; i < size; ++i) fnv_ = (fnv_ ^ p[i]) * kFnvPrime;
    while (size > 0) {  // zlib takes 32-bit lengths
      const auto n = static_cast<uInt>(std::min<size_t>(size, size_t{1} << 30));
      crc_ = ::crc32(crc_, p, n);
      p += n;
      size -= n;
    }
  }
  // A length before each variable-size field: "ab"+"c" and "a"+"bc" must not give the same key.
  void update_length(uint64_t n) {
    unsigned char le[8];
    for (int i = 0; i < 8; ++i) le[i] = static_cast<unsigned char>(n >> (8 * i));
    update(le, sizeof(le));
  }
  std::string hex() const {
    char buf[32];
    std::snprintf(buf, sizeof(buf), "%016llx%08lx", static_cast<unsigned long long>(fnv_),
                  static_cast<unsigned long>(crc_));
    return buf;
  }

 private:
  static constexpr uint64_t kFnvPrime = 0x100000001b3ULL;
  uint64_t fnv_ = 0xcbf29ce484222325ULL;  // the FNV-1a 64 offset basis
  uLong crc_ = ::crc32(0L, Z_NULL, 0);
};

void warn(const std::string& message) { std::fprintf(stderr, "distgan: warning: %s\n", message.c_str()); }

std::string parent_dir(const std::string& path) {
  const fs::path parent = fs::path(path).parent_path();
  return parent.empty() ? std::string(".") : parent.string();
}

// Throws DataError unless `dir` exists (created if needed), is writable and has room for `bytes`
// plus HDF5's metadata: HDF5 1.10 does not recover from a failed write, so a full disk is found
// before HDF5 writes anything (as trainer/state/checkpoint_file.cpp does).
void require_writable(const std::string& dir, uint64_t bytes) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw DataError("cannot create the directory " + dir + ": " + ec.message());
  if (::access(dir.c_str(), W_OK) != 0) throw DataError("cannot write to " + dir + ": " + std::strerror(errno));
  const uint64_t need = bytes + bytes / 20 + (uint64_t{64} << 10);
  struct statvfs info {};
  if (::statvfs(dir.c_str(), &info) != 0) return;  // unknown: let the write itself tell
  const uint64_t free_bytes = static_cast<uint64_t>(info.f_bavail) * info.f_frsize;
  if (free_bytes < need)
    throw DataError("not enough space in " + dir + ": the cache needs about " + std::to_string(need >> 10) +
                    " KiB and " + std::to_string(free_bytes >> 10) + " KiB are free");
}

torch::Tensor read_features(const std::string& path) {
  data::h5_silence_errors();
  if (H5Fis_hdf5(path.c_str()) <= 0) {
    data::h5_last_error();
    throw DataError("not an HDF5 file (damaged or foreign)");
  }
  H5Handle file(h5_check(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), "cannot open"), H5Fclose);
  const std::string format = data::h5_read_string_attribute(file.get(), "format", "not a feature cache");
  if (format != kFeatureCacheFormat) throw DataError("format '" + format + "' is not " + kFeatureCacheFormat);
  if (H5Lexists(file.get(), "features", H5P_DEFAULT) <= 0) {
    data::h5_last_error();
    throw DataError("no /features dataset");
  }
  H5Handle set(h5_check(H5Dopen2(file.get(), "features", H5P_DEFAULT), "/features"), H5Dclose);
  H5Handle type(h5_check(H5Dget_type(set.get()), "/features"), H5Tclose);
  if (H5Tget_class(type.get()) != H5T_FLOAT) throw DataError("/features is not a floating-point dataset");
  H5Handle space(h5_check(H5Dget_space(set.get()), "/features"), H5Sclose);
  if (H5Sget_simple_extent_ndims(space.get()) != 2) throw DataError("/features is not a 2-D dataset");
  hsize_t dims[2] = {0, 0};
  h5_check(H5Sget_simple_extent_dims(space.get(), dims, nullptr), "/features");
  torch::Tensor features =
      torch::empty({static_cast<int64_t>(dims[0]), static_cast<int64_t>(dims[1])}, torch::kFloat32);
  if (features.numel() > 0)
    h5_check(H5Dread(set.get(), H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, features.data_ptr<float>()),
             "reading /features");
  return features;
}

}  // namespace

std::string content_key(const std::vector<std::string>& files, const std::string& extra) {
  KeyHash hash;
  std::vector<char> buffer(size_t{1} << 20);
  hash.update_length(files.size());
  for (const auto& path : files) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw DataError(path + ": cannot open to compute the feature-cache key: " + std::strerror(errno));
    std::error_code ec;
    const uintmax_t size = fs::file_size(path, ec);
    if (ec) throw DataError(path + ": cannot read its size: " + ec.message());
    hash.update_length(size);
    uintmax_t total = 0;
    while (in) {
      in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
      const auto got = static_cast<size_t>(in.gcount());
      hash.update(buffer.data(), got);
      total += got;
    }
    if (in.bad() || total != size) throw DataError(path + ": read error while computing the feature-cache key");
  }
  hash.update_length(extra.size());
  hash.update(extra.data(), extra.size());
  return hash.hex();
}

std::string cache_path(const std::string& dataset_path, const std::string& key) {
  return dataset_path + ".eval-cache/" + key + ".h5";
}

std::optional<torch::Tensor> load_cached_features(const std::string& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) return std::nullopt;
  try {
    return read_features(path);
  } catch (const std::exception& e) {
    warn("ignoring the evaluation feature cache " + path + " (" + e.what() + "); computing the features again");
    return std::nullopt;
  }
}

void save_cached_features(const std::string& path, const torch::Tensor& features, const std::string& description) {
  torch::NoGradGuard no_grad;
  if (!features.defined() || features.dim() != 2 || !features.is_floating_point())
    throw std::invalid_argument("save_cached_features: features must be a floating-point [N, F] matrix, got " +
                                (features.defined() ? detail::shape_text(features) : std::string("undefined")));
  const torch::Tensor t = features.to(torch::kCPU, torch::kFloat32).contiguous();
  try {
    data::h5_silence_errors();
    require_writable(parent_dir(path), static_cast<uint64_t>(t.numel()) * sizeof(float) + description.size());
    data::AtomicOutput out(path, /*overwrite=*/true);
    {
      H5Handle file(h5_check(H5Fcreate(out.temp_path().c_str(), H5F_ACC_EXCL, H5P_DEFAULT, H5P_DEFAULT),
                             out.temp_path() + ": cannot create"),
                    H5Fclose);
      const hsize_t dims[2] = {static_cast<hsize_t>(t.size(0)), static_cast<hsize_t>(t.size(1))};
      H5Handle space(h5_check(H5Screate_simple(2, dims, nullptr), path), H5Sclose);
      H5Handle set(h5_check(H5Dcreate2(file.get(), "features", H5T_IEEE_F32LE, space.get(), H5P_DEFAULT, H5P_DEFAULT,
                                       H5P_DEFAULT),
                            path + ": /features"),
                   H5Dclose);
      if (t.numel() > 0)
        h5_check(H5Dwrite(set.get(), H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, t.data_ptr<float>()),
                 path + ": writing /features");
      set.reset();
      data::h5_write_string_attribute(file.get(), "format", kFeatureCacheFormat, path);
      data::h5_write_string_attribute(file.get(), "description", description, path);
      h5_check(H5Fclose(file.release()), path + ": closing the file");
    }
    out.commit();
  } catch (const std::exception& e) {
    warn("could not write the evaluation feature cache " + path + " (" + e.what() +
         "); the features will be computed again next time");
  }
}

}  // namespace distgan::eval
