#include "data/prefetch_loader.h"

#include <c10/core/impl/DeviceGuardImplInterface.h>

#include <algorithm>

namespace distgan::data {

namespace {

constexpr int64_t kMaxBatchBytes = int64_t{4} << 30;  // one float32 batch; the queue holds a few

class Hdf5Source : public SampleSource {
 public:
  explicit Hdf5Source(const ReaderOptions& options) : reader_(options) {}
  int64_t size() const override { return reader_.size(); }
  std::vector<int64_t> sample_shape() const override { return reader_.sample_shape(); }
  bool has_labels() const override { return reader_.has_labels(); }
  std::string name() const override { return reader_.options().path + ":" + reader_.options().dataset; }
  void read(const std::vector<int64_t>& indices, float* out, int64_t* labels) override {
    reader_.read(indices, out, labels);
  }

 private:
  DatasetReader reader_;
};

}  // namespace

std::unique_ptr<SampleSource> open_hdf5_source(const ReaderOptions& options) {
  return std::make_unique<Hdf5Source>(options);
}

PrefetchLoader::PrefetchLoader(const LoaderOptions& options)
    : PrefetchLoader(open_hdf5_source(options.reader), options) {}

PrefetchLoader::PrefetchLoader(std::unique_ptr<SampleSource> source, const LoaderOptions& options)
    : source_(std::move(source)), options_(options) {
  size_ = source_->size();
  sample_shape_ = source_->sample_shape();
  has_labels_ = source_->has_labels();
  if (options_.batch_size < 1) throw DataError("loader: the batch size must be at least 1");
  if (options_.prefetch_batches < 1) throw DataError("loader: prefetch_batches must be at least 1");
  int64_t sample_elements = 1;
  for (int64_t d : sample_shape_) sample_elements *= d;
  if (sample_elements > kMaxBatchBytes / 4 / options_.batch_size)
    throw DataError(source_->name() + ": a batch of " + std::to_string(options_.batch_size) + " samples of " +
                    std::to_string(sample_elements) + " values needs more than " +
                    std::to_string(kMaxBatchBytes >> 30) + " GiB; use a smaller batch");
  const int64_t global = options_.batch_size * options_.world_size;
  if (size_ < global)
    throw DataError(source_->name() + " holds " + std::to_string(size_) + " samples, fewer than one step needs: " +
                    std::to_string(options_.world_size) + " ranks x batch size " +
                    std::to_string(options_.batch_size) + " = " + std::to_string(global));
  ShardSpec spec{size_, options_.world_size, options_.rank, options_.batch_size,
                 options_.seed, options_.shuffle, options_.remainder};
  batches_per_epoch_ = samples_per_rank(spec) / options_.batch_size;
  if (options_.start_batch < 0 || options_.start_batch >= batches_per_epoch_ || options_.start_epoch < 0)
    throw DataError("loader: start position (epoch " + std::to_string(options_.start_epoch) + ", batch " +
                    std::to_string(options_.start_batch) + ") is outside the epoch of " +
                    std::to_string(batches_per_epoch_) + " batches");
  thread_ = std::thread([this] { run(); });
}

PrefetchLoader::~PrefetchLoader() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  changed_.notify_all();
  if (thread_.joinable()) thread_.join();
}

Batch PrefetchLoader::make_batch(const std::vector<int64_t>& shard, int64_t epoch, int64_t batch) {
  const int64_t b = options_.batch_size;
  Batch out;
  out.epoch = epoch;
  out.batch = batch;
  out.indices.assign(shard.begin() + batch * b, shard.begin() + (batch + 1) * b);
  // Sorted so that reads are near-contiguous; the order inside a batch does not matter to training.
  std::sort(out.indices.begin(), out.indices.end());
  std::vector<int64_t> shape{b};
  shape.insert(shape.end(), sample_shape_.begin(), sample_shape_.end());
  out.data = torch::empty(shape, torch::TensorOptions(torch::kFloat32).pinned_memory(options_.pin_for_cuda_device >= 0));
  if (has_labels_) out.labels = torch::empty({b}, torch::kInt64);
  source_->read(out.indices, out.data.data_ptr<float>(), has_labels_ ? out.labels.data_ptr<int64_t>() : nullptr);
  return out;
}

void PrefetchLoader::run() {
  try {
    if (options_.pin_for_cuda_device >= 0)  // pinned memory is allocated against the current device
      c10::impl::getDeviceGuardImpl(c10::DeviceType::CUDA)
          ->setDevice(c10::Device(c10::DeviceType::CUDA, static_cast<c10::DeviceIndex>(options_.pin_for_cuda_device)));
    ShardSpec spec{size_, options_.world_size, options_.rank, options_.batch_size,
                   options_.seed, options_.shuffle, options_.remainder};
    for (int64_t epoch = options_.start_epoch;; ++epoch) {
      const std::vector<int64_t> shard = shard_indices(spec, epoch);
      const int64_t first = epoch == options_.start_epoch ? options_.start_batch : 0;
      for (int64_t batch = first; batch < batches_per_epoch_; ++batch) {
        Batch ready = make_batch(shard, epoch, batch);
        std::unique_lock<std::mutex> lock(mutex_);
        changed_.wait(lock, [this] { return stop_ || static_cast<int>(queue_.size()) < options_.prefetch_batches; });
        if (stop_) return;
        queue_.push_back(std::move(ready));
        changed_.notify_all();
      }
    }
  } catch (const std::exception& e) {
    std::lock_guard<std::mutex> lock(mutex_);
    error_ = std::make_exception_ptr(DataError(std::string("loader thread: ") + e.what()));
  } catch (...) {
    std::lock_guard<std::mutex> lock(mutex_);
    error_ = std::make_exception_ptr(DataError("loader thread: unknown error"));
  }
  changed_.notify_all();
}

Batch PrefetchLoader::next() {
  std::unique_lock<std::mutex> lock(mutex_);
  changed_.wait(lock, [this] { return !queue_.empty() || error_; });
  if (queue_.empty()) std::rethrow_exception(error_);
  Batch b = std::move(queue_.front());
  queue_.pop_front();
  changed_.notify_all();
  return b;
}

}  // namespace distgan::data
