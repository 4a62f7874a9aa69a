#!/usr/bin/env bash
# Faults during training, end to end on 2 ranks, injected through test hooks:
#   DISTGAN_FAULT_NONFINITE_STEPS=a,b  the last rank's batch is NaN at those steps (the non-finite policy)
#   DISTGAN_FAULT_PERTURB_STEP=n       the last rank changes one weight at step n (the replica check)
#   DISTGAN_FAULT_SIGNAL_STEP=n        the last rank sends itself SIGTERM after step n (the agreed stop)
set -u
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../lib/assert.sh"
config=$(realpath "$here/../../configs/smoke.yaml")
enter_test_dir
prep_fashion_test fm.h5
train() {  # RUN_DIR FAULT_STEPS [args...]
  local run=$1 faults=$2; shift 2
  DISTGAN_FAULT_NONFINITE_STEPS=$faults mpiexec -n 2 --oversubscribe -x DISTGAN_FAULT_NONFINITE_STEPS \
    "$DISTGAN" train -c "$config" --set data.path=fm.h5 --set logging.run_dir="$run" --set checkpoint.every=4 \
    --set logging.every=5 "$@"
}

expect_ok "skip: two poisoned steps are skipped on every rank and training finishes" \
  "warning: skipped the non-finite D update at step 6 .*on every rank" train skip 6,7
expect_ok "the metrics count them and stay finite" "metrics ok" $py - <<'PY'
import json, math
rows = [json.loads(l) for l in open("skip/metrics.jsonl")]
assert [r["skipped"] for r in rows] == [0, 2, 0, 0], [r["skipped"] for r in rows]
assert all(math.isfinite(r["loss_d"]) and math.isfinite(r["grad_norm_d"]) and r["grad_norm_g"] > 0 for r in rows)
print("metrics ok")
PY
expect_fail 1 "abort: the first non-finite update ends every rank with exit 1" \
  "non-finite D update at step 6 .* and training.on_nonfinite is abort; the last checkpoint is kept" \
  train abort 6 --set training.on_nonfinite=abort
expect_ok "the last good checkpoint is kept and nothing later was written" "^ckpt_00000004.h5$" ls abort/checkpoints
expect_no_file "no final model after an abort" "abort/final.h5"
expect_fail 1 "skip: more than max_consecutive_skips in a row ends the run" \
  "3 steps in a row had a skipped update \(training.max_consecutive_skips = 2\)" \
  train many 6,7,8 --set training.max_consecutive_skips=2
expect_ok "the aborted run resumes from its last checkpoint" "resumed from abort/checkpoints/ckpt_00000004.h5" \
  train abort "" --set training.on_nonfinite=abort --resume auto
expect_fail 1 "a replica that drifts is caught at the next check, naming the tensor and the rank" \
  "replica check at step 8: discriminator/5.bias differs between rank 0 and rank\(s\) 1" \
  env DISTGAN_FAULT_PERTURB_STEP=7 mpiexec -n 2 --oversubscribe -x DISTGAN_FAULT_PERTURB_STEP "$DISTGAN" train \
  -c "$config" --set data.path=fm.h5 --set logging.run_dir=drift --set checkpoint.every=4 \
  --set cluster.check_replicas_every=4
expect_ok "the checkpoint before the drift is kept" "^ckpt_00000004.h5$" ls drift/checkpoints
expect_ok "identical replicas pass the check every step" "distgan: done" \
  train nodrift "" --set cluster.check_replicas_every=1
# The preemption flags sent after step n are read after step n+1 (they never wait on the link):
# every rank stops there, the one signalled and the other alike.
signalled() {  # RUN_DIR STEP [args...]
  local run=$1 step=$2; shift 2
  env DISTGAN_FAULT_SIGNAL_STEP=$step mpiexec -n 2 --oversubscribe -x DISTGAN_FAULT_SIGNAL_STEP "$DISTGAN" train \
    -c "$config" --set data.path=fm.h5 --set logging.run_dir="$run" --set checkpoint.every=4 "$@"
}
expect_fail 75 "SIGTERM on the last rank after step 5: every rank stops after step 6 with exit 75" \
  "preempted \(SIGTERM\) at step 6: writing a checkpoint" signalled signal 5
expect_ok "its checkpoint is step 6's" "^ckpt_00000006.h5$" ls signal/checkpoints
signalled lastsig 20 >lastsig.log 2>&1
rc=$?
expect_ok "SIGTERM during the last step: the run completes (exit 0, no preemption)" "completed, not preempted" \
  bash -c "[ $rc -eq 0 ] && grep -q 'distgan: done' lastsig.log && ! grep -q preempted lastsig.log && echo 'completed, not preempted' || { echo \"exit $rc\"; tail -n 20 lastsig.log; }"
expect_fail 1 "a malformed DISTGAN_MPI_PROGRESS_US is one clear error on every rank" \
  "rank 1\] error: DISTGAN_MPI_PROGRESS_US: 'abc' is not a whole number of microseconds from 0 \(no progress thread\)" \
  env DISTGAN_MPI_PROGRESS_US=abc mpiexec -n 2 --oversubscribe -x DISTGAN_MPI_PROGRESS_US "$DISTGAN" train \
  -c "$config" --set data.path=fm.h5 --set logging.run_dir=progress
finish
