#include "data/dataset_reader.h"

#include <cmath>

#include <algorithm>
#include <cstring>
#include <filesystem>

namespace distgan::data {

namespace {

constexpr int64_t kMaxSampleElements = int64_t{1} << 28;  // 1 GiB of float32 per sample at most
// The sampler holds one epoch's order (8 bytes a sample) in memory on every rank.
constexpr int64_t kMaxSamples = int64_t{1} << 31;
constexpr size_t kChunkCacheSlots = 12421;               // prime, as HDF5 recommends

std::string shape_text(const std::vector<hsize_t>& dims) {
  std::string s = "[";
  for (size_t i = 0; i < dims.size(); ++i) s += (i ? ", " : "") + std::to_string(dims[i]);
  return s + "]";
}

// Names every dataset in the file, to help a user who gave a wrong path.
herr_t collect_dataset(hid_t, const char* name, const H5O_info_t* info, void* out) {
  auto* names = static_cast<std::vector<std::string>*>(out);
  if (info->type == H5O_TYPE_DATASET && names->size() < 20) names->push_back(std::string("/") + name);
  return 0;
}

std::string list_datasets(hid_t file) {
  std::vector<std::string> names;
#if H5_VERSION_GE(1, 12, 0)
  H5Ovisit3(file, H5_INDEX_NAME, H5_ITER_NATIVE, collect_dataset, &names, H5O_INFO_BASIC);
#else
  H5Ovisit(file, H5_INDEX_NAME, H5_ITER_NATIVE, collect_dataset, &names);
#endif
  h5_last_error();  // discard anything the visit left on the stack
  if (names.empty()) return "the file holds no datasets";
  std::string s = "the file holds: ";
  for (size_t i = 0; i < names.size(); ++i) s += (i ? ", " : "") + names[i];
  return s;
}

bool path_exists(hid_t file, const std::string& path) {
  // H5Lexists fails (rather than returning false) when an intermediate group is missing, so walk.
  std::string prefix;
  size_t pos = 0;
  while (pos != std::string::npos && pos < path.size()) {
    const size_t next = path.find('/', pos + 1);
    prefix = path.substr(0, next);
    if (prefix != "/" && H5Lexists(file, prefix.c_str(), H5P_DEFAULT) <= 0) {
      h5_last_error();
      return false;
    }
    pos = next;
  }
  return true;
}

}  // namespace

Layout parse_layout(const std::string& name) {
  if (name == "NCHW") return Layout::kNCHW;
  if (name == "NHWC") return Layout::kNHWC;
  throw DataError("unknown layout '" + name + "' (expected NCHW or NHWC)");
}

Scale parse_scale(const std::string& name) {
  if (name == "auto") return Scale::kAuto;
  if (name == "uint8") return Scale::kUint8;
  if (name == "unit") return Scale::kUnit;
  if (name == "none") return Scale::kNone;
  throw DataError("unknown scale '" + name + "' (expected auto, uint8, unit or none)");
}

std::string h5_type_name(hid_t type) {
  const size_t size = H5Tget_size(type);
  switch (H5Tget_class(type)) {
    case H5T_INTEGER:
      return (H5Tget_sign(type) == H5T_SGN_NONE ? "uint" : "int") + std::to_string(size * 8);
    case H5T_FLOAT: return "float" + std::to_string(size * 8);
    case H5T_STRING: return "string";
    case H5T_COMPOUND: return "compound";
    case H5T_ENUM: return "enum";
    case H5T_ARRAY: return "array";
    case H5T_VLEN: return "variable-length";
    case H5T_REFERENCE: return "reference";
    default: return "an unsupported type";
  }
}

DatasetReader::DatasetReader(const ReaderOptions& options) : options_(options) {
  h5_silence_errors();
  const std::string& path = options_.path;
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) throw DataError(path + ": dataset file not found");
  if (H5Fis_hdf5(path.c_str()) <= 0) {
    h5_last_error();
    throw DataError(path + ": not an HDF5 file (or not readable)");
  }
  file_ = H5Handle(h5_check(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), path + ": cannot open"),
                   H5Fclose);
  const std::string& name = options_.dataset;
  const std::string where = path + ": dataset '" + name + "'";
  if (!path_exists(file_.get(), name)) throw DataError(where + " not found; " + list_datasets(file_.get()));
  H5O_info_t info;
#if H5_VERSION_GE(1, 12, 0)
  h5_check(H5Oget_info_by_name3(file_.get(), name.c_str(), &info, H5O_INFO_BASIC, H5P_DEFAULT), where);
#else
  h5_check(H5Oget_info_by_name(file_.get(), name.c_str(), &info, H5P_DEFAULT), where);
#endif
  if (info.type != H5O_TYPE_DATASET)
    throw DataError(where + " is a group, not a dataset; " + list_datasets(file_.get()));

  H5Handle dapl(h5_check(H5Pcreate(H5P_DATASET_ACCESS), where), H5Pclose);
  h5_check(H5Pset_chunk_cache(dapl.get(), kChunkCacheSlots, options_.chunk_cache_bytes, 1.0), where);
  dataset_ = H5Handle(h5_check(H5Dopen2(file_.get(), name.c_str(), dapl.get()), where), H5Dclose);

  H5Handle type(h5_check(H5Dget_type(dataset_.get()), where), H5Tclose);
  dtype_name_ = h5_type_name(type.get());
  if (dtype_name_ == "float32") {
    is_float_ = true;
  } else if (dtype_name_ != "uint8") {
    throw DataError(where + " has dtype " + dtype_name_ + "; expected uint8 (images) or float32");
  }

  H5Handle space(h5_check(H5Dget_space(dataset_.get()), where), H5Sclose);
  const int rank = h5_check(H5Sget_simple_extent_ndims(space.get()), where);
  if (rank < 2 || rank > 4)
    throw DataError(where + " has " + std::to_string(rank) +
                    " dimensions; expected [N, D] vectors, [N, H, W] or [N, C, H, W] / [N, H, W, C] images");
  file_dims_.resize(static_cast<size_t>(rank));
  h5_check(H5Sget_simple_extent_dims(space.get(), file_dims_.data(), nullptr), where);
  num_samples_ = static_cast<int64_t>(file_dims_[0]);
  if (num_samples_ == 0) throw DataError(where + " is empty (shape " + shape_text(file_dims_) + ")");

  const auto d = [this](size_t i) { return static_cast<int64_t>(file_dims_[i]); };
  if (rank == 2) sample_shape_ = {d(1)};
  else if (rank == 3) sample_shape_ = {1, d(1), d(2)};
  else if (options_.layout == Layout::kNCHW) sample_shape_ = {d(1), d(2), d(3)};
  else sample_shape_ = {d(3), d(1), d(2)};
  if (file_dims_[0] > static_cast<hsize_t>(kMaxSamples))
    throw DataError(where + " declares " + std::to_string(file_dims_[0]) + " samples; at most " +
                    std::to_string(kMaxSamples) + " are supported (shape " + shape_text(file_dims_) + ")");
  sample_elements_ = 1;
  for (size_t i = 1; i < file_dims_.size(); ++i) {
    // Checked before multiplying: hostile dimensions must not wrap around.
    if (file_dims_[i] == 0)
      throw DataError(where + " has a zero-sized sample dimension (shape " + shape_text(file_dims_) + ")");
    if (file_dims_[i] > static_cast<hsize_t>(kMaxSampleElements / sample_elements_))
      throw DataError(where + " declares samples of more than " + std::to_string(kMaxSampleElements) +
                      " values (shape " + shape_text(file_dims_) + ")");
    sample_elements_ *= static_cast<int64_t>(file_dims_[i]);
  }

  Scale scale = options_.scale;
  if (scale == Scale::kAuto) scale = is_float_ ? Scale::kNone : Scale::kUint8;
  if (scale == Scale::kUint8) { scale_mul_ = 1.0f / 127.5f; scale_add_ = -1.0f; }
  if (scale == Scale::kUnit) { scale_mul_ = 2.0f; scale_add_ = -1.0f; }

  if (!options_.labels.empty() && path_exists(file_.get(), options_.labels)) open_labels();
}

void DatasetReader::open_labels() {
  const std::string where = options_.path + ": labels '" + options_.labels + "'";
  labels_ = H5Handle(h5_check(H5Dopen2(file_.get(), options_.labels.c_str(), H5P_DEFAULT), where), H5Dclose);
  H5Handle type(h5_check(H5Dget_type(labels_.get()), where), H5Tclose);
  if (H5Tget_class(type.get()) != H5T_INTEGER)
    throw DataError(where + " has dtype " + h5_type_name(type.get()) + "; expected integers");
  H5Handle space(h5_check(H5Dget_space(labels_.get()), where), H5Sclose);
  const int rank = h5_check(H5Sget_simple_extent_ndims(space.get()), where);
  std::vector<hsize_t> dims(static_cast<size_t>(std::max(rank, 1)));
  h5_check(H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr), where);
  if (!(rank == 1 || (rank == 2 && dims[1] == 1)) || static_cast<int64_t>(dims[0]) != num_samples_)
    throw DataError(where + " has shape " + shape_text(dims) + "; expected [" + std::to_string(num_samples_) +
                    "] to match the samples");
}

std::string DatasetReader::describe() const {
  std::string s = options_.path + ": " + options_.dataset + " " + dtype_name_ + " " + shape_text(file_dims_);
  s += is_image() ? (options_.layout == Layout::kNCHW ? " (NCHW images)" : " (NHWC images)") : " (vectors)";
  s += has_labels() ? ", labels " + options_.labels : ", no labels";
  return s;
}

void DatasetReader::read(const std::vector<int64_t>& indices, float* out, int64_t* labels_out) {
  h5_silence_errors();  // reads usually run on the loader thread
  size_t i = 0;
  while (i < indices.size()) {
    const int64_t first = indices[i];
    if (first < 0 || first >= num_samples_)
      throw DataError(options_.path + ": sample index " + std::to_string(first) + " is outside [0, " +
                      std::to_string(num_samples_) + ")");
    if (i > 0 && first < indices[i - 1])
      throw DataError(options_.path + ": internal error: indices must be sorted");
    size_t j = i + 1;  // extend the run of consecutive indices: one HDF5 read each
    while (j < indices.size() && indices[j] == indices[j - 1] + 1 && indices[j] < num_samples_) ++j;
    const auto count = static_cast<int64_t>(j - i);
    read_run(first, count, out + static_cast<int64_t>(i) * sample_elements_,
             labels_out ? labels_out + i : nullptr);
    i = j;
  }
}

void DatasetReader::read_run(int64_t first, int64_t count, float* out, int64_t* labels_out) {
  const std::string where = options_.path + ": reading samples [" + std::to_string(first) + ", " +
                            std::to_string(first + count) + ") of " + options_.dataset;
  std::vector<hsize_t> start(file_dims_.size(), 0), extent = file_dims_;
  start[0] = static_cast<hsize_t>(first);
  extent[0] = static_cast<hsize_t>(count);
  H5Handle file_space(h5_check(H5Dget_space(dataset_.get()), where), H5Sclose);
  h5_check(H5Sselect_hyperslab(file_space.get(), H5S_SELECT_SET, start.data(), nullptr, extent.data(), nullptr),
           where);
  const hsize_t elements = static_cast<hsize_t>(count * sample_elements_);
  H5Handle mem_space(h5_check(H5Screate_simple(1, &elements, nullptr), where), H5Sclose);

  const size_t item = is_float_ ? sizeof(float) : 1;
  raw_.resize(elements * item);
  h5_check(H5Dread(dataset_.get(), is_float_ ? H5T_NATIVE_FLOAT : H5T_NATIVE_UINT8, mem_space.get(),
                   file_space.get(), H5P_DEFAULT, raw_.data()),
           where);

  const bool nhwc = is_image() && file_dims_.size() == 4 && options_.layout == Layout::kNHWC;
  const int64_t c = is_image() ? sample_shape_[0] : 1;
  const int64_t hw = sample_elements_ / c;
  auto value = [&](int64_t k) -> float {
    if (is_float_) {
      float v;
      std::memcpy(&v, raw_.data() + k * sizeof(float), sizeof(float));
      return v;
    }
    return static_cast<float>(raw_[static_cast<size_t>(k)]);
  };
  for (int64_t s = 0; s < count; ++s) {
    const int64_t base = s * sample_elements_;
    for (int64_t e = 0; e < sample_elements_; ++e) {
      // NHWC source: element (ch, pixel) of the output sits at pixel * C + ch in the file.
      const int64_t src = nhwc ? base + (e % hw) * c + e / hw : base + e;
      out[base + e] = value(src) * scale_mul_ + scale_add_;
    }
  }
  if (is_float_) {  // NaN or infinity in float data would only surface later as a non-finite loss
    for (int64_t k = 0; k < count * sample_elements_; ++k)
      if (!std::isfinite(out[k]))
        throw DataError(options_.path + ": " + options_.dataset + " sample " + std::to_string(first + k / sample_elements_) +
                        " holds a non-finite value (" + std::to_string(out[k]) +
                        "); clean the data (numpy.nan_to_num) or drop that sample");
  }

  if (labels_out != nullptr && labels_.valid()) read_labels(first, count, labels_out);
}

void DatasetReader::read_labels(int64_t first, int64_t count, int64_t* out) {
  const std::string where = options_.path + ": reading labels [" + std::to_string(first) + ", " +
                            std::to_string(first + count) + ") of " + options_.labels;
  if (!labels_.valid()) throw DataError(options_.path + ": the file has no labels at '" + options_.labels + "'");
  if (first < 0 || count < 0 || first + count > num_samples_) throw DataError(where + ": outside the dataset");
  H5Handle space(h5_check(H5Dget_space(labels_.get()), where), H5Sclose);
  hsize_t start[2] = {static_cast<hsize_t>(first), 0}, extent[2] = {static_cast<hsize_t>(count), 1};
  h5_check(H5Sselect_hyperslab(space.get(), H5S_SELECT_SET, start, nullptr, extent, nullptr), where);
  const hsize_t n = static_cast<hsize_t>(count);
  H5Handle mem(h5_check(H5Screate_simple(1, &n, nullptr), where), H5Sclose);
  h5_check(H5Dread(labels_.get(), H5T_NATIVE_INT64, mem.get(), space.get(), H5P_DEFAULT, out), where);
}

}  // namespace distgan::data
