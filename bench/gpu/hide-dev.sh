#!/usr/bin/env bash
# bash bench/gpu/hide-dev.sh COMMAND...: runs COMMAND with this Debian machine's copies of the
# development packages in bench/gpu/packages.txt hidden (headers, CMake and pkg-config files,
# unversioned .so links, static libraries, the mpicxx/h5cc wrappers, mpirun, pkg-config), as on a
# GPU machine that has none of them, so that a build can only use what .gpu packed. The runtime
# libraries stay, as a machine may have its own. The files are whited out in an overlay over /usr
# in a private mount namespace: nothing changes outside it. Needs root (mount namespaces, overlayfs).
set -euo pipefail
[ $# -gt 0 ] || { echo "usage: bash bench/gpu/hide-dev.sh COMMAND..."; exit 2; }
here=$(cd "$(dirname "$0")" && pwd)
mapfile -t packages < <(grep -v '^#' "$here/packages.txt" | tr -s ' \n' '\n' |
  grep -E -- '-dev$|^googletest$|^pkg-config$|^pkgconf(-bin)?$|^openmpi-bin$')
work=$(mktemp -d /tmp/hide-dev.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir "$work/upper" "$work/work"
dpkg -L "${packages[@]}" | while read -r f; do [ -d "$f" ] && [ ! -L "$f" ] || echo "$f"; done > "$work/files"
echo "hide-dev: hiding $(wc -l < "$work/files") files of ${#packages[@]} packages (${packages[*]})" >&2
unshare -m --propagation private bash -c '
  set -e
  mount -t overlay overlay -o "lowerdir=/usr,upperdir=$1/upper,workdir=$1/work" /usr
  xargs -d "\n" rm -f < "$1/files"
  shift
  exec "$@"' hide-dev "$work" "$@"
