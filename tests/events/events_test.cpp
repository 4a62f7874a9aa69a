// TensorBoard event files: CRC-32C against published vectors, TFRecord framing, and the files
// EventWriter writes, read back record by record and decoded with our copy of the Event schema.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <string>
#include <vector>

#include "tensorboard_event.pb.h"
#include "tests/test_util.h"
#include "trainer/outputs/events/event_writer.h"
#include "trainer/outputs/events/tfrecord.h"

namespace distgan {
namespace {

using events::crc32c;
using events::mask_crc;
using testing::TempDir;

uint64_t get_le(const std::string& bytes, size_t at, int size) {
  uint64_t value = 0;
  for (int i = 0; i < size; ++i) value |= uint64_t{static_cast<uint8_t>(bytes[at + i])} << (8 * i);
  return value;
}

// The records of a TFRecord file, checking each length and checksum on the way.
std::vector<std::string> read_records(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::string> records;
  size_t at = 0;
  while (at < bytes.size()) {
    EXPECT_GE(bytes.size() - at, 16u) << "truncated record at byte " << at;
    if (bytes.size() - at < 16) break;
    const uint64_t length = get_le(bytes, at, 8);
    EXPECT_EQ(get_le(bytes, at + 8, 4), mask_crc(crc32c(std::string_view(bytes).substr(at, 8))));
    EXPECT_LE(at + 16 + length, bytes.size()) << "record at byte " << at << " runs past the end";
    if (at + 16 + length > bytes.size()) break;
    records.push_back(bytes.substr(at + 12, length));
    EXPECT_EQ(get_le(bytes, at + 12 + length, 4), mask_crc(crc32c(records.back())));
    at += 16 + length;
  }
  return records;
}

tensorboard::Event parse_event(const std::string& record) {
  tensorboard::Event event;
  EXPECT_TRUE(event.ParseFromString(record));
  return event;
}

TEST(Crc32c, MatchesPublishedVectors) {
  EXPECT_EQ(crc32c(""), 0u);
  EXPECT_EQ(crc32c("123456789"), 0xE3069283u);
  // RFC 3720 (iSCSI), appendix B.4.
  std::string zeros(32, '\0'), ones(32, '\xff'), up(32, '\0'), down(32, '\0');
  for (int i = 0; i < 32; ++i) up[i] = static_cast<char>(i), down[i] = static_cast<char>(31 - i);
  EXPECT_EQ(crc32c(zeros), 0x8A9136AAu);
  EXPECT_EQ(crc32c(ones), 0x62A8AB43u);
  EXPECT_EQ(crc32c(up), 0x46DD794Eu);
  EXPECT_EQ(crc32c(down), 0x113FDB5Cu);
}

TEST(Crc32c, ContinuesAcrossPieces) { EXPECT_EQ(crc32c("6789", crc32c("12345")), crc32c("123456789")); }

TEST(Crc32c, MaskRotatesAddsAndUndoes) {
  EXPECT_EQ(mask_crc(0), 0xa282ead8u);
  EXPECT_EQ(mask_crc(1u << 15), 0xa282ead8u + 1);
  EXPECT_EQ(mask_crc(0xE3069283u), ((0xE3069283u >> 15) | (0xE3069283u << 17)) + 0xa282ead8u);
  for (uint32_t crc : {0u, 1u, 0xE3069283u, 0xffffffffu}) EXPECT_EQ(events::unmask_crc(mask_crc(crc)), crc);
}

TEST(TfRecord, FramesLengthChecksumsAndData) {
  const std::string record = events::tfrecord("hello");
  ASSERT_EQ(record.size(), 5u + 16u);
  EXPECT_EQ(get_le(record, 0, 8), 5u);
  EXPECT_EQ(get_le(record, 8, 4), mask_crc(crc32c(record.substr(0, 8))));
  EXPECT_EQ(record.substr(12, 5), "hello");
  EXPECT_EQ(get_le(record, 17, 4), mask_crc(crc32c("hello")));
  EXPECT_EQ(events::tfrecord("").size(), 16u);
}

TEST(EventWriter, WritesTheVersionThenOneEventPerCall) {
  TempDir tmp;
  EventWriter writer(tmp.path("runs/x/tensorboard"));
  writer.add_scalar("loss/d", 10, 0.5);
  writer.add_scalars(20, {{"loss/d", 0.25}, {"loss/g", -3.0}});
  writer.add_scalars(30, {});  // nothing
  writer.add_image("samples", 40, std::string("\x89PNG\r\n\x1a\n", 8), 5, 7, 3);
  const std::string name = std::filesystem::path(writer.path()).filename().string();
  EXPECT_TRUE(std::regex_match(name, std::regex(R"(events\.out\.tfevents\.\d{10}\..+)"))) << name;

  // Read while the writer is still open: each add is flushed (a killed run keeps its events).
  const std::vector<std::string> records = read_records(writer.path());
  ASSERT_EQ(records.size(), 4u);
  const tensorboard::Event version = parse_event(records[0]);
  EXPECT_EQ(version.file_version(), "brain.Event:2");
  EXPECT_GT(version.wall_time(), 1.6e9);

  const tensorboard::Event scalar = parse_event(records[1]);
  EXPECT_EQ(scalar.step(), 10);
  ASSERT_EQ(scalar.summary().value_size(), 1);
  EXPECT_EQ(scalar.summary().value(0).tag(), "loss/d");
  EXPECT_EQ(scalar.summary().value(0).simple_value(), 0.5f);
  EXPECT_GE(scalar.wall_time(), version.wall_time());

  const tensorboard::Event pair = parse_event(records[2]);
  EXPECT_EQ(pair.step(), 20);
  ASSERT_EQ(pair.summary().value_size(), 2);
  EXPECT_EQ(pair.summary().value(1).tag(), "loss/g");
  EXPECT_EQ(pair.summary().value(1).simple_value(), -3.0f);

  const tensorboard::Event image = parse_event(records[3]);
  EXPECT_EQ(image.step(), 40);
  ASSERT_EQ(image.summary().value_size(), 1);
  ASSERT_TRUE(image.summary().value(0).has_image());
  const auto& img = image.summary().value(0).image();
  EXPECT_EQ(img.height(), 5);
  EXPECT_EQ(img.width(), 7);
  EXPECT_EQ(img.colorspace(), 3);
  EXPECT_EQ(img.encoded_image_string().substr(1, 3), "PNG");
}

TEST(EventWriter, TwoWritersInOneDirectoryGetTwoFiles) {
  TempDir tmp;
  EventWriter first(tmp.dir().string()), second(tmp.dir().string());
  first.add_scalar("a", 1, 1.0);
  EXPECT_NE(first.path(), second.path());
  EXPECT_EQ(tmp.entries().size(), 2u);
  EXPECT_EQ(read_records(first.path()).size(), 2u);
  EXPECT_EQ(read_records(second.path()).size(), 1u);
}

TEST(EventWriter, NamesTheDirectoryItCannotCreate) {
  TempDir tmp;
  testing::write_text(tmp.path("file"), "not a directory");
  const std::string message =
      testing::error_message<std::runtime_error>([&] { EventWriter writer(tmp.path("file/tensorboard")); });
  EXPECT_NE(message.find(tmp.path("file/tensorboard")), std::string::npos) << message;
}

TEST(EventWriter, RefusesImpossibleImageShapes) {
  TempDir tmp;
  EventWriter writer(tmp.dir().string());
  EXPECT_THROW(writer.add_image("x", 1, "png", 4, 4, 5), std::invalid_argument);
  EXPECT_THROW(writer.add_image("x", 1, "png", 0, 4, 3), std::invalid_argument);
  EXPECT_EQ(read_records(writer.path()).size(), 1u);
}

}  // namespace
}  // namespace distgan
