#!/usr/bin/env bash
# Two test hosts on this machine (cluster/local-hosts.sh: network namespaces joined by a veth pair,
# Open MPI's daemons started in them by an agent instead of ssh): `mpirun --hostfile` trains the
# smoke config with one rank per host over TCP, checkpoints and resumes; then the link between the
# hosts is cut mid-run, and the job must end non-zero within 60 s with the collective watchdog's
# error on both hosts and an intact checkpoint. Skipped (77) where namespaces cannot be made.
set -u
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../lib/assert.sh"
config=$(realpath "$here/../../configs/smoke.yaml")
local_hosts=$(realpath "$here/../../cluster/local-hosts.sh")
enter_test_dir

mpirun --version 2>/dev/null | grep -q "Open MPI" || { echo "SKIP: needs Open MPI's mpirun (plm_rsh_agent)"; exit 77; }

# The hosts go away on every exit: normal, failed assertion, SIGINT/SIGTERM (the watcher covers
# SIGKILL, e.g. a ctest timeout).
cleanup() { "$local_hosts" stop "$tmp/hosts" >/dev/null 2>&1; cd /; rm -rf "$tmp"; }
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
out=$("$local_hosts" start "$tmp/hosts" --watch $$ 2>&1); rc=$?
if [ $rc -eq 77 ]; then echo "SKIP: ${out##*$'\n'}"; exit 77; fi
[ $rc -eq 0 ] || { echo "FAIL local-hosts.sh start (exit $rc): $out"; exit 1; }
echo "$out"
ns_a=$(awk '$1 == "hosta" {print $2}' hosts/netns)
ns_b=$(awk '$1 == "hostb" {print $2}' hosts/netns)
prep_fashion_test fm.h5

# train RUN_DIR [args...]: one rank per host; each rank first says where it runs.
train() {
  local run=$1; shift
  hosts/mpirun -np 2 --map-by node bash -c \
    'echo "rank $OMPI_COMM_WORLD_RANK: netns $(ip netns identify), host $(hostname)"; exec "$0" "$@"' \
    "$DISTGAN" train -c "$config" --set data.path="$PWD/fm.h5" --set logging.run_dir="$PWD/$run" "$@"
}

# 1. Train, checkpoint, resume across the two hosts.
t0=$SECONDS
train run --set training.steps=20 --set checkpoint.every=10 >run.log 2>&1
rc=$?
expect_ok "2 ranks on 2 hosts train the smoke config (took $((SECONDS - t0))s)" "on 2 rank\(s\)" \
  bash -c "[ $rc -eq 0 ] && cat run.log"
expect_ok "rank 0 ran in hosta's namespace" "^rank 0: netns $ns_a, host hosta$" cat run.log
expect_ok "rank 1 ran in hostb's namespace" "^rank 1: netns $ns_b, host hostb$" cat run.log
expect_ok "the checkpoint of step 20 was written" "" test -f run/checkpoints/ckpt_00000020.h5
expect_ok "--resume auto continues from it across the hosts" \
  "resumed from .*run/checkpoints/ckpt_00000020.h5 at step 20" \
  train run --set training.steps=30 --set checkpoint.every=10 --resume auto
expect_ok "and writes the checkpoint of step 30" "" test -f run/checkpoints/ckpt_00000030.h5

# 2. The link cut mid-run. Rank 1's output is kept on hostb by its daemon (--output-filename), as
# it cannot reach mpirun once the link is down.
hosts/mpirun -np 2 --map-by node --output-filename "$PWD/cut-out" "$DISTGAN" train -c "$config" \
  --set data.path="$PWD/fm.h5" --set logging.run_dir="$PWD/cut" --set training.steps=100000 \
  --set checkpoint.every=20 --set logging.every=50 --set cluster.collective_timeout_s=5 >cut.log 2>&1 &
job=$!
for _ in $(seq 600); do ls cut/checkpoints/ckpt_*.h5 >/dev/null 2>&1 && break; sleep 0.1; done
sleep 0.5
# ranks_in NS: the distgan processes inside a namespace.
ranks_in() {
  local pid
  for pid in $(ip netns pids "$1"); do
    tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -q "^$DISTGAN train " && echo "$pid"
  done
}
expect_ok "one rank runs in each namespace" "^1 1$" bash -c "echo $(ranks_in "$ns_a" | wc -l) $(ranks_in "$ns_b" | wc -l)"
"$local_hosts" link hosts down
t0=$SECONDS
for _ in $(seq 600); do kill -0 $job 2>/dev/null || break; sleep 0.1; done
if kill -0 $job 2>/dev/null; then rc=timeout; else wait $job; rc=$?; fi
elapsed=$((SECONDS - t0))
expect_ok "a cut link ends the job non-zero within 60 s (took ${elapsed}s)" "" \
  bash -c "[ $rc != timeout ] && [ $rc -ne 0 ]"
expect_ok "rank 0 (hosta) names the collective that did not complete" \
  "\[rank 0 on hosta\] error: collective watchdog: rank 0, step [0-9]+: .* did not complete after [0-9.]+ s \(cluster.collective_timeout_s = 5\): a rank is dead or stuck" \
  cat cut.log
expect_ok "rank 1 (hostb) too, in its output kept on hostb" \
  "\[rank 1 on hostb\] error: collective watchdog: rank 1, step [0-9]+: .* did not complete after" \
  bash -c "cat cut-out/*/rank.1/stderr"
newest=$(ls cut/checkpoints/ckpt_*.h5 2>/dev/null | sort | tail -n 1)
expect_ok "the newest checkpoint ($newest) is intact" "wrote 2 items" \
  "$DISTGAN" sample -k "${newest:-none}" -n 2 --out cut-check.h5

# 3. Nothing survives the hosts.
expect_ok "stop removes the namespaces" "" "$local_hosts" stop hosts
expect_ok "no namespace of this test is left" "" bash -c "! ip netns list | grep -qE '^($ns_a|$ns_b)( |\$)'"
expect_ok "no process of this test is left" "" bash -c "! pgrep -f '$tmp/(hosts|cut|run)' >/dev/null"
finish
