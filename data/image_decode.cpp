#include "data/image_decode.h"

#include <jpeglib.h>  // before jerror.h, which needs its types
#include <jerror.h>
#include <libexif/exif-data.h>
#include <png.h>
#include <webp/decode.h>

#include <csetjmp>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sys/stat.h>

#include "data/data_error.h"

namespace distgan::data {

namespace {

constexpr int64_t kMaxFileBytes = int64_t{1} << 31;  // 2 GiB: no image file we accept is larger

std::vector<uint8_t> read_file(const std::string& path) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) throw DataError(path + ": cannot read: " + std::strerror(errno));
  if (S_ISDIR(st.st_mode)) throw DataError(path + ": is a directory, not an image file");
  if (st.st_size == 0) throw DataError(path + ": empty file (0 bytes)");
  if (st.st_size > kMaxFileBytes) throw DataError(path + ": file of " + std::to_string(st.st_size) + " bytes is too large");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw DataError(path + ": cannot read: " + std::strerror(errno));
  std::vector<uint8_t> bytes(static_cast<size_t>(st.st_size));
  in.read(reinterpret_cast<char*>(bytes.data()), st.st_size);
  if (in.gcount() != st.st_size) throw DataError(path + ": cannot read: short read");
  return bytes;
}

void check_pixels(const std::string& path, int64_t width, int64_t height, const DecodeOptions& o) {
  if (width < 1 || height < 1)
    throw DataError(path + ": the header declares an empty image (" + std::to_string(width) + "x" + std::to_string(height) + ")");
  if (width * height > o.max_pixels)
    throw DataError(path + ": the header declares " + std::to_string(width) + "x" + std::to_string(height) +
                    " pixels, more than the limit of " + std::to_string(o.max_pixels) +
                    " (a decompression bomb or a huge image; see --max-pixels)");
}

// Grey <-> RGB as Pillow: L = 0.299 R + 0.587 G + 0.114 B in 16-bit fixed point, rounded.
void convert_channels(DecodedImage& image, int channels) {
  if (image.channels == channels) return;
  const size_t n = static_cast<size_t>(image.width * image.height);
  std::vector<uint8_t> out(n * static_cast<size_t>(channels));
  const uint8_t* in = image.pixels.data();
  if (channels == 1) {
    for (size_t i = 0; i < n; ++i, in += 3)
      out[i] = static_cast<uint8_t>((in[0] * 19595u + in[1] * 38470u + in[2] * 7471u + 0x8000u) >> 16);
  } else {
    for (size_t i = 0; i < n; ++i) out[3 * i] = out[3 * i + 1] = out[3 * i + 2] = in[i];
  }
  image.pixels.swap(out);
  image.channels = channels;
}

// ---- JPEG ----

struct JpegErrorManager {
  jpeg_error_mgr mgr;
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
};

[[noreturn]] void jpeg_fail(j_common_ptr cinfo) {
  auto* e = reinterpret_cast<JpegErrorManager*>(cinfo->err);
  (*cinfo->err->format_message)(cinfo, e->message);
  std::longjmp(e->jump, 1);
}

// libjpeg reports truncated data as a warning and pads the image with grey; we refuse it (as
// Pillow does by default). Other warnings (extraneous bytes and the like) are harmless.
void jpeg_message(j_common_ptr cinfo, int level) {
  if (level < 0 && cinfo->err->msg_code == JWRN_JPEG_EOF) jpeg_fail(cinfo);
}

int exif_orientation(jpeg_decompress_struct& cinfo) {
  for (jpeg_saved_marker_ptr m = cinfo.marker_list; m; m = m->next) {
    if (m->marker != JPEG_APP0 + 1 || m->data_length < 6 || std::memcmp(m->data, "Exif\0\0", 6) != 0) continue;
    ExifData* exif = exif_data_new_from_data(m->data, m->data_length);
    if (!exif) return 1;
    int orientation = 1;
    if (ExifEntry* entry = exif_data_get_entry(exif, EXIF_TAG_ORIENTATION); entry && entry->format == EXIF_FORMAT_SHORT)
      orientation = exif_get_short(entry->data, exif_data_get_byte_order(exif));
    exif_data_unref(exif);
    return orientation;
  }
  return 1;
}

// CMYK (Adobe files store it inverted) to RGB: R = (255 - C)(255 - K) / 255, as Pillow.
void cmyk_to_rgb(const uint8_t* cmyk, uint8_t* rgb, int64_t pixels, bool inverted) {
  for (int64_t i = 0; i < pixels; ++i, cmyk += 4, rgb += 3) {
    const int k = inverted ? cmyk[3] : 255 - cmyk[3];
    for (int c = 0; c < 3; ++c) {
      const int v = (inverted ? cmyk[c] : 255 - cmyk[c]) * k;
      rgb[c] = static_cast<uint8_t>((v + 127) / 255);
    }
  }
}

// Fills `image` (declared by the caller so that nothing with a destructor lives in this frame
// across setjmp) and returns the EXIF orientation; throws through the error string on failure.
int decode_jpeg_into(const std::vector<uint8_t>& bytes, const std::string& path, const DecodeOptions& o,
                     DecodedImage& image, std::string& error) {
  jpeg_decompress_struct cinfo;
  JpegErrorManager err;
  cinfo.err = jpeg_std_error(&err.mgr);
  err.mgr.error_exit = jpeg_fail;
  err.mgr.emit_message = jpeg_message;
  if (setjmp(err.jump)) {
    error = err.message;
    jpeg_destroy_decompress(&cinfo);
    return 0;
  }
  jpeg_create_decompress(&cinfo);
  jpeg_mem_src(&cinfo, bytes.data(), static_cast<unsigned long>(bytes.size()));
  jpeg_save_markers(&cinfo, JPEG_APP0 + 1, 0xFFFF);
  jpeg_read_header(&cinfo, TRUE);
  const int64_t w = cinfo.image_width, h = cinfo.image_height;
  if (w < 1 || h < 1 || w * h > o.max_pixels) {  // reported by the caller with the numbers
    image.width = w, image.height = h;
    jpeg_destroy_decompress(&cinfo);
    return -1;
  }
  const int orientation = exif_orientation(cinfo);
  const bool cmyk = cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK;
  cinfo.out_color_space = cmyk ? JCS_CMYK : cinfo.jpeg_color_space == JCS_GRAYSCALE ? JCS_GRAYSCALE : JCS_RGB;
  cinfo.scale_num = 1;
  cinfo.scale_denom = 1;
  while (o.min_side > 0 && cinfo.scale_denom < 8 && std::min(w, h) / (2 * cinfo.scale_denom) >= o.min_side)
    cinfo.scale_denom *= 2;
  jpeg_start_decompress(&cinfo);
  const int comps = cinfo.output_components;
  image.width = cinfo.output_width;
  image.height = cinfo.output_height;
  std::vector<uint8_t>& raw = image.pixels;
  raw.resize(static_cast<size_t>(image.width * image.height * comps));
  while (cinfo.output_scanline < cinfo.output_height) {
    JSAMPROW row = raw.data() + static_cast<size_t>(cinfo.output_scanline) * image.width * comps;
    jpeg_read_scanlines(&cinfo, &row, 1);
  }
  const bool adobe_inverted = cinfo.saw_Adobe_marker;
  jpeg_finish_decompress(&cinfo);
  jpeg_destroy_decompress(&cinfo);
  image.channels = comps == 4 ? 3 : comps;
  if (comps == 4) {
    std::vector<uint8_t> rgb(static_cast<size_t>(image.width * image.height * 3));
    cmyk_to_rgb(raw.data(), rgb.data(), image.width * image.height, adobe_inverted);
    raw.swap(rgb);
  }
  return orientation;
}

DecodedImage decode_jpeg(const std::vector<uint8_t>& bytes, const std::string& path, const DecodeOptions& o) {
  DecodedImage image;
  std::string error;
  const int orientation = decode_jpeg_into(bytes, path, o, image, error);
  if (orientation == 0) throw DataError(path + ": corrupt JPEG: " + error);
  if (orientation < 0) check_pixels(path, image.width, image.height, o);
  apply_exif_orientation(image, orientation);
  return image;
}

// ---- PNG ----

struct PngSource {
  const std::vector<uint8_t>* bytes;
  size_t offset;
};

void png_read_memory(png_structp png, png_bytep out, png_size_t n) {
  auto* src = static_cast<PngSource*>(png_get_io_ptr(png));
  if (src->offset + n > src->bytes->size()) png_error(png, "truncated file: the data ends early");
  std::memcpy(out, src->bytes->data() + src->offset, n);
  src->offset += n;
}

void png_fail(png_structp png, png_const_charp message) {
  auto* error = static_cast<std::string*>(png_get_error_ptr(png));
  *error = message;
  png_longjmp(png, 1);
}
void png_warn(png_structp, png_const_charp) {}

// As decode_jpeg_into: returns 1 on success, 0 with `error` set, -1 when the size is refused.
// `rows` is the caller's too: nothing with a destructor may be created here after setjmp.
int decode_png_into(const std::vector<uint8_t>& bytes, const DecodeOptions& o, DecodedImage& image,
                    std::vector<png_bytep>& rows, std::string& error) {
  png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &error, png_fail, png_warn);
  png_infop info = png ? png_create_info_struct(png) : nullptr;
  if (!info) {
    error = "out of memory";
    png_destroy_read_struct(&png, nullptr, nullptr);
    return 0;
  }
  PngSource src{&bytes, 0};
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_read_struct(&png, &info, nullptr);
    return 0;
  }
  png_set_read_fn(png, &src, png_read_memory);
  png_set_user_limits(png, 0x7fffffff, 0x7fffffff);  // our pixel limit applies instead
  png_read_info(png, info);
  const int64_t w = png_get_image_width(png, info), h = png_get_image_height(png, info);
  image.width = w, image.height = h;
  if (w * h > o.max_pixels) {
    png_destroy_read_struct(&png, &info, nullptr);
    return -1;
  }
  const int color = png_get_color_type(png, info);
  png_set_expand(png);  // palette -> RGB, grey < 8 bits -> 8 bits, tRNS -> alpha
  png_set_scale_16(png);
  png_set_strip_alpha(png);
  png_set_interlace_handling(png);
  png_read_update_info(png, info);
  const int comps = png_get_channels(png, info);
  image.channels = (color & PNG_COLOR_MASK_COLOR) ? 3 : 1;
  if (comps != image.channels) png_error(png, "unexpected channel count after conversion");
  image.pixels.resize(static_cast<size_t>(w * h * comps));
  rows.resize(static_cast<size_t>(h));
  for (int64_t y = 0; y < h; ++y) rows[static_cast<size_t>(y)] = image.pixels.data() + y * w * comps;
  png_read_image(png, rows.data());
  png_read_end(png, nullptr);
  png_destroy_read_struct(&png, &info, nullptr);
  return 1;
}

DecodedImage decode_png(const std::vector<uint8_t>& bytes, const std::string& path, const DecodeOptions& o) {
  DecodedImage image;
  std::vector<png_bytep> rows;
  std::string error;
  const int status = decode_png_into(bytes, o, image, rows, error);
  if (status == 0) throw DataError(path + ": corrupt PNG: " + error);
  if (status < 0) check_pixels(path, image.width, image.height, o);
  return image;
}

// ---- WebP ----

DecodedImage decode_webp(const std::vector<uint8_t>& bytes, const std::string& path, const DecodeOptions& o) {
  WebPBitstreamFeatures features;
  if (WebPGetFeatures(bytes.data(), bytes.size(), &features) != VP8_STATUS_OK)
    throw DataError(path + ": corrupt WebP: cannot read its header");
  check_pixels(path, features.width, features.height, o);
  if (features.has_animation) throw DataError(path + ": animated WebP is not supported");
  DecodedImage image;
  image.width = features.width, image.height = features.height, image.channels = 3;
  image.pixels.resize(static_cast<size_t>(image.width * image.height * 3));
  if (!WebPDecodeRGBInto(bytes.data(), bytes.size(), image.pixels.data(), image.pixels.size(),
                         static_cast<int>(image.width * 3)))
    throw DataError(path + ": corrupt WebP: the image data does not decode (truncated?)");
  return image;
}

bool starts_with(const std::vector<uint8_t>& bytes, const char* magic, size_t n, size_t at = 0) {
  return bytes.size() >= at + n && std::memcmp(bytes.data() + at, magic, n) == 0;
}

}  // namespace

DecodedImage decode_image(const std::string& path, const DecodeOptions& options) {
  const std::vector<uint8_t> bytes = read_file(path);
  DecodedImage image;
  if (starts_with(bytes, "\xFF\xD8\xFF", 3)) image = decode_jpeg(bytes, path, options);
  else if (starts_with(bytes, "\x89PNG\r\n\x1A\n", 8)) image = decode_png(bytes, path, options);
  else if (starts_with(bytes, "RIFF", 4) && starts_with(bytes, "WEBP", 4, 8)) image = decode_webp(bytes, path, options);
  else throw DataError(path + ": not an image: the content is not JPEG, PNG or WebP");
  convert_channels(image, options.channels);
  return image;
}

void apply_exif_orientation(DecodedImage& image, int orientation) {
  if (orientation < 2 || orientation > 8) return;
  const int64_t w = image.width, h = image.height, c = image.channels;
  const bool swap = orientation >= 5;
  const int64_t ow = swap ? h : w, oh = swap ? w : h;
  std::vector<uint8_t> out(image.pixels.size());
  for (int64_t oy = 0; oy < oh; ++oy) {
    for (int64_t ox = 0; ox < ow; ++ox) {
      int64_t sx = ox, sy = oy;
      switch (orientation) {
        case 2: sx = w - 1 - ox; break;                    // mirror left-right
        case 3: sx = w - 1 - ox, sy = h - 1 - oy; break;   // rotate 180
        case 4: sy = h - 1 - oy; break;                    // mirror top-bottom
        case 5: sx = oy, sy = ox; break;                   // transpose
        case 6: sx = oy, sy = h - 1 - ox; break;           // rotate 90 clockwise
        case 7: sx = w - 1 - oy, sy = h - 1 - ox; break;   // transverse
        case 8: sx = w - 1 - oy, sy = ox; break;           // rotate 90 counter-clockwise
      }
      std::memcpy(&out[static_cast<size_t>((oy * ow + ox) * c)], &image.pixels[static_cast<size_t>((sy * w + sx) * c)],
                  static_cast<size_t>(c));
    }
  }
  image.pixels.swap(out);
  image.width = ow, image.height = oh;
}

}  // namespace distgan::data
