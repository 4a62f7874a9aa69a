#include "trainer/training_loop.h"

#include <ATen/CPUGeneratorImpl.h>

#include <chrono>
#include <cstdio>
#include <filesystem>

#include "cluster/communicator.h"
#include "data/prefetch_loader.h"
#include "trainer/adversarial_step.h"
#include "trainer/metrics_log.h"
#include "trainer/model_file.h"
#include "trainer/png_image.h"
#include "trainer/run_options.h"

namespace distgan {

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr int64_t kGridSamples = 64;         // an 8x8 grid
constexpr int64_t kScatterSamples = 2500;    // points in a 2-D scatter plot (the VEEGAN protocol's count)
constexpr uint64_t kNoiseStream = 0x6e6f697365ULL;   // separates the noise seeds from the data order's
constexpr uint64_t kSampleStream = 0x73616d706cULL;  // and the fixed sample noise's

double seconds(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double>(b - a).count(); }

uint64_t mix(uint64_t x) {  // splitmix64
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// Accumulates one logging interval's values on this rank.
struct Interval {
  double loss_d = 0, loss_g = 0, d_real = 0, d_fake = 0;
  int64_t d_steps = 0, g_steps = 0;
  double data_s = 0, comm_s = 0;
  Clock::time_point start = Clock::now();
};

class Run {
 public:
  Run(const Config& config, const cluster::World& world)
      : config_(config), world_(world), run_dir_(config.logging.run_dir) {}

  void execute();

 private:
  void prepare_run_directory();
  void log(const Interval& interval, int64_t step, int64_t epoch);
  void write_samples(const std::string& name);

  const Config& config_;
  const cluster::World& world_;
  fs::path run_dir_;
  std::unique_ptr<cluster::Communicator> comm_;
  std::unique_ptr<data::PrefetchLoader> loader_;
  std::unique_ptr<AdversarialStep> step_;
  std::unique_ptr<MetricsLog> metrics_;
  ModelSpec spec_;
  torch::Tensor fixed_noise_;
  torch::Tensor real_points_;  // for 2-D scatter plots
  Clock::time_point started_ = Clock::now();
  int64_t global_batch_ = 0;
};

void Run::prepare_run_directory() {
  if (world_.rank() != 0) return;
  std::error_code ec;
  fs::create_directories(run_dir_ / "samples", ec);
  if (ec)
    throw std::runtime_error("logging.run_dir: cannot create '" + (run_dir_ / "samples").string() +
                             "': " + ec.message());
  std::FILE* f = std::fopen((run_dir_ / "config.yaml").c_str(), "w");
  if (f == nullptr) throw std::runtime_error((run_dir_ / "config.yaml").string() + ": cannot write");
  const std::string text = print_config(config_);
  std::fwrite(text.data(), 1, text.size(), f);
  std::fclose(f);
  metrics_ = std::make_unique<MetricsLog>((run_dir_ / "metrics.jsonl").string());
}

void Run::log(const Interval& in, int64_t step, int64_t epoch) {
  const double wall = seconds(in.start, Clock::now());
  // One small collective per log line: every rank's interval sums, averaged.
  torch::Tensor v = torch::tensor({in.loss_d, in.d_real, in.d_fake, double(in.d_steps), in.loss_g, double(in.g_steps),
                                   in.data_s / wall, in.comm_s / wall},
                                  torch::kFloat64);
  comm_->allreduce(v, {cluster::ReduceOp::kAverage})->wait();
  if (world_.rank() != 0) return;
  const auto a = v.accessor<double, 1>();
  StepMetrics m;
  m.step = step;
  m.epoch = epoch;
  m.total_steps = config_.training.steps;
  m.loss_d = a[0] / std::max(1.0, a[3]);
  m.d_real = a[1] / std::max(1.0, a[3]);
  m.d_fake = a[2] / std::max(1.0, a[3]);
  m.loss_g = a[4] / std::max(1.0, a[5]);
  m.images_per_s = double(global_batch_) * a[3] / wall;  // real images consumed by D steps
  m.share_data = a[6];
  m.share_comm = a[7];
  m.share_compute = std::max(0.0, 1.0 - a[6] - a[7]);
  m.elapsed_s = seconds(started_, Clock::now());
  const double per_step = wall / std::max(1.0, a[5]);
  m.eta_s = per_step * double(config_.training.steps - step);
  metrics_->write(m);
}

void Run::write_samples(const std::string& name) {
  step_->average_batchnorm_statistics();  // every rank: the running statistics become equal
  if (world_.rank() != 0) return;
  const fs::path path = run_dir_ / "samples" / (name + ".png");
  if (spec_.sample_shape.size() == 3) {
    write_png(path.string(), image_grid(step_->sample(fixed_noise_), 8));
  } else if (spec_.sample_shape[0] >= 2) {  // a scatter plot of the first two coordinates
    write_png(path.string(), scatter_plot(real_points_, step_->sample(fixed_noise_)));
  }
}

void Run::execute() {
  const int threads = cluster::configure_compute_threads(static_cast<int>(config_.cluster.threads));
  cluster::keep_freed_host_memory();
  const std::string device = cluster::select_device(config_.cluster.device, world_.info().local_rank);
  if (device != "cpu")
    throw std::runtime_error("cluster.device: training on " + device + " arrives with the NCCL/GPU issue");
  comm_ = cluster::make_communicator({config_.cluster.backend, config_.cluster.device,
                                      static_cast<double>(config_.cluster.collective_timeout_s)});

  data::LoaderOptions lo = loader_options(config_, world_.rank(), world_.size());
  global_batch_ = config_.training.batch_size;
  loader_ = std::make_unique<data::PrefetchLoader>(lo);
  spec_ = model_spec(config_, loader_->sample_shape());

  torch::manual_seed(static_cast<uint64_t>(config_.training.seed));
  StepOptions so;
  so.loss = parse_loss(config_.training.loss);
  so.lr_g = config_.training.lr_g;
  so.lr_d = config_.training.lr_d;
  so.betas_g = config_.training.betas_g;
  so.betas_d = config_.training.betas_d;
  so.bucket_bytes = static_cast<int64_t>(config_.cluster.bucket_mb * 1024 * 1024);
  step_ = std::make_unique<AdversarialStep>(build_models(spec_), *comm_, so);
  step_->broadcast_from_root();

  const auto seed = static_cast<uint64_t>(config_.training.seed);
  at::Generator noise = at::detail::createCPUGenerator(mix(seed ^ kNoiseStream) + static_cast<uint64_t>(world_.rank()));
  at::Generator sample_noise = at::detail::createCPUGenerator(mix(seed ^ kSampleStream));
  const bool images = spec_.sample_shape.size() == 3;
  fixed_noise_ = torch::randn({images ? kGridSamples : kScatterSamples, spec_.z_dim}, sample_noise);
  prepare_run_directory();
  if (world_.rank() == 0) {
    std::printf("distgan: training %s (G %lld, D %lld parameters) on %d rank(s), %d thread(s) each, batch %lld "
                "(%lld per rank), %lld steps; run directory %s\n",
                spec_.name.c_str(), static_cast<long long>(parameter_count(*step_->models().generator)),
                static_cast<long long>(parameter_count(*step_->models().discriminator)), world_.size(), threads,
                static_cast<long long>(global_batch_), static_cast<long long>(lo.batch_size),
                static_cast<long long>(config_.training.steps), run_dir_.c_str());
    std::fflush(stdout);
  }
  if (!images && world_.rank() == 0) {  // real points for the scatter plots: a few batches from a fresh reader
    data::LoaderOptions rl = lo;
    rl.world_size = 1;
    rl.rank = 0;
    rl.batch_size = std::min<int64_t>(kScatterSamples, loader_->dataset_size());
    rl.prefetch_batches = 1;
    real_points_ = data::PrefetchLoader(rl).next().data;
  }

  const int64_t per_rank = lo.batch_size, n_critic = config_.training.n_critic;
  Interval interval;
  int64_t epoch = 0;
  for (int64_t s = 1; s <= config_.training.steps; ++s) {
    torch::Tensor fake;
    for (int64_t c = 0; c < n_critic; ++c) {
      const auto t0 = Clock::now();
      data::Batch batch = loader_->next();
      interval.data_s += seconds(t0, Clock::now());
      epoch = batch.epoch;
      const bool last = c == n_critic - 1;
      fake = step_->generate_for_step(torch::randn({per_rank, spec_.z_dim}, noise), last);
      const DStepStats d = step_->d_step(batch.data, fake);
      interval.loss_d += d.loss_d;
      interval.d_real += d.d_real;
      interval.d_fake += d.d_fake;
      ++interval.d_steps;
    }
    interval.loss_g += step_->g_step(fake);
    ++interval.g_steps;
    interval.comm_s += step_->take_communication_seconds();
    if (s % config_.logging.every == 0 || s == config_.training.steps) {
      log(interval, s, epoch);
      interval = Interval{};
    }
    if (config_.logging.sample_every > 0 && s % config_.logging.sample_every == 0) {
      char name[32];
      std::snprintf(name, sizeof(name), "step_%07lld", static_cast<long long>(s));
      write_samples(name);
    }
  }
  step_->average_batchnorm_statistics();
  if (world_.rank() == 0)  // the model first: a failure drawing samples must not lose it
    save_model_file((run_dir_ / "final.h5").string(), config_, spec_, step_->models(), config_.training.steps);
  write_samples("final");
  if (world_.rank() == 0) {
    std::printf("distgan: done in %.1f s: metrics %s, samples %s, model %s\n", seconds(started_, Clock::now()),
                (run_dir_ / "metrics.jsonl").c_str(), (run_dir_ / "samples").c_str(), (run_dir_ / "final.h5").c_str());
  }
  comm_->barrier();
}

}  // namespace

void run_training(const Config& config, const cluster::World& world) { Run(config, world).execute(); }

}  // namespace distgan
