// libFuzzer target: the IDX reader (MNIST's format, raw or gzip) on arbitrary bytes. Any file is
// either read or refused with a DataError, without allocating more than the file can describe.
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <string>

#include "data/importers.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string path = "/tmp/distgan-idx-fuzz-" + std::to_string(getpid()) + ".idx";
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) return 0;
  std::fwrite(data, 1, size, f);
  std::fclose(f);
  try {
    const distgan::data::IdxArray a = distgan::data::read_idx(path);
    int64_t n = a.dims.empty() ? 0 : 1;
    for (const int64_t d : a.dims) n *= d;
    if (static_cast<size_t>(n) != a.values.size()) __builtin_trap();  // dims and payload must agree
  } catch (const distgan::data::DataError&) {
  }
  return 0;
}
