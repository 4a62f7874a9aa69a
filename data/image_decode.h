// Decoding one image file into 8-bit pixels, with the libraries Debian ships for each format:
// libjpeg-turbo (JPEG, baseline and progressive, grey/RGB/CMYK/YCCK), libpng (every PNG colour type
// and bit depth) and libwebp (still WebP). The format is recognised by the file's first bytes, not
// its name. libexif reads a JPEG's EXIF orientation, which is applied as photo viewers do.
//
// What every image becomes: RGB (channels 3) or grey (channels 1, ITU-R 601 luma as Pillow's "L").
// Alpha is dropped (as Pillow's convert("RGB")), palettes are expanded, 16-bit samples are scaled to
// 8 bits with rounding (v * 255 / 65535), CMYK is converted naively (R = (1-C)(1-K), as Pillow).
//
// Every failure is a DataError "PATH: reason": unreadable, empty, not an image, corrupt or truncated
// data (libjpeg's "premature end of data" counts as an error), and an image whose header declares
// more than max_pixels pixels, refused before anything is decoded (decompression bombs).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace distgan::data {

struct DecodedImage {
  int64_t width = 0, height = 0, channels = 0;
  std::vector<uint8_t> pixels;  // [height, width, channels], rows top to bottom
};

struct DecodeOptions {
  int channels = 3;                         // 3: RGB; 1: grey
  int64_t max_pixels = 100'000'000;         // width x height above this is refused unread
  // JPEG only: decode at 1/2, 1/4 or 1/8 scale (libjpeg's DCT scaling, nearly free) as long as both
  // sides stay at least this large, so a 4000 px photo bound for 64 px is not decoded in full.
  // 0 decodes at full size.
  int64_t min_side = 0;
};

DecodedImage decode_image(const std::string& path, const DecodeOptions& options);

// Applies EXIF orientation 1..8 (TIFF 6.0 meaning) to an image in place; other values do nothing.
void apply_exif_orientation(DecodedImage& image, int orientation);

}  // namespace distgan::data
