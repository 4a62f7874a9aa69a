// Writes checkpoints on a background thread (rank 0), so training pauses only for the host copy
// of the tensors, not for HDF5, fsync and rename. One write is in flight at a time: a new one waits
// for the previous. After each write the oldest checkpoints beyond `keep` are deleted (never the
// one just written); after a failed write nothing is deleted, and the failure is handed to the
// trainer by take_failure() (which decides: checkpoint.on_error).
#pragma once

#include <condition_variable>
#include <exception>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "trainer/state/tensor_file.h"

namespace distgan {

struct WrittenCheckpoint {
  std::string path;
  double write_seconds = 0;  // on the background thread: HDF5, fsync, rename
  int64_t bytes = 0;
};

class CheckpointWriter {
 public:
  CheckpointWriter(std::string directory, int64_t keep);
  ~CheckpointWriter();  // finishes the write in flight
  CheckpointWriter(const CheckpointWriter&) = delete;
  CheckpointWriter& operator=(const CheckpointWriter&) = delete;

  // Queues `data` for `path`. Waits for the previous write first; returns the seconds waited.
  double submit(std::string path, TensorFileData data);
  // Blocks until everything submitted is written (or has failed).
  void flush();
  // The last completed write, if any since the last call (for the log line).
  std::optional<WrittenCheckpoint> take_completed();
  // The message of the last failed write, if any since the last call.
  std::optional<std::string> take_failure();

 private:
  void run();

  std::string directory_;
  int64_t keep_;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::optional<std::pair<std::string, TensorFileData>> pending_;
  bool busy_ = false, stop_ = false;
  std::optional<std::string> failure_;
  std::optional<WrittenCheckpoint> completed_;
  std::thread thread_;
};

}  // namespace distgan
