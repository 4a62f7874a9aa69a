#!/usr/bin/env bash
# The Debian package from `cpack -G DEB`: its control fields (name, version, architecture,
# maintainer, the runtime packages in Depends), exactly the installed files under /usr, and a
# Depends that covers every library the packaged executable links (each library's owning package,
# by dpkg -S, is named). Unpacked with dpkg -x (never installed), its executable runs and trains the
# packaged configs/smoke.yaml on 2 ranks, as documented: from a working directory holding
# datasets/fashion-mnist-test.h5, writing runs/smoke/.
set -u
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../lib/assert.sh"
source "$here/lib.sh"
command -v dpkg-deb >/dev/null || { echo "SKIP: no dpkg-deb (not a Debian system)"; exit 77; }
enter_test_dir

arch=$(dpkg --print-architecture)
deb=$tmp/pkg/distgan_${DISTGAN_VERSION}_$arch.deb
expect_ok "cpack -G DEB writes the package" "package: $deb generated" \
  "$CPACK_COMMAND" --config "$DISTGAN_BUILD_DIR/CPackConfig.cmake" -G DEB -B "$tmp/pkg"
[ -f "$deb" ] || finish

field() { dpkg-deb -f "$deb" "$1"; }
expect_ok "Package: distgan" "^distgan$" field Package
expect_ok "Version: the project's" "^${DISTGAN_VERSION//./\\.}$" field Version
expect_ok "Architecture: this machine's" "^$arch$" field Architecture
expect_ok "Maintainer: a name and an address" "^[^<]+ <[^>]+@[^>]+>$" field Maintainer
expect_ok "Description: a summary and a long text" "distributed GAN training" field Description
# Package names in Depends, one a line, without versions or alternatives.
depends=$(field Depends | tr ',|' '\n\n' | sed 's/(.*)//; s/^ *//; s/ *$//' | sed '/^$/d')
for pkg in 'libtorch[0-9.]+' libopenblas0-pthread libopenmpi3 openmpi-bin libhdf5-103-1 libyaml-cpp0.7 \
           libpng16-16 zlib1g libjpeg62-turbo libexif12 libwebp7 libc6 'libstdc\+\+6'; do
  expect_ok "Depends names ${pkg//\\/}" "^$pkg$" echo "$depends"
done
expect_ok "the package holds exactly the installed files under /usr" "" \
  diff <(expected_files | sed 's|^|usr/|') <(dpkg-deb -c "$deb" | awk '{print $NF}' | grep -v '/$' | sed 's|^\./||' | LC_ALL=C sort)

dpkg -x "$deb" root
exe=$tmp/root/usr/bin/distgan
expect_ok "the unpacked executable runs" "^distgan $DISTGAN_VERSION " env -i PATH=/usr/bin:/bin "$exe" --version
expect_ok "the packaged job scripts name /usr/bin/distgan" "" \
  grep -q "^installed_distgan='/usr/bin/distgan'" root/usr/share/distgan/slurm/cpu.sbatch
expect_ok "the packaged modulefile puts /usr/bin on PATH" "" \
  grep -qxF "prepend-path PATH {/usr/bin}" "root/usr/share/modulefiles/distgan/$DISTGAN_VERSION"

# Each library the executable links directly (NEEDED) must come from a package in Depends. NCCL and
# the CUDA runtime, when compiled in, come from outside Debian (no package owns them): noted only.
undeclared_libraries() {
  local lib path owner resolved
  resolved=$(ldd "$exe")
  for lib in $(readelf -d "$exe" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
    path=$(awk -v l="$lib" '$1 == l {print $3}' <<<"$resolved")
    owner=
    # dpkg knows /usr/lib/... where ldd may say /lib/... (merged /usr), or only the versioned file.
    for candidate in "/usr${path#/usr}" "$path" "$(readlink -f "$path")"; do
      # "pkg:arch: path" or "pkg:amd64, pkg:i386: path"; "diversion by ..." lines are not owners.
      owner=$(dpkg -S "$candidate" 2>/dev/null | grep -v '^diversion ' | head -n 1 | sed 's/[:,].*//')
      [ -n "$owner" ] && break
    done
    if [ -z "$owner" ]; then
      case $lib in
        libnccl.so.*|libcudart.so.*) echo "note: $lib ($path) is not from a Debian package" ;;
        *) echo "$lib ($path): no package owns it" ;;
      esac
    elif ! grep -qxF "$owner" <<<"$depends"; then
      echo "$lib ($path): package $owner is not in Depends"
    fi
  done
}
undeclared_libraries >libraries.txt
grep '^note:' libraries.txt
expect_ok "Depends covers every library the executable links" "" awk '!/^note:/ {print; bad = 1} END {exit bad}' libraries.txt

mkdir work && cd work || exit 1
DISTGAN=$exe prep_fashion_test fm.h5 && mkdir datasets && mv fm.h5 datasets/fashion-mnist-test.h5
expect_ok "the unpacked distgan trains the packaged smoke config on 2 ranks" "distgan: done in" \
  mpiexec -n 2 --oversubscribe --bind-to none "$exe" train -c "$tmp/root/usr/share/distgan/configs/smoke.yaml" \
  --set training.steps=2
expect_ok "it wrote a checkpoint and the model file in runs/smoke" "" \
  test -s runs/smoke/checkpoints/ckpt_00000002.h5 -a -s runs/smoke/final.h5
finish
