// Test driver for read_events_test.py: writes a known set of events (scalars, and two images
// encoded by encode_png) into the directory given, and prints the event file's path.
#include <cstdio>
#include <exception>

#include "trainer/outputs/events/event_writer.h"
#include "trainer/outputs/png_image.h"

namespace {

// A w x h image whose pixels follow a formula the Python reader checks.
distgan::Image pattern(int64_t width, int64_t height, int64_t channels) {
  distgan::Image image;
  image.width = width;
  image.height = height;
  image.channels = channels;
  for (int64_t y = 0; y < height; ++y)
    for (int64_t x = 0; x < width; ++x)
      for (int64_t c = 0; c < channels; ++c)
        image.pixels.push_back(static_cast<uint8_t>((x * 30 + y * 40 + c * 70) % 256));
  return image;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s DIRECTORY\n", argv[0]);
    return 2;
  }
  try {
    distgan::EventWriter writer(argv[1]);
    writer.add_scalar("loss/d", 1, 0.75);
    writer.add_scalar("loss/g", 1, 2.5);
    writer.add_scalars(2, {{"loss/d", 0.5}, {"loss/g", 1.25}, {"perf/images_per_s", 405.5}});
    const distgan::Image rgb = pattern(7, 5, 3), gray = pattern(4, 3, 1);
    writer.add_image("samples/rgb", 3, distgan::encode_png(rgb), 5, 7, 3);
    writer.add_image("samples/gray", 4, distgan::encode_png(gray), 3, 4, 1);
    writer.add_scalar("loss/d", 1000000, -1.0e-3);
    std::printf("%s\n", writer.path().c_str());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "write_events_demo: %s\n", e.what());
    return 1;
  }
  return 0;
}
