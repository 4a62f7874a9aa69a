#include "trainer/run/training_loop.h"

#include <ATen/CPUGeneratorImpl.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <cmath>
#include <cstdlib>
#include <functional>
#include <set>
#include <sstream>

#include "cluster/communicator.h"
#include "cluster/preemption.h"
#include "data/h5_handle.h"
#include "data/prefetch_loader.h"
#include "trainer/step/adversarial_step.h"
#include "trainer/state/checkpoint.h"
#include "trainer/state/checkpoint_writer.h"
#include "trainer/run/code_reseed.h"
#include "trainer/model/ema.h"
#include "trainer/eval/evaluation.h"
#include "trainer/run/interval_metrics.h"
#include "trainer/outputs/metrics_log.h"
#include "trainer/state/model_file.h"
#include "trainer/outputs/png_image.h"
#include "trainer/state/resume.h"
#include "trainer/config/run_options.h"
#include "trainer/outputs/run_outputs.h"

namespace distgan {

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr int64_t kGridSamples = 64;         // an 8x8 grid
constexpr int64_t kScatterSamples = 2500;    // points in a 2-D scatter plot (the VEEGAN protocol's count)
constexpr uint64_t kNoiseStream = 0x6e6f697365ULL;   // separates the noise seeds from the data order's
constexpr uint64_t kSampleStream = 0x73616d706cULL;  // and the fixed sample noise's
constexpr uint64_t kReseedStream = 0x7265736565ULL;  // and code re-seeding's, per step: resumes repeat it

double seconds(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double>(b - a).count(); }

uint64_t mix(uint64_t x) {  // splitmix64
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

class Run {
 public:
  Run(const Config& config, const cluster::World& world, std::string resume)
      : config_(config), world_(world), run_dir_(config.logging.run_dir), resume_(std::move(resume)) {
    resolve_classes(config_);  // model.num_classes from the labels (the launcher has done it already)
  }

  TrainingOutcome execute();

 private:
  void resolve_resume();
  void restore_state(int threads, int64_t per_rank);
  void prepare_run_directory(int threads);
  void evaluate(int64_t step);
  void log(const Interval& interval, int64_t step, int64_t epoch);
  void write_samples(const std::string& name);
  void save_checkpoint();
  void report_written_checkpoints();
  bool preemption_agreed();
  bool count_update(Interval& interval, bool skipped, const char* which, int64_t step, double loss, double norm);

  Config config_;
  const cluster::World& world_;
  fs::path run_dir_;
  std::string resume_;
  std::unique_ptr<cluster::Communicator> comm_;
  std::unique_ptr<data::PrefetchLoader> loader_;
  std::unique_ptr<AdversarialStep> step_;
  std::unique_ptr<RunOutputs> outputs_;      // rank 0
  std::unique_ptr<Evaluator> evaluator_;      // rank 0, with eval.every
  std::unique_ptr<CheckpointWriter> writer_;  // rank 0
  ResumeSource source_;                       // rank 0, while resuming
  std::vector<std::string> allowed_changes_;  // rank 0: config keys changed on resume
  ModelSpec spec_;
  at::Generator noise_;                    // on the host, so its state is checkpointed alike on CPU and GPU
  torch::Device device_ = torch::kCPU;
  torch::Tensor fixed_noise_;
  torch::Tensor fixed_labels_;  // conditional models: the class of each sample in the grids
  torch::Tensor real_points_;  // for 2-D scatter plots
  Clock::time_point started_ = Clock::now();
  int64_t global_batch_ = 0;
  TrainingPosition position_;
  int resumed_world_size_ = 0;  // 0: a new run
  int64_t last_checkpoint_step_ = -1;
  int64_t consecutive_skips_ = 0;  // steps in a row with a skipped update
  bool checkpoint_failed_ = false;  // rank 0: a write failed and checkpoint.on_error is abort
  int64_t skipped_at_step_ = -1;
  std::set<int64_t> fault_steps_;  // DISTGAN_FAULT_NONFINITE_STEPS: steps whose batch the last rank poisons
  int64_t fault_perturb_step_ = -1;  // DISTGAN_FAULT_PERTURB_STEP: the last rank changes a weight
  double last_stall_s_ = 0;
};

void Run::prepare_run_directory(int threads) {
  std::vector<std::string> hosts = world_.gather_hosts();  // for run_info.json
  if (world_.rank() != 0) return;
  RunInfo info;
  info.world_size = world_.size();
  info.device = device_.str();
  info.backend = comm_->name();
  info.threads = threads;
  info.hosts = std::move(hosts);
  info.model_summary = spec_.name + " (G " + std::to_string(parameter_count(*step_->models().generator)) + ", D " +
                       std::to_string(parameter_count(*step_->models().discriminator)) + " parameters" +
                       (spec_.num_classes > 0 ? ", " + std::to_string(spec_.num_classes) + " classes" : "") + ")";
  outputs_ = std::make_unique<RunOutputs>(config_, run_dir_, resumed_world_size_ > 0 ? position_.step : -1, info);
  if (resumed_world_size_ > 0)
    for (const auto& path : set_aside_newer_checkpoints(run_dir_.string(), position_.step))
      std::printf("distgan: %s is newer than the checkpoint resumed from: renamed to %s.abandoned\n", path.c_str(),
                  path.c_str());
  writer_ = std::make_unique<CheckpointWriter>(checkpoint_directory(run_dir_.string()), config_.checkpoint.keep);
}

// Every rank: equal batch norm statistics; rank 0 generates with the EMA (or raw) G and measures.
// The other ranks go on to the next step's collectives and wait there.
void Run::evaluate(int64_t step) {
  step_->average_batchnorm_statistics();
  if (world_.rank() != 0) return;
  GanModels& m = step_->models();
  const bool ema = config_.eval.ema && m.generator_ema;
  auto [samples, labels] = generate_for_eval(ema ? m.generator_ema : m.generator, spec_, evaluator_->sample_count(),
                                             static_cast<uint64_t>(config_.training.seed), device_);
  outputs_->evaluation(step, ema, evaluator_->evaluate(samples, labels));
}

// Rank 0 finds the checkpoint and checks that it fits this run; every rank learns the position.
void Run::resolve_resume() {
  on_root_agreed(*comm_, [&] {
    if (resume_.empty()) return refuse_fresh_start_over_checkpoints(run_dir_.string());
    source_ = open_resume_source(resume_, run_dir_.string());
    if (!source_.reader) {
      std::printf("distgan: --resume auto: no checkpoint in %s: starting a new run\n",
                  checkpoint_directory(run_dir_.string()).c_str());
      return;
    }
    const auto dataset = data::open_hdf5_source(loader_options(config_, 0, 1).reader);
    allowed_changes_ = check_resume_config(source_.info, config_, dataset->sample_shape(), dataset->size());
    const TrainingPosition& p = source_.info.position;
    if (p.epoch_position % global_batch_ != 0)
      throw data::DataError(source_.info.path + ": epoch_position " + std::to_string(p.epoch_position) +
                            " is not a multiple of the global batch " + std::to_string(global_batch_));
  });
  const TrainingPosition& p = source_.info.position;
  torch::Tensor v = torch::tensor({int64_t{source_.reader ? source_.info.world_size : 0}, p.step, p.epoch,
                                   p.epoch_position, p.samples_seen}, torch::kInt64);
  comm_->broadcast(v, 0);
  const auto a = v.accessor<int64_t, 1>();
  resumed_world_size_ = static_cast<int>(a[0]);
  position_ = {a[1], a[2], a[3], a[4]};
}

// Parameters, buffers and optimizer state from rank 0 (which read the checkpoint, if any) to every
// rank; each rank's noise generator from the checkpoint's row for it.
void Run::restore_state(int threads, int64_t per_rank) {
  torch::Tensor rng;
  on_root_agreed(*comm_, [&] {
    if (source_.reader) rng = restore_checkpoint(*source_.reader, *step_);
  });
  step_->broadcast_from_root();
  const auto seed = static_cast<uint64_t>(config_.training.seed);
  noise_ = at::detail::createCPUGenerator(mix(seed ^ kNoiseStream) + static_cast<uint64_t>(world_.rank()));
  std::string noise_note;
  if (resumed_world_size_ > 0) {
    torch::Tensor dims = torch::tensor({rng.defined() ? rng.size(0) : 0, rng.defined() ? rng.size(1) : 0});
    comm_->broadcast(dims, 0);
    if (world_.rank() != 0) rng = torch::empty({dims[0].item<int64_t>(), dims[1].item<int64_t>()}, torch::kUInt8);
    comm_->broadcast(rng, 0);
    const int64_t state_bytes = noise_.get_state().numel();
    if (rng.size(0) == world_.size() && rng.size(1) == state_bytes) {
      noise_.set_state(rng[world_.rank()].clone());
      noise_note = "noise streams continue";
    } else {  // another world size: new streams, seeded from the step so every resume is reproducible
      noise_ = at::detail::createCPUGenerator(mix(seed ^ kNoiseStream ^ mix(static_cast<uint64_t>(position_.step))) +
                                              static_cast<uint64_t>(world_.rank()));
      noise_note = "noise streams re-seeded";
    }
  }
  if (world_.rank() != 0) return;
  std::printf("distgan: training %s (G %lld, D %lld parameters) on %d rank(s) (%s, %s backend%s), %d thread(s) "
              "each, batch %lld (%lld per rank), %lld steps; run directory %s\n",
              spec_.name.c_str(), static_cast<long long>(parameter_count(*step_->models().generator)),
              static_cast<long long>(parameter_count(*step_->models().discriminator)), world_.size(),
              device_.is_cuda() ? "cuda" : "cpu", comm_->name().c_str(),
              config_.training.amp == "bf16" ? ", bf16 autocast" : "", threads,
              static_cast<long long>(global_batch_), static_cast<long long>(per_rank),
              static_cast<long long>(config_.training.steps), run_dir_.c_str());
  if (resumed_world_size_ > 0) {
    std::printf("distgan: resumed from %s at step %lld (epoch %lld, sample %lld of the epoch); %s\n",
                source_.info.path.c_str(), static_cast<long long>(position_.step),
                static_cast<long long>(position_.epoch), static_cast<long long>(position_.epoch_position),
                noise_note.c_str());
    if (resumed_world_size_ != world_.size())
      std::printf("distgan: world size changed: the checkpoint was written by %d rank(s), this run has %d; the global "
                  "batch stays %lld (%lld per rank)\n",
                  resumed_world_size_, world_.size(), static_cast<long long>(global_batch_),
                  static_cast<long long>(per_rank));
    for (const auto& change : allowed_changes_) std::printf("distgan: changed on resume: %s\n", change.c_str());
  }
  source_ = {};  // the file is closed: all of it is in memory now
  std::fflush(stdout);
}

void Run::log(const Interval& in, int64_t step, int64_t epoch) {
  const StepMetrics m = average_interval(in, *comm_, step, epoch, config_.training.steps, global_batch_,
                                         seconds(started_, Clock::now()));
  if (world_.rank() == 0) outputs_->metrics(m);
}

void Run::write_samples(const std::string& name) {
  step_->average_batchnorm_statistics();  // every rank: the running statistics become equal
  if (world_.rank() != 0) return;
  if (spec_.sample_shape.size() == 3) {
    // Conditional models: one row per class.
    outputs_->samples(name, position_.step, image_grid(step_->sample(fixed_noise_, fixed_labels_).cpu(), 8));
  } else if (spec_.sample_shape[0] >= 2) {  // a scatter plot of the first two coordinates
    outputs_->samples(name, position_.step, scatter_plot(real_points_, step_->sample(fixed_noise_, fixed_labels_).cpu()));
  }
}

// Every rank: equal BatchNorm statistics, every rank's noise generator state to rank 0; rank 0
// copies everything to host memory and hands it to the background writer. Training pauses only
// for that copy (measured and logged).
void Run::save_checkpoint() {
  if (last_checkpoint_step_ == position_.step) return;
  const auto start = Clock::now();
  step_->average_batchnorm_statistics();
  const torch::Tensor mine = noise_.get_state();
  torch::Tensor all = torch::zeros({world_.size(), mine.numel()}, torch::kInt32);
  all[world_.rank()].copy_(mine);
  comm_->allreduce(all, {cluster::ReduceOp::kSum})->wait();
  if (world_.rank() == 0) {
    CheckpointData data = snapshot_checkpoint(config_, spec_, *step_, position_, all.to(torch::kUInt8),
                                              loader_->dataset_size());
    writer_->submit(checkpoint_path(run_dir_.string(), position_.step), std::move(data));
    last_stall_s_ = seconds(start, Clock::now());
  }
  last_checkpoint_step_ = position_.step;
}

void Run::report_written_checkpoints() {
  if (world_.rank() != 0) return;
  if (auto failure = writer_->take_failure()) {
    const auto previous = list_checkpoints(checkpoint_directory(run_dir_.string()));
    std::fprintf(stderr,
                 "distgan: ERROR: a checkpoint could not be written: %s. The previous checkpoint %s stays; %s\n",
                 failure->c_str(), previous.empty() ? "(none)" : previous.front().path.c_str(),
                 config_.checkpoint.on_error == "abort" ? "stopping (checkpoint.on_error: abort)"
                                                        : "training continues and retries at the next interval "
                                                          "(checkpoint.on_error: continue)");
    std::fflush(stderr);
    if (config_.checkpoint.on_error == "abort") checkpoint_failed_ = true;
  }
  while (auto written = writer_->take_completed()) {
    std::printf("distgan: checkpoint %s (%.1f MB): training paused %.0f ms, written in the background in %.0f ms\n",
                written->path.c_str(), double(written->bytes) / 1e6, 1e3 * last_stall_s_, 1e3 * written->write_seconds);
    std::fflush(stdout);
  }
}

// The non-finite policy. `skipped` comes from the averaged loss and gradient, identical on every
// rank, so every rank takes the same decision without a collective. Returns whether it was applied.
bool Run::count_update(Interval& interval, bool skipped, const char* which, int64_t step, double loss, double norm) {
  if (!skipped) return true;
  ++interval.skipped;
  if (skipped_at_step_ != step) ++consecutive_skips_;  // counted in steps: D and G updates alternate
  skipped_at_step_ = step;
  char what[200];
  std::snprintf(what, sizeof(what), "non-finite %s update at step %lld (rank 0's loss %g, gradient norm %g)", which,
                static_cast<long long>(step), loss, norm);
  const std::string keep = "; the last checkpoint is kept: resume with --resume auto (a lower learning rate helps)";
  if (config_.training.on_nonfinite == "abort")
    throw AgreedFailure(std::string(what) + " and training.on_nonfinite is abort" + keep, 1, world_.rank() == 0);
  if (consecutive_skips_ > config_.training.max_consecutive_skips)
    throw AgreedFailure(std::string(what) + ": " + std::to_string(consecutive_skips_) +
                            " steps in a row had a skipped update (training.max_consecutive_skips = " +
                            std::to_string(config_.training.max_consecutive_skips) + ")" + keep,
                        1, world_.rank() == 0);
  if (world_.rank() == 0) std::fprintf(stderr, "distgan: warning: skipped the %s on every rank\n", what);
  return false;
}

// Whether any rank has received SIGTERM or SIGUSR1: one tiny collective per step, so every rank
// stops at the same step boundary. Also where a failed checkpoint stops every rank (on_error: abort).
bool Run::preemption_agreed() {
  // Rank 0's "a checkpoint failed and checkpoint.on_error is abort" rides in the same collective.
  torch::Tensor flags = torch::tensor({static_cast<int64_t>(cluster::preemption_signal()),
                                       int64_t{checkpoint_failed_ ? 1 : 0}},
                                      torch::kInt64);
  comm_->allreduce(flags, {cluster::ReduceOp::kMax})->wait();
  if (flags[1].item<int64_t>() != 0)
    throw AgreedFailure("stopping after a failed checkpoint (checkpoint.on_error: abort; the reason is above); the "
                        "previous checkpoint stays",
                        1, world_.rank() == 0);
  const int64_t signal = flags[0].item<int64_t>();
  if (signal == 0) return false;
  if (world_.rank() == 0) {
    std::printf("distgan: preempted (%s) at step %lld: writing a checkpoint, then exiting with code %d; continue "
                "with --resume auto\n",
                signal == SIGUSR1 ? "SIGUSR1" : signal == SIGTERM ? "SIGTERM" : "signal", static_cast<long long>(position_.step),
                kExitPreempted);
    std::fflush(stdout);
  }
  return true;
}

TrainingOutcome Run::execute() {
  cluster::install_preemption_handlers();  // again (idempotent), for callers other than the launcher
  data::require_threadsafe_hdf5();
  const int threads = cluster::configure_compute_threads(static_cast<int>(config_.cluster.threads));
  cluster::keep_freed_host_memory();
  device_ = torch::Device(rank_device(config_, world_.info().local_rank));
  cluster::make_current_device(device_.str());
  comm_ = cluster::make_communicator(communicator_options(config_, world_.info().local_rank));
  global_batch_ = config_.training.batch_size;
  if (const char* faults = std::getenv("DISTGAN_FAULT_NONFINITE_STEPS")) {  // fault injection for tests
    std::stringstream list(faults);
    for (std::string item; std::getline(list, item, ',');) fault_steps_.insert(std::atoll(item.c_str()));
  }
  if (const char* step = std::getenv("DISTGAN_FAULT_PERTURB_STEP")) fault_perturb_step_ = std::atoll(step);
  resolve_resume();

  data::LoaderOptions lo = loader_options(config_, world_.rank(), world_.size());
  lo.start_epoch = position_.epoch;
  lo.start_batch = position_.epoch_position / global_batch_;
  if (device_.is_cuda()) lo.pin_for_cuda_device = device_.index();
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
  so.amp_bf16 = config_.training.amp == "bf16";
  so.r1_gamma = config_.training.r1_gamma;
  so.r1_every = config_.training.r1_every;
  so.gp_lambda = config_.training.gp_lambda;
  GanModels models = build_models(spec_);  // initialised on the host (same values on CPU and GPU runs)
  models.generator->to(device_);
  models.discriminator->to(device_);
  if (models.generator_ema) models.generator_ema->to(device_);
  step_ = std::make_unique<AdversarialStep>(std::move(models), *comm_, so);
  restore_state(threads, lo.batch_size);

  const auto seed = static_cast<uint64_t>(config_.training.seed);
  at::Generator sample_noise = at::detail::createCPUGenerator(mix(seed ^ kSampleStream));
  const bool images = spec_.sample_shape.size() == 3;
  const int64_t classes = spec_.num_classes, shown_classes = std::min<int64_t>(classes, 16);
  const int64_t shown = !images ? kScatterSamples : classes > 0 ? 8 * shown_classes : kGridSamples;
  fixed_noise_ = torch::randn({shown, spec_.z_dim}, sample_noise).to(device_);
  if (classes > 0)  // rows of 8 per class in the grids; every class in turn in the scatter plots
    fixed_labels_ = (images ? torch::arange(shown_classes).repeat_interleave(8) : torch::arange(shown) % classes)
                        .to(device_);
  prepare_run_directory(threads);
  if (config_.eval.every > 0) {  // rank 0 reads the reference (or its cache) now: errors before step 1
    on_root_agreed(*comm_, [&] {
      try {
        evaluator_ = std::make_unique<Evaluator>(eval_options(config_), spec_.sample_shape);
      } catch (const std::invalid_argument& error) {
        throw ConfigError(std::string("eval.every: ") + error.what());
      }
    });
  }
  if (!images && world_.rank() == 0) {  // real points for the scatter plots: a few batches from a fresh reader
    data::LoaderOptions rl = loader_options(config_, 0, 1);
    rl.batch_size = std::min<int64_t>(kScatterSamples, loader_->dataset_size());
    rl.prefetch_batches = 1;
    real_points_ = data::PrefetchLoader(rl).next().data;
  }
  if (position_.step >= config_.training.steps && world_.rank() == 0)
    std::printf("distgan: the checkpoint is at step %lld and training.steps is %lld: nothing left to train\n",
                static_cast<long long>(position_.step), static_cast<long long>(config_.training.steps));
  last_checkpoint_step_ = resumed_world_size_ > 0 ? position_.step : -1;

  const int64_t per_rank = lo.batch_size, n_critic = config_.training.n_critic;
  const int64_t every = config_.checkpoint.every;
  Interval interval;
  for (int64_t s = position_.step + 1; s <= config_.training.steps; ++s) {
    comm_->set_label("step " + std::to_string(s));
    if (config_.training.lr_schedule == "linear")  // a function of the step: resumes continue it exactly
      step_->scale_learning_rates(linear_decay_factor(s, config_.training.steps, config_.training.lr_decay_start));
    torch::Tensor fake, fake_labels;
    data::Batch batch;
    for (int64_t c = 0; c < n_critic; ++c) {
      const auto t0 = Clock::now();
      batch = loader_->next();
      interval.data_s += seconds(t0, Clock::now());
      const bool last = c == n_critic - 1;
      // Pinned host batches copy asynchronously while the G forward runs.
      torch::Tensor real = batch.data.to(device_, /*non_blocking=*/true);
      if (fault_steps_.count(s) && world_.rank() == world_.size() - 1) real = real * NAN;  // test hook
      const torch::Tensor z = torch::randn({per_rank, spec_.z_dim}, noise_).to(device_, /*non_blocking=*/true);
      DStepInput in;
      in.real = real;
      if (classes > 0) {  // real labels with the batch; fake ones drawn uniformly, from the rank's stream
        in.real_labels = batch.labels.to(device_, /*non_blocking=*/true);
        in.fake_labels = torch::randint(classes, {per_rank}, noise_, torch::kInt64).to(device_);
      }
      if (so.loss == LossKind::kWganGp) in.gp_eps = torch::rand({per_rank}, noise_).to(device_);
      in.apply_r1 = ((s - 1) * n_critic + c) % config_.training.r1_every == 0;  // by D-step count: resumes alike
      fake = step_->generate_for_step(z, in.fake_labels, last);
      in.fake = fake;
      fake_labels = in.fake_labels;
      const DStepStats d = step_->d_step(in);
      ++interval.d_steps;
      if (count_update(interval, d.skipped, "D", s, d.loss_d, d.grad_norm)) interval.add(d);
    }
    const GStepStats g = step_->g_step(
        fake, fake_labels, top_k_share(config_.training.top_k_keep, config_.training.top_k_decay, batch.epoch));
    ++interval.g_steps;
    if (count_update(interval, g.skipped, "G", s, g.loss_g, g.grad_norm)) {
      step_->update_ema(ema_beta(config_.training.ema_half_life_kimg, config_.training.ema_rampup,
                                 s * global_batch_, global_batch_));
      interval.add(g);
    }
    interval.comm_s += step_->take_communication_seconds();
    const int64_t reseed_every = config_.training.code_reseed_every;
    if (reseed_every > 0 && s % reseed_every == 0 &&
        double(s) <= config_.training.code_reseed_until * double(config_.training.steps)) {
      const uint64_t seed = mix(static_cast<uint64_t>(config_.training.seed) ^ kReseedStream ^ mix(uint64_t(s)));
      check_latent_codes(step_->models(), step_->optimizer_g(), *comm_, real_points_, {seed, mix(seed)}, s);
    }
    if (skipped_at_step_ != s) consecutive_skips_ = 0;
    // Where the next step's data starts: the batch after the last one read.
    const bool epoch_done = batch.batch + 1 == loader_->batches_per_epoch();
    position_ = {s, epoch_done ? batch.epoch + 1 : batch.epoch, epoch_done ? 0 : (batch.batch + 1) * global_batch_,
                 position_.samples_seen + n_critic * global_batch_};
    if (s % config_.logging.every == 0 || s == config_.training.steps) {
      log(interval, s, batch.epoch);
      interval = Interval{};
    }
    if (config_.logging.sample_every > 0 && s % config_.logging.sample_every == 0) {
      char name[32];
      std::snprintf(name, sizeof(name), "step_%07lld", static_cast<long long>(s));
      write_samples(name);
    }
    if (config_.eval.every > 0 && s % config_.eval.every == 0) evaluate(s);
    if (fault_perturb_step_ == s && world_.rank() == world_.size() - 1) {  // test hook
      torch::NoGradGuard no_grad;
      step_->models().discriminator->parameters().back().add_(1e-3);
    }
    const int64_t check_every = config_.cluster.check_replicas_every;
    if (check_every > 0 && s % check_every == 0) {
      const std::string diverged = step_->compare_replicas();
      if (!diverged.empty())
        throw AgreedFailure("replica check at step " + std::to_string(s) + ": " + diverged +
                                " (a silent hardware or software fault); the last checkpoint is kept: resume with "
                                "--resume auto",
                            1, world_.rank() == 0);
    }
    if (every > 0 && s % every == 0) save_checkpoint();
    report_written_checkpoints();
    if (preemption_agreed()) {
      save_checkpoint();
      if (world_.rank() == 0) writer_->flush();  // on disk before any rank exits
      report_written_checkpoints();
      comm_->barrier();
      return TrainingOutcome::kPreempted;
    }
  }
  save_checkpoint();  // at the end (unless the last step just wrote one); averages BatchNorm statistics
  if (world_.rank() == 0) {
    writer_->flush();
    report_written_checkpoints();
    if (checkpoint_failed_) throw std::runtime_error("the final checkpoint could not be written (checkpoint.on_error: abort)");
    // The model first: a failure drawing samples must not lose it.
    save_model_file((run_dir_ / "final.h5").string(), config_, spec_, step_->models(), position_.step);
  }
  write_samples("final");
  if (world_.rank() == 0) {
    std::printf("distgan: done in %.1f s: metrics %s, samples %s, model %s\n", seconds(started_, Clock::now()),
                (run_dir_ / "metrics.jsonl").c_str(), (run_dir_ / "samples").c_str(), (run_dir_ / "final.h5").c_str());
  }
  comm_->barrier();
  return TrainingOutcome::kCompleted;
}

}  // namespace

TrainingOutcome run_training(const Config& config, const cluster::World& world, const std::string& resume) {
  return Run(config, world, resume).execute();
}

}  // namespace distgan
