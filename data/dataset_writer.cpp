#include "data/dataset_writer.h"

#include <algorithm>

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
