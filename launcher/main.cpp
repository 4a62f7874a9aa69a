// distgan: distributed GAN training. `distgan --help` lists the subcommands.
#include <cstdio>

#include "launcher/commands.h"
#include "trainer/config.h"

int main(int argc, char** argv) {
  using namespace distgan::launcher;
  CLI::App app{"distgan: distributed GAN training on MPI ranks (LibTorch, HDF5, YAML)", "distgan"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "distgan 0.1.0");
  app.footer("Run `distgan <command> --help` for the options of a command.");
  // Registered in this order, so the i-th subcommand of `app` runs with runners[i].
  const std::vector<Runner> runners{add_prep_command(app), add_inspect_command(app),
                                    add_train_command(app, &argc, &argv)};
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
  } catch (const distgan::ConfigError& e) {
    std::fprintf(stderr, "distgan: config error: %s\n", e.what());
    return kExitUsage;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "distgan: error: %s\n", e.what());
    return kExitError;
  }
}
