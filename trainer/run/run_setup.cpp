#include "trainer/run/run_setup.h"
#include "trainer/outputs/console_log.h"

#include <ATen/CPUGeneratorImpl.h>

#include <cstdio>

#include "cluster/preemption.h"
#include "data/h5_handle.h"
#include "data/sampler.h"
#include "trainer/config/run_options.h"
#include "trainer/run/agreed_failure.h"
#include "trainer/state/resume.h"

namespace distgan {

namespace {

using data::splitmix64;

constexpr int64_t kGridSamples = 64;       // an 8x8 grid
constexpr int64_t kScatterSamples = 2500;  // points in a 2-D scatter plot (the VEEGAN protocol's count)

// Rank 0 finds the checkpoint and checks that it fits this run; every rank learns the position.
// Returns what rank 0 opened (empty elsewhere, and for a new run) and its allowed config changes.
ResumeSource resolve_resume(RunState& r, const std::string& resume, std::vector<std::string>& allowed_changes) {
  ResumeSource source;
  on_root_agreed(*r.comm, [&] {
    if (resume.empty()) return refuse_fresh_start_over_checkpoints(r.run_dir.string());
    source = open_resume_source(resume, r.run_dir.string());
    if (!source.reader) {
      log_info("distgan: --resume auto: no checkpoint in %s: starting a new run\n",
                  checkpoint_directory(r.run_dir.string()).c_str());
      return;
    }
    const auto dataset = data::open_hdf5_source(loader_options(r.config, 0, 1).reader);
    allowed_changes = check_resume_config(source.info, r.config, dataset->sample_shape(), dataset->size());
    const TrainingPosition& p = source.info.position;
    if (p.epoch_position % r.global_batch != 0)
      throw data::DataError(source.info.path + ": epoch_position " + std::to_string(p.epoch_position) +
                            " is not a multiple of the global batch " + std::to_string(r.global_batch));
  });
  const TrainingPosition& p = source.info.position;
  torch::Tensor v = torch::tensor({int64_t{source.reader ? source.info.world_size : 0}, p.step, p.epoch,
                                   p.epoch_position, p.samples_seen}, torch::kInt64);
  r.comm->broadcast(v, 0);
  const auto a = v.accessor<int64_t, 1>();
  r.resumed_world_size = static_cast<int>(a[0]);
  r.position = {a[1], a[2], a[3], a[4]};
  return source;
}

// Each rank's noise generator: the checkpoint's row for this rank when the world size is the same,
// else new streams seeded from the step (so every resume is reproducible). Returns what happened.
std::string restore_noise(RunState& r, torch::Tensor rng) {
  const auto seed = static_cast<uint64_t>(r.config.training.seed);
  const auto rank = static_cast<uint64_t>(r.rank());
  r.noise = at::detail::createCPUGenerator(splitmix64(seed ^ kNoiseStream) + rank);
  if (r.resumed_world_size == 0) return "";
  torch::Tensor dims = torch::tensor({rng.defined() ? rng.size(0) : 0, rng.defined() ? rng.size(1) : 0});
  r.comm->broadcast(dims, 0);
  if (!r.is_root()) rng = torch::empty({dims[0].item<int64_t>(), dims[1].item<int64_t>()}, torch::kUInt8);
  r.comm->broadcast(rng, 0);
  if (rng.size(0) == r.world_size() && rng.size(1) == r.noise.get_state().numel()) {
    r.noise.set_state(rng[r.rank()].clone());
    return "noise streams continue";
  }
  const uint64_t step = splitmix64(static_cast<uint64_t>(r.position.step));
  r.noise = at::detail::createCPUGenerator(splitmix64(seed ^ kNoiseStream ^ step) + rank);
  return "noise streams re-seeded";
}

void print_start(const RunState& r, const ResumeSource& source, const std::string& noise_note,
                 const std::vector<std::string>& allowed_changes) {
  log_info("distgan: training %s (G %lld, D %lld parameters) on %d rank(s) (%s, %s backend%s), %d thread(s) "
              "each, batch %lld (%lld per rank), %lld steps; run directory %s\n",
              r.spec.name.c_str(), static_cast<long long>(parameter_count(*r.step->models().generator)),
              static_cast<long long>(parameter_count(*r.step->models().discriminator)), r.world_size(),
              r.device.is_cuda() ? "cuda" : "cpu", r.comm->name().c_str(),
              r.config.training.amp == "bf16" ? ", bf16 autocast" : "", r.threads,
              static_cast<long long>(r.global_batch), static_cast<long long>(r.per_rank_batch),
              static_cast<long long>(r.config.training.steps), r.run_dir.c_str());
  if (r.config.training.amp == "bf16" && !r.device.is_cuda() && !cpu_has_native_bf16())
    log_warning("distgan: training.amp: bf16 on a CPU without native bf16 (avx512_bf16 or amx_bf16 in /proc/cpuinfo): "
                "it is emulated and likely slower than training.amp: none\n");
  if (r.resumed_world_size > 0) {
    log_info("distgan: resumed from %s at step %lld (epoch %lld, sample %lld of the epoch); %s\n",
                source.info.path.c_str(), static_cast<long long>(r.position.step),
                static_cast<long long>(r.position.epoch), static_cast<long long>(r.position.epoch_position),
                noise_note.c_str());
    if (r.resumed_world_size != r.world_size())
      log_info("distgan: world size changed: the checkpoint was written by %d rank(s), this run has %d; the global "
                  "batch stays %lld (%lld per rank)\n",
                  r.resumed_world_size, r.world_size(), static_cast<long long>(r.global_batch),
                  static_cast<long long>(r.per_rank_batch));
    for (const auto& change : allowed_changes) log_info("distgan: changed on resume: %s\n", change.c_str());
  }
  std::fflush(stdout);
}

// Parameters, buffers and optimizer state from rank 0 (which read the checkpoint, if any) to every
// rank; each rank's noise generator from the checkpoint's row for it.
void restore_state(RunState& r, ResumeSource source, const std::vector<std::string>& allowed_changes) {
  torch::Tensor rng;
  on_root_agreed(*r.comm, [&] {
    if (source.reader) rng = restore_checkpoint(*source.reader, *r.step);
  });
  r.step->broadcast_from_root();
  const std::string noise_note = restore_noise(r, rng);
  if (r.is_root()) print_start(r, source, noise_note, allowed_changes);
}

void prepare_run_directory(RunState& r) {
  r.hosts = cluster::gather_host_names(*r.comm, r.world->info().host);  // run_info.json, the log's stragglers
  if (!r.is_root()) return;
  RunInfo info;
  info.world_size = r.world_size();
  info.device = r.device.str();
  info.backend = r.comm->name();
  info.threads = r.threads;
  info.hosts = r.hosts;
  info.model_summary = r.spec.name + " (G " + std::to_string(parameter_count(*r.step->models().generator)) + ", D " +
                       std::to_string(parameter_count(*r.step->models().discriminator)) + " parameters" +
                       (r.spec.num_classes > 0 ? ", " + std::to_string(r.spec.num_classes) + " classes" : "") + ")";
  const bool resumed = r.resumed_world_size > 0;
  r.outputs = std::make_unique<RunOutputs>(r.config, r.run_dir, resumed ? r.position.step : -1, info);
  if (resumed)
    for (const auto& path : set_aside_newer_checkpoints(r.run_dir.string(), r.position.step))
      log_info("distgan: %s is newer than the checkpoint resumed from: renamed to %s.abandoned\n", path.c_str(),
                  path.c_str());
  r.writer = std::make_unique<CheckpointWriter>(checkpoint_directory(r.run_dir.string()), r.config.checkpoint.keep);
}

// The noise (and labels) of every sample grid or scatter plot: the same at every step of a run.
void make_fixed_samples(RunState& r) {
  at::Generator sample_noise =
      at::detail::createCPUGenerator(splitmix64(static_cast<uint64_t>(r.config.training.seed) ^ kSampleStream));
  const bool images = r.spec.sample_shape.size() == 3;
  const int64_t classes = r.spec.num_classes, shown_classes = std::min<int64_t>(classes, 16);
  const int64_t shown = !images ? kScatterSamples : classes > 0 ? 8 * shown_classes : kGridSamples;
  r.fixed_noise = torch::randn({shown, r.spec.z_dim}, sample_noise).to(r.device);
  if (classes > 0)  // rows of 8 per class in the grids; every class in turn in the scatter plots
    r.fixed_labels = (images ? torch::arange(shown_classes).repeat_interleave(8) : torch::arange(shown) % classes)
                         .to(r.device);
  if (!images && r.is_root()) {  // real points for the scatter plots: a few batches from a fresh reader
    data::LoaderOptions rl = loader_options(r.config, 0, 1);
    rl.batch_size = std::min<int64_t>(kScatterSamples, r.loader->dataset_size());
    rl.prefetch_batches = 1;
    r.real_points = data::PrefetchLoader(rl).next().data;
  }
}

// Rank 0 reads the evaluation reference (or its cache) now, so its errors come before step 1;
// then every other rank loads the feature extractor for its share of each evaluation.
void make_evaluator(RunState& r) {
  if (r.config.eval.every <= 0) return;
  const auto make = [&](bool with_reference) {
    try {
      r.evaluator = std::make_unique<Evaluator>(eval_options(r.config), r.spec.sample_shape, with_reference);
    } catch (const std::invalid_argument& error) {
      throw ConfigError(std::string("eval.every: ") + error.what());
    }
  };
  on_root_agreed(*r.comm, [&] { make(true); });
  on_every_rank_agreed(*r.comm, [&] {
    if (!r.is_root()) make(false);
  });
  // Rank 0's sample count for everyone: a 2-D reference another host cannot read would otherwise
  // give that rank another count, and the evaluation's gathers different sizes.
  torch::Tensor count = torch::tensor({r.evaluator->sample_count()}, torch::kInt64);
  r.comm->broadcast(count, 0);
  r.evaluator->use_sample_count(count.item<int64_t>());
}

void make_loader_and_step(RunState& r) {
  data::LoaderOptions lo = loader_options(r.config, r.rank(), r.world_size());
  lo.start_epoch = r.position.epoch;
  lo.start_batch = r.position.epoch_position / r.global_batch;
  if (r.device.is_cuda()) lo.pin_for_cuda_device = r.device.index();
  r.per_rank_batch = lo.batch_size;
  r.loader = std::make_unique<data::PrefetchLoader>(lo);
  r.spec = model_spec(r.config, r.loader->sample_shape());
  r.augment = augment_policy(r.config, r.spec);
  torch::manual_seed(static_cast<uint64_t>(r.config.training.seed));
  GanModels models = build_models(r.spec);  // initialised on the host (same values on CPU and GPU runs)
  models.generator->to(r.device);
  models.discriminator->to(r.device);
  if (models.generator_ema) models.generator_ema->to(r.device);
  r.channels_last = uses_channels_last(r.config, r.spec);
  if (r.channels_last)  // before the step: its gradient buckets take the parameters' layout
    for (torch::nn::Module* m : {models.generator.ptr().get(), models.discriminator.ptr().get(),
                         models.generator_ema ? models.generator_ema.ptr().get() : nullptr})
      if (m) to_channels_last(*m);
  r.step = std::make_unique<AdversarialStep>(std::move(models), *r.comm, step_options(r.config));
}

}  // namespace

RunState set_up_run(const Config& config, const cluster::World& world, const std::string& resume,
                    const FaultPlan& faults) {
  RunState r;
  r.config = config;
  resolve_classes(r.config);  // model.num_classes from the labels (the launcher has done it already)
  r.world = &world;
  r.faults = faults;
  r.run_dir = r.config.logging.run_dir;
  set_log_level(parse_log_level(r.config.logging.level));
  cluster::install_preemption_handlers();  // again (idempotent), for callers other than the launcher
  data::require_threadsafe_hdf5();
  r.threads = cluster::configure_compute_threads(static_cast<int>(r.config.cluster.threads));
  cluster::keep_freed_host_memory();
  r.device = torch::Device(rank_device(r.config, world.info().local_rank));
  cluster::make_current_device(r.device.str());
  cluster::CommunicatorOptions co = communicator_options(r.config, world.info().local_rank);
  if (r.device.is_cuda()) co.device_index = r.device.index();  // cuda:0 when each rank sees only its own GPU
  co.watchdog = faults.watchdog;
  r.comm = cluster::make_communicator(co);
  r.global_batch = r.config.training.batch_size;
  std::vector<std::string> allowed_changes;  // rank 0: config keys changed on resume
  ResumeSource source = resolve_resume(r, resume, allowed_changes);
  make_loader_and_step(r);
  restore_state(r, std::move(source), allowed_changes);
  make_fixed_samples(r);
  prepare_run_directory(r);
  make_evaluator(r);
  if (r.position.step >= r.config.training.steps && r.is_root())
    log_info("distgan: the checkpoint is at step %lld and training.steps is %lld: nothing left to train\n",
                static_cast<long long>(r.position.step), static_cast<long long>(r.config.training.steps));
  r.last_checkpoint_step = r.resumed_world_size > 0 ? r.position.step : -1;
  return r;
}

}  // namespace distgan
