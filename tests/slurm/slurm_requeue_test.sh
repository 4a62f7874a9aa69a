#!/usr/bin/env bash
# Preemption under Slurm: cluster/slurm/cpu.sbatch trains on a one-machine cluster
# (cluster/local-slurm.sh); USR1 to the batch script, as `--signal=B:USR1@120` sends it before a
# time limit, makes distgan checkpoint and exit 75, the script requeues the job, and the restarted
# job resumes from that checkpoint and completes every step. Skipped (77) where Slurm cannot be
# started here.
set -u
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../lib/assert.sh"
repo=$(cd "$here/../.." && pwd)
config=$repo/configs/smoke.yaml
steps=1500  # about 20 s of training here: long enough to be interrupted half-way
enter_test_dir
source "$here/lib.sh"
last_step() { tail -n 1 run/metrics.jsonl 2>/dev/null | grep -oE '"step": *[0-9]+' | grep -oE '[0-9]+$'; }
wait_training() {  # JOBID SECONDS: until metrics show a step > 0 while the job runs
  local end=$((SECONDS + $2))
  while [ $SECONDS -lt $end ]; do
    [ "$(last_step)" -gt 0 ] 2>/dev/null && return 0
    case $(job_field "$1" JobState) in PENDING|CONFIGURING|RUNNING) ;; *) echo "the job ended first"; return 1 ;; esac
    sleep 0.2
  done
  echo "no metrics after $2 s"; return 1
}

expect_ok "prep the test split" "10000, 1, 28, 28" "$DISTGAN" prep fashion-mnist --split test --out fm.h5
# DISTGAN and OMPI_ALLOW_RUN_AS_ROOT* reach the job through sbatch's default --export=ALL.
jid=$(sbatch --parsable "$repo/cluster/slurm/cpu.sbatch" "$config" \
  --set data.path="$PWD/fm.h5" --set logging.run_dir="$PWD/run" --set training.steps=$steps \
  --set checkpoint.every=500 --set logging.every=10 --set logging.sample_every=500 2>&1)
expect_ok "sbatch accepts cpu.sbatch" '^[0-9]+$' echo "$jid"
expect_ok "training is under way within 120 s" "" wait_training "$jid" 120
before=$(last_step)
expect_ok "USR1 to the batch script" "" scancel --batch --signal=USR1 "$jid"
# The requeued job may start cred_expire + 1 = 11 s after the requeue (local-slurm.sh).
expect_ok "the job ends within 240 s" "" wait_done "$jid" 240
expect_ok "the job completed" "JobState=COMPLETED" scontrol show job "$jid"
expect_ok "with exit code 0" "ExitCode=0:0" scontrol show job "$jid"
expect_ok "after a restart" "^[1-9]" job_field "$jid" Restarts
log=distgan-$jid.out
expect_ok "the script passed the signal on" "SIGUSR1 at .*passing USR1" cat "$log"
expect_ok "distgan checkpointed after the signal" "distgan: preempted \(SIGUSR1\)" cat "$log"
expect_ok "the script requeued the job" "requeueing job $jid" cat "$log"
expect_ok "the second start resumed from the checkpoint" "resumed from .*/run/checkpoints/ckpt_[0-9]{8}\.h5" cat "$log"
resumed=$(grep -oE 'resumed from .*ckpt_[0-9]{8}' "$log" | head -n 1 | grep -oE '[0-9]{8}$')
expect_ok "the checkpoint is from after the step training had reached ($before)" "" \
  test "$((10#${resumed:-0}))" -ge "${before:-1}"
expect_ok "distgan finished" "distgan: done in" cat "$log"
expect_ok "metrics end at step $steps" "^$steps\$" last_step
expect_ok "the step-$steps checkpoint exists" "" test -s "run/checkpoints/ckpt_$(printf %08d $steps).h5"
[ "$failed" -eq 0 ] || { echo "--- job output"; cat "$log"; }
finish
