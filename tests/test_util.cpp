#include "tests/test_util.h"

#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>

namespace distgan::testing {

namespace fs = std::filesystem;

TempDir::TempDir() {
  std::random_device rd;
  dir_ = fs::temp_directory_path() / ("distgan-test-" + std::to_string(::getpid()) + "-" + std::to_string(rd()));
  fs::create_directories(dir_);
}

TempDir::~TempDir() {
  std::error_code ec;
  fs::remove_all(dir_, ec);
}

std::vector<std::string> TempDir::entries() const {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir_)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

void write_text(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
  if (!out) throw std::runtime_error("cannot write " + path);
}

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

void write_idx(const std::string& path, const std::vector<int64_t>& dims, const std::vector<uint8_t>& values,
               bool gz, size_t truncate_by) {
  std::string bytes{'\0', '\0', '\x08', static_cast<char>(dims.size())};
  for (int64_t d : dims)
    for (int shift = 24; shift >= 0; shift -= 8) bytes.push_back(static_cast<char>((d >> shift) & 0xff));
  bytes.append(values.begin(), values.end());
  bytes.resize(bytes.size() - std::min(truncate_by, bytes.size()));
  if (!gz) {
    write_text(path, bytes);
    return;
  }
  gzFile f = gzopen(path.c_str(), "wb");
  if (f == nullptr || gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size())) != static_cast<int>(bytes.size()))
    throw std::runtime_error("cannot write " + path);
  gzclose(f);
}

void write_npy_raw(const std::string& path, const std::string& dict, const void* data, size_t bytes) {
  std::string header = dict;
  while ((10 + header.size() + 1) % 64 != 0) header += ' ';
  header += '\n';
  std::string out = "\x93NUMPY";
  out += '\x01';
  out += '\x00';
  out += static_cast<char>(header.size() & 0xff);
  out += static_cast<char>(header.size() >> 8);
  out += header;
  out.append(static_cast<const char*>(data), bytes);
  write_text(path, out);
}

void write_npy(const std::string& path, const std::string& descr, const std::vector<int64_t>& shape,
               const void* data, size_t bytes) {
  std::string dims;
  for (int64_t d : shape) dims += std::to_string(d) + ", ";
  write_npy_raw(path, "{'descr': '" + descr + "', 'fortran_order': False, 'shape': (" + dims + "), }", data, bytes);
}

int run_command(const std::string& command) {
  const int status = std::system(command.c_str());
  if (status == -1 || !WIFEXITED(status)) return -1;
  return WEXITSTATUS(status);
}

}  // namespace distgan::testing

#include <hdf5.h>

namespace distgan::testing {

namespace {
hid_t open_or_create(const std::string& path) {
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  if (fs::exists(path)) return H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  return H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
}
}  // namespace

void write_h5_array(const std::string& path, const std::string& name, long type,
                    const std::vector<unsigned long long>& dims, const void* data,
                    const std::vector<unsigned long long>& chunk) {
  const hid_t file = open_or_create(path);
  std::vector<hsize_t> d(dims.begin(), dims.end());
  const hid_t space = H5Screate_simple(static_cast<int>(d.size()), d.data(), nullptr);
  const hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
  H5Pset_create_intermediate_group(lcpl, 1);
  const hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
  if (!chunk.empty()) {
    std::vector<hsize_t> c(chunk.begin(), chunk.end());
    H5Pset_chunk(dcpl, static_cast<int>(c.size()), c.data());
  }
  const hid_t dset = H5Dcreate2(file, name.c_str(), type, space, lcpl, dcpl, H5P_DEFAULT);
  H5Pclose(dcpl);
  if (file < 0 || dset < 0) throw std::runtime_error("cannot create " + name + " in " + path);
  if (data != nullptr && H5Dwrite(dset, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0)
    throw std::runtime_error("cannot write " + name + " in " + path);
  H5Dclose(dset);
  H5Pclose(lcpl);
  H5Sclose(space);
  H5Fclose(file);
}

void write_h5_group(const std::string& path, const std::string& name) {
  const hid_t file = open_or_create(path);
  const hid_t group = H5Gcreate2(file, name.c_str(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  if (file < 0 || group < 0) throw std::runtime_error("cannot create group " + name + " in " + path);
  H5Gclose(group);
  H5Fclose(file);
}

}  // namespace distgan::testing
