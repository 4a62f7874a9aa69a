#include "trainer/outputs/events/event_writer.h"

#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <stdexcept>

#include "tensorboard_event.pb.h"
#include "trainer/outputs/events/tfrecord.h"

namespace distgan {

namespace {

constexpr const char* kFileVersion = "brain.Event:2";  // what TensorBoard expects in a file's first event

double wall_time() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string host_name() {
  char name[256] = {};
  if (gethostname(name, sizeof name - 1) != 0 || name[0] == '\0') return "localhost";
  return name;
}

std::string system_error(const std::string& what) { return what + ": " + std::strerror(errno); }

tensorboard::Event new_event(int64_t step) {
  tensorboard::Event event;
  event.set_wall_time(wall_time());
  event.set_step(step);
  return event;
}

}  // namespace

EventWriter::EventWriter(const std::string& directory) {
  std::error_code ec;
  std::filesystem::create_directories(directory, ec);
  if (ec) throw std::runtime_error(directory + ": cannot create the event directory: " + ec.message());
  // Exclusive creation: two writers started in the same second (a quick resume) get two files.
  const std::string base = (std::filesystem::path(directory) /
                            ("events.out.tfevents." + std::to_string(std::time(nullptr)) + "." + host_name()))
                               .string();
  for (int attempt = 0; !file_; ++attempt) {
    path_ = attempt == 0 ? base : base + "." + std::to_string(attempt);
    file_.reset(std::fopen(path_.c_str(), "wbx"));
    if (!file_ && (errno != EEXIST || attempt >= 100))
      throw std::runtime_error(system_error(path_ + ": cannot create the event file"));
  }
  tensorboard::Event event = new_event(0);
  event.set_file_version(kFileVersion);
  write_record(event.SerializeAsString());
}

void EventWriter::add_scalar(const std::string& tag, int64_t step, double value) { add_scalars(step, {{tag, value}}); }

void EventWriter::add_scalars(int64_t step, const std::vector<std::pair<std::string, double>>& values) {
  if (values.empty()) return;
  tensorboard::Event event = new_event(step);
  for (const auto& [tag, value] : values) {
    tensorboard::Summary::Value* v = event.mutable_summary()->add_value();
    v->set_tag(tag);
    v->set_simple_value(static_cast<float>(value));
  }
  write_record(event.SerializeAsString());
}

void EventWriter::add_image(const std::string& tag, int64_t step, const std::string& png_bytes, int height, int width,
                            int channels) {
  if (height < 1 || width < 1 || channels < 1 || channels > 4)
    throw std::invalid_argument(path_ + ": image '" + tag + "': bad size " + std::to_string(height) + "x" +
                                std::to_string(width) + "x" + std::to_string(channels));
  tensorboard::Event event = new_event(step);
  tensorboard::Summary::Value* v = event.mutable_summary()->add_value();
  v->set_tag(tag);
  tensorboard::Summary::Image* image = v->mutable_image();
  image->set_height(height);
  image->set_width(width);
  image->set_colorspace(channels);
  image->set_encoded_image_string(png_bytes);
  write_record(event.SerializeAsString());
}

void EventWriter::flush() {
  if (std::fflush(file_.get()) != 0) throw std::runtime_error(system_error(path_ + ": cannot write the event file"));
}

void EventWriter::write_record(const std::string& event_bytes) {
  // After a failed write the file may end in a partial record: adding more would bury it mid-file.
  if (std::ferror(file_.get())) throw std::runtime_error(path_ + ": an earlier write to the event file failed");
  const std::string record = events::tfrecord(event_bytes);
  if (std::fwrite(record.data(), 1, record.size(), file_.get()) != record.size())
    throw std::runtime_error(system_error(path_ + ": cannot write the event file"));
  flush();  // to the kernel only (no fsync): cheap, and survives the process being killed
}

}  // namespace distgan
