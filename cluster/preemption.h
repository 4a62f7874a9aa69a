// Preemption signals. Slurm sends SIGUSR1 (from `--signal`) or SIGTERM (time limit, scancel,
// preemption) some seconds before it kills a job; mpirun forwards SIGUSR1 to its ranks. The
// handlers only record the signal (async-signal-safe); the training loop reads the record at each
// step boundary and the ranks agree on it through a collective, so every rank stops at the same
// step and rank 0 writes a checkpoint. A second signal changes nothing: the first one is acted on.
#pragma once

namespace distgan::cluster {

// Installs the handlers for SIGTERM and SIGUSR1 (idempotent).
void install_preemption_handlers();

// The first preemption signal received by this process (SIGTERM or SIGUSR1), or 0.
int preemption_signal();

// Forgets a received signal (tests).
void clear_preemption_signal();

}  // namespace distgan::cluster
