#include "trainer/outputs/png_image.h"

#include <png.h>

#include <algorithm>
#include <cstdio>
#include <memory>
#include <stdexcept>

#include "data/atomic_file.h"

namespace distgan {

namespace {

struct FileCloser {
  void operator()(FILE* f) const {
    if (f) std::fclose(f);
  }
};

}  // namespace

std::string encode_png(const Image& image) {
  if (image.width < 1 || image.height < 1 || (image.channels != 1 && image.channels != 3) ||
      static_cast<int64_t>(image.pixels.size()) != image.width * image.height * image.channels)
    throw std::runtime_error("internal error: inconsistent image");
  std::string bytes;
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
  png_infop info = png ? png_create_info_struct(png) : nullptr;
  if (!png || !info) {
    png_destroy_write_struct(&png, &info);
    throw std::runtime_error("cannot start libpng");
  }
  if (setjmp(png_jmpbuf(png))) {  // libpng reports errors by longjmp
    png_destroy_write_struct(&png, &info);
    throw std::runtime_error("libpng failed while encoding");
  }
  // No exception may cross libpng's C frames: a failed append becomes a libpng error.
  auto append = [](png_structp p, png_bytep data, size_t size) {
    bool appended = true;
    try {
      static_cast<std::string*>(png_get_io_ptr(p))->append(reinterpret_cast<const char*>(data), size);
    } catch (...) {
      appended = false;
    }
    if (!appended) png_error(p, "out of memory");
  };
  png_set_write_fn(png, &bytes, append, nullptr);
  png_set_IHDR(png, info, static_cast<png_uint_32>(image.width), static_cast<png_uint_32>(image.height), 8,
               image.channels == 3 ? PNG_COLOR_TYPE_RGB : PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_NONE,
               PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_write_info(png, info);
  const int64_t stride = image.width * image.channels;
  for (int64_t y = 0; y < image.height; ++y)
    png_write_row(png, const_cast<png_bytep>(image.pixels.data() + y * stride));
  png_write_end(png, nullptr);
  png_destroy_write_struct(&png, &info);
  return bytes;
}

void write_png(const std::string& path, const Image& image) {
  std::string bytes;
  try {
    bytes = encode_png(image);
  } catch (const std::runtime_error& e) {
    throw std::runtime_error(path + ": " + e.what());
  }
  data::AtomicOutput out(path, /*overwrite=*/true);
  {
    std::unique_ptr<FILE, FileCloser> file(std::fopen(out.temp_path().c_str(), "wb"));
    if (!file) throw std::runtime_error(path + ": cannot create the PNG file");
    if (std::fwrite(bytes.data(), 1, bytes.size(), file.get()) != bytes.size() || std::fflush(file.get()) != 0)
      throw std::runtime_error(path + ": cannot write the PNG file");
  }
  out.commit();
}

Image read_png(const std::string& path) {
  std::unique_ptr<FILE, FileCloser> file(std::fopen(path.c_str(), "rb"));
  if (!file) throw std::runtime_error(path + ": cannot open");
  png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
  png_infop info = png ? png_create_info_struct(png) : nullptr;
  if (!png || !info) {
    png_destroy_read_struct(&png, &info, nullptr);
    throw std::runtime_error(path + ": cannot start libpng");
  }
  Image image;
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_read_struct(&png, &info, nullptr);
    throw std::runtime_error(path + ": not a readable PNG file");
  }
  png_init_io(png, file.get());
  png_read_info(png, info);
  image.width = png_get_image_width(png, info);
  image.height = png_get_image_height(png, info);
  image.channels = png_get_channels(png, info);
  png_destroy_read_struct(&png, &info, nullptr);
  return image;
}

Image image_grid(const torch::Tensor& images, int64_t columns) {
  constexpr int64_t kGap = 2;
  // A diverged generator may produce NaN or Inf: draw them as black/white rather than cast them.
  const torch::Tensor x = torch::nan_to_num(images.detach().to(torch::kCPU, torch::kFloat32), -1.0, 1.0, -1.0)
                              .clamp(-1, 1)
                              .contiguous();
  const int64_t n = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3);
  const int64_t cols = std::max<int64_t>(1, std::min(columns, n)), rows = (n + cols - 1) / cols;
  Image img;
  img.channels = c == 3 ? 3 : 1;
  img.width = cols * (w + kGap) + kGap;
  img.height = rows * (h + kGap) + kGap;
  img.pixels.assign(static_cast<size_t>(img.width * img.height * img.channels), 40);  // dark gaps
  const float* v = x.data_ptr<float>();
  for (int64_t i = 0; i < n; ++i) {
    const int64_t ox = kGap + (i % cols) * (w + kGap), oy = kGap + (i / cols) * (h + kGap);
    for (int64_t ch = 0; ch < img.channels; ++ch)
      for (int64_t y = 0; y < h; ++y)
        for (int64_t xx = 0; xx < w; ++xx) {
          const float value = v[((i * c + ch) * h + y) * w + xx];
          const auto byte = static_cast<uint8_t>(std::clamp((value + 1.0f) * 127.5f + 0.5f, 0.0f, 255.0f));
          img.pixels[static_cast<size_t>(((oy + y) * img.width + ox + xx) * img.channels + ch)] = byte;
        }
  }
  return img;
}

Image scatter_plot(const torch::Tensor& real, const torch::Tensor& generated, int64_t size) {
  const torch::Tensor r = real.detach().to(torch::kCPU, torch::kFloat32).contiguous();
  // Non-finite or far-away generated points are clamped to just outside the view (not drawn).
  const torch::Tensor g = torch::nan_to_num(generated.detach().to(torch::kCPU, torch::kFloat32), 1e6, 1e6, -1e6)
                              .clamp(-1e6, 1e6)
                              .contiguous();
  const float lo_x = r.select(1, 0).min().item<float>(), hi_x = r.select(1, 0).max().item<float>();
  const float lo_y = r.select(1, 1).min().item<float>(), hi_y = r.select(1, 1).max().item<float>();
  const float span = std::max({hi_x - lo_x, hi_y - lo_y, 1e-6f}) * 1.2f;
  const float cx = (lo_x + hi_x) / 2, cy = (lo_y + hi_y) / 2;
  Image img;
  img.width = img.height = size;
  img.channels = 3;
  img.pixels.assign(static_cast<size_t>(size * size * 3), 255);
  auto plot = [&](const torch::Tensor& points, uint8_t red, uint8_t green, uint8_t blue) {
    const float* p = points.data_ptr<float>();
    const int64_t stride = points.size(1);
    for (int64_t i = 0; i < points.size(0); ++i) {
      const auto px = static_cast<int64_t>((p[i * stride] - cx) / span * size + size / 2.0f);
      const auto py = static_cast<int64_t>(size / 2.0f - (p[i * stride + 1] - cy) / span * size);
      for (int64_t dy = -1; dy <= 1; ++dy)
        for (int64_t dx = -1; dx <= 1; ++dx) {
          const int64_t x = px + dx, y = py + dy;
          if (x < 0 || y < 0 || x >= size || y >= size) continue;
          uint8_t* pixel = &img.pixels[static_cast<size_t>((y * size + x) * 3)];
          pixel[0] = red;
          pixel[1] = green;
          pixel[2] = blue;
        }
    }
  };
  plot(r, 170, 170, 170);
  plot(g, 220, 30, 30);
  return img;
}

}  // namespace distgan
