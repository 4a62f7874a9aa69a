// NumPy .npy format v1-v3: "\x93NUMPY", major, minor, a little-endian header length (2 bytes in v1,
// 4 in v2/v3), then a Python dict literal {'descr': '<f4', 'fortran_order': False, 'shape': (N, D)}
// padded with spaces, then the raw values in C order.
#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "data/importers.h"

namespace distgan::data {

namespace {

constexpr int64_t kMaxNpyValues = int64_t{1} << 34;

struct NpyHeader {
  std::string descr;
  bool fortran = false;
  std::vector<int64_t> shape;
};

// The header is a Python dict literal written by numpy; we read just the three keys we need by
// hand (std::regex recurses per character and overflows the stack on a long hostile header).
std::string value_after(const std::string& text, const std::string& key, const std::string& path) {
  const size_t at = text.find("'" + key + "'");
  if (at == std::string::npos) throw DataError(path + ": .npy header has no '" + key + "'");
  size_t colon = text.find(':', at);
  if (colon == std::string::npos) throw DataError(path + ": malformed .npy header near '" + key + "'");
  size_t v = text.find_first_not_of(' ', colon + 1);
  return v == std::string::npos ? std::string() : text.substr(v);
}

NpyHeader parse_header(const std::string& text, const std::string& path) {
  NpyHeader h;
  const std::string descr = value_after(text, "descr", path);
  const size_t close = descr.find('\'', 1);
  if (descr.empty() || descr[0] != '\'' || close == std::string::npos || close > 16)
    throw DataError(path + ": malformed 'descr' in the .npy header");
  h.descr = descr.substr(1, close - 1);
  const std::string fortran = value_after(text, "fortran_order", path);
  if (fortran.rfind("True", 0) == 0) h.fortran = true;
  else if (fortran.rfind("False", 0) != 0) throw DataError(path + ": malformed 'fortran_order' in the .npy header");
  const std::string shape = value_after(text, "shape", path);
  const size_t end = shape.find(')');
  if (shape.empty() || shape[0] != '(' || end == std::string::npos)
    throw DataError(path + ": malformed 'shape' in the .npy header");
  // "(N, D)" or "(N,)": non-negative integers separated by commas.
  std::string token;
  for (size_t i = 1; i <= end; ++i) {
    const char ch = shape[i];
    if (ch >= '0' && ch <= '9') {
      token += ch;
      if (token.size() > 15) throw DataError(path + ": .npy shape has an implausibly large dimension");
    } else if (ch == ',' || ch == ')') {
      if (!token.empty()) h.shape.push_back(std::stoll(token));
      else if (ch == ',') throw DataError(path + ": malformed 'shape' in the .npy header");
      token.clear();
    } else if (ch != ' ') {
      throw DataError(path + ": malformed 'shape' in the .npy header (dimensions must be non-negative integers)");
    }
  }
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
    if (header_len > (1u << 16)) throw DataError(path + ": .npy header is implausibly long");
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
    if (d != 0 && count > kMaxNpyValues / d) throw DataError(path + ": .npy shape is implausibly large");
    count *= d;
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
  // Compare with the file's size before allocating: a small file cannot declare a huge array.
  std::error_code ec;
  const auto file_bytes = static_cast<int64_t>(std::filesystem::file_size(path, ec));
  const int64_t data_bytes = count * static_cast<int64_t>(item);
  const int64_t available = ec ? 0 : file_bytes - static_cast<int64_t>(in.tellg());
  if (data_bytes > available)
    throw DataError(path + ": truncated .npy file: expected " + std::to_string(data_bytes) +
                    " bytes of data, found " + std::to_string(std::max<int64_t>(available, 0)));
  std::vector<char> raw(static_cast<size_t>(data_bytes));
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
  for (int64_t d : a.shape)
    if (d == 0) throw DataError(data_path + ": the array holds no values (a dimension of its shape is 0)");
  DatasetContents c;
  const auto& s = a.shape;
  if (a.dtype == "|u1" || a.dtype == "<u1") {
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
  } else if (a.dtype == "<f4" || a.dtype == "<f8") {
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
