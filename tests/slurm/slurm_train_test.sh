#!/usr/bin/env bash
# Slurm end to end: a one-machine cluster (cluster/local-slurm.sh) runs cluster/slurm/cpu.sbatch
# with configs/smoke.yaml on 2 tasks through srun --mpi=pmix; the job completes and leaves the
# metrics and the last checkpoint. Skipped (77) where Slurm cannot be started here.
set -u
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../lib/assert.sh"
repo=$(cd "$here/../.." && pwd)
config=$repo/configs/smoke.yaml
enter_test_dir
source "$here/lib.sh"

expect_ok "prep the test split" "10000, 1, 28, 28" "$DISTGAN" prep fashion-mnist --split test --out fm.h5
# DISTGAN and OMPI_ALLOW_RUN_AS_ROOT* reach the job through sbatch's default --export=ALL.
jid=$(sbatch --parsable "$repo/cluster/slurm/cpu.sbatch" "$config" \
  --set data.path="$PWD/fm.h5" --set logging.run_dir="$PWD/run" 2>&1)
expect_ok "sbatch accepts cpu.sbatch" '^[0-9]+$' echo "$jid"
expect_ok "the job ends within 240 s" "" wait_done "$jid" 240
expect_ok "the job completed" "JobState=COMPLETED" scontrol show job "$jid"
expect_ok "with exit code 0" "ExitCode=0:0" scontrol show job "$jid"
expect_ok "on 2 ranks" "on 2 rank\(s\)" cat "distgan-$jid.out"
expect_ok "distgan finished" "distgan: done in" cat "distgan-$jid.out"
expect_ok "metrics end at step 20" "last step 20" $py -c '
import json; print("last step", json.loads(open("run/metrics.jsonl").read().splitlines()[-1])["step"])'
expect_ok "the step-20 checkpoint exists" "" test -s run/checkpoints/ckpt_00000020.h5
[ "$failed" -eq 0 ] || { echo "--- job output"; cat "distgan-$jid.out"; }
finish
