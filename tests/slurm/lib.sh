# Shared by the Slurm tests (source after tests/lib/assert.sh and enter_test_dir): starts the
# one-machine Slurm of cluster/local-slurm.sh in $tmp/slurm, stopped again on every exit (its
# --watch covers a SIGKILL of the test), or ends the test as skipped (77) when Slurm cannot start.
harness=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/cluster/local-slurm.sh
trap 'bash "$harness" stop "$tmp/slurm" >/dev/null 2>&1; cd /; rm -rf "$tmp"' EXIT
trap 'exit 143' TERM INT
chmod 755 "$tmp"  # munged runs as user munge and must reach its directory inside

out=$(bash "$harness" start "$tmp/slurm" --watch $$ 2>&1); rc=$?
if [ $rc -eq 77 ]; then echo "SKIP ${out##*: cannot start Slurm: }"; exit 77; fi
[ $rc -eq 0 ] || { echo "FAIL local-slurm.sh start (exit $rc): $out"; exit 1; }
eval "$(bash "$harness" env "$tmp/slurm")"

# Finished jobs stay in `scontrol show job` (MinJobAge); there is no accounting database for sacct.
job_field() { scontrol show job "$1" 2>/dev/null | grep -oE "$2=[^ ]+" | cut -d= -f2; }
wait_done() {  # JOBID SECONDS: until the job is in a final state
  local end=$((SECONDS + $2)) s
  while [ $SECONDS -lt $end ]; do
    s=$(job_field "$1" JobState)
    case $s in COMPLETED|FAILED|CANCELLED|TIMEOUT|NODE_FAIL|OUT_OF_MEMORY|BOOT_FAIL|DEADLINE|PREEMPTED) return 0 ;; esac
    sleep 1
  done
  echo "job $1 still ${s:-unknown} after $2 s"; return 1
}
