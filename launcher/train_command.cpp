// `distgan train`: loads the configuration (YAML file plus --set overrides), validates it on every
// rank against the world size and the dataset, and trains (trainer/run/training_loop.h).
#include <cstdio>

#include "cluster/mpi_communicator.h"
#include "cluster/preemption.h"
#include "cluster/world.h"
#include "launcher/commands.h"
#include "trainer/state/checkpoint.h"
#include "trainer/state/model_file.h"
#include "trainer/config/run_options.h"
#include "trainer/run/fault_plan.h"
#include "trainer/run/training_loop.h"

namespace distgan::launcher {

namespace {

struct TrainOptions {
  std::string config_path;
  std::vector<std::string> overrides;
  bool print_config = false;
  bool check = false;
  std::string resume;
};

// The configuration: the YAML file, else (resuming from a named checkpoint) the checkpoint's own,
// else the defaults; then the --set overrides.
Config load(const TrainOptions& o) {
  Config config;
  if (!o.config_path.empty()) {
    config = load_config(o.config_path);
  } else if (!o.resume.empty() && o.resume != "auto") {
    config = read_checkpoint_info(TensorFileReader(o.resume)).config;
  }
  for (const auto& assignment : o.overrides) apply_override(config, assignment);
  return config;
}

// Every rank validates; all ranks learn whether any failed, so none exits 0 while another fails.
int check_on_all_ranks(Config& config, const cluster::World& world, const FaultPlan& faults, bool quiet = false) {
  int failed = 0;
  std::string message;
  int exit_code = kExitError;
  std::string summary;
  try {
    resolve_classes(config);  // model.num_classes from the labels
    rank_device(config, world.info().local_rank);  // first: the loader pins memory for a GPU
    data::PrefetchLoader loader(loader_options(config, world.rank(), world.size()));
    const data::Batch first = loader.next();
    const ModelSpec spec = model_spec(config, loader.sample_shape());
    build_models(spec);            // the model fits the data
    augment_policy(config, spec);  // and so does the augmentation
    summary = "dataset " + config.data.path + config.data.dataset + ": " + std::to_string(loader.dataset_size()) +
              " samples, " + std::to_string(loader.batches_per_epoch()) + " batches of " +
              std::to_string(first.data.size(0)) + " per rank per epoch";
  } catch (const ConfigError& e) {
    failed = 1;
    message = std::string("config error: ") + e.what();
    exit_code = kExitUsage;
  } catch (const std::invalid_argument& e) {  // a model that does not fit the data
    failed = 1;
    message = std::string("config error: ") + e.what();
    exit_code = kExitUsage;
  } catch (const std::exception& e) {
    failed = 1;
    message = std::string("error: ") + e.what();
  }
  if (failed) std::fprintf(stderr, "distgan: [rank %d] %s\n", world.rank(), message.c_str());
  // Through a Communicator like every collective: a rank stuck in its checks (a hung file system)
  // becomes a watchdog error instead of a hang.
  cluster::MpiCommunicator comm(world.comm(), config.cluster.collective_timeout_s, faults.watchdog);
  torch::Tensor outcome = torch::tensor({int64_t{failed}, int64_t{failed ? exit_code : 0}}, torch::kInt64);
  comm.allreduce(outcome, {cluster::ReduceOp::kMax})->wait();
  if (outcome[0].item<int64_t>() != 0) {
    const int worst_code = static_cast<int>(outcome[1].item<int64_t>());
    return worst_code == 0 ? kExitError : worst_code;
  }
  if (world.rank() == 0 && !quiet) std::printf("config OK on %d rank(s): %s\n", world.size(), summary.c_str());
  return kExitOk;
}

}  // namespace

Runner add_train_command(CLI::App& app, int* argc, char*** argv) {
  auto o = std::make_shared<TrainOptions>();
  auto* cmd = app.add_subcommand("train", "train a GAN on every MPI rank (launch with mpirun or srun)");
  cmd->add_option("-c,--config", o->config_path, "YAML run configuration (defaults when omitted)")
      ->check(CLI::ExistingFile);
  cmd->add_option("--set", o->overrides, "override one key, e.g. --set training.lr_d=1e-4 (repeatable)")
      ->type_name("KEY=VALUE");
  cmd->add_flag("--print-config", o->print_config, "print the effective configuration as YAML and exit");
  cmd->add_flag("--check", o->check, "validate the configuration and dataset on every rank, then exit");
  cmd->add_option("--resume", o->resume,
                  "continue from a checkpoint file, or 'auto': the newest valid one in the run directory "
                  "(a new run when there is none). Without --config a named checkpoint's own config is used")
      ->type_name("FILE|auto");

  return [o, argc, argv]() -> int {
    Config config = load(*o);  // before MPI: a config error needs no job
    if (o->print_config) {
      std::fputs(print_config(config).c_str(), stdout);
      return kExitOk;
    }
    // From here a SIGTERM/SIGUSR1 (Slurm, mpirun) is recorded, not fatal: training acts on it at the
    // first step boundary, so a signal during start-up still ends in a checkpoint and exit 75.
    cluster::install_preemption_handlers();
    const FaultPlan faults = fault_plan_from_environment();  // test seams: parsed once, before MPI
    cluster::World world(argc, argv);
    if (o->check) return check_on_all_ranks(config, world, faults);
    // Validate on every rank first: a bad config or dataset ends every rank cleanly, without MPI_Abort.
    if (const int rc = check_on_all_ranks(config, world, faults, /*quiet=*/true); rc != kExitOk) return rc;
    try {
      if (run_training(config, world, o->resume, faults) == TrainingOutcome::kPreempted) return kExitPreempted;
    } catch (const AgreedFailure& e) {  // every rank knows: a clean exit, no abort
      if (e.should_print()) std::fprintf(stderr, "distgan: %s%s\n", e.exit_code() == kExitUsage ? "config error: " : "error: ", e.what());
      return e.exit_code();
    } catch (const std::exception& e) {
      // One rank failing alone would leave the others waiting in a collective forever: abort them all.
      if (world.size() > 1) world.abort(kExitError, e.what());
      throw;
    }
    return kExitOk;
  };
}

}  // namespace distgan::launcher
