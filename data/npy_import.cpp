// NumPy .npy format v1-v3: "\x93NUMPY", major, minor, a little-endian header length (2 bytes in v1,
// 4 in v2/v3), then a Python dict literal {'descr': '<f4', 'fortran_order': False, 'shape': (N, D)}
// padded with spaces, then the raw values in C order.
#include <cstring>
#include <fstream>
#include <regex>

#include "data/importers.h"

namespace distgan::data {

namespace {

constexpr int64_t kMaxNpyValues = int64_t{1} << 34;

struct NpyHeader {
  std::string descr;
  bool fortran = false;
  std::vector<int64_t> shape;
};

NpyHeader parse_header(const std::string& text, const std::string& path) {
  NpyHeader h;
  std::smatch m;
  if (!std::regex_search(text, m, std::regex(R"('descr'\s*:\s*'([^']*)')")))
    throw DataError(path + ": .npy header has no 'descr'");
  h.descr = m[1];
  if (!std::regex_search(text, m, std::regex(R"('fortran_order'\s*:\s*(True|False))")))
    throw DataError(path + ": .npy header has no 'fortran_order'");
  h.fortran = m[1] == "True";
  if (!std::regex_search(text, m, std::regex(R"('shape'\s*:\s*\(([^)]*)\))")))
    throw DataError(path + ": .npy header has no 'shape'");
  const std::string dims = m[1];
  const std::regex number(R"(\d+)");
  for (auto it = std::sregex_iterator(dims.begin(), dims.end(), number); it != std::sregex_iterator(); ++it)
    h.shape.push_back(std::stoll(it->str()));
  return h;
}

template <typename From, typename To>
void convert(const std::vector<char>& raw, std::vector<To>& out) {
  const size_t n = raw.size() / sizeof(From);
  out.resize(n);
  for (size_t i = 0; i < n; ++i) {
    From v;
    std::memcpy(&v, raw.data() + i * sizeof(From), sizeof(From));
    out[i] = static_cast<To>(v);
  }
}

}  // namespace

NpyArray read_npy(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw DataError(path + ": cannot open .npy file: " + std::strerror(errno));
  char magic[8];
  if (!in.read(magic, 8) || std::memcmp(magic, "\x93NUMPY", 6) != 0)
    throw DataError(path + ": not a NumPy .npy file (bad magic)");
  const int major = static_cast<unsigned char>(magic[6]);
  uint32_t header_len = 0;
  if (major == 1) {
    unsigned char b[2];
    if (!in.read(reinterpret_cast<char*>(b), 2)) throw DataError(path + ": truncated .npy header");
    header_len = b[0] | (b[1] << 8);
  } else if (major == 2 || major == 3) {
    unsigned char b[4];
    if (!in.read(reinterpret_cast<char*>(b), 4)) throw DataError(path + ": truncated .npy header");
    header_len = b[0] | (b[1] << 8) | (b[2] << 16) | (uint32_t{b[3]} << 24);
    if (header_len > (1u << 20)) throw DataError(path + ": .npy header is implausibly long");
  } else {
    throw DataError(path + ": unsupported .npy format version " + std::to_string(major));
  }
  std::string text(header_len, '\0');
  if (!in.read(text.data(), header_len)) throw DataError(path + ": truncated .npy header");
  const NpyHeader h = parse_header(text, path);
  if (h.fortran) throw DataError(path + ": Fortran-ordered arrays are not supported (save with np.ascontiguousarray)");
  if (h.shape.empty()) throw DataError(path + ": a 0-dimensional array is not a dataset");

  NpyArray a;
  a.shape = h.shape;
  a.dtype = h.descr;
  int64_t count = 1;
  for (int64_t d : h.shape) {
    count *= d;
    if (count > kMaxNpyValues) throw DataError(path + ": .npy shape is implausibly large");
  }
  size_t item = 0;
  const std::string& t = h.descr;
  if (t == "|u1" || t == "<u1") item = 1;
  else if (t == "<f4" || t == "<i4") item = 4;
  else if (t == "<f8" || t == "<i8") item = 8;
  else if (t == "|i1" || t == "<i1") item = 1;
  else if (t == "<i2" || t == "<u2") item = 2;
  else
    throw DataError(path + ": .npy dtype '" + t +
                    "' is not supported (expected little-endian uint8, int8/16/32/64, float32 or float64)");
  std::vector<char> raw(static_cast<size_t>(count) * item);
  if (!in.read(raw.data(), static_cast<std::streamsize>(raw.size())))
    throw DataError(path + ": truncated .npy file: expected " + std::to_string(raw.size()) +
                    " bytes of data, found " + std::to_string(in.gcount()));
  if (t == "|u1" || t == "<u1") a.u8.assign(raw.begin(), raw.end());
  else if (t == "<f4") convert<float>(raw, a.f32);
  else if (t == "<f8") convert<double>(raw, a.f32);
  else if (t == "<i8") convert<int64_t>(raw, a.i64);
  else if (t == "<i4") convert<int32_t>(raw, a.i64);
  else if (t == "<i2") convert<int16_t>(raw, a.i64);
  else if (t == "<u2") convert<uint16_t>(raw, a.i64);
  else convert<int8_t>(raw, a.i64);
  return a;
}

DatasetContents import_npy(const std::string& data_path, const std::string& labels_path, bool nhwc) {
  NpyArray a = read_npy(data_path);
  DatasetContents c;
  const auto& s = a.shape;
  if (!a.u8.empty()) {
    c.name = "/images";
    if (s.size() == 3) {
      c.shape = {s[0], 1, s[1], s[2]};
      c.u8 = std::move(a.u8);
    } else if (s.size() == 4 && !nhwc) {
      c.shape = s;
      c.u8 = std::move(a.u8);
    } else if (s.size() == 4) {  // NHWC -> NCHW
      const int64_t n = s[0], h = s[1], w = s[2], ch = s[3];
      c.shape = {n, ch, h, w};
      c.u8.resize(a.u8.size());
      for (int64_t i = 0; i < n; ++i)
        for (int64_t y = 0; y < h; ++y)
          for (int64_t x = 0; x < w; ++x)
            for (int64_t k = 0; k < ch; ++k)
              c.u8[((i * ch + k) * h + y) * w + x] = a.u8[((i * h + y) * w + x) * ch + k];
    } else {
      throw DataError(data_path + ": uint8 images must be [N,H,W] or [N,C,H,W] (or [N,H,W,C] with --nhwc); found " +
                      std::to_string(s.size()) + " dimensions");
    }
  } else if (!a.f32.empty()) {
    if (s.size() != 2)
      throw DataError(data_path + ": float arrays are imported as vector data [N, D]; found " +
                      std::to_string(s.size()) + " dimensions");
    c.name = "/samples";
    c.shape = s;
    c.f32 = std::move(a.f32);
  } else {
    throw DataError(data_path + ": dtype '" + a.dtype +
                    "' is not a data type for samples (expected uint8 images or float vectors)");
  }
  if (c.shape[0] == 0) throw DataError(data_path + ": the array has no samples");
  c.attributes = {{"source", "npy"}, {"data_file", data_path}, {"layout", "NCHW"}};
  if (!labels_path.empty()) {
    NpyArray l = read_npy(labels_path);
    if (l.shape.size() != 1 || l.shape[0] != c.shape[0])
      throw DataError(labels_path + ": expected labels [" + std::to_string(c.shape[0]) + "] to match " + data_path);
    if (!l.u8.empty()) c.labels.assign(l.u8.begin(), l.u8.end());
    else if (!l.i64.empty()) c.labels = std::move(l.i64);
    else throw DataError(labels_path + ": labels must be integers, found dtype '" + l.dtype + "'");
    c.attributes.emplace_back("labels_file", labels_path);
  }
  return c;
}

}  // namespace distgan::data
