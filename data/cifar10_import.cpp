// CIFAR-10, binary version (https://www.cs.toronto.edu/~kriz/cifar.html): each file is a run of
// 3073-byte records, one label byte (0..9) then 1024 red, 1024 green and 1024 blue bytes of a
// 32x32 image in row order, which is already distgan's [C, H, W] layout. The official files hold
// 10,000 records each (30,730,000 bytes); batches.meta.txt names the classes, one per line.
#include <nlohmann/json.hpp>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "data/importers.h"

namespace distgan::data {

namespace {

constexpr int64_t kRecordBytes = 1 + 3 * 32 * 32;
constexpr int64_t kOfficialRecords = 10000;
constexpr int kClasses = 10;

std::vector<std::string> class_names(const std::filesystem::path& dir) {
  std::vector<std::string> names;
  std::ifstream meta(dir / "batches.meta.txt");
  for (std::string line; std::getline(meta, line);)
    if (!line.empty() && line.find_first_not_of(" \r") != std::string::npos) names.push_back(line.substr(0, line.find_last_not_of(" \r") + 1));
  if (static_cast<int>(names.size()) != kClasses)
    names = {"airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"};
  return names;
}

void append_file(const std::string& path, DatasetContents& c, std::vector<std::string>& warnings) {
  std::error_code ec;
  const auto bytes = static_cast<int64_t>(std::filesystem::file_size(path, ec));
  if (ec) throw DataError(path + ": cannot read: " + ec.message() + " (is this the CIFAR-10 binary version?)");
  if (bytes == 0 || bytes % kRecordBytes != 0)
    throw DataError(path + ": truncated or not a CIFAR-10 binary file: " + std::to_string(bytes) +
                    " bytes, expected " + std::to_string(kOfficialRecords * kRecordBytes) + " (" +
                    std::to_string(kOfficialRecords) + " records of " + std::to_string(kRecordBytes) +
                    " bytes; any whole number of records is accepted)");
  const int64_t records = bytes / kRecordBytes;
  if (records != kOfficialRecords)
    warnings.push_back(path + ": holds " + std::to_string(records) + " records; the official files hold " +
                       std::to_string(kOfficialRecords));
  std::ifstream in(path, std::ios::binary);
  std::vector<uint8_t> record(kRecordBytes);
  for (int64_t r = 0; r < records; ++r) {
    if (!in.read(reinterpret_cast<char*>(record.data()), kRecordBytes))
      throw DataError(path + ": read failed at record " + std::to_string(r) + ": " + std::strerror(errno));
    if (record[0] >= kClasses)
      throw DataError(path + ": record " + std::to_string(r) + " has label " + std::to_string(record[0]) +
                      " (expected 0 to 9): not a CIFAR-10 file (CIFAR-100's binary files have two label bytes)");
    c.labels.push_back(record[0]);
    c.u8.insert(c.u8.end(), record.begin() + 1, record.end());
  }
}

}  // namespace

DatasetContents import_cifar10(const std::string& dir_arg, const std::string& split, std::vector<std::string>& warnings) {
  std::filesystem::path dir = dir_arg;
  // The archive unpacks into cifar-10-batches-bin/: accept its parent as well.
  if (std::filesystem::is_directory(dir / "cifar-10-batches-bin")) dir /= "cifar-10-batches-bin";
  if (!std::filesystem::is_directory(dir)) throw DataError(dir_arg + ": not a directory");
  std::vector<std::string> names;
  if (split == "train") {
    for (int i = 1; i <= 5; ++i) names.push_back("data_batch_" + std::to_string(i) + ".bin");
  } else if (split == "test") {
    names.push_back("test_batch.bin");
  } else {
    throw DataError("--split: '" + split + "' is not train or test");
  }
  DatasetContents c;
  for (const std::string& name : names) append_file((dir / name).string(), c, warnings);
  c.shape = {static_cast<int64_t>(c.labels.size()), 3, 32, 32};
  c.attributes.emplace_back("dataset", "cifar10");
  c.attributes.emplace_back("split", split);
  c.attributes.emplace_back("class_names", nlohmann::json(class_names(dir)).dump());
  return c;
}

}  // namespace distgan::data
