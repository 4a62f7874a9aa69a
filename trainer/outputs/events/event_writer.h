// Writes TensorBoard event files: scalars and PNG images, one Event per call, each framed as a
// TFRecord (trainer/outputs/events/tfrecord.h) and flushed to the kernel at once, so a run killed at any
// moment keeps every event written before. Any TensorBoard reads the files:
//   tensorboard --logdir runs/x/tensorboard
// One file per writer, `events.out.tfevents.<unix seconds>.<hostname>` (TensorBoard's name); a
// resumed run starts a new file in the same directory and TensorBoard reads them all. Not thread-safe.
#pragma once

#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace distgan {

class EventWriter {
 public:
  // Creates `directory` (and parents) if needed and a new event file in it, whose first record is
  // the file version. Throws std::runtime_error naming the directory or file.
  explicit EventWriter(const std::string& directory);

  // One scalar (stored as float, as TensorBoard does).
  void add_scalar(const std::string& tag, int64_t step, double value);
  // Several scalars of one step in one event (nothing is written for an empty list).
  void add_scalars(int64_t step, const std::vector<std::pair<std::string, double>>& values);
  // An image already encoded as PNG (trainer/outputs/png_image.h: encode_png); channels 1 (gray), 2 (gray
  // and alpha), 3 (RGB) or 4 (RGBA), as TensorBoard's colorspace.
  void add_image(const std::string& tag, int64_t step, const std::string& png_bytes, int height, int width,
                 int channels);

  // Each add_* already flushes; this is for callers that want to say so.
  void flush();

  const std::string& path() const { return path_; }

 private:
  void write_record(const std::string& event_bytes);

  struct FileCloser {
    void operator()(std::FILE* f) const { std::fclose(f); }
  };
  std::string path_;
  std::unique_ptr<std::FILE, FileCloser> file_;
};

}  // namespace distgan
