#include "trainer/state/checkpoint_writer.h"

#include <chrono>
#include <filesystem>

#include "data/data_error.h"
#include "trainer/state/checkpoint.h"

namespace distgan {

CheckpointWriter::CheckpointWriter(std::string directory, int64_t keep)
    : directory_(std::move(directory)), keep_(keep), thread_([this] { run(); }) {}

CheckpointWriter::~CheckpointWriter() {
  {
    std::unique_lock<std::mutex> lock(mutex_);
    changed_.wait(lock, [this] { return !pending_ && !busy_; });
    stop_ = true;
  }
  changed_.notify_all();
  thread_.join();
}

double CheckpointWriter::submit(std::string path, TensorFileData data) {
  const auto start = std::chrono::steady_clock::now();
  std::unique_lock<std::mutex> lock(mutex_);
  changed_.wait(lock, [this] { return !pending_ && !busy_; });
  pending_.emplace(std::move(path), std::move(data));
  lock.unlock();
  changed_.notify_all();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

void CheckpointWriter::flush() {
  std::unique_lock<std::mutex> lock(mutex_);
  changed_.wait(lock, [this] { return !pending_ && !busy_; });
}

std::optional<std::string> CheckpointWriter::take_failure() {
  std::lock_guard<std::mutex> lock(mutex_);
  return std::exchange(failure_, std::nullopt);
}

std::optional<WrittenCheckpoint> CheckpointWriter::take_completed() {
  std::lock_guard<std::mutex> lock(mutex_);
  return std::exchange(completed_, std::nullopt);
}

void CheckpointWriter::run() {
  for (;;) {
    std::pair<std::string, TensorFileData> job;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      changed_.wait(lock, [this] { return pending_ || stop_; });
      if (!pending_) return;  // stop_ with nothing queued
      job = std::move(*pending_);
      pending_.reset();
      busy_ = true;
    }
    WrittenCheckpoint written;
    std::optional<std::string> failure;
    const auto start = std::chrono::steady_clock::now();
    try {
      std::error_code ec;
      std::filesystem::create_directories(directory_, ec);
      if (ec) throw data::DataError(directory_ + ": cannot create the checkpoint directory: " + ec.message());
      write_tensor_file(job.first, job.second);
      written.path = job.first;
      const auto size = std::filesystem::file_size(job.first, ec);
      written.bytes = ec ? 0 : static_cast<int64_t>(size);
      prune_checkpoints(directory_, keep_);
    } catch (const std::exception& e) {
      failure = e.what();
    }
    written.write_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (failure) failure_ = *failure;
      else completed_ = written;
      busy_ = false;
    }
    changed_.notify_all();
  }
}

}  // namespace distgan
