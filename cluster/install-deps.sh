#!/usr/bin/env bash
# Installs the Debian 12 packages distgan needs (docs/clusters-and-gpus.md lists them with what each is for).
# Idempotent: packages already installed are left alone; prints what it did.
#   --with-slurm   also install Slurm and munge (for the job-script tests)
#   --with-peer    also install python3-torch (the PyTorch peer of the benchmarks)
#   --with-fuzz    also install clang and its libFuzzer runtime (the fuzz tests)
#   --with-browser also install Chromium (the run report's headless-browser test)
#   --dry-run      only print what would be installed
# Environment: DISTGAN_EXTRA_PACKAGES="a b" adds packages to the list (site additions; tests).
set -euo pipefail

usage() { sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; }

with_slurm=0; with_peer=0; with_fuzz=0; with_browser=0; dry_run=0
for arg in "$@"; do
  case "$arg" in
    --with-slurm) with_slurm=1 ;;
    --with-peer) with_peer=1 ;;
    --with-fuzz) with_fuzz=1 ;;
    --with-browser) with_browser=1 ;;
    --dry-run) dry_run=1 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "install-deps.sh: unknown option '$arg'" >&2; usage >&2; exit 2 ;;
  esac
done

packages=(
  build-essential cmake pkg-config
  libtorch-dev libopenblas0-pthread libdnnl-dev
  libopenmpi-dev openmpi-bin
  libhdf5-dev libyaml-cpp-dev libgtest-dev libpng-dev zlib1g-dev
  libjpeg62-turbo-dev libexif-dev libwebp-dev
  libcli11-dev nlohmann-json3-dev
  dataset-fashion-mnist
  libprotobuf-dev protobuf-compiler python3-protobuf
  python3-h5py python3-numpy python3-pil
)
# A module system for the modulefile test (tests/install): Environment Modules, unless Lmod is there
# (Debian makes the two conflict; installing one would remove the other).
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }
installed lmod || packages+=(environment-modules)
[ "$with_peer" = 1 ] && packages+=(python3-torch)
# shellcheck disable=SC2206
[ -n "${DISTGAN_EXTRA_PACKAGES:-}" ] && packages+=(${DISTGAN_EXTRA_PACKAGES})
[ "$with_slurm" = 1 ] && packages+=(slurm-wlm slurmd slurmctld munge libpmix-dev)
[ "$with_fuzz" = 1 ] && packages+=(clang libclang-rt-14-dev)
[ "$with_browser" = 1 ] && packages+=(chromium)

missing=()
for p in "${packages[@]}"; do
  installed "$p" || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages already installed"
  exit 0
fi
echo "install-deps: missing: ${missing[*]}"
if [ "$dry_run" = 1 ]; then exit 0; fi

sudo=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    sudo=(sudo)
  else
    echo "install-deps: error: ${#missing[@]} packages are missing and this is not root (and no password-less sudo)." >&2
    echo "  ask an administrator to run: apt-get install ${missing[*]}" >&2
    exit 1
  fi
fi

export DEBIAN_FRONTEND=noninteractive
# Refresh the package lists only when they are missing or older than a day.
if [ -z "$(find /var/lib/apt/lists -maxdepth 1 -name '*Packages*' -mtime -1 2>/dev/null | head -n 1)" ]; then
  echo "install-deps: apt-get update"
  "${sudo[@]}" apt-get update -qq
fi
echo "install-deps: apt-get install ${missing[*]}"
if ! "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; then
  # Package lists younger than a day can still be stale (a mirror moved on): refresh once, retry.
  echo "install-deps: install failed; refreshing the package lists and retrying"
  "${sudo[@]}" apt-get update -qq
  "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
echo "install-deps: installed ${#missing[@]} packages"
