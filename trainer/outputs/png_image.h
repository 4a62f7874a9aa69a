// 8-bit images and the PNG files rank 0 writes for samples: grids of generated images, and scatter
// plots of generated against real points for 2-D data.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <vector>

namespace distgan {

struct Image {
  int64_t width = 0, height = 0, channels = 1;  // 1 (gray) or 3 (RGB)
  std::vector<uint8_t> pixels;                  // row-major, interleaved channels
};

// The bytes of `image` as a PNG file, in memory (for TensorBoard events, HTML reports).
// Throws std::runtime_error.
std::string encode_png(const Image& image);
// Writes `image` as a PNG, atomically (temporary name, then rename). Throws std::runtime_error.
void write_png(const std::string& path, const Image& image);
// Reads a PNG's size and channels (for tests and tools). Throws std::runtime_error.
Image read_png(const std::string& path);

// Tiles images [N, C, H, W] with values in [-1, 1] into a grid `columns` wide, 2-pixel gaps.
Image image_grid(const torch::Tensor& images, int64_t columns);

// A square scatter plot: real points grey, generated points red; the view spans the real points
// with a margin. Points are [N, 2] (only the first two coordinates are drawn).
Image scatter_plot(const torch::Tensor& real, const torch::Tensor& generated, int64_t size = 512);

}  // namespace distgan
