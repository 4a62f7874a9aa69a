// RAII ownership of HDF5 identifiers and the check that turns a failed HDF5 call into a DataError
// carrying the library's own innermost message.
#pragma once

#include <hdf5.h>

#include <string>
#include <utility>

#include "data/data_error.h"

namespace distgan::data {

// Owns one hid_t and closes it with the matching H5?close function.
class H5Handle {
 public:
  using Closer = herr_t (*)(hid_t);
  H5Handle() = default;
  H5Handle(hid_t id, Closer closer) : id_(id), closer_(closer) {}
  H5Handle(const H5Handle&) = delete;
  H5Handle& operator=(const H5Handle&) = delete;
  H5Handle(H5Handle&& other) noexcept { *this = std::move(other); }
  H5Handle& operator=(H5Handle&& other) noexcept {
    if (this != &other) {
      reset();
      id_ = std::exchange(other.id_, H5I_INVALID_HID);
      closer_ = other.closer_;
    }
    return *this;
  }
  ~H5Handle() { reset(); }

  hid_t get() const { return id_; }
  // Gives up ownership without closing (the caller closes and checks the result).
  hid_t release() { return std::exchange(id_, H5I_INVALID_HID); }
  bool valid() const { return id_ >= 0; }
  void reset() {
    if (id_ >= 0 && closer_ != nullptr) closer_(id_);
    id_ = H5I_INVALID_HID;
  }

 private:
  hid_t id_ = H5I_INVALID_HID;
  Closer closer_ = nullptr;
};

// Throws DataError unless this HDF5 library is a thread-safe build: training reads on the loader
// thread while checkpoints are written on another (Debian's libhdf5 is thread-safe; many
// hand-built ones are not, and would corrupt memory or files).
void require_threadsafe_hdf5();

// Silences HDF5's automatic error-stack printing for the calling thread: we report errors ourselves.
void h5_silence_errors();

// The current HDF5 error stack as "<what failed> (<innermost reason>)" ("" if empty); clears it.
std::string h5_last_error();

// Throws DataError("<context>: <HDF5 message>") when status (an herr_t or hid_t) is negative.
template <typename T>
T h5_check(T status, const std::string& context) {
  if (status < 0) {
    const std::string detail = h5_last_error();
    throw DataError(detail.empty() ? context : context + ": " + detail);
  }
  return status;
}

// A fixed-length string attribute `key` on the object `loc`. Throws DataError naming `context`.
void h5_write_string_attribute(hid_t loc, const std::string& key, const std::string& value,
                               const std::string& context);
// Its value, or throws DataError when it is missing or not a string.
std::string h5_read_string_attribute(hid_t loc, const std::string& key, const std::string& context);

}  // namespace distgan::data
