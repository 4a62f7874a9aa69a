#!/usr/bin/env bash
# An unwritable or full checkpoint directory (a small tmpfs mounted on it): the failure is logged
# with the path and the reason, the previous checkpoint stays, training goes on and retries
# (checkpoint.on_error: continue), or every rank stops with exit 1 (abort). Needs root for the
# mounts; skipped (77) otherwise.
set -u
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../lib/assert.sh"
config=$(realpath "$here/../../configs/smoke.yaml")
enter_test_dir
mounts=()
trap 'for m in "${mounts[@]}"; do umount "$m" 2>/dev/null; done; rm -rf "$tmp"' EXIT
# small_disk DIR OPTIONS: a tmpfs of its own at DIR.
small_disk() {
  mkdir -p "$1" && mount -t tmpfs -o "$2" tmpfs "$1" 2>/dev/null || { echo "SKIP cannot mount a tmpfs (not root?)"; exit 77; }
  mounts+=("$1")
}
prep_fashion_test fm.h5
train() {  # RUN_DIR [args...]
  local run=$1; shift
  mpiexec -n 2 --oversubscribe "$DISTGAN" train -c "$config" --set data.path=fm.h5 --set logging.run_dir="$run" \
    --set checkpoint.every=4 --set checkpoint.keep=1 "$@"
}

# Room for one checkpoint (0.5 MB) but not for the next beside it.
small_disk full/checkpoints size=800k
train full >full.log 2>&1
rc=$?
expect_ok "a full disk: the run goes on and finishes (exit 0, model file written)" "" test $rc -eq 0 -a -s full/final.h5
expect_ok "each failure is logged with the path, the reason, and the checkpoint that stays" \
  "ERROR: a checkpoint could not be written: .*full/checkpoints/.*ckpt_00000008.h5.*No space left on device.*The previous checkpoint .*ckpt_00000004.h5 stays; training continues and retries at the next interval" \
  cat full.log
expect_ok "it retried at every interval (steps 8, 12, 16, 20)" "^4$" grep -c "could not be written" full.log
expect_ok "the previous checkpoint stays and loads" "wrote 2 items" \
  "$DISTGAN" sample -k full/checkpoints/ckpt_00000004.h5 -n 2 --out full-check.h5
expect_ok "no temporary file is left on the full disk" "^ckpt_00000004.h5$" ls -A full/checkpoints

small_disk readonly/checkpoints size=1m,ro
train readonly --set checkpoint.on_error=abort >readonly.log 2>&1
rc=$?
expect_ok "a read-only directory with checkpoint.on_error: abort stops every rank with exit 1" \
  "stopping after a failed checkpoint \(checkpoint.on_error: abort" bash -c "[ $rc -eq 1 ] && cat readonly.log"
expect_ok "and the log says where and why" "readonly/checkpoints.*(Read-only file system|read-only)" cat readonly.log
expect_ok "it stopped early: no model file, no checkpoint" "" bash -c "! ls readonly/final.h5 readonly/checkpoints/* 2>/dev/null"
finish
