#!/usr/bin/env bash
# A throw-away one-machine Slurm cluster for tests: munged, slurmctld and slurmd, with every file
# (key, sockets, config, state, spool, logs, pid files) inside one state directory.
#
#   local-slurm.sh start DIR [--watch PID]  start the daemons; exit 77 with one line if impossible
#   local-slurm.sh env DIR                   print the exports client commands need (eval it)
#   local-slurm.sh stop DIR                  cancel the cluster's jobs, stop the daemons it started
#
# `start` records the PID of every daemon it starts in DIR/pids; `stop` signals exactly those (TERM,
# then KILL) and nothing else. With --watch PID a small watcher runs `stop` once PID is gone, so the
# daemons do not outlive a test that is killed before its own cleanup runs.
# Needs root (SlurmUser=root, munged runs as user munge) and Debian's slurm-wlm, slurmd, slurmctld
# and munge (cluster/install-deps.sh --with-slurm).
set -uo pipefail
PATH=$PATH:/usr/sbin:/sbin  # munged, slurmctld and slurmd live there

usage() { echo "usage: $0 start DIR [--watch PID] | env DIR | stop DIR" >&2; exit 2; }
[ $# -ge 2 ] || usage
cmd=$1; dir=$2; shift 2

skip() { echo "local-slurm: cannot start Slurm: $*"; exit 77; }

alive() { [ -n "$1" ] && kill -0 "$1" 2>/dev/null; }

# Stops only what DIR/pids names; runs from `stop` and from the watcher. Jobs are cancelled first:
# with proctrack/linuxproc their slurmstepd and tasks would otherwise outlive slurmd.
stop_cluster() {
  [ -f "$dir/pids" ] || return 0
  export SLURM_CONF=$dir/slurm.conf
  local ctld; ctld=$(awk '$1 == "slurmctld" {print $2}' "$dir/pids")
  if alive "$ctld" && timeout 10 squeue -h -o %i 2>/dev/null | grep -q .; then
    timeout 10 scancel --quiet --partition=test 2>/dev/null || true
    for _ in $(seq 20); do  # KillWait is 10 s, so jobs are gone by then
      timeout 5 squeue -h -t all -o %T 2>/dev/null | grep -qE 'RUNNING|COMPLETING|CONFIGURING' || break
      sleep 1
    done
  fi
  local name pid pids=()
  while read -r name pid; do
    [ "$pid" = "$$" ] && continue  # the watcher runs stop itself (exec keeps its PID)
    alive "$pid" && { kill -TERM "$pid" 2>/dev/null; pids+=("$pid"); }
  done < <(tac "$dir/pids")  # reverse start order: slurmd, slurmctld, then munged
  for _ in $(seq 50); do
    local left=()
    for pid in ${pids[@]+"${pids[@]}"}; do alive "$pid" && left+=("$pid"); done
    [ ${#left[@]} -eq 0 ] && break
    sleep 0.1
  done
  for pid in ${pids[@]+"${pids[@]}"}; do alive "$pid" && kill -KILL "$pid" 2>/dev/null; done
  rm -f "$dir/pids"
}

# A TCP port nobody listens on (the standard 6817/6818 may belong to a real Slurm).
free_port() {
  local p used; used=" $(ss -Htln 2>/dev/null | awk '{print $4}' | sed 's/.*://' | tr '\n' ' ') ${1:-} "
  for _ in $(seq 50); do
    p=$((20000 + RANDOM % 30000))
    [[ $used == *" $p "* ]] || break
  done
  echo "$p"
}

start_cluster() {
  local watch=""
  while [ $# -gt 0 ]; do
    case $1 in --watch) watch=$2; shift 2 ;; *) usage ;; esac
  done
  [ "$(id -u)" = 0 ] || skip "needs root (SlurmUser=root, munged runs as user munge)"
  local c
  for c in munged mungekey munge slurmctld slurmd sinfo srun sbatch scontrol setpriv ss; do
    command -v "$c" >/dev/null || skip "'$c' not found (install with cluster/install-deps.sh --with-slurm)"
  done
  id munge >/dev/null 2>&1 || skip "no user 'munge' (Debian's munge package creates it)"
  if [ -f "$dir/pids" ]; then
    local name pid
    while read -r name pid; do alive "$pid" && skip "$dir already runs $name (pid $pid); stop it first"; done < "$dir/pids"
  fi

  mkdir -p "$dir" || skip "cannot create $dir"
  dir=$(cd "$dir" && pwd)
  # munged runs as munge, must reach its directory, and refuses one that others may write.
  chmod 755 "$dir"
  mkdir -p "$dir/munge" "$dir/state" "$dir/spool" "$dir/log"
  # Clients need to search the socket's directory; only munge may write it.
  chown munge:munge "$dir/munge" && chmod 755 "$dir/munge"
  setpriv --reuid=munge --regid=munge --clear-groups test -w "$dir/munge" \
    || skip "user munge cannot reach $dir/munge (make its parent directories searchable: chmod o+x)"
  : > "$dir/pids"
  [ -n "$watch" ] && start_watcher "$watch"

  # munge: a fresh key, the daemon in the foreground (so $! is its PID) as user munge.
  local m=$dir/munge
  mungekey -c -k "$m/munge.key" >"$dir/log/mungekey.out" 2>&1 || skip "mungekey failed: $(tail -n1 "$dir/log/mungekey.out")"
  chown munge:munge "$m/munge.key"; chmod 400 "$m/munge.key"
  setpriv --reuid=munge --regid=munge --clear-groups munged -F --socket="$m/munge.socket" \
    --key-file="$m/munge.key" --pid-file="$m/munged.pid" --log-file="$m/munged.log" \
    --seed-file="$m/munged.seed" </dev/null >"$dir/log/munged.out" 2>&1 &
  echo "munged $!" >> "$dir/pids"
  local ok=""
  for _ in $(seq 50); do
    munge -n -S "$m/munge.socket" 2>/dev/null | unmunge -S "$m/munge.socket" >/dev/null 2>&1 && { ok=1; break; }
    alive "$(awk '$1 == "munged" {print $2}' "$dir/pids")" || break
    sleep 0.2
  done
  [ -n "$ok" ] || fail_start "munged did not start: $(tail -n1 "$dir/log/munged.out" "$m/munged.log" 2>/dev/null | grep -v '^==' | grep . | tail -n1)"

  write_conf
  export SLURM_CONF=$dir/slurm.conf
  # -D: stay in the foreground so $! is the daemon's PID; -c: no jobs or node states from a last run.
  slurmctld -D -c -f "$SLURM_CONF" </dev/null >"$dir/log/slurmctld.out" 2>&1 &
  echo "slurmctld $!" >> "$dir/pids"
  slurmd -D -f "$SLURM_CONF" </dev/null >"$dir/log/slurmd.out" 2>&1 &
  echo "slurmd $!" >> "$dir/pids"

  local state=""
  for _ in $(seq 60); do
    state=$(timeout 5 sinfo -h -N -o %t 2>/dev/null | head -n1)
    [ "$state" = idle ] && break
    local name pid
    while read -r name pid; do
      alive "$pid" || fail_start "$name exited: $(grep -hiE 'error|fatal' "$dir/log/$name.out" "$dir/log/$name.log" 2>/dev/null | tail -n1)"
    done < "$dir/pids"
    sleep 0.5
  done
  [ "$state" = idle ] || fail_start "the node is not idle after 30 s (sinfo says '${state:-nothing}'; see $dir/log)"
  srun --mpi=list 2>&1 | grep -qw pmix || fail_start "Slurm has no PMIx plugin (srun --mpi=list)"
  echo "local-slurm: up in $dir (SLURM_CONF=$dir/slurm.conf)"
}

# Starting failed half-way: stop what did start, then skip.
fail_start() { stop_cluster; skip "$*"; }

start_watcher() {
  local owner=$1
  # Its own session, fds closed: it must not keep a caller's pipe open or die with its process group.
  setsid bash -c '
    while kill -0 "$1" 2>/dev/null; do sleep 2; done
    exec "$2" stop "$3"' watcher "$owner" "$(realpath "$0")" "$dir" \
    </dev/null >"$dir/log/watcher.out" 2>&1 &
  echo "watcher $!" >> "$dir/pids"
}

write_conf() {
  local host ctld_port slurmd_port node
  host=$(hostname -s)
  ctld_port=$(free_port); slurmd_port=$(free_port "$ctld_port")
  # The node line as slurmd itself detects it (CPUs, sockets, cores, memory), so it never drains
  # for a mismatch.
  node=$(slurmd -C 2>/dev/null | head -n1 | sed "s/^NodeName=[^ ]*/NodeName=$host NodeAddr=127.0.0.1/")
  [ -n "$node" ] || node="NodeName=$host NodeAddr=127.0.0.1 CPUs=$(nproc)"
  # Empty: keeps /etc/slurm/plugstack.conf (SPANK plugins of a real installation) out.
  : > "$dir/plugstack.conf"
  cat > "$dir/slurm.conf" <<EOF
# Written by cluster/local-slurm.sh for a one-machine test cluster.
ClusterName=distgan-test
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
# cred_expire also sets how long a requeued job waits before it may start again (default 120 s).
AuthInfo=socket=$dir/munge/munge.socket,cred_expire=10
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
PlugStackConfig=$dir/plugstack.conf
# No cgroups (none needed, so no cgroup.conf); task/affinity makes --cpu-bind=cores bind, and
# distgan sizes its thread pool from that mask.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/affinity
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=pmix
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/builtin
# Test pending jobs every 2 s (default 60): a requeued job becomes eligible by time, not by an event.
SchedulerParameters=sched_interval=2
JobRequeue=1
ReturnToService=2
MailProg=/bin/true
# Time between SIGTERM and SIGKILL at a time limit or scancel (default 30 s).
KillWait=10
# Finished jobs stay visible to 'scontrol show job' this long; there is no accounting database.
MinJobAge=600
SlurmdTimeout=60
$node State=UNKNOWN
PartitionName=test Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
}

case $cmd in
  start) start_cluster "$@" ;;
  env) dir=$(cd "$dir" 2>/dev/null && pwd) || { echo "no such directory: $2" >&2; exit 1; }
    echo "export SLURM_CONF=$dir/slurm.conf" ;;
  stop)
    [ -d "$dir" ] || exit 0
    dir=$(cd "$dir" && pwd)
    stop_cluster ;;
  *) usage ;;
esac
