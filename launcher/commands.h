// The subcommands of the `distgan` executable. Each registers its options on the CLI11 app and
// returns the function that runs it; main() turns any exception into one message and an exit code.
#pragma once

#include <CLI/CLI.hpp>

#include <functional>

namespace distgan::launcher {

using Runner = std::function<int()>;

// Exit codes shared by every subcommand (documented in docs/training-and-checkpoints.md).
constexpr int kExitOk = 0;
constexpr int kExitError = 1;       // runtime failure: data, I/O, MPI
constexpr int kExitUsage = 2;       // bad command line or configuration
// 75 (kExitPreempted, trainer/run/training_loop.h): stopped by SIGTERM/SIGUSR1 after writing a checkpoint

Runner add_prep_command(CLI::App& app);
Runner add_inspect_command(CLI::App& app);
Runner add_train_command(CLI::App& app, int* argc, char*** argv);
Runner add_sample_command(CLI::App& app);
Runner add_report_command(CLI::App& app);
Runner add_eval_command(CLI::App& app);

}  // namespace distgan::launcher
