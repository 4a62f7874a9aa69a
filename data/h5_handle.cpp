#include "data/h5_handle.h"

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

}  // namespace distgan::data
