// The prefetching loader: a background thread turns this rank's shard (data/sampler.h) into
// batches of float tensors while the trainer computes, through a bounded queue. Epochs follow one
// another without end; each batch says which epoch and which batch of the epoch it is.
//
// An error in the thread (a read failure, say) is handed to the trainer: the next call to next()
// rethrows it as a DataError naming the file and the samples.
#pragma once

#include <torch/torch.h>

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "data/dataset_reader.h"
#include "data/sampler.h"

namespace distgan::data {

struct LoaderOptions {
  ReaderOptions reader;
  int world_size = 1;
  int rank = 0;
  int64_t batch_size = 64;      // per rank
  uint64_t seed = 0;
  bool shuffle = true;
  Remainder remainder = Remainder::kDrop;
  int prefetch_batches = 4;     // queue depth: memory is about this many batches
  int pin_for_cuda_device = -1; // >= 0: batches in page-locked memory for async copies to cuda:<this>
                                // (a CUDA LibTorch); the loader thread makes that device current
  int64_t start_epoch = 0;      // where to begin (resume)
  int64_t start_batch = 0;      // batch within start_epoch
};

struct Batch {
  torch::Tensor data;            // float32 [B, C, H, W] or [B, D]
  torch::Tensor labels;          // int64 [B], undefined when the file has no labels
  std::vector<int64_t> indices;  // dataset indices, ascending
  int64_t epoch = 0;
  int64_t batch = 0;             // index of this batch within the epoch
};

// What the loader thread reads through; the default is a DatasetReader. Tests substitute one.
struct SampleSource {
  virtual ~SampleSource() = default;
  virtual int64_t size() const = 0;
  virtual std::vector<int64_t> sample_shape() const = 0;
  virtual bool has_labels() const = 0;
  virtual std::string name() const = 0;
  // indices ascending; out has indices.size() * prod(sample_shape) floats.
  virtual void read(const std::vector<int64_t>& indices, float* out, int64_t* labels) = 0;
};

std::unique_ptr<SampleSource> open_hdf5_source(const ReaderOptions& options);

class PrefetchLoader {
 public:
  // Validates that the dataset can feed world_size x batch_size samples per step (throws DataError
  // otherwise) and starts the thread.
  PrefetchLoader(std::unique_ptr<SampleSource> source, const LoaderOptions& options);
  explicit PrefetchLoader(const LoaderOptions& options);
  PrefetchLoader(const PrefetchLoader&) = delete;
  PrefetchLoader& operator=(const PrefetchLoader&) = delete;
  ~PrefetchLoader();

  // Blocks until the next batch is ready; rethrows the thread's error.
  Batch next();

  int64_t batches_per_epoch() const { return batches_per_epoch_; }
  int64_t dataset_size() const { return size_; }
  const std::vector<int64_t>& sample_shape() const { return sample_shape_; }
  bool has_labels() const { return has_labels_; }

 private:
  void run();
  Batch make_batch(const std::vector<int64_t>& shard, int64_t epoch, int64_t batch);

  std::unique_ptr<SampleSource> source_;
  LoaderOptions options_;
  int64_t size_ = 0;
  std::vector<int64_t> sample_shape_;
  bool has_labels_ = false;
  int64_t batches_per_epoch_ = 0;

  std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<Batch> queue_;
  std::exception_ptr error_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace distgan::data
