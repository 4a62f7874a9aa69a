#!/usr/bin/env bash
# A rank killed (SIGKILL) or stuck (SIGSTOP) mid-training: the job ends non-zero well within 60 s,
# a stuck rank is named by the collective watchdog, the last checkpoint stays intact, and
# --resume auto continues from it.
set -u
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../lib/assert.sh"
config=$(realpath "$here/../../configs/smoke.yaml")
enter_test_dir
prep_fashion_test fm.h5

# start RUN_DIR: a long 2-rank run in the background (job pid in $job), once it has a checkpoint.
start() {
  mpiexec -n 2 --oversubscribe "$DISTGAN" train -c "$config" --set data.path=fm.h5 --set logging.run_dir="$1" \
    --set training.steps=100000 --set checkpoint.every=50 --set logging.every=50 \
    --set cluster.collective_timeout_s=3 >"$1.log" 2>&1 &
  job=$!
  for _ in $(seq 300); do ls "$1"/checkpoints/ckpt_*.h5 >/dev/null 2>&1 && break; sleep 0.1; done
  sleep 0.5
  ranks=($(pgrep -f "^$DISTGAN train .*logging.run_dir=$1 "))
}
# ends_within SECONDS: waits for $job; sets rc and elapsed.
ends_within() {
  local t0=$SECONDS
  for _ in $(seq $(($1 * 10))); do kill -0 "$job" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$job" 2>/dev/null; then kill -9 "$job"; rc=999; else wait "$job"; rc=$?; fi
  elapsed=$((SECONDS - t0))
}
newest_loads() {  # RUN_DIR: the newest checkpoint is complete (its checksum and every tensor's crc32)
  local newest; newest=$(ls "$1"/checkpoints/ckpt_*.h5 | sort | tail -n 1)
  "$DISTGAN" sample -k "$newest" -n 2 --out "$1-check.h5" >/dev/null && echo "intact: $newest"
}

start killed
kill -KILL "${ranks[1]}"
ends_within 60
expect_ok "a SIGKILLed rank ends the job non-zero within 60 s (took ${elapsed}s)" "" \
  test "$rc" -ne 0 -a "$rc" -ne 999
expect_ok "the last checkpoint is intact" "intact" newest_loads killed
expect_ok "--resume auto continues from it" "resumed from killed/checkpoints/ckpt_" \
  mpiexec -n 2 --oversubscribe "$DISTGAN" train -c "$config" --set data.path=fm.h5 --set logging.run_dir=killed \
  --set checkpoint.every=50 --set logging.every=50 --set training.steps=\
$(( $(ls killed/checkpoints | sort | tail -n 1 | sed 's/ckpt_0*\([0-9]*\).h5/\1/') + 10 )) --resume auto

start stuck
kill -STOP "${ranks[1]}"
ends_within 60
kill -CONT "${ranks[1]}" 2>/dev/null
expect_ok "a stuck rank: the watchdog ends the job non-zero within 60 s (took ${elapsed}s)" "" \
  test "$rc" -ne 0 -a "$rc" -ne 999
expect_ok "and names the collective, the step and the rank" \
  "collective watchdog: rank 0, step [0-9]+: .* did not complete after [0-9.]+ s \(cluster.collective_timeout_s = 3\)" \
  cat stuck.log
expect_ok "the last checkpoint is intact" "intact" newest_loads stuck
pkill -KILL -f "^$DISTGAN train .*logging.run_dir=stuck " 2>/dev/null
finish
