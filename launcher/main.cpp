// distgan: distributed GAN training. `distgan --help` lists the subcommands.
#include <cstdio>
#include <cstdlib>
#include <string>

#ifdef DISTGAN_HAVE_NCCL
#include "cluster/nccl_support.h"
#endif
#include <torch/version.h>

#include "cluster/world.h"
#include "launcher/commands.h"
#include "trainer/config/config.h"
#include "trainer/model/onednn_conv_transpose.h"
#include "trainer/outputs/version.h"

namespace {

// "[rank N] " when started by an MPI launcher (errors may come before MPI is initialised), else "".
std::string rank_prefix() {
  for (const char* name : {"OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PMI_RANK", "SLURM_PROCID"})
    if (const char* value = std::getenv(name)) return std::string("[rank ") + value + "] ";
  return "";
}

// "distgan 0.1.0 (LibTorch 1.13.0 without CUDA, NCCL 2.28.9 compiled in, 2.28.9 loaded, oneDNN 2.6.3
// transposed convolutions)": what this
// build can do, and which NCCL the dynamic loader found (a problem with it is named here too).
std::string version_text() {
  std::string nccl = "no NCCL";
#ifdef DISTGAN_HAVE_NCCL
  using namespace distgan::cluster;
  const int loaded = loaded_nccl_version();
  const std::string problem = nccl_version_problem(loaded, NCCL_VERSION_CODE);
  nccl = "NCCL " + nccl_version_text(NCCL_VERSION_CODE) + " compiled in, " + nccl_version_text(loaded) + " loaded" +
         (problem.empty() ? "" : ": " + problem);
#endif
  const std::string onednn = distgan::onednn_compiled_in()
                                 ? "oneDNN " + distgan::onednn_version() + " transposed convolutions"
                                 : "LibTorch transposed convolutions";
  return std::string("distgan ") + distgan::distgan_version() + " (LibTorch " + TORCH_VERSION +
         (distgan::cluster::libtorch_has_cuda() ? " with CUDA" : " without CUDA") + ", " + nccl + ", " + onednn + ")";
}

}  // namespace

int main(int argc, char** argv) {
  using namespace distgan::launcher;
  CLI::App app{"distgan: distributed GAN training on MPI ranks (LibTorch, HDF5, YAML)", "distgan"};
  app.require_subcommand(1);
  app.set_version_flag("--version", version_text());
  app.footer("Run `distgan <command> --help` for the options of a command.");
  // Registered in this order, so the i-th subcommand of `app` runs with runners[i].
  const std::vector<Runner> runners{add_prep_command(app), add_inspect_command(app),
                                    add_train_command(app, &argc, &argv), add_sample_command(app),
                                    add_report_command(app), add_eval_command(app)};
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? kExitOk : kExitUsage;
  }
  try {
    const auto subcommands = app.get_subcommands({});
    for (size_t i = 0; i < subcommands.size(); ++i)
      if (subcommands[i]->parsed()) return runners[i]();
    return kExitUsage;
  } catch (const CLI::ValidationError& e) {
    std::fprintf(stderr, "distgan: %s\n", e.what());
    return kExitUsage;
  } catch (const distgan::ConfigError& e) {
    std::fprintf(stderr, "distgan: %sconfig error: %s\n", rank_prefix().c_str(), e.what());
    return kExitUsage;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "distgan: %serror: %s\n", rank_prefix().c_str(), e.what());
    return kExitError;
  }
}
