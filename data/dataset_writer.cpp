#include "data/dataset_writer.h"

#include <zlib.h>

#include <algorithm>
#include <atomic>
#include <thread>

#include "data/atomic_file.h"
#include "data/h5_handle.h"

namespace distgan::data {

namespace {

void check_contents(const std::string& path, const DatasetContents& c) {
  if (c.shape.empty() || c.shape[0] < 1)
    throw DataError(path + ": refusing to write an empty dataset " + c.name);
  int64_t total = 1;
  for (int64_t d : c.shape) {
    if (d < 1) throw DataError(path + ": dataset " + c.name + " has a zero or negative dimension");
    total *= d;
  }
  const auto held = static_cast<int64_t>(c.u8.empty() ? c.f32.size() : c.u8.size());
  if (c.u8.empty() == c.f32.empty() || held != total)
    throw DataError(path + ": internal error: dataset " + c.name + " holds " + std::to_string(held) +
                    " values for a shape of " + std::to_string(total));
  if (!c.labels.empty() && static_cast<int64_t>(c.labels.size()) != c.shape[0])
    throw DataError(path + ": " + std::to_string(c.labels.size()) + " labels for " +
                    std::to_string(c.shape[0]) + " samples");
}

// uint8 data with deflate: every chunk compressed on all cores (zlib's format, which is what HDF5's
// deflate filter writes and reads), then stored with H5Dwrite_chunk. HDF5 itself would compress
// them one after another on this thread, which took longer than decoding the images.
void write_chunks_in_parallel(hid_t dset, const std::vector<hsize_t>& dims, const std::vector<hsize_t>& chunk,
                              const uint8_t* data, int level, const std::string& path) {
  size_t row_bytes = 1;  // bytes of one sample
  for (size_t i = 1; i < dims.size(); ++i) row_bytes *= dims[i];
  const size_t rows = chunk[0], chunk_bytes = rows * row_bytes;
  const size_t count = (dims[0] + rows - 1) / rows;
  std::vector<std::vector<uint8_t>> packed(count);
  std::atomic<size_t> next{0};
  std::atomic<bool> failed{false};
  auto work = [&] {
    std::vector<uint8_t> full(chunk_bytes);  // an edge chunk is stored full size, zero-padded
    for (size_t c; (c = next++) < count && !failed;) {
      const size_t first = c * rows, n = std::min<size_t>(rows, dims[0] - first);
      std::fill(full.begin(), full.end(), 0);
      std::copy(data + first * row_bytes, data + (first + n) * row_bytes, full.begin());
      uLongf size = compressBound(static_cast<uLong>(chunk_bytes));
      packed[c].resize(size);
      if (compress2(packed[c].data(), &size, full.data(), static_cast<uLong>(chunk_bytes), level) != Z_OK) failed = true;
      packed[c].resize(size);
    }
  };
  std::vector<std::thread> threads;
  for (unsigned t = 0; t < std::max(1u, std::thread::hardware_concurrency()); ++t) threads.emplace_back(work);
  for (auto& t : threads) t.join();
  if (failed) throw DataError(path + ": compressing a chunk failed");
  std::vector<hsize_t> offset(dims.size(), 0);
  for (size_t c = 0; c < count; ++c) {
    offset[0] = c * rows;
    h5_check(H5Dwrite_chunk(dset, H5P_DEFAULT, 0, offset.data(), packed[c].size(), packed[c].data()),
             path + ": writing chunk " + std::to_string(c));
  }
}

void write_array(hid_t file, const std::string& name, const std::vector<int64_t>& shape,
                 hid_t file_type, hid_t mem_type, const void* data, size_t element_bytes,
                 const WriteOptions& opt, const std::string& path) {
  std::vector<hsize_t> dims(shape.begin(), shape.end());
  int64_t sample_bytes = static_cast<int64_t>(element_bytes);
  for (size_t i = 1; i < shape.size(); ++i) sample_bytes *= shape[i];
  std::vector<hsize_t> chunk = dims;
  chunk[0] = static_cast<hsize_t>(
      std::clamp<int64_t>(opt.chunk_bytes / std::max<int64_t>(1, sample_bytes), 1, shape[0]));

  H5Handle space(h5_check(H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr), path),
                 H5Sclose);
  H5Handle dcpl(h5_check(H5Pcreate(H5P_DATASET_CREATE), path), H5Pclose);
  h5_check(H5Pset_chunk(dcpl.get(), static_cast<int>(chunk.size()), chunk.data()), path);
  if (element_bytes > 1) h5_check(H5Pset_shuffle(dcpl.get()), path);
  if (opt.deflate_level > 0) h5_check(H5Pset_deflate(dcpl.get(), opt.deflate_level), path);
  H5Handle lcpl(h5_check(H5Pcreate(H5P_LINK_CREATE), path), H5Pclose);
  h5_check(H5Pset_create_intermediate_group(lcpl.get(), 1), path);
  H5Handle dset(h5_check(H5Dcreate2(file, name.c_str(), file_type, space.get(), lcpl.get(), dcpl.get(),
                                    H5P_DEFAULT),
                         path + ": creating " + name),
                H5Dclose);
  if (element_bytes == 1 && opt.deflate_level > 0)
    write_chunks_in_parallel(dset.get(), dims, chunk, static_cast<const uint8_t*>(data), opt.deflate_level, path);
  else
    h5_check(H5Dwrite(dset.get(), mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data), path + ": writing " + name);
}

}  // namespace

void write_dataset_file(const std::string& path, const DatasetContents& c, const WriteOptions& opt) {
  check_contents(path, c);
  h5_silence_errors();
  AtomicOutput out(path, opt.overwrite);
  {
    // EXCL: never truncate (or follow a link to) something that already has the temporary name.
    H5Handle file(h5_check(H5Fcreate(out.temp_path().c_str(), H5F_ACC_EXCL, H5P_DEFAULT, H5P_DEFAULT),
                           out.temp_path() + ": cannot create"),
                  H5Fclose);
    if (!c.u8.empty()) {
      write_array(file.get(), c.name, c.shape, H5T_STD_U8LE, H5T_NATIVE_UINT8, c.u8.data(), 1, opt, path);
    } else {
      write_array(file.get(), c.name, c.shape, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, c.f32.data(), 4, opt,
                  path);
    }
    if (!c.labels.empty()) {
      write_array(file.get(), "/labels", {static_cast<int64_t>(c.labels.size())}, H5T_STD_I64LE,
                  H5T_NATIVE_INT64, c.labels.data(), 8, opt, path);
    }
    for (const auto& [key, value] : c.attributes) h5_write_string_attribute(file.get(), key, value, path);
    h5_check(H5Fflush(file.get(), H5F_SCOPE_GLOBAL), path + ": flush");
    const hid_t id = file.get();
    file.release();
    h5_check(H5Fclose(id), path + ": closing the file");  // a failed close must not be committed
  }
  out.commit();
}

}  // namespace distgan::data
