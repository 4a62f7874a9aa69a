// `distgan train`: loads the configuration (YAML file plus --set overrides) and, on every rank,
// validates it against the world size and the dataset. The training loop itself arrives with the
// distributed-training issue; until then `train` without --check or --print-config says so.
#include <mpi.h>

#include <cstdio>

#include "cluster/world.h"
#include "launcher/commands.h"
#include "launcher/run_options.h"

namespace distgan::launcher {

namespace {

struct TrainOptions {
  std::string config_path;
  std::vector<std::string> overrides;
  bool print_config = false;
  bool check = false;
};

Config load(const TrainOptions& o) {
  Config config = o.config_path.empty() ? Config{} : load_config(o.config_path);
  for (const auto& assignment : o.overrides) apply_override(config, assignment);
  return config;
}

// Every rank validates; all ranks learn whether any failed, so none exits 0 while another fails.
int check_on_all_ranks(const Config& config, const cluster::World& world) {
  int failed = 0;
  std::string message;
  int exit_code = kExitError;
  std::string summary;
  try {
    data::PrefetchLoader loader(loader_options(config, world.rank(), world.size()));
    const data::Batch first = loader.next();
    summary = "dataset " + config.data.path + config.data.dataset + ": " + std::to_string(loader.dataset_size()) +
              " samples, " + std::to_string(loader.batches_per_epoch()) + " batches of " +
              std::to_string(first.data.size(0)) + " per rank per epoch";
  } catch (const ConfigError& e) {
    failed = 1;
    message = std::string("config error: ") + e.what();
    exit_code = kExitUsage;
  } catch (const std::exception& e) {
    failed = 1;
    message = std::string("error: ") + e.what();
  }
  if (failed) std::fprintf(stderr, "distgan: [rank %d] %s\n", world.rank(), message.c_str());
  int any_failed = failed;
  MPI_Allreduce(&failed, &any_failed, 1, MPI_INT, MPI_MAX, world.comm());
  int worst_code = failed ? exit_code : 0;
  MPI_Allreduce(MPI_IN_PLACE, &worst_code, 1, MPI_INT, MPI_MAX, world.comm());
  if (any_failed) return worst_code == 0 ? kExitError : worst_code;
  if (world.rank() == 0)
    std::printf("config OK on %d rank(s): %s\n", world.size(), summary.c_str());
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

  return [o, argc, argv]() -> int {
    const Config config = load(*o);  // before MPI: a config error needs no job
    if (o->print_config) {
      std::fputs(print_config(config).c_str(), stdout);
      return kExitOk;
    }
    cluster::World world(argc, argv);
    if (o->check) return check_on_all_ranks(config, world);
    if (world.rank() == 0)
      std::fprintf(stderr,
                   "distgan: the training loop is not part of this build yet; `distgan train --check` validates "
                   "a configuration and its dataset on every rank\n");
    return kExitUsage;
  };
}

}  // namespace distgan::launcher
