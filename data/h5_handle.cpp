#include "data/h5_handle.h"

#include <cstring>

namespace distgan::data {

// HDF5's thread-safe build keeps this setting per thread: every thread that calls HDF5 silences it.
void h5_silence_errors() { H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr); }

namespace {
struct ErrorChain {
  std::string api;       // the outermost entry: what the API call failed to do
  std::string specific;  // the innermost entry: why
};
herr_t collect(unsigned n, const H5E_error2_t* err, void* out) {
  auto* chain = static_cast<ErrorChain*>(out);
  if (err->desc == nullptr) return 0;
  if (n == 0) chain->api = err->desc;
  chain->specific = err->desc;
  return 0;
}
}  // namespace

std::string h5_last_error() {
  ErrorChain chain;
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, collect, &chain);
  H5Eclear2(H5E_DEFAULT);
  if (chain.api == chain.specific) return chain.api;
  return chain.api + " (" + chain.specific + ")";
}

void require_threadsafe_hdf5() {
  hbool_t threadsafe = 0;
  if (H5is_library_threadsafe(&threadsafe) < 0 || !threadsafe) {
    unsigned major = 0, minor = 0, release = 0;
    H5get_libversion(&major, &minor, &release);
    throw DataError("the HDF5 library (" + std::to_string(major) + "." + std::to_string(minor) + "." +
                    std::to_string(release) +
                    ") is not a thread-safe build; distgan reads and writes HDF5 from several threads. Use a "
                    "build configured with --enable-threadsafe (Debian's libhdf5 is one)");
  }
}

void h5_write_string_attribute(hid_t loc, const std::string& key, const std::string& value,
                               const std::string& context) {
  H5Handle type(h5_check(H5Tcopy(H5T_C_S1), context), H5Tclose);
  h5_check(H5Tset_size(type.get(), value.empty() ? 1 : value.size()), context);
  h5_check(H5Tset_strpad(type.get(), H5T_STR_NULLTERM), context);
  H5Handle space(h5_check(H5Screate(H5S_SCALAR), context), H5Sclose);
  H5Handle attr(h5_check(H5Acreate2(loc, key.c_str(), type.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT),
                         context + ": attribute " + key),
                H5Aclose);
  h5_check(H5Awrite(attr.get(), type.get(), value.c_str()), context + ": attribute " + key);
}

std::string h5_read_string_attribute(hid_t loc, const std::string& key, const std::string& context) {
  if (H5Aexists(loc, key.c_str()) <= 0) {
    h5_last_error();
    throw DataError(context + ": attribute '" + key + "' is missing");
  }
  H5Handle attr(h5_check(H5Aopen(loc, key.c_str(), H5P_DEFAULT), context + ": attribute " + key), H5Aclose);
  H5Handle type(h5_check(H5Aget_type(attr.get()), context), H5Tclose);
  if (H5Tget_class(type.get()) != H5T_STRING || H5Tis_variable_str(type.get()) > 0)
    throw DataError(context + ": attribute '" + key + "' is not a fixed-length string");
  std::string value(H5Tget_size(type.get()), '\0');
  h5_check(H5Aread(attr.get(), type.get(), value.data()), context + ": attribute " + key);
  value.resize(std::strlen(value.c_str()));
  return value;
}

}  // namespace distgan::data
