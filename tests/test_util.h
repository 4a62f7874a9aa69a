// Helpers shared by the unit tests: a temporary directory removed at the end of the test, and
// writers for small IDX, .npy and HDF5 files with known contents.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace distgan::testing {

class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  const std::filesystem::path& dir() const { return dir_; }
  // Names of the entries in the directory, sorted.
  std::vector<std::string> entries() const;

 private:
  std::filesystem::path dir_;
};

void write_text(const std::string& path, const std::string& text);
std::string read_text(const std::string& path);

// IDX of unsigned bytes with the given dims; gzip-compressed when gz is true. `truncate_by` drops
// that many bytes from the end.
void write_idx(const std::string& path, const std::vector<int64_t>& dims, const std::vector<uint8_t>& values,
               bool gz, size_t truncate_by = 0);

// .npy v1 with descr e.g. "|u1", "<f4", "<i8"; `data` holds the raw little-endian bytes.
void write_npy(const std::string& path, const std::string& descr, const std::vector<int64_t>& shape,
               const void* data, size_t bytes);

// .npy v1 whose header dict is `dict` as given (for crafted headers), then `bytes` of data.
void write_npy_raw(const std::string& path, const std::string& dict, const void* data, size_t bytes);

// The message of the exception of type E that `f` throws ("" if it throws none).
template <typename E, typename F>
std::string error_message(F&& f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  }
  return "";
}

// Runs a shell command and returns its exit status (-1 if it could not run).
int run_command(const std::string& command);

}  // namespace distgan::testing

namespace distgan::testing {

// Writes one HDF5 dataset `name` of HDF5 type `type` (e.g. H5T_NATIVE_INT16) and shape `dims`
// into `path` (created, or opened when it exists), bypassing distgan's writer: for crafted files.
// With `chunk` non-empty the dataset is chunked (then huge declared dims cost nothing on disk).
void write_h5_array(const std::string& path, const std::string& name, long type,
                    const std::vector<unsigned long long>& dims, const void* data,
                    const std::vector<unsigned long long>& chunk = {});
// Creates an empty group `name` in `path` (created when missing).
void write_h5_group(const std::string& path, const std::string& name);

}  // namespace distgan::testing
