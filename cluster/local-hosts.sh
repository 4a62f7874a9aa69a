#!/usr/bin/env bash
# Two throw-away test "hosts" on this machine for multi-host MPI tests: two network namespaces joined
# by a veth pair, their addresses only inside them, and an agent that Open MPI's rsh launcher uses
# instead of ssh to start its daemons in them. Every file (hostfile, agent, records) lives in DIR.
#
#   local-hosts.sh start DIR [--watch PID]  make the hosts; exit 77 with one line if impossible
#   local-hosts.sh stop DIR                 kill every process inside them, remove the namespaces
#   local-hosts.sh link DIR down|up         cut (or restore) the link: hostb's end of the veth pair
#   local-hosts.sh shape DIR RATE|off       limit the link's rate both ways (tc tbf, e.g. 1gbit, 10gbit)
#   local-hosts.sh agent DIR [opts] HOST CMD...
#                                           what DIR/agent runs: CMD in HOST's namespace (as ssh would)
#
# `start` writes:
#   DIR/hosts    the hostfile: `hosta slots=1`, `hostb slots=1`
#   DIR/netns    one line per host: HOST NAMESPACE ADDRESS INTERFACE (hosta distgan-PID-a 10.213.77.1 eth0)
#   DIR/agent    the rsh agent for Open MPI (--mca plm_rsh_agent DIR/agent)
#   DIR/mpirun   runs Open MPI's mpirun inside hosta's namespace with the hostfile, the agent and TCP
#                restricted to the hosts' subnet; arguments are mpirun's, e.g.
#                  DIR/mpirun -np 2 --map-by node build/launcher/distgan train -c configs/smoke.yaml
#                (--bind-to none --oversubscribe are set: more ranks than slots may share a host).
#                Its process is mpirun itself (signals reach it); both hosts are started through the
#                agent (neither host name is mpirun's own), so rank 0 runs on hosta, rank 1 on hostb.
#   DIR/pids     the watcher's PID, if any
#
# The hosts: namespaces distgan-PID-a and -b (PID of `start`, so runs never collide), `lo` up, a veth
# pair named eth0 on both sides created directly inside them (nothing appears in this machine's own
# namespace), 10.213.77.1/24 and .2/24 (private to the namespaces, so no clash with real networks).
# The agent runs CMD with `sh -c` like sshd, in a clean environment like a login (HOME, USER, LOGNAME,
# SHELL, LANG; PATH, LD_LIBRARY_PATH and TMPDIR are the caller's, as with a shared installation), in its own
# UTS namespace whose host name is HOST: the ranks' gethostname() says hosta / hostb. Use mpirun's
# `-x NAME` for variables the ranks need (OMPI_* variables travel by themselves).
# TCP in both namespaces gives up on a dead peer after about 13 s (net.ipv4.tcp_retries2 = 5; the
# Linux default, 15, is about 15 minutes): after a rank aborts, mpirun waits for its connection to
# the other host's daemon to fail, so with a cut link it would otherwise hang that long.
#
# `stop` removes exactly the namespaces DIR/netns names (recorded as each is made): it sends TERM,
# then KILL, to every process inside them (`ip netns pids`), and to the watcher. With --watch PID a
# small watcher runs `stop` once PID is gone, so the hosts do not outlive a test that is killed before
# its own cleanup runs. Needs root, iproute2 (`ip`), util-linux (`unshare`), and a kernel with
# network namespaces and veth; DIR's path must not contain spaces (Open MPI splits the agent's path).
set -uo pipefail
PATH=$PATH:/usr/sbin:/sbin

usage() {
  echo "usage: $0 start DIR [--watch PID] | stop DIR | link DIR down|up | shape DIR RATE|off | agent DIR [opts] HOST CMD..." >&2
  exit 2
}
[ $# -ge 2 ] || usage
cmd=$1; dir=$2; shift 2

subnet=10.213.77
skip() { echo "local-hosts: cannot make test hosts: $*"; exit 77; }
alive() { [ -n "$1" ] && kill -0 "$1" 2>/dev/null; }

# namespaces: the names DIR/netns records, one per line.
namespaces() { [ -f "$dir/netns" ] && awk '{print $2}' "$dir/netns"; }

# Processes inside the namespaces, never this script or its caller.
ns_pids() {
  local ns pid
  for ns in $(namespaces); do
    for pid in $(ip netns pids "$ns" 2>/dev/null); do
      [ "$pid" = "$$" ] || [ "$pid" = "$PPID" ] || echo "$pid"
    done
  done
}

stop_hosts() {
  local pid pids
  if [ -f "$dir/pids" ]; then  # the watcher (skipped when it is the one running stop: exec keeps its PID)
    while read -r _ pid; do
      [ "$pid" = "$$" ] || { alive "$pid" && kill -TERM "$pid" 2>/dev/null; }
    done < "$dir/pids"
    rm -f "$dir/pids"
  fi
  [ -f "$dir/netns" ] || return 0
  pids=$(ns_pids)
  if [ -n "$pids" ]; then
    kill -TERM $pids 2>/dev/null
    for _ in $(seq 30); do  # 3 s for mpirun and the ranks to end; then KILL
      pids=$(ns_pids); [ -z "$pids" ] && break
      sleep 0.1
    done
    for _ in $(seq 50); do
      pids=$(ns_pids); [ -z "$pids" ] && break
      kill -KILL $pids 2>/dev/null
      sleep 0.1
    done
    [ -z "$pids" ] || echo "local-hosts: processes still inside the namespaces: $pids" >&2
  fi
  local ns left=0
  for ns in $(namespaces); do  # removing a namespace also removes its end of the veth pair (and so both)
    if ip netns list | awk '{print $1}' | grep -qxF -- "$ns"; then
      ip netns del "$ns" 2>/dev/null || { echo "local-hosts: cannot remove namespace $ns" >&2; left=1; }
    fi
  done
  [ $left = 0 ] && rm -f "$dir/netns"
  return $left
}

# Starting failed half-way: remove what was made, then skip.
fail_start() { stop_hosts >/dev/null 2>&1; skip "$*"; }

start_watcher() {
  local owner=$1
  # Its own session, fds closed: it must not keep a caller's pipe open or die with its process group.
  setsid bash -c '
    while kill -0 "$1" 2>/dev/null; do sleep 1; done
    exec "$2" stop "$3"' watcher "$owner" "$(realpath "$0")" "$dir" \
    </dev/null >"$dir/watcher.out" 2>&1 &
  echo "watcher $!" >> "$dir/pids"
}

start_hosts() {
  local watch=""
  while [ $# -gt 0 ]; do
    case $1 in --watch) [ $# -ge 2 ] || usage; watch=$2; shift 2 ;; *) usage ;; esac
  done
  [ "${EUID:-$(id -u)}" = 0 ] || skip "needs root (ip netns add)"
  local c
  for c in ip unshare setsid; do command -v "$c" >/dev/null || skip "'$c' not found"; done
  mkdir -p "$dir" || skip "cannot create $dir"
  dir=$(cd "$dir" && pwd)
  case $dir in *[[:space:]]*) skip "$dir contains white space (Open MPI splits the agent's path)" ;; esac
  [ -f "$dir/netns" ] && skip "$dir already holds test hosts ($(namespaces | tr '\n' ' ')); stop them first"
  : > "$dir/netns"
  : > "$dir/pids"
  [ -n "$watch" ] && start_watcher "$watch"

  local id=$$ err h ns i=0
  for h in a b; do
    i=$((i + 1)); ns=distgan-$id-$h
    err=$(ip netns add "$ns" 2>&1) || fail_start "ip netns add $ns: $err"
    echo "host$h $ns $subnet.$i eth0" >> "$dir/netns"
    ip -n "$ns" link set lo up 2>/dev/null || fail_start "cannot bring up lo in $ns"
  done
  err=$(ip link add eth0 netns "distgan-$id-a" type veth peer name eth0 netns "distgan-$id-b" 2>&1) \
    || fail_start "cannot create a veth pair: $err"
  local host addr ifc
  while read -r host ns addr ifc; do
    ip -n "$ns" addr add "$addr/24" dev "$ifc" && ip -n "$ns" link set "$ifc" up \
      || fail_start "cannot configure $ifc in $ns"
    ip netns exec "$ns" sysctl -q -w net.ipv4.tcp_retries2=5 >/dev/null 2>&1 \
      || echo "local-hosts: warning: cannot set net.ipv4.tcp_retries2 in $ns; a cut link may hang mpirun for minutes" >&2
  done < "$dir/netns"
  err=$(ip netns exec "distgan-$id-a" unshare --uts true 2>&1) || fail_start "unshare --uts inside a namespace: $err"

  # The link carries traffic: a TCP connect to a closed port of hostb is refused (not timed out).
  local ok=""
  for _ in $(seq 30); do
    err=$(ip netns exec "distgan-$id-a" timeout 2 bash -c "exec 3<>/dev/tcp/$subnet.2/9" 2>&1)
    case $err in *refused*) ok=1; break ;; esac
    sleep 0.1
  done
  [ -n "$ok" ] || fail_start "hosta cannot reach hostb over the veth pair (${err:-no answer})"

  printf 'hosta slots=1\nhostb slots=1\n' > "$dir/hosts"
  local self; self=$(realpath "$0")
  cat > "$dir/agent" <<EOF
#!/bin/sh
# Open MPI's rsh agent for the test hosts in $dir (written by cluster/local-hosts.sh).
exec "$self" agent "$dir" "\$@"
EOF
  cat > "$dir/mpirun" <<EOF
#!/bin/sh
# mpirun across the test hosts in $dir (written by cluster/local-hosts.sh); arguments are mpirun's.
# pml ob1 over the tcp btl: left to choose, Open MPI sometimes took the ofi MTL (libfabric) on one
# host and ob1 on the other, and MPI_Init failed ("selected pml ob1, but peer ... selected pml cm").
exec ip netns exec distgan-$id-a mpirun --hostfile "$dir/hosts" --mca plm_rsh_agent "$dir/agent" \\
  --mca pml ob1 --mca btl tcp,self --mca btl_tcp_if_include $subnet.0/24 --mca oob_tcp_if_include $subnet.0/24 \\
  --bind-to none --oversubscribe "\$@"
EOF
  chmod +x "$dir/agent" "$dir/mpirun"
  echo "local-hosts: hosta (distgan-$id-a, $subnet.1) and hostb (distgan-$id-b, $subnet.2) up; mpirun: $dir/mpirun"
}

# shape DIR RATE|off: a token bucket (tc tbf) on both ends' eth0, so each direction carries at most
# RATE (tc's units: 1gbit, 10gbit, 500mbit). The bucket holds 1 ms of traffic at RATE (at least
# 16 KiB), so bursts cannot outrun the rate by much; packets wait up to 20 ms in its queue (TCP
# then backs off, as on a congested link). netem (delay, loss) is not used: it is often missing.
shape_link() {
  local rate=$1 ns bytes err
  if [ "$rate" != off ]; then
    bytes=$(tc_rate_bytes "$rate") || { echo "local-hosts: cannot read the rate '$rate' (e.g. 1gbit, 10gbit)" >&2; exit 2; }
    bytes=$((bytes / 1000)); [ "$bytes" -ge 16384 ] || bytes=16384
  fi
  for ns in $(namespaces); do
    tc -n "$ns" qdisc del dev eth0 root 2>/dev/null
    [ "$rate" = off ] && continue
    err=$(tc -n "$ns" qdisc add dev eth0 root tbf rate "$rate" burst "$bytes" latency 20ms 2>&1) \
      || { echo "local-hosts: tc tbf on $ns: $err" >&2; exit 1; }
  done
}

# Bytes per second of a tc rate: 1gbit, 10gbit, 500mbit, 100kbit (bits), or 1gbps-style bytes.
tc_rate_bytes() {
  awk -v r="$1" 'BEGIN {
    if (!match(r, /^[0-9.]+/)) exit 1
    n = substr(r, 1, RLENGTH); u = tolower(substr(r, RLENGTH + 1))
    m["bit"] = 1; m["kbit"] = 1e3; m["mbit"] = 1e6; m["gbit"] = 1e9; m["tbit"] = 1e12
    m["bps"] = 8; m["kbps"] = 8e3; m["mbps"] = 8e6; m["gbps"] = 8e9
    if (!(u in m)) exit 1
    printf "%.0f\n", n * m[u] / 8 }'
}

# agent DIR [opts] HOST CMD...: Open MPI calls its rsh agent as `AGENT HOST CMD...` (CMD being the
# words of one shell command line, ` orted -mca ess "env" ...`); ssh-style options before HOST are
# ignored.
run_agent() {
  while [ $# -gt 0 ]; do
    case $1 in -[1246AaCfgKkMNnqsTtVvXxYy]) shift ;; -*) shift 2 ;; *) break ;; esac
  done
  [ $# -ge 1 ] || { echo "local-hosts agent: no host given" >&2; exit 255; }
  local host=$1 ns; shift
  ns=$(awk -v h="$host" '$1 == h {print $2}' "$dir/netns" 2>/dev/null)
  [ -n "$ns" ] || { echo "local-hosts agent: unknown host '$host' (see $dir/netns)" >&2; exit 255; }
  local keep=(PATH="$PATH" HOME="${HOME:-/root}" USER="$(id -un)" LOGNAME="$(id -un)" SHELL=/bin/sh LANG="${LANG:-C.UTF-8}")
  [ -n "${LD_LIBRARY_PATH:-}" ] && keep+=(LD_LIBRARY_PATH="$LD_LIBRARY_PATH")
  [ -n "${TMPDIR:-}" ] && keep+=(TMPDIR="$TMPDIR")
  exec env -i "${keep[@]}" ip netns exec "$ns" unshare --uts /bin/sh -c 'hostname "$1" && exec /bin/sh -c "$2"' \
    agent "$host" "$*"
}

case $cmd in
  start) start_hosts "$@" ;;
  stop) [ -d "$dir" ] || exit 0
    dir=$(cd "$dir" && pwd); stop_hosts ;;
  link) [ $# -eq 1 ] && { [ "$1" = down ] || [ "$1" = up ]; } || usage
    ns=$(awk '$1 == "hostb" {print $2}' "$dir/netns" 2>/dev/null)
    [ -n "$ns" ] || { echo "local-hosts: no test hosts in $dir" >&2; exit 1; }
    ip -n "$ns" link set eth0 "$1" ;;
  shape) [ $# -eq 1 ] || usage
    [ -f "$dir/netns" ] || { echo "local-hosts: no test hosts in $dir" >&2; exit 1; }
    shape_link "$1" ;;
  agent) run_agent "$@" ;;
  *) usage ;;
esac
