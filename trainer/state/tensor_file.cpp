#include "trainer/state/tensor_file.h"

#include <zlib.h>

#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <algorithm>
#include <charconv>
#include <filesystem>
#include <cstdio>
#include <sstream>

#include "data/atomic_file.h"
#include "data/h5_handle.h"

namespace distgan {

namespace {

using data::DataError;
using data::h5_check;
using data::H5Handle;

uint32_t crc32_of(const void* bytes, size_t size, uint32_t crc = 0) {
  auto* p = static_cast<const Bytef*>(bytes);
  while (size > 0) {  // zlib takes 32-bit lengths
    const auto n = static_cast<uInt>(std::min<size_t>(size, size_t{1} << 30));
    crc = static_cast<uint32_t>(::crc32(crc, p, n));
    p += n;
    size -= n;
  }
  return crc;
}

struct DtypeInfo {
  torch::ScalarType type;
  const char* name;
  hid_t file_type;
  hid_t memory_type;
};

// The dtypes a checkpoint may hold (H5T ids are runtime values, so this is a function).
std::vector<DtypeInfo> dtypes() {
  return {{torch::kFloat32, "float32", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT},
          {torch::kFloat64, "float64", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE},
          {torch::kInt64, "int64", H5T_STD_I64LE, H5T_NATIVE_INT64},
          {torch::kUInt8, "uint8", H5T_STD_U8LE, H5T_NATIVE_UINT8}};
}

DtypeInfo dtype_info(torch::ScalarType type, const std::string& where) {
  for (const auto& d : dtypes())
    if (d.type == type) return d;
  throw DataError(where + ": dtype " + std::string(c10::toString(type)) + " cannot be stored in a tensor file");
}

std::string shape_text(c10::IntArrayRef shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? "," : "") + std::to_string(shape[i]);
  return s + "]";
}

std::string hex(uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof(buf), "%08x", v);
  return buf;
}

// The checksum covers every attribute but itself, in name order, each as "name=value\n".
uint32_t attributes_checksum(const std::map<std::string, std::string>& attributes) {
  uint32_t crc = 0;
  for (const auto& [name, value] : attributes) {
    if (name == "checksum") continue;
    const std::string line = name + "=" + value + "\n";
    crc = crc32_of(line.data(), line.size(), crc);
  }
  return crc;
}

herr_t collect_attribute_name(hid_t, const char* name, const H5A_info_t*, void* out) {
  static_cast<std::vector<std::string>*>(out)->push_back(name);
  return 0;
}

bool parse_int(const std::string& text, int64_t& value) {
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  return ec == std::errc() && end == text.data() + text.size();
}

// HDF5 1.10 does not recover from a failed write (the file stays half-closed and the library
// crashes when it shuts down), so a full disk is found before HDF5 writes anything: the tensors, the
// attributes and a margin for HDF5's own metadata must fit in the space the file system has free.
void require_free_space(const std::string& path, const TensorFileData& data) {
  uint64_t need = uint64_t{64} << 10;  // superblock, root group, heaps
  for (const auto& [name, t] : data.tensors) need += static_cast<uint64_t>(t.numel()) * t.element_size() + 512;
  for (const auto& [name, value] : data.attributes) need += value.size() + 256;
  need += need / 20;  // and a margin
  const std::string dir = std::filesystem::path(path).parent_path().empty()
                              ? std::string(".")
                              : std::filesystem::path(path).parent_path().string();
  if (access(dir.c_str(), W_OK) != 0) throw DataError(dir + ": cannot write there: " + std::strerror(errno));
  struct statvfs fs {};
  if (statvfs(dir.c_str(), &fs) != 0) return;  // unknown: let the write itself tell
  const uint64_t free_bytes = static_cast<uint64_t>(fs.f_bavail) * fs.f_frsize;
  if (free_bytes < need)
    throw DataError(path + ": not enough space: the checkpoint needs about " + std::to_string(need >> 10) +
                    " KiB and " + dir + " has " + std::to_string(free_bytes >> 10) + " KiB free (No space left on device)");
}

}  // namespace

std::string shape_attribute(const std::vector<int64_t>& shape) {
  std::string s;
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? "," : "") + std::to_string(shape[i]);
  return s;
}

std::vector<int64_t> parse_shape_attribute(const std::string& text, const std::string& path,
                                           const std::string& attribute) {
  std::vector<int64_t> shape;
  bool valid = !text.empty();
  std::stringstream dims(text);
  for (std::string item; valid && std::getline(dims, item, ',');) {
    int64_t v = 0;
    valid = parse_int(item, v) && v > 0 && v <= (1 << 20);
    shape.push_back(v);
  }
  if (!valid || shape.empty() || shape.size() == 2 || shape.size() > 3)
    throw DataError(path + ": attribute " + attribute + " '" + text + "' is not [D] or [C, H, W]");
  return shape;
}

void write_tensor_file(const std::string& path, const TensorFileData& data) {
  data::h5_silence_errors();
  std::map<std::string, std::string> attributes = data.attributes;
  attributes.emplace("format", kCheckpointFormat);  // unless the caller names another kind
  std::string manifest;
  require_free_space(path, data);
  data::AtomicOutput out(path, /*overwrite=*/true);
  {
    // New-style object headers: attributes larger than 64 KiB (a long manifest) are stored densely.
    H5Handle fapl(h5_check(H5Pcreate(H5P_FILE_ACCESS), path), H5Pclose);
    h5_check(H5Pset_libver_bounds(fapl.get(), H5F_LIBVER_V18, H5F_LIBVER_LATEST), path);
    H5Handle lcpl(h5_check(H5Pcreate(H5P_LINK_CREATE), path), H5Pclose);
    h5_check(H5Pset_create_intermediate_group(lcpl.get(), 1), path);
    H5Handle file(h5_check(H5Fcreate(out.temp_path().c_str(), H5F_ACC_EXCL, H5P_DEFAULT, fapl.get()),
                           out.temp_path() + ": cannot create"),
                  H5Fclose);
    for (const auto& [name, value] : data.tensors) {
      const std::string where = path + ": " + name;
      if (name.empty() || name.find_first_of(" \t\n") != std::string::npos)
        throw DataError(where + ": a tensor name must be non-empty without white space");
      const DtypeInfo d = dtype_info(value.scalar_type(), where);
      const torch::Tensor t = value.device().is_cpu() && value.is_contiguous() ? value : value.cpu().contiguous();
      std::vector<hsize_t> dims(t.sizes().begin(), t.sizes().end());
      H5Handle space(h5_check(dims.empty() ? H5Screate(H5S_SCALAR)
                                           : H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr),
                              where),
                     H5Sclose);
      H5Handle set(h5_check(H5Dcreate2(file.get(), name.c_str(), d.file_type, space.get(), lcpl.get(), H5P_DEFAULT,
                                       H5P_DEFAULT),
                            where),
                   H5Dclose);
      const size_t bytes = static_cast<size_t>(t.numel()) * t.element_size();
      if (bytes > 0) h5_check(H5Dwrite(set.get(), d.memory_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, t.data_ptr()), where);
      manifest += name + " " + d.name + " " + shape_text(t.sizes()) + " " + hex(crc32_of(t.data_ptr(), bytes)) + "\n";
    }
    attributes["manifest"] = manifest;
    attributes["checksum"] = hex(attributes_checksum(attributes));
    for (const auto& [name, value] : attributes) data::h5_write_string_attribute(file.get(), name, value, path);
    h5_check(H5Fflush(file.get(), H5F_SCOPE_GLOBAL), path + ": flush");
    h5_check(H5Fclose(file.release()), path + ": closing the file");
  }
  out.commit();
}

TensorFileReader::TensorFileReader(const std::string& path, const TensorFileKind& kind) : path_(path), kind_(kind) {
  data::h5_silence_errors();
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) throw DataError(path + ": no such " + kind_.name + " file");
  if (H5Fis_hdf5(path.c_str()) <= 0) {
    const std::string detail = data::h5_last_error();
    throw DataError(path + ": not a readable HDF5 file (truncated or not a " + kind_.name + ")" +
                    (detail.empty() ? "" : ": " + detail));
  }
  file_ = h5_check(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), path + ": cannot open");
  try {
    load_metadata();
  } catch (...) {
    H5Fclose(file_);  // the destructor does not run for a throwing constructor
    file_ = -1;
    throw;
  }
}

void TensorFileReader::load_metadata() {
  const std::string& path = path_;
  std::vector<std::string> names;
  hsize_t index = 0;
  h5_check(H5Aiterate2(file_, H5_INDEX_NAME, H5_ITER_INC, &index, collect_attribute_name, &names),
           path + ": reading attributes");
  for (const auto& name : names) attributes_[name] = data::h5_read_string_attribute(file_, name, path);
  const auto format = attributes_.find("format");
  if (format == attributes_.end())
    throw DataError(path + ": attribute 'format' is missing: not a distgan " + kind_.name);
  if (std::find(kind_.formats.begin(), kind_.formats.end(), format->second) == kind_.formats.end()) {
    std::string accepted;
    for (const auto& f : kind_.formats) accepted += (accepted.empty() ? "" : " or ") + f;
    throw DataError(path + ": format '" + format->second + "' is not a " + kind_.name + " this distgan reads (" +
                    accepted + ")");
  }
  const std::string stored = attribute("checksum");
  const std::string actual = hex(attributes_checksum(attributes_));
  if (stored != actual)
    throw DataError(path + ": checksum mismatch (file says " + stored + ", content gives " + actual +
                    "): the " + kind_.name + " is corrupt or was modified");
  std::istringstream lines(attribute("manifest"));
  std::string line;
  for (size_t order = 0; std::getline(lines, line); ++order) {
    std::istringstream fields(line);
    std::string name, dtype, shape, crc;
    if (!(fields >> name >> dtype >> shape >> crc) || shape.size() < 2 || shape.front() != '[' || shape.back() != ']')
      throw DataError(path + ": malformed manifest line '" + line + "'");
    Entry e{torch::kFloat32, {}, 0, order};
    bool known = false;
    for (const auto& d : dtypes())
      if (dtype == d.name) e.dtype = d.type, known = true;
    if (!known) throw DataError(path + ": " + name + ": unknown dtype '" + dtype + "'");
    std::istringstream dims(shape.substr(1, shape.size() - 2));
    for (std::string dim; std::getline(dims, dim, ',');) {
      int64_t v = -1;
      if (!parse_int(dim, v) || v < 0) throw DataError(path + ": " + name + ": bad shape " + shape);
      e.shape.push_back(v);
    }
    e.crc = static_cast<uint32_t>(std::strtoul(crc.c_str(), nullptr, 16));
    manifest_[name] = e;
  }
}

TensorFileReader::~TensorFileReader() {
  if (file_ >= 0) H5Fclose(file_);
}

const std::string& TensorFileReader::attribute(const std::string& name) const {
  const auto it = attributes_.find(name);
  if (it == attributes_.end()) throw DataError(path_ + ": attribute '" + name + "' is missing");
  return it->second;
}

int64_t TensorFileReader::integer_attribute(const std::string& name, int64_t min, int64_t max) const {
  const std::string& text = attribute(name);
  int64_t v = 0;
  if (!parse_int(text, v) || v < min || v > max)
    throw DataError(path_ + ": attribute " + name + " = '" + text + "' is not an integer in [" + std::to_string(min) +
                    ", " + std::to_string(max) + "]");
  return v;
}

std::vector<std::string> TensorFileReader::tensor_names(const std::string& prefix) const {
  std::vector<std::pair<size_t, std::string>> found;
  for (const auto& [name, e] : manifest_)
    if (name.compare(0, prefix.size(), prefix) == 0) found.emplace_back(e.order, name);
  std::sort(found.begin(), found.end());
  std::vector<std::string> names;
  for (auto& f : found) names.push_back(std::move(f.second));
  return names;
}

std::vector<int64_t> TensorFileReader::shape(const std::string& name) const {
  const auto it = manifest_.find(name);
  if (it == manifest_.end()) throw DataError(path_ + ": " + name + " is missing: the " + kind_.name + " does not match");
  return it->second.shape;
}

torch::Tensor TensorFileReader::read(const std::string& name, torch::ScalarType dtype,
                                     const std::vector<int64_t>& expected_shape) {
  const auto it = manifest_.find(name);
  if (it == manifest_.end()) throw DataError(path_ + ": " + name + " is missing: the " + kind_.name + " does not match");
  if (it->second.shape != expected_shape)
    throw DataError(path_ + ": " + name + " has shape " + shape_text(it->second.shape) + " but this run expects " +
                    shape_text(expected_shape));
  if (it->second.dtype != dtype)
    throw DataError(path_ + ": " + name + " is " + c10::toString(it->second.dtype) + " but this run expects " +
                    c10::toString(dtype));
  return read_checked(name, it->second);
}

torch::Tensor TensorFileReader::read_any_shape(const std::string& name, torch::ScalarType dtype, int64_t max_elements) {
  const std::vector<int64_t> s = shape(name);
  int64_t n = 1;
  for (const int64_t d : s) n = d == 0 ? 0 : (n > max_elements / d ? max_elements + 1 : n * d);
  if (n > max_elements)
    throw DataError(path_ + ": " + name + " has shape " + shape_text(s) + ", more than the " +
                    std::to_string(max_elements) + " elements expected");
  return read(name, dtype, s);
}

void TensorFileReader::verify_all() {
  for (const auto& name : tensor_names()) read_checked(name, manifest_.at(name));
}

torch::Tensor TensorFileReader::read_checked(const std::string& name, const Entry& e) {
  const std::string where = path_ + ": " + name;
  H5Handle set(h5_check(H5Dopen2(file_, name.c_str(), H5P_DEFAULT), where + " (listed in the manifest)"), H5Dclose);
  H5Handle space(h5_check(H5Dget_space(set.get()), where), H5Sclose);
  const int rank = h5_check(H5Sget_simple_extent_ndims(space.get()), where);
  std::vector<hsize_t> dims(static_cast<size_t>(rank));
  if (rank > 0) h5_check(H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr), where);
  if (std::vector<int64_t>(dims.begin(), dims.end()) != e.shape)
    throw DataError(where + ": the dataset's shape differs from the manifest's " + shape_text(e.shape));
  const DtypeInfo d = dtype_info(e.dtype, where);
  H5Handle type(h5_check(H5Dget_type(set.get()), where), H5Tclose);
  if (H5Tget_class(type.get()) != H5Tget_class(d.file_type) || H5Tget_size(type.get()) != H5Tget_size(d.file_type))
    throw DataError(where + ": the dataset's type differs from the manifest's " + d.name);
  torch::Tensor t = torch::empty(e.shape, e.dtype);
  const size_t bytes = static_cast<size_t>(t.numel()) * t.element_size();
  if (bytes > 0) h5_check(H5Dread(set.get(), d.memory_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, t.data_ptr()), where);
  if (crc32_of(t.data_ptr(), bytes) != e.crc)
    throw DataError(where + ": crc32 mismatch: the " + kind_.name + " is corrupt");
  return t;
}

}  // namespace distgan
