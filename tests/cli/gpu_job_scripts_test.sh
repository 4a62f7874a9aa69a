#!/usr/bin/env bash
# The GPU job scripts' checks of how Slurm hands out GPUs, with stand-ins for srun and scontrol (no
# Slurm and no GPU needed): every rank seeing the node's GPUs and one GPU per task
# (--gpus-per-task=1) both start the ranks on CUDA; more than one GPU per task is refused before
# srun; unequal GPUs and ranks per node are warned about.
set -u
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../lib/assert.sh"
source "$here/../lib/fake_slurm.sh"
enter_test_dir

no_srun() { ! job_output "$@" | grep -q '^srun '; }
fake_slurm fakebin
mkdir -p submit/build/launcher
printf '#!/bin/sh\n' >submit/build/launcher/distgan && chmod +x submit/build/launcher/distgan
for name in gpu-node gpu-multinode; do
  job=$here/../../cluster/slurm/$name.sbatch
  expect_ok "$name: every rank sees the node's GPUs" "--resume auto --set cluster.device=cuda$" \
    job_runs "$job" SLURM_GPUS_ON_NODE=4 SLURM_NTASKS_PER_NODE=4
  expect_ok "$name: one GPU per task" "--resume auto --set cluster.device=cuda$" \
    job_runs "$job" SLURM_GPUS_PER_TASK=1 SLURM_NTASKS_PER_NODE=4
  expect_fail 2 "$name: two GPUs per task are refused" "--gpus-per-task=2: a rank uses one GPU; give --gpus-per-task=1" \
    job_output "$job" SLURM_GPUS_PER_TASK=2
  expect_ok "$name: ... and no rank is started" "" no_srun "$job" SLURM_GPUS_PER_TASK=2
  expect_fail 0 "$name: fewer GPUs than ranks on a node are warned about" \
    "warning: 8 ranks but 4 GPU(s) per node; give --gpus-per-node and --ntasks-per-node the same value" \
    job_output "$job" SLURM_GPUS_ON_NODE=4 SLURM_NTASKS_PER_NODE=8
done
finish
